"""Which PostgreSQL server a command talks to, and how to reach it: libpq's rule, for every tool.

One rule for `luckygas`, psql, pg_dump and dbt: **the server is whatever libpq makes of the
environment**, with libpq's own defaults (host: libpq's default unix socket directory; port
5432; user: the login name; database: the user name). `luckygas` hands an empty conninfo to
libpq, and the dbt profile (profiles.yml.example) passes PGHOST, PGPORT, PGUSER and
PGDATABASE through with the same defaults, so with the same variables both reach the same
server. The only two things libpq has no word for are added on top:

1. No server variable set (none of PGHOST, PGHOSTADDR, PGPORT, PGSERVICE, PGDATABASE,
   PGUSER; empty counts as unset): `luckygas` uses the project's embedded server
   (`loaders.embedded`, found from the project, not the working directory: see
   `loaders.project`). Its port is chosen on first start, so dbt cannot guess it: the
   profile then refuses with one line naming `eval "$(.venv/bin/luckygas db env)"`, which
   exports PGHOST/PGPORT/PGUSER/PGDATABASE and PGPASSFILE (the password, in the home's pgpass
   file). PG* variables that are exactly what `db env` exports for the embedded server still
   mean the embedded server (so the eval does not turn it into an "external" one).
2. `LUCKYGAS_DSN` (a libpq conninfo string or URI) names a server in one variable. libpq and
   dbt cannot read it, so: `luckygas` connects with it (its parameters win over PG*, those it
   leaves out fall back to libpq's defaults, as libpq does), and `db env` translates it into
   the PG* variables libpq would use, plus `LUCKYGAS_DB_ENV_DSN` (the DSN it translated). The
   profile refuses to run while LUCKYGAS_DSN differs from LUCKYGAS_DB_ENV_DSN, so dbt is never
   left pointed at another server than `luckygas`.

`luckygas db env` prints what both need in every case, computed by libpq itself (a
connection is started and dropped before any byte is sent: `_libpq_view`): for the embedded
server; for one PG* variables name (the defaults filled in, so dbt needs no default of its
own); for a DSN (above); for PGSERVICE (dbt-postgres always passes host and port, which
would override the service file's, so the profile also refuses PGSERVICE until `db env` has
exported the service's host, port, user and database, marked by `LUCKYGAS_DB_ENV_SERVICE`).
The single limitation: a password written in a service file does not reach dbt (the
profile's empty password stops libpq from looking there); keep it in a pgpass file.

The embedded server is started on demand by the commands that need a server (`resolve()`
with `start_embedded`), and each says so on stderr when it starts it; the first start in a
home that has no cluster yet says "starting a new, empty embedded server in HOME" before
running initdb. A server stopped with `luckygas db stop` stays stopped: that is recorded in
the home, and every command but `db start` then stops with one line saying so. (Refusing to
create a new cluster outright was considered and not done: a fresh `$LUCKYGAS_HOME` with no
`db start` is how CI and the tests run, and the line already tells a user who is in the
wrong place.)

An external server is never started, stopped or created; the embedded data directory is
not even created while one is in use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict

from loaders import embedded
from loaders.errors import UserError

DSN_VARIABLE = "LUCKYGAS_DSN"
DSN_EXPORTED = "LUCKYGAS_DB_ENV_DSN"  # set by `db env`: the DSN its PG* exports translate
SERVICE_EXPORTED = "LUCKYGAS_DB_ENV_SERVICE"  # set by `db env`: the PGSERVICE it resolved
SERVER_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE", "PGDATABASE", "PGUSER")
CONNECT_TIMEOUT_S = 10
STOPPED_MESSAGE = "the embedded server was stopped with `luckygas db stop`; run `luckygas db start`"
NOT_RUNNING_MESSAGE = "the embedded PostgreSQL is not running; run `luckygas db start` first"


@dataclass(frozen=True)
class Target:
    """A server to talk to: how psycopg connects, and how subprocesses do."""

    kind: Literal["embedded", "external"]
    conninfo: str = field(repr=False)  # for psycopg; may hold a password
    env: dict[str, str] = field(repr=False)  # full environment for psql, dbt, pg_dump
    description: str  # for messages, e.g. "the embedded server at 127.0.0.1:54012, ..."
    host: str
    port: str
    hint: str  # what to do when it cannot be reached
    named_by: tuple[str, ...] = ()  # the variables that chose an external server
    exported: tuple[str, ...] = ()  # the variables of `env` that `db env` prints


def resolve(home: Path | None = None, *, start_embedded: bool = True) -> Target:
    """The server in use: external if the environment names one, else the embedded one.

    With `start_embedded` (the commands that need a server: load, migrate, rollback, ...),
    a stopped embedded server is started, and that is said on stderr; unless it was stopped
    with `luckygas db stop`, which is a UserError. Without, a stopped embedded server is a
    UserError telling the user to run `luckygas db start`.
    """
    home = home if home is not None else embedded.project_home()
    external = external_server(home)
    if external is not None:
        return external
    server = embedded.EmbeddedServer(home)
    port = server.running_port()
    if port is None:
        if server.stopped_by_user():
            raise UserError(STOPPED_MESSAGE)
        if not start_embedded:
            raise UserError(NOT_RUNNING_MESSAGE)
        result = server.start(on_new_cluster=announce)
        port = result.port
        if not result.already_running:
            announce(f"started the embedded server on {embedded.HOST}:{port} ({server.home})")
    return embedded_target(server, port)


def announce(line: str) -> None:
    """One line on stderr, before or while a command acts (stdout may be piped or eval'd)."""
    print(f"luckygas: {line}", file=sys.stderr, flush=True)


def connect(target: Target | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """A psycopg connection to `target` (default: `resolve()`); UserError if unreachable."""
    target = target if target is not None else resolve()
    timeout = {}
    if "connect_timeout" not in conninfo_to_dict(target.conninfo) and not os.environ.get(
        "PGCONNECT_TIMEOUT"
    ):
        timeout = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        return psycopg.connect(target.conninfo, autocommit=autocommit, **timeout)
    except psycopg.OperationalError as exc:
        raise UserError(unreachable_message(target, exc)) from exc


def drop_database(conn: psycopg.Connection, name: str) -> None:
    """Drop database `name` if it exists, from `conn` (autocommit, connected to another
    database): first the sessions in it that `conn`'s role may end are ended (waiting up to
    5 s for each), then a plain `drop database`.

    Not `drop database ... with (force)`: for a role that is not a superuser, FORCE refuses
    the whole drop ("must be a member of the role whose process is being terminated") while
    an autovacuum worker is in the database, because a worker belongs to no role; after a
    load that is common (checked on PostgreSQL 15). A plain drop stops autovacuum workers
    itself. A session that `conn`'s role may not end still stops it, with PostgreSQL's
    "being accessed by other users" error."""
    conn.execute(
        "select pg_terminate_backend(a.pid, 5000)"
        " from pg_stat_activity as a join pg_roles as r on r.oid = a.usesysid"
        " where a.datname = %s and a.pid <> pg_backend_pid()"
        " and a.backend_type = 'client backend' and pg_has_role(r.oid, 'member')"
        " and (not r.rolsuper or (select rolsuper from pg_roles where rolname = current_user))",
        (name,),
    )
    conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))


def server_version(target: Target) -> str:
    """`select version()` on `target`; UserError if it cannot be reached."""
    with connect(target) as conn:
        row = conn.execute("select version()").fetchone()
    assert row is not None
    return str(row[0])


def external_server(home: Path | None = None) -> Target | None:
    """The external server named by LUCKYGAS_DSN or PG* variables, or None."""
    dsn = os.environ.get(DSN_VARIABLE, "").strip()
    if dsn:
        params = _dsn_params(dsn)
        translated = {_ENV_FOR_PARAM[k]: str(v) for k, v in params.items() if k in _ENV_FOR_PARAM}
        translated[DSN_EXPORTED] = dsn  # dbt's profile checks it (module docstring)
        return _external(dsn, {**os.environ, **translated}, (DSN_VARIABLE,), tuple(translated))

    named = tuple(name for name in SERVER_VARIABLES if os.environ.get(name))
    if not named:
        return None
    home = home if home is not None else embedded.project_home()
    if _names_embedded(named, embedded.EmbeddedServer(home)):
        return None
    return _external("", dict(os.environ), named, ())


def embedded_target(server: embedded.EmbeddedServer, port: int) -> Target:
    """The Target for `server` running on `port`."""
    # PGPASSWORD would win over PGPASSFILE in psql, dbt and pg_dump: it is some other
    # server's password, never this one's.
    inherited = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    return Target(
        kind="embedded",
        conninfo=server.conninfo(port),  # passfile=<home>/pgpass
        env={**inherited, **server.env(port)},  # PGPASSFILE=<home>/pgpass
        description=(
            f"the embedded server at {embedded.HOST}:{port}, database {embedded.DATABASE},"
            f" user {embedded.USER}"
        ),
        host=embedded.HOST,
        port=str(port),
        hint=(f"see {server.log_file}, or restart it with `luckygas db stop && luckygas db start`"),
        exported=embedded.ENV_VARIABLES,
    )


def exports(target: Target) -> dict[str, str | None]:
    """What `db env` prints for `target`: variable -> value to export (None: unset it).

    After `eval` of these, dbt's profile and `luckygas` reach `target` (module docstring).
    """
    out: dict[str, str | None] = {k: target.env[k] for k in target.exported}
    if target.kind == "embedded" and os.environ.get("PGPASSWORD"):
        out["PGPASSWORD"] = None  # another server's, and it would win over PGPASSFILE
    return out


def unreachable_message(target: Target, exc: Exception) -> str:
    """One line: which server (host and port), why it failed, and what to do."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = first.rsplit("failed: ", 1)[-1]  # "... port 5999 failed: Connection refused"
    return f"cannot connect to {target.description}: {reason}; {target.hint}"


# -- internals ---------------------------------------------------------------------------


def _env_for_param() -> dict[str, str]:
    """libpq's own table of conninfo keyword -> environment variable (host -> PGHOST)."""
    return {
        opt.keyword.decode(): opt.envvar.decode()
        for opt in pq.Conninfo.get_defaults()
        if opt.envvar
    }


_ENV_FOR_PARAM = _env_for_param()


def _dsn_params(dsn: str) -> dict[str, object]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UserError(f"{DSN_VARIABLE} is not a valid libpq connection string: {exc}") from None


def _libpq_view(conninfo: str) -> dict[str, str]:
    """What libpq makes of `conninfo` and the environment: host, port, user, dbname, ...

    Asked of libpq itself, not re-implemented: a non-blocking connection is started (libpq
    then applies the service file, the PG* variables and its defaults, and resolves the
    host name) and dropped before a byte is sent. `host` is the one libpq will use (its
    default socket directory when none is named). UserError if libpq rejects the
    parameters (an unknown service, say).
    """
    pgconn = pq.PGconn.connect_start(conninfo.encode())
    try:
        view = {
            opt.keyword.decode(): opt.val.decode() for opt in pgconn.info if opt.val is not None
        }
        if not view.get("user"):
            message = pgconn.error_message.decode(errors="replace").strip()
            raise UserError(f"libpq cannot use these connection settings: {message}")
        if pgconn.host:
            view["host"] = pgconn.host.decode()
        if pgconn.port:
            view["port"] = pgconn.port.decode()
        return view
    finally:
        pgconn.finish()


def _external(
    conninfo: str, env: dict[str, str], named_by: tuple[str, ...], translated: tuple[str, ...]
) -> Target:
    """An external Target; host, port, database and user as libpq resolves them.

    Its `env` (for dbt, psql, pg_dump) holds them too, so that dbt run by `luckygas` (the
    cut-over) needs none of the profile's defaults; `translated` are the variables a DSN
    was turned into.
    """
    try:
        view = _libpq_view(conninfo)
    except UserError as exc:
        raise UserError(f"{', '.join(named_by)}: {exc}") from None
    resolved = {
        _ENV_FOR_PARAM[k]: view[k]
        for k in ("host", "hostaddr", "port", "user", "dbname", "sslmode")
        if view.get(k)
    }
    if os.environ.get("PGSERVICE"):
        resolved[SERVICE_EXPORTED] = os.environ["PGSERVICE"]
    env = {**env, **resolved}
    exported = (*[k for k in translated if k not in resolved], *resolved)
    host = view.get("host") or view.get("hostaddr") or ""
    port = view.get("port", "5432")
    where = (
        f"{host}:{port}" if not host.startswith("/") else f"the unix socket in {host}, port {port}"
    )
    user = view.get("user", "?")
    dbname = view.get("dbname", user)
    service = f", service {view['service']}" if view.get("service") else ""
    description = (
        f"the external server at {where}, database {dbname}, user {user}{service}"
        f" (named by {', '.join(named_by)})"
    )
    hint = f"start that server, or fix or unset {', '.join(named_by)} to use the embedded one"
    return Target("external", conninfo, env, description, host, port, hint, named_by, exported)


def _names_embedded(named: tuple[str, ...], server: embedded.EmbeddedServer) -> bool:
    """True if the PG* variables set are exactly what `db env` exports for `server`.

    Only the variables that name a server count: `db env` also exports PGPASSFILE, which
    says how to log in, not where.
    """
    port = server.recorded_port()  # reads a file; never creates the home
    if port is None:
        return False
    exported = {k: v for k, v in server.env(port).items() if k in SERVER_VARIABLES}
    return set(named) == set(exported) and all(os.environ[k] == v for k, v in exported.items())
