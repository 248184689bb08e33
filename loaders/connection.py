"""Which PostgreSQL server a command talks to, and how to reach it.

The rule, in order:

1. `LUCKYGAS_DSN` (a libpq conninfo string or URI) names an external server. Its
   parameters win over PG* variables; parameters it leaves out fall back to libpq's
   defaults (PG* variables included), exactly as libpq itself does.
2. Any of the libpq variables PGHOST, PGHOSTADDR, PGPORT, PGSERVICE, PGDATABASE, PGUSER
   names an external server, unless they are exactly what `luckygas db env` exports for
   this project's embedded server (so `eval "$(luckygas db env)"` does not turn the
   embedded server into an "external" one). PGPASSFILE, which `db env` also exports,
   names no server.
3. Otherwise: the embedded server of the project home (`loaders.embedded`), reached with
   the password in the home's pgpass file (`passfile=` in the conninfo, PGPASSFILE in the
   environment of psql, dbt and pg_dump).

An external server is never started, stopped or created; the embedded data directory is
not even created while one is in use. Empty variables count as unset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from loaders import embedded
from loaders.errors import UserError

DSN_VARIABLE = "LUCKYGAS_DSN"
SERVER_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGSERVICE", "PGDATABASE", "PGUSER")
CONNECT_TIMEOUT_S = 10


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


def resolve(home: Path | None = None, *, start_embedded: bool = True) -> Target:
    """The server in use: external if the environment names one, else the embedded one.

    With `start_embedded`, the embedded server is started if needed; without, a stopped
    embedded server is a UserError telling the user to run `luckygas db start`.
    """
    home = home if home is not None else embedded.project_home()
    external = external_server(home)
    if external is not None:
        return external
    server = embedded.EmbeddedServer(home)
    port = server.start().port if start_embedded else server.running_port()
    if port is None:
        raise UserError("the embedded PostgreSQL is not running; run `luckygas db start` first")
    return embedded_target(server, port)


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
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise UserError(
                f"{DSN_VARIABLE} is not a valid libpq connection string: {exc}"
            ) from None
        env = dict(os.environ)
        env.update({_ENV_FOR_PARAM[k]: str(v) for k, v in params.items() if k in _ENV_FOR_PARAM})
        return _external(dsn, env, params, (DSN_VARIABLE,))

    named = tuple(name for name in SERVER_VARIABLES if os.environ.get(name))
    if not named:
        return None
    home = home if home is not None else embedded.project_home()
    if _names_embedded(named, embedded.EmbeddedServer(home)):
        return None
    return _external("", dict(os.environ), {}, named)


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
    )


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


def _external(
    conninfo: str, env: dict[str, str], params: dict[str, object], named_by: tuple[str, ...]
) -> Target:
    """An external Target; host, port, database and user as libpq will resolve them."""
    defaults = {
        opt.keyword.decode(): opt.val.decode() for opt in pq.Conninfo.get_defaults() if opt.val
    }
    effective = {**defaults, **{k: str(v) for k, v in params.items() if v not in (None, "")}}
    host = effective.get("host") or effective.get("hostaddr") or ""
    port = effective.get("port", "5432")
    where = f"{host}:{port}" if host else f"the default unix socket, port {port}"
    user = effective.get("user", "?")
    dbname = effective.get("dbname", user)
    service = f", service {effective['service']}" if effective.get("service") else ""
    description = (
        f"the external server at {where}, database {dbname}, user {user}{service}"
        f" (named by {', '.join(named_by)})"
    )
    hint = f"start that server, or fix or unset {', '.join(named_by)} to use the embedded one"
    return Target("external", conninfo, env, description, host, port, hint, named_by)


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
