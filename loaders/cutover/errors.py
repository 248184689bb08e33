"""How a cut-over stops: each a UserError (one line, exit 2), told apart by its type."""

from loaders.errors import UserError


class NoGo(UserError):
    """A checkpoint said no: nothing was changed (exit 2)."""


class Failed(UserError):
    """The work or a check after it failed (exit 2); the backup allows a rollback."""


class Unverified(UserError):
    """A restore ran, but the tables do not match the backup's counts and checksums."""
