"""The embedded PostgreSQL 16: a real server from the `pgserver` wheel, kept per project.

Layout under the project home (`$LUCKYGAS_HOME`, else `<cwd>/.luckygas`, git-ignored):

    pgdata/        the data directory (initdb'd on first start)
    server.json    the TCP port chosen on first start, reused while it stays free
    postgres.log   the server log (pg_ctl -l)

The server listens on 127.0.0.1 only, trusts local connections (user `postgres`) and keeps
running after the command that started it exits, until `luckygas db stop`. We drive the
wheel's `initdb` and `pg_ctl` ourselves instead of `pgserver.get_server`, which listens on
a unix socket only and stops the server when the calling process exits. As root (CI, a
container) the binaries refuse to run, so they run as the system user `pgserver`, set up
with pgserver's own helpers.

Which server a command talks to (this one, or one that PG* variables or LUCKYGAS_DSN name)
is decided in `loaders.connection`; `luckygas db ...` is `loaders.db_command`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from loaders.errors import UserError

with warnings.catch_warnings():
    # pgserver computes a runtime dir at import and warns when XDG_RUNTIME_DIR is unset;
    # we never use that dir.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH

HOST = "127.0.0.1"
USER = "postgres"
DATABASE = "luckygas"
SYSTEM_USER = "pgserver"  # who runs initdb/pg_ctl/postgres when we are root
DEFAULT_PORT = 5432  # never chosen: it belongs to any "real" server on the machine
START_TIMEOUT_S = 60
_PORT_ATTEMPTS = 3
_ORPHAN_WAIT_S = 5.0


def project_home() -> Path:
    """Return `$LUCKYGAS_HOME` if set, else `<cwd>/.luckygas`, as an absolute path."""
    configured = os.environ.get("LUCKYGAS_HOME")
    home = Path(configured) if configured else Path.cwd() / ".luckygas"
    return home.expanduser().resolve()


def bin_path(program: str) -> Path:
    """Path of one of the wheel's PostgreSQL 16 programs (psql, pg_dump, pg_ctl, ...)."""
    return POSTGRES_BIN_PATH / program


@dataclass(frozen=True)
class StartResult:
    """What `EmbeddedServer.start` did."""

    port: int
    already_running: bool
    initialized: bool  # initdb ran (a new data directory)
    previous_port: int | None  # set when the recorded port was taken and a new one chosen


class EmbeddedServer:
    """The embedded server of one project home: start, stop, inspect.

    Every method is safe to call from several processes: start and stop take a file lock
    in the home directory. Nothing here looks at PG* variables.
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home).expanduser().resolve()
        self.pgdata = self.home / "pgdata"
        self.state_file = self.home / "server.json"
        self.log_file = self.home / "postgres.log"
        self._lock_file = self.home / ".lock"

    # -- inspection -------------------------------------------------------------------

    def recorded_port(self) -> int | None:
        """The port recorded at the last start, or None before the first start."""
        try:
            return int(json.loads(self.state_file.read_text())["port"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"{self.state_file} is damaged ({exc}); delete it and run `luckygas db start`"
            ) from exc

    def running_port(self) -> int | None:
        """The port of the running server, or None if it is not running.

        Reads `postmaster.pid` and checks that its PID is a live postgres serving this data
        directory, so a stale file (crash, reboot, recycled PID) reads as not running.
        """
        lines = self._postmaster_lines()
        if lines is None or not self._is_our_postmaster(lines):
            return None
        try:
            return int(lines[3])
        except (IndexError, ValueError):
            return None

    def is_running(self) -> bool:
        """True if this home's server is running."""
        return self.running_port() is not None

    def conninfo(self, port: int, dbname: str = DATABASE) -> str:
        """libpq conninfo for this server on `port`."""
        return f"host={HOST} port={port} user={USER} dbname={dbname}"

    def env(self, port: int) -> dict[str, str]:
        """The libpq variables that point psql, dbt and psycopg at this server."""
        return {"PGHOST": HOST, "PGPORT": str(port), "PGUSER": USER, "PGDATABASE": DATABASE}

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> StartResult:
        """Start the server (initdb first if needed) and create database `luckygas`.

        Idempotent: a running server is left alone. Raises UserError naming the log file
        and its last lines if PostgreSQL does not come up.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._locked():
            port = self.running_port()
            if port is not None:
                return StartResult(
                    port, already_running=True, initialized=False, previous_port=None
                )
            initialized = self._ensure_initialized()
            self._remove_stale_pidfile()
            recorded = self.recorded_port()
            port = recorded if recorded is not None and _port_is_free(recorded) else _free_port()
            for attempt in range(_PORT_ATTEMPTS):
                self._write_state(port)
                log_offset = self._log_size()
                failure = self._pg_ctl_start(port)
                if failure is None:
                    break
                new_lines = self._log_lines(since=log_offset)
                if attempt + 1 < _PORT_ATTEMPTS and any("could not bind" in x for x in new_lines):
                    port = _free_port()  # lost a race for the port: pick another
                    continue
                tail = "\n".join("  " + line for line in new_lines[-10:]) or "  (nothing logged)"
                raise UserError(
                    f"PostgreSQL did not start ({failure}); last lines of {self.log_file}:\n{tail}"
                )
            self._ensure_database(port)
        moved = recorded if recorded is not None and recorded != port else None
        return StartResult(
            port, already_running=False, initialized=initialized, previous_port=moved
        )

    def stop(self) -> bool:
        """Stop the server if it runs; return whether it was running. Idempotent."""
        if not self.pgdata.is_dir():
            return False
        with self._locked():
            if not self.is_running():
                return False
            if os.geteuid() == 0:
                self._ensure_traversable()
            result = self._run(
                [bin_path("pg_ctl"), "-D", self.pgdata, "-w", "-t", "60", "-m", "fast", "stop"],
                timeout=90,
            )
            if result.returncode != 0:
                raise UserError(
                    f"pg_ctl stop failed: {_one_line(result.stdout)}; see {self.log_file}"
                )
            return True

    # -- internals --------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _postmaster_lines(self) -> list[str] | None:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None

    def _is_our_postmaster(self, lines: list[str]) -> bool:
        try:
            proc = psutil.Process(int(lines[0]))
            if proc.name() != "postgres":
                return False
            # A postgres process, but is it the postmaster of *this* data directory?
            return Path(proc.cwd()) == self.pgdata or str(self.pgdata) in proc.cmdline()
        except (IndexError, ValueError, psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True  # a postgres we may not inspect: let pg_ctl be the judge

    def _remove_stale_pidfile(self) -> None:
        """After a crash: drop postmaster.pid and the socket lock files of a dead server.

        postgres refuses to start while the PID in either file is alive, and after a
        reboot or a crash that PID may belong to an unrelated process (or a zombie).
        Those files are also postgres's guard against orphaned backends still attached to
        the data directory, so we first make sure none are left (they exit within moments
        of their postmaster's death). Called under the lock, with no postmaster running.
        """
        pidfile = self.pgdata / "postmaster.pid"
        socket_locks = list(self.pgdata.glob(".s.PGSQL.*.lock"))
        if not pidfile.exists() and not socket_locks:
            return
        deadline = time.monotonic() + _ORPHAN_WAIT_S
        while orphans := self._orphan_pids():
            if time.monotonic() > deadline:
                raise UserError(
                    f"postgres processes {orphans} still use {self.pgdata} but no server"
                    " runs there; stop them (kill PID) and run `luckygas db start` again"
                )
            time.sleep(0.1)
        for path in [pidfile, *socket_locks]:
            path.unlink(missing_ok=True)

    def _orphan_pids(self) -> list[int]:
        """PIDs of live (non-zombie) postgres processes working in this data directory."""
        found = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "postgres":
                continue
            try:
                if Path(proc.cwd()) == self.pgdata:
                    found.append(proc.pid)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
        return found

    def _ensure_initialized(self) -> bool:
        """Create and initdb the data directory if needed; return whether initdb ran."""
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_for_system_user()
        if (self.pgdata / "PG_VERSION").exists():
            return False
        if any(self.pgdata.iterdir()):
            raise UserError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION);"
                " move it away and run `luckygas db start` again"
            )
        result = self._run(
            [
                bin_path("initdb"),
                "-D",
                self.pgdata,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",  # portable (no C.UTF-8 on macOS); byte order, UTF-8 text
                "-U",
                USER,
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise UserError(f"initdb failed for {self.pgdata}: {_one_line(result.stdout)}")
        return True

    def _prepare_for_system_user(self) -> None:
        """As root: create `pgserver` and give it the data dir, the log and the binaries.

        Mirrors pgserver's `PostgresServer.ensure_pgdata_inited`: it widens read/traverse
        permissions on the parent directories and on the wheel's bin/ and lib/.
        """
        import stat

        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(SYSTEM_USER)
        self._ensure_traversable()
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        self.log_file.touch()
        for path in (self.pgdata, self.log_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _ensure_traversable(self) -> None:
        """As root: let `pgserver` reach the data dir (g+rx,o+rx on every parent).

        Checked again before each pg_ctl call: something may have tightened a parent
        since the last start (pytest resets /tmp/pytest-of-root to 0700, for one).
        """
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(self.pgdata)

    def _pg_ctl_start(self, port: int) -> str | None:
        """Run `pg_ctl start` on `port`; return None on success, else a short reason."""
        options = f"-h {HOST} -p {port} -k {shlex.quote(str(self._socket_dir(port)))}"
        try:
            result = self._run(
                [
                    bin_path("pg_ctl"),
                    "-D",
                    self.pgdata,
                    "-l",
                    self.log_file,
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-o",
                    options,
                    "start",
                ],
                timeout=START_TIMEOUT_S + 10,
            )
        except subprocess.TimeoutExpired:
            return f"no answer within {START_TIMEOUT_S + 10} s"
        if result.returncode != 0:
            return f"pg_ctl exit {result.returncode}: {_one_line(result.stdout)}"
        return None

    def _socket_dir(self, port: int) -> str:
        """The unix socket directory: the data dir, or none if that path is too long.

        Everything we run connects over TCP; the socket is only a convenience for tools
        pointed at the data directory.
        """
        limit = 107  # sun_path on Linux, including the terminating NUL
        return str(self.pgdata) if len(f"{self.pgdata}/.s.PGSQL.{port}") < limit else ""

    def _ensure_database(self, port: int) -> None:
        try:
            with psycopg.connect(
                self.conninfo(port, dbname="postgres"), autocommit=True, connect_timeout=10
            ) as conn:
                found = conn.execute(
                    "select 1 from pg_database where datname = %s", (DATABASE,)
                ).fetchone()
                if found is None:
                    conn.execute(f'create database "{DATABASE}"')
        except psycopg.OperationalError as exc:
            raise UserError(
                f"PostgreSQL started on {HOST}:{port} but does not answer: {_one_line(str(exc))};"
                f" see {self.log_file}"
            ) from exc

    def _write_state(self, port: int) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port}) + "\n")
        tmp.replace(self.state_file)

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_lines(self, since: int = 0) -> list[str]:
        """Lines of the server log from byte offset `since` (the log only grows)."""
        try:
            with self.log_file.open("rb") as handle:
                handle.seek(since)
                return handle.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def _run(self, argv: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run one of the wheel's programs, as `pgserver` when we are root."""
        kwargs: dict[str, object] = {}
        if os.geteuid() == 0:
            kwargs = {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        # pg_ctl's postmaster writes to the log (-l), so it holds no pipe of ours open.
        return subprocess.run(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.pgdata,
            env=env,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )


def _port_is_free(port: int) -> bool:
    """True if postgres could listen on `port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As postgres does: connections of the previous run in TIME_WAIT do not block it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (never 5432)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != DEFAULT_PORT:
            return port


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
