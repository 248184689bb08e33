"""Shared fixtures.

- `hermetic_env` (automatic): no test sees the shell's PG* / LUCKYGAS_* variables, and
  `LUCKYGAS_HOME` is a fresh, not yet created directory, so nothing touches
  `./.luckygas`. An embedded server a test starts there is stopped when the test ends.
- `pg` (session): the server every test that needs SQL uses. By default a throwaway
  embedded PostgreSQL 16, started once. With `LUCKYGAS_TEST_SERVER=external`, the server
  the shell's libpq variables name (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD or
  PGPASSFILE, ...), read once when pytest starts: nothing is started or stopped, and only
  the integration modules (`INTEGRATION_MODULES`) run. `.ci/run` does this against
  Debian's PostgreSQL 15.
- `pg_env`: points the PG* variables at `pg`, so `loaders.connection.resolve()`, psql
  and dbt (run from the test) all talk to it.

Every module in `INTEGRATION_MODULES` carries the `integration` marker (added here, so the
list lives in one place): `pytest -m integration` runs them against the embedded server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import pq
from psycopg.conninfo import make_conninfo

from loaders.embedded import EmbeddedServer

SERVER_MODE_VARIABLE = "LUCKYGAS_TEST_SERVER"  # "embedded" (default) or "external"

# The tests of the load, the dbt models, reconciliation, migrate and rollback: nothing in
# them depends on the embedded server, so they also run against an external one. Not here:
# tests of the embedded server itself (test_embedded, test_server_security), pure-Python
# tests, and the full-scale ones.
INTEGRATION_MODULES = frozenset(
    {
        "test_raw_load",
        "test_load_faults",
        "test_dbt_profile",
        "test_dbt_customers",
        "test_dbt_deliveries",
        "test_dbt_exceptions",
        "test_dbt_incremental",
        "test_taiwan_date",
        "test_migrate",
        "test_rollback_views",
        "test_review",
        "test_report",
    }
)


@dataclass(frozen=True)
class PgServer:
    """A running server for the tests: connect with `conninfo`, or export `env`."""

    server: EmbeddedServer | None  # None: an external server (never started or stopped)
    port: int
    conninfo: str  # libpq conninfo for psycopg.connect (with its password or passfile=)
    env: dict[str, str]  # the PG* variables naming it (PGHOST, PGPORT, ...): for a subprocess

    @property
    def external(self) -> bool:
        return self.server is None


def _pg_variables(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith("PG") and v}


# Read before any fixture clears the shell's variables.
_SERVER_MODE = os.environ.get(SERVER_MODE_VARIABLE, "").strip() or "embedded"
_SHELL_PG_VARIABLES = _pg_variables(os.environ)


def _external_server() -> PgServer:
    """The server the shell's libpq variables name; keyword values as libpq maps them."""
    env = dict(_SHELL_PG_VARIABLES)
    if not env.keys() & {"PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE"}:
        raise pytest.UsageError(
            f"{SERVER_MODE_VARIABLE}=external: set PGHOST/PGPORT (and PGUSER, PGDATABASE,"
            " PGPASSWORD or PGPASSFILE) to the server to test against"
        )
    keyword = {
        opt.envvar.decode(): opt.keyword.decode()
        for opt in pq.Conninfo.get_defaults()
        if opt.envvar
    }
    params = {keyword[name]: value for name, value in env.items() if name in keyword}
    return PgServer(None, int(env.get("PGPORT", "5432")), make_conninfo("", **params), env)


def pytest_configure(config: pytest.Config) -> None:
    if _SERVER_MODE not in ("embedded", "external"):
        raise pytest.UsageError(
            f"{SERVER_MODE_VARIABLE} is {_SERVER_MODE!r}; use 'embedded' or 'external'"
        )
    if _SERVER_MODE == "external":
        _external_server()  # a usage error now rather than in every test


def pytest_report_header(config: pytest.Config) -> str:
    if _SERVER_MODE != "external":
        return "server: a throwaway embedded PostgreSQL (pgserver)"
    server = _external_server()
    try:
        with psycopg.connect(server.conninfo, connect_timeout=10) as conn:
            version = conn.execute("show server_version").fetchone()
    except psycopg.Error as exc:
        raise pytest.UsageError(f"the external test server does not answer: {exc}") from None
    where = f"{server.env.get('PGHOST', '(default socket)')}:{server.port}"
    return f"server: external PostgreSQL {version[0] if version else '?'} at {where}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the integration modules; against an external server, run only those."""
    keep, drop = [], []
    for item in items:
        if item.path.stem in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)
            keep.append(item)
        else:
            drop.append(item)
    if _SERVER_MODE == "external" and drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
    """The session's server: the external one, or a throwaway embedded one (own home)."""
    if _SERVER_MODE == "external":
        yield _external_server()
        return
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
    """Set the PG* variables naming the session server (PGHOST, PGPORT, ...); returns `pg`."""
    for name, value in pg.env.items():
        monkeypatch.setenv(name, value)
    return pg
