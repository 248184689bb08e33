"""Lucky Gas migration: stage raw exports into PostgreSQL and generate realistic samples."""

__version__ = "0.1.0"
