"""Errors the CLI turns into one clear line and a non-zero exit code."""


class UserError(Exception):
    """Something the user can fix (a path, a setting, a file); shown without a traceback."""

    exit_code = 2
