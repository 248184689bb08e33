"""The embedded PostgreSQL 16: a real server from the `pgserver` wheel, kept per project.

It admits only its owner. initdb runs with `--auth=scram-sha-256` and a generated secret;
pg_hba.conf (ours, rewritten whenever the server is started) has no `trust` line, so another
local user who reaches 127.0.0.1 gets "no password supplied" instead of a superuser that
can run `copy ... to program`. Clients get the secret the libpq way, from a pgpass file:
`luckygas db env` exports PGPASSFILE, dbt's profile leaves the password empty (libpq then
reads PGPASSFILE), and our own conninfo carries `passfile=`.

Layout under the project home (`$LUCKYGAS_HOME`, else `.luckygas` in the dbt project's folder,
git-ignored: `loaders.project`, so the same server is found from any subdirectory), 0700,
every file in it 0600:

    postgres.password  the secret (the source of truth; pgpass is rewritten from it)
    pgpass             `127.0.0.1:*:*:postgres:<secret>` (and `localhost`, for the socket)
    server.json        the TCP port chosen on first start (reused while it stays free),
                       where the data directory is, and `stopped_by_user` after
                       `luckygas db stop` (cleared by `db start`): a server the user
                       stopped is not started again behind their back
    pgdata/            the data directory (initdb'd on first start); as root, a symlink
    postgres.log       the server log (pg_ctl -l); as root, in the cluster folder below

As root (CI, a container) postgres refuses to run, so initdb, pg_ctl and postgres run as the
system user `pgserver`, which must reach the programs and the data directory. The earlier
version opened read and enter rights on every parent folder up to `/` for that, turning a
private 0700 folder into 0755. Now no folder of the user's is touched; as root everything
`pgserver` needs lives in a root-owned system folder instead:

    /var/lib/luckygas/                          root 0755
      postgres-<pgserver version>/              root 0755, a copy of the wheel's programs:
        pgserver/pginstall/{bin,lib,share}      (copied once, atomically: temp name, rename;
        pgserver.libs/                          the layout the binaries' $ORIGIN rpath needs)
      clusters/                                 root 0711 (enter only: no listing)
        <sha256 of the home path, 16 hex>/      pgserver 0700
          pgdata/                               pgserver 0700, the data directory
          postgres.log                          pgserver 0600
          project-home                          which home this cluster belongs to

and `<home>/pgdata` is a symlink to that data directory. `bin_path()` still names the
wheel's own programs: psql, pg_dump and pg_restore run as the calling user (root included),
who can read the wheel. The PostgreSQL binaries are relocatable (bin, lib and share are
found relative to the program), which is what makes the copy work.

Upgrades from the earlier version happen on `db start`: a data directory whose pg_hba.conf
still trusts gets the password (set while still trusted, as a SCRAM verifier computed
client-side), our pg_hba.conf and a reload; as root a data directory under the home is first
moved to the cluster folder. A lost password file is recovered by setting a new password in
single-user mode (whoever owns the data directory may do that anyway).

The server listens on 127.0.0.1 only and keeps running after the command that started it
exits, until `luckygas db stop`. We drive the wheel's `initdb` and `pg_ctl` ourselves instead
of `pgserver.get_server`, which listens on a unix socket only, trusts every local
connection and stops the server when the calling process exits.

Which server a command talks to (this one, or one that PG* variables or LUCKYGAS_DSN name)
is decided in `loaders.connection`; `luckygas db ...` is `loaders.db_command`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loaders import project
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
SYSTEM_DIR = Path("/var/lib/luckygas")  # as root: the programs' copy and the clusters
DEFAULT_PORT = 5432  # never chosen: it belongs to any "real" server on the machine
START_TIMEOUT_S = 60
_PORT_ATTEMPTS = 3
_ORPHAN_WAIT_S = 5.0
_RELOAD_WAIT_S = 10.0
_AUTH = "scram-sha-256"
_HBA = f"""\
# Written by luckygas (loaders/embedded.py) on every `luckygas db start`; edits are lost.
# Only the owner gets in: every connection needs the password in the project home's pgpass.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  {_AUTH}
host    all          all   127.0.0.1/32   {_AUTH}
host    all          all   ::1/128        {_AUTH}
local   replication  all                  {_AUTH}
host    replication  all   127.0.0.1/32   {_AUTH}
host    replication  all   ::1/128        {_AUTH}
"""


ENV_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE")  # what env() sets


def project_home() -> Path:
    """The project home: `$LUCKYGAS_HOME`, else `<dbt project>/.luckygas` (`project.home`).

    Kept under this name for its callers; found from the project, never the working
    directory, so `luckygas verify` run in `data/` uses the same server as one at the top.
    """
    return project.home()


def bin_path(program: str) -> Path:
    """Path of one of the wheel's PostgreSQL 16 programs (psql, pg_dump, pg_ctl, ...).

    The wheel's own copy, for programs that run as the calling user. (As root the server
    itself runs from a copy that `pgserver` can reach; see the module docstring.)
    """
    return POSTGRES_BIN_PATH / program


def pgpass_line(host: str, user: str, password: str) -> str:
    """One pgpass line for `host`, any port and database: `host:*:*:user:password`.

    libpq reads `\\` and `:` in a field as escaped by a backslash.
    """

    def escape(field: str) -> str:
        return field.replace("\\", "\\\\").replace(":", "\\:")

    return f"{escape(host)}:*:*:{escape(user)}:{escape(password)}\n"


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

    `pgdata` and `log_file` are the real paths (as root, under SYSTEM_DIR); `cluster_dir`
    is the folder holding both (the home itself when not root).
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home).expanduser().resolve()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            self.cluster_dir = SYSTEM_DIR / "clusters" / cluster_key(self.home)
        else:
            self.cluster_dir = self.home
        self.pgdata = self.cluster_dir / "pgdata"
        self.log_file = self.cluster_dir / "postgres.log"
        self.state_file = self.home / "server.json"
        self.password_file = self.home / "postgres.password"
        self.pgpass_file = self.home / "pgpass"
        self._home_pgdata = self.home / "pgdata"  # as root: the symlink to `pgdata`
        self._lock_file = self.home / ".lock"

    # -- inspection -------------------------------------------------------------------

    def recorded_port(self) -> int | None:
        """The port recorded at the last start, or None before the first start."""
        port = self._state().get("port")
        try:
            return None if port is None else int(port)
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"{self.state_file} is damaged ({exc}); delete it and run `luckygas db start`"
            ) from exc

    def stopped_by_user(self) -> bool:
        """True if `luckygas db stop` stopped this server and no `db start` came since."""
        return self._state().get("stopped_by_user") is True

    def has_cluster(self) -> bool:
        """True if the data directory holds a cluster (initdb has run)."""
        try:
            return (self.pgdata / "PG_VERSION").exists()
        except PermissionError:
            return True  # as another user: it is there, we may just not look

    def running_port(self) -> int | None:
        """The port of the running server, or None if it is not running.

        Reads `postmaster.pid` and checks that its PID is a live postgres serving this data
        directory, so a stale file (crash, reboot, recycled PID) reads as not running.
        """
        lines = self._postmaster_lines()
        if lines is None or not self._is_our_postmaster(lines, self.pgdata):
            return None
        try:
            return int(lines[3])
        except (IndexError, ValueError):
            return None

    def is_running(self) -> bool:
        """True if this home's server is running."""
        return self.running_port() is not None

    def conninfo(self, port: int, dbname: str = DATABASE) -> str:
        """libpq conninfo for this server on `port`, the password read from the pgpass file.

        The empty `password` keeps libpq from taking PGPASSWORD (some other server's) from
        the environment: libpq reads an empty password as none, and consults the passfile.
        """
        return make_conninfo(
            host=HOST,
            port=str(port),
            user=USER,
            dbname=dbname,
            password="",
            passfile=str(self.pgpass_file),
        )

    def env(self, port: int) -> dict[str, str]:
        """The libpq variables that point psql, dbt and psycopg at this server."""
        values = (HOST, str(port), USER, DATABASE, str(self.pgpass_file))
        return dict(zip(ENV_VARIABLES, values, strict=True))

    # -- lifecycle --------------------------------------------------------------------

    def start(self, on_new_cluster: Callable[[str], None] | None = None) -> StartResult:
        """Start the server (initdb first if needed) and create database `luckygas`.

        Idempotent: a running server is left alone, except that a data directory of the
        earlier version (trusting every local connection) is given its password first.
        Clears the `db stop` mark. Before initdb (no cluster in this home yet),
        `on_new_cluster` gets one line saying so, naming the home. Raises UserError naming
        the log file and its last lines if PostgreSQL does not come up.
        """
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._locked():
            self._check_home_link()
            if self.as_root:
                self._adopt_home_pgdata()
            self._tighten_home()  # after the earlier version's server (if any) is stopped
            self._recover_lost_password()
            port = self.running_port()
            if port is not None:
                self._secure(port)
                if self.stopped_by_user():
                    self._write_state(port)
                return StartResult(
                    port, already_running=True, initialized=False, previous_port=None
                )
            initialized = self._ensure_initialized(on_new_cluster)
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
            self._secure(port)
            self._ensure_database(port)
        moved = recorded if recorded is not None and recorded != port else None
        return StartResult(
            port, already_running=False, initialized=initialized, previous_port=moved
        )

    def stop(self, *, by_user: bool = False) -> bool:
        """Stop the server if it runs; return whether it was running. Idempotent.

        `by_user` (`luckygas db stop`) records the stop in server.json, so that commands
        other than `db start` do not start the server again (`loaders.connection.resolve`).
        """
        if not self.home.is_dir():
            return False
        with self._locked():
            if by_user:
                _write_private(
                    self.state_file, json.dumps({**self._state(), "stopped_by_user": True}) + "\n"
                )
            stopped_old = self.as_root and self._stop_home_pgdata_server()
            if not self.pgdata.is_dir() or not self.is_running():
                return stopped_old
            self._pg_ctl_stop(self.pgdata)
            return True

    # -- internals: the home, the secret, pg_hba.conf ---------------------------------

    def _tighten_home(self) -> None:
        """Make the home 0700 if an earlier version made it wider."""
        if self.home.stat().st_mode & 0o077:
            self.home.chmod(0o700)

    def _check_home_link(self) -> None:
        """Refuse a home whose pgdata symlink names a cluster other than this one's.

        As root the cluster is found by a hash of the home path, so a moved or copied
        home would otherwise silently get a new, empty cluster; not as root, a link left by
        a root run points at a cluster we may not read.
        """
        link = self._home_pgdata
        if not link.is_symlink():
            return
        target = Path(os.readlink(link))
        if not self.as_root:
            raise UserError(
                f"{link} links to {target}, a cluster set up by luckygas run as root;"
                " run luckygas as root, or use another LUCKYGAS_HOME"
            )
        if target != self.pgdata:
            raise UserError(
                f"{link} links to {target}, but this home's cluster is {self.pgdata}"
                f" (was the home moved or copied?); move {target.parent} to"
                f" {self.cluster_dir} to keep its data, or delete the link to start afresh"
            )

    def _secret(self, *, create: bool) -> str | None:
        """The server's password (made when `create` and missing); rewrites the pgpass file."""
        try:
            secret = self.password_file.read_text().strip()
        except FileNotFoundError:
            if not create:
                return None
            secret = ""
        if not secret:
            secret = secrets.token_urlsafe(32)
            _write_private(self.password_file, secret + "\n")
        else:
            _tighten(self.password_file)
        lines = pgpass_line(HOST, USER, secret) + pgpass_line("localhost", USER, secret)
        _write_private(self.pgpass_file, lines)
        return secret

    def _hba_trusts(self) -> bool:
        """True if pg_hba.conf has a `trust` line (a data directory of the earlier version)."""
        try:
            text = (self.pgdata / "pg_hba.conf").read_text()
        except FileNotFoundError:
            return False
        return any("trust" in line.split("#", 1)[0].split() for line in text.splitlines())

    def _write_hba(self) -> None:
        self._write_server_file(self.pgdata / "pg_hba.conf", _HBA)

    def _write_server_file(self, path: Path, text: str) -> None:
        """Write a file the server reads: 0600, owned by whoever runs the server."""
        _write_private(path, text)
        if self.as_root:
            entry = _system_user()
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _secure(self, port: int) -> None:
        """With the server running: make sure it admits only holders of the secret.

        A data directory of the earlier version still trusts: we connect (trusted), set the
        password as a SCRAM verifier computed here (the server never sees the secret), write
        our pg_hba.conf, reload, and wait until a connection without password is refused.
        The secret files are written first, so a crash halfway leaves a state the next
        start finishes.
        """
        secret = self._secret(create=True)
        assert secret is not None
        _tighten(self.log_file)  # the earlier version's log was 0644
        if not self._hba_trusts():
            return
        try:
            with psycopg.connect(
                self.conninfo(port, dbname="postgres"), autocommit=True, connect_timeout=10
            ) as conn:
                verifier = conn.pgconn.encrypt_password(
                    secret.encode(), USER.encode(), b"scram-sha-256"
                )
                conn.execute(
                    sql.SQL("alter role {} password {}").format(
                        sql.Identifier(USER), sql.Literal(verifier.decode())
                    )
                )
                self._write_hba()
                errors = conn.execute(
                    "select line_number, error from pg_hba_file_rules where error is not null"
                ).fetchall()
                if errors:
                    raise UserError(f"the new {self.pgdata / 'pg_hba.conf'} is invalid: {errors}")
                conn.execute("select pg_reload_conf()")
        except psycopg.OperationalError as exc:
            raise UserError(
                f"could not set the password of the server on {HOST}:{port}:"
                f" {_one_line(str(exc))}; see {self.log_file}"
            ) from exc
        self._wait_until_password_required(port)

    def _wait_until_password_required(self, port: int) -> None:
        """After the reload: wait until a connection without the password is refused."""
        nowhere = self.home / ".no-password"  # a passfile that does not exist
        probe = make_conninfo(
            host=HOST,
            port=str(port),
            user=USER,
            dbname="postgres",
            passfile=str(nowhere),
            password="",
        )
        deadline = time.monotonic() + _RELOAD_WAIT_S
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(probe, connect_timeout=5):
                    pass
            except psycopg.OperationalError:
                return
            time.sleep(0.05)
        raise UserError(
            f"the server on {HOST}:{port} still admits connections without a password after"
            f" reloading {self.pgdata / 'pg_hba.conf'}; see {self.log_file}"
        )

    def _recover_lost_password(self) -> None:
        """A cluster with password authentication but no password file: set a new password.

        Done in single-user mode with the server stopped: whoever owns the data directory
        may do that anyway, and there is no other way in without the secret.
        """
        if not (self.pgdata / "PG_VERSION").exists() or self.password_file.exists():
            return
        if self._hba_trusts():
            return  # the earlier version's cluster: `_secure` upgrades it once running
        if self.is_running():
            self._pg_ctl_stop(self.pgdata)
        secret = self._secret(create=True)
        assert secret is not None
        literal = secret.replace("'", "''")
        result = self._run(
            [self._server_bin() / "postgres", "--single", "-D", self.pgdata, "postgres"],
            timeout=120,
            input=f"alter role {USER} password '{literal}';\n",
        )
        if result.returncode != 0:
            self.password_file.unlink(missing_ok=True)  # not set: try again next time
            raise UserError(
                f"could not set a new password for {self.pgdata}: {_one_line(result.stdout)}"
            )
        self._write_hba()

    # -- internals: as root -----------------------------------------------------------

    def _server_bin(self) -> Path:
        """The bin folder of the programs the server runs from (as root: the system copy)."""
        if not self.as_root:
            return POSTGRES_BIN_PATH
        return _system_install() / "pgserver" / "pginstall" / "bin"

    def _prepare_cluster_dir(self) -> None:
        """As root: the cluster folder and data directory, owned by `pgserver`, 0700."""
        entry = _system_user()
        clusters = self.cluster_dir.parent
        _system_folder(SYSTEM_DIR, 0o755)
        _system_folder(clusters, 0o711)
        for folder in (self.cluster_dir, self.pgdata):
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o700)
        note = self.cluster_dir / "project-home"
        if not note.exists():
            self._write_server_file(note, f"{self.home}\n")
        if not self._home_pgdata.is_symlink():
            self._home_pgdata.symlink_to(self.pgdata, target_is_directory=True)
        if not self.log_file.exists():
            self._write_server_file(self.log_file, "")

    def _stop_home_pgdata_server(self) -> bool:
        """As root: stop a server the earlier version runs from `<home>/pgdata`, if any.

        By signal (SIGINT, a fast shutdown, what `pg_ctl -m fast stop` sends) rather than
        pg_ctl: pg_ctl runs as `pgserver`, which can no longer reach a home whose folders
        were tightened since that server started.
        """
        legacy = self._home_pgdata
        if legacy.is_symlink() or not legacy.is_dir():
            return False
        try:
            lines = (legacy / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        if not self._is_our_postmaster(lines, legacy.resolve()):
            return False
        try:
            postmaster = psutil.Process(int(lines[0]))
            postmaster.send_signal(signal.SIGINT)
            postmaster.wait(timeout=60)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise UserError(
                f"the server of {legacy} (PID {postmaster.pid}) did not stop within 60 s;"
                " stop it and run `luckygas db start` again"
            ) from None
        return True

    def _adopt_home_pgdata(self) -> None:
        """As root: move a data directory the earlier version kept in the home to ours.

        Its server (if running) is stopped first; the data directory is moved, given to
        `pgserver` and replaced by the symlink. `_secure` then sets the password.
        """
        legacy = self._home_pgdata
        if legacy.is_symlink() or not legacy.is_dir():
            return
        if not (legacy / "PG_VERSION").exists():
            if any(legacy.iterdir()):
                raise UserError(
                    f"{legacy} is not empty but holds no PostgreSQL cluster (no PG_VERSION);"
                    " move it away and run `luckygas db start` again"
                )
            legacy.rmdir()
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise UserError(
                f"both {legacy} and {self.pgdata} hold a data directory; move one away and"
                " run `luckygas db start` again"
            )
        self._stop_home_pgdata_server()
        _system_folder(SYSTEM_DIR, 0o755)
        _system_folder(self.cluster_dir.parent, 0o711)
        self.cluster_dir.mkdir(mode=0o700, exist_ok=True)
        if self.pgdata.exists():
            self.pgdata.rmdir()  # empty (checked above)
        shutil.move(str(legacy), str(self.pgdata))
        old_log = self.home / "postgres.log"
        if old_log.is_file() and not self.log_file.exists():
            shutil.move(str(old_log), str(self.log_file))
        entry = _system_user()
        for root, folders, files in os.walk(self.cluster_dir):
            for name in [*folders, *files]:
                os.lchown(Path(root) / name, entry.pw_uid, entry.pw_gid)
        os.chown(self.cluster_dir, entry.pw_uid, entry.pw_gid)
        self._prepare_cluster_dir()  # modes, the note, the symlink, the log

    # -- internals: the server --------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _postmaster_lines(self) -> list[str] | None:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None

    @staticmethod
    def _is_our_postmaster(lines: list[str], pgdata: Path) -> bool:
        """True if `lines` (of postmaster.pid) name a live postmaster of `pgdata`."""
        try:
            proc = psutil.Process(int(lines[0]))
            if proc.name() != "postgres":
                return False
            # A postgres process, but is it the postmaster of *this* data directory?
            return Path(proc.cwd()) == pgdata or str(pgdata) in proc.cmdline()
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

    def _ensure_initialized(self, on_new_cluster: Callable[[str], None] | None = None) -> bool:
        """Create and initdb the data directory if needed; return whether initdb ran.

        The superuser's password is the secret, handed to initdb in a temporary 0600 file
        (as root owned by `pgserver`, which runs initdb), removed right after.
        """
        if self.as_root:
            self._prepare_cluster_dir()
        else:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if (self.pgdata / "PG_VERSION").exists():
            if not self._hba_trusts():
                self._write_hba()  # ours, whatever was there
            return False
        if any(self.pgdata.iterdir()):
            raise UserError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION);"
                " move it away and run `luckygas db start` again"
            )
        if on_new_cluster is not None:
            on_new_cluster(f"starting a new, empty embedded server in {self.home} (none there yet)")
        secret = self._secret(create=True)
        pwfile = self.cluster_dir / f".initdb-password.{os.getpid()}"
        try:
            self._write_server_file(pwfile, f"{secret}\n")
            result = self._run(
                [
                    self._server_bin() / "initdb",
                    "-D",
                    self.pgdata,
                    f"--auth={_AUTH}",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",  # portable (no C.UTF-8 on macOS); byte order, UTF-8 text
                    "-U",
                    USER,
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise UserError(f"initdb failed for {self.pgdata}: {_one_line(result.stdout)}")
        self._write_hba()
        return True

    def _pg_ctl_start(self, port: int) -> str | None:
        """Run `pg_ctl start` on `port`; return None on success, else a short reason."""
        options = f"-h {HOST} -p {port} -k {shlex.quote(str(self._socket_dir(port)))}"
        try:
            result = self._run(
                [
                    self._server_bin() / "pg_ctl",
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

    def _pg_ctl_stop(self, pgdata: Path) -> None:
        result = self._run(
            [self._server_bin() / "pg_ctl", "-D", pgdata, "-w", "-t", "60", "-m", "fast", "stop"],
            timeout=90,
            cwd=pgdata,
        )
        if result.returncode != 0:
            raise UserError(
                f"pg_ctl stop failed for {pgdata}: {_one_line(result.stdout)}; see {self.log_file}"
            )

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

    def _state(self) -> dict[str, object]:
        """server.json as a dict ({} before the first start); UserError if damaged."""
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise UserError(
                f"{self.state_file} is damaged ({exc}); delete it and run `luckygas db start`"
            ) from exc
        if not isinstance(state, dict):
            raise UserError(
                f"{self.state_file} is damaged (not an object); delete it and run"
                " `luckygas db start`"
            )
        return state

    def _write_state(self, port: int) -> None:
        _write_private(
            self.state_file, json.dumps({"port": port, "pgdata": str(self.pgdata)}) + "\n"
        )

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

    def _run(
        self,
        argv: Sequence[str | Path],
        timeout: float,
        *,
        input: str | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program, as `pgserver` when we are root."""
        kwargs: dict[str, object] = {}
        if self.as_root:
            kwargs = {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        # pg_ctl's postmaster writes to the log (-l), so it holds no pipe of ours open.
        return subprocess.run(
            [str(a) for a in argv],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd if cwd is not None else self.pgdata,
            env=env,
            timeout=timeout,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )


def cluster_key(home: Path) -> str:
    """As root, the name of a home's cluster folder: 16 hex digits of its path's sha256."""
    return hashlib.sha256(str(home).encode()).hexdigest()[:16]


def _write_private(path: Path, text: str) -> None:
    """Write `path` atomically (temp file, rename), mode 0600 from the start."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _tighten(path: Path) -> None:
    """Take group and other rights off `path`, if it exists."""
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        pass


def _system_user():  # -> pwd.struct_passwd
    """As root: the `pgserver` system user (created by pgserver's helper if missing)."""
    from pgserver.utils import ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    return entry


def _system_folder(path: Path, mode: int) -> None:
    """As root: `path` exists, belongs to root, and only root may write to it."""
    path.mkdir(mode=mode, exist_ok=True)
    info = path.lstat()
    if path.is_symlink() or info.st_uid != 0 or info.st_mode & 0o022:
        raise UserError(
            f"{path} must be a folder owned by root that only root may write to"
            f" (chown root {path}; chmod go-w {path})"
        )
    if info.st_mode & 0o7777 != mode:
        path.chmod(mode)


def _system_install() -> Path:
    """As root: a root-owned copy of the wheel's programs that `pgserver` may run.

    Copied once per pgserver version into SYSTEM_DIR, atomically (a temp name, then a
    rename, so a half copy is never used). The layout mirrors site-packages, because the
    programs find libpq through the rpath `$ORIGIN/../../../pgserver.libs`.
    """
    version = importlib.metadata.version("pgserver")
    target = SYSTEM_DIR / f"postgres-{version}"
    if (target / "pgserver" / "pginstall" / "bin" / "postgres").exists():
        return target
    _system_folder(SYSTEM_DIR, 0o755)
    install = POSTGRES_BIN_PATH.parent  # .../site-packages/pgserver/pginstall
    tmp = SYSTEM_DIR / f".postgres-{version}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, tmp / "pgserver" / "pginstall" / part, symlinks=True)
        libs = install.parent.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, tmp / "pgserver.libs", symlinks=True)
        for root, _folders, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for name in files:
                path = Path(root) / name
                if not path.is_symlink():
                    path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "pgserver" / "pginstall" / "bin" / "postgres").exists():
                raise
            # another process copied it first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
