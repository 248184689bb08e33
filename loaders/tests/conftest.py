"""Shared fixtures.

- `hermetic_env` (automatic): no test sees the shell's PG* / LUCKYGAS_* variables, and
  `LUCKYGAS_HOME` is a fresh, not yet created directory, so nothing touches
  `./.luckygas`. An embedded server a test starts there is stopped when the test ends.
- `pg` (session): one throwaway embedded PostgreSQL 16 for every test that needs SQL.
- `pg_env`: points the PG* variables at `pg`, so `loaders.connection.resolve()`, psql
  and dbt (run from the test) all talk to it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from loaders.embedded import EmbeddedServer


@dataclass(frozen=True)
class PgServer:
    """A running throwaway server: connect with `conninfo`, or export `env`."""

    server: EmbeddedServer
    port: int
    conninfo: str  # libpq conninfo for psycopg.connect (with passfile=, the password)
    env: dict[str, str]  # PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSFILE: for a subprocess env


def _clear_pg_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PG") or name.startswith("LUCKYGAS_"):
            monkeypatch.delenv(name)


@contextmanager
def _server_root(prefix: str) -> Iterator[Path]:
    """A temporary directory for server homes, removed afterwards (kept if stop failed)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    yield root
    shutil.rmtree(root)  # not on error: never delete the data dir of a running server


def remove_cluster(server: EmbeddedServer) -> None:
    """As root: delete a stopped test server's cluster folder (it is outside the home)."""
    if server.cluster_dir != server.home and server.cluster_dir.exists():
        shutil.rmtree(server.cluster_dir)


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Clear PG*/LUCKYGAS_* and point LUCKYGAS_HOME at a fresh (uncreated) directory."""
    _clear_pg_variables(monkeypatch)
    with _server_root("luckygas-test-") as root:
        home = root / "home"  # not created: commands create it when they need it
        monkeypatch.setenv("LUCKYGAS_HOME", str(home))
        yield home
        server = EmbeddedServer(home)
        server.stop()  # a no-op unless the test started a server there
        remove_cluster(server)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A throwaway embedded server (its own home), started once, stopped at session end."""
    with _server_root("luckygas-test-pg-") as root:
        server = EmbeddedServer(root / "home")
        try:
            with pytest.MonkeyPatch.context() as mp:
                _clear_pg_variables(mp)
                port = server.start().port
            yield PgServer(server, port, server.conninfo(port), server.env(port))
        finally:
            server.stop()
            remove_cluster(server)


@pytest.fixture
def pg_env(pg: PgServer, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> PgServer:
    """Set PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSFILE to the session server; returns `pg`."""
    for name, value in pg.env.items():
        monkeypatch.setenv(name, value)
    return pg
