"""`luckygas db start|stop|status|env|psql`: what each does, and the lines it reports.

Each acts on the embedded server of the project home, unless PG* variables or LUCKYGAS_DSN
name another server (`loaders.connection`, which states the rule); that one is never started
or stopped. `db stop` is remembered: only `db start` starts the server again. `db env`
prints what dbt and every libpq tool need to reach the server `luckygas` uses, whichever it
is. The CLI prints the returned lines on stdout and exits with the returned code; what the
user can fix is a UserError.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loaders import connection, project
from loaders.embedded import HOST, EmbeddedServer, bin_path
from loaders.errors import UserError


@dataclass(frozen=True)
class Output:
    """What a `db` command reports: lines for stdout, and the exit code."""

    lines: tuple[str, ...]
    code: int = 0


def start(home: Path) -> Output:
    """`db start`: start the embedded server, unless PG*/LUCKYGAS_DSN name another one."""
    external = connection.external_server(home)
    if external is not None:
        return Output((f"using {external.description}; the embedded server is not started",))
    server = EmbeddedServer(home)
    result = server.start(on_new_cluster=connection.announce)
    where = f"{HOST}:{result.port}"
    if result.already_running:
        lines = [f"the embedded PostgreSQL is already running on {where} ({server.pgdata})"]
    else:
        made = "new data directory" if result.initialized else "data directory"
        lines = [f"started the embedded PostgreSQL on {where} ({made} {server.pgdata})"]
    if result.previous_port is not None:
        lines.append(
            f"note: port {result.previous_port} was taken, now {result.port};"
            ' run `eval "$(luckygas db env)"` again'
        )
    return Output(tuple(lines))


def stop(home: Path) -> Output:
    """`db stop`: stop the embedded server (never an external one); it then stays stopped.

    Recorded in the home, so that `load` and the other commands that start the server on
    demand refuse instead, until `db start`.
    """
    external = connection.external_server(home)
    if external is not None:
        return Output((f"using {external.description}; there is no embedded server to stop",))
    server = EmbeddedServer(home)
    if server.stop(by_user=True):
        return Output((f"stopped the embedded PostgreSQL ({server.pgdata})",))
    return Output(("the embedded PostgreSQL is not running",))


def status(home: Path) -> Output:
    """`db status`: code 0 if the server in use answers, 1 if the embedded one is not running."""
    target = connection.external_server(home)
    if target is None:
        server = EmbeddedServer(home)
        port = server.running_port()
        if port is None:
            exists = server.has_cluster()
            why = " (stopped with `luckygas db stop`)" if server.stopped_by_user() else ""
            return Output(
                (
                    f"embedded PostgreSQL: not running{why}",
                    f"data dir: {server.pgdata}{'' if exists else ' (not created yet)'}",
                ),
                code=1,
            )
        target = connection.embedded_target(server, port)
    version = connection.server_version(target)  # UserError if it does not answer
    lines = [f"{target.kind} PostgreSQL: running"]
    if target.kind == "embedded":
        lines.append(f"data dir: {EmbeddedServer(home).pgdata}")
    lines.append(f"server:   {target.host}:{target.port}")
    lines.append(f"version:  {version}")
    return Output(tuple(lines))


def env(home: Path) -> Output:
    """`db env`: shell lines that point dbt, psql and pg_dump at the server in use.

    The embedded server (running): PGHOST, PGPORT, PGUSER, PGDATABASE, and PGPASSFILE (the
    home's pgpass file, which holds the server's password), and `unset PGPASSWORD` if it is
    set. An external one: a comment naming it, then the PG* variables as libpq resolves
    them (a DSN or a service translated; see `connection.exports`). Either way, last,
    DBT_PROFILES_DIR: the project's folder, so dbt finds profiles.yml from a subdirectory.
    """
    target = connection.resolve(home, start_embedded=False)
    lines = []
    if target.kind == "external":
        lines.append(f"# luckygas: using {target.description}")
    for name, value in connection.exports(target).items():
        lines.append(f"unset {name}" if value is None else f"export {name}={shlex.quote(value)}")
    profiles = _profiles_dir()
    if profiles is not None:
        lines.append(f"export DBT_PROFILES_DIR={shlex.quote(str(profiles))}")
    return Output(tuple(lines))


def _profiles_dir() -> Path | None:
    """The folder of the project's profiles.yml, for dbt run from any subdirectory: dbt
    finds dbt_project.yml in the folders above, but looks for profiles.yml only in the
    working directory and ~/.dbt. None without a project or without a profiles.yml."""
    try:
        folder = project.dbt_project_dir()
    except UserError:
        return None
    return folder if (folder / "profiles.yml").is_file() else None


def psql(home: Path, args: Sequence[str]) -> int:
    """`db psql ARGS`: the wheel's psql 16 against the server in use; returns psql's code."""
    target = connection.resolve(home, start_embedded=False)
    return run_interactive([str(bin_path("psql")), *args], env=target.env)


def run_interactive(argv: Sequence[str], env: dict[str, str]) -> int:
    """Run a terminal program in the foreground and return its exit code.

    Ctrl-C goes to the whole foreground process group, so we ignore it while the child
    runs: psql cancels its query and carries on, as it would when run directly.
    """
    proc = subprocess.Popen(list(argv), env=env)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        code = proc.wait()
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as shells do
