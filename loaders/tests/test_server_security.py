"""The embedded server admits only its owner (issue 15), against real servers (no mocks).

Password (SCRAM) authentication with a secret in the project home, handed over in a pgpass
file; no `trust` in pg_hba.conf; the home and its files private; no permission change on
any folder above the home; a data directory of the earlier version (trust) upgraded on
`db start`. The automatic `hermetic_env` fixture (conftest.py) gives each test an empty
LUCKYGAS_HOME and stops (and, as root, deletes) any server started there.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from loaders import connection
from loaders.embedded import HOST, SYSTEM_USER, USER, EmbeddedServer, bin_path, pgpass_line
from loaders.tests.conftest import remove_cluster

LUCKYGAS = str(Path(sys.executable).with_name("luckygas"))
AS_ROOT = os.geteuid() == 0
REFUSED = "no password supplied|password authentication failed"


def luckygas(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `luckygas` in a new process, with the (monkeypatched) environment."""
    return subprocess.run(
        [LUCKYGAS, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def no_secret(port: int, passfile: str) -> str:
    """A conninfo for `port` whose password comes from `passfile` (none, if it is empty)."""
    return make_conninfo(host=HOST, port=str(port), user=USER, dbname="postgres", passfile=passfile)


def hba_methods(server: EmbeddedServer) -> list[str]:
    """The METHOD field of every rule in the server's pg_hba.conf."""
    methods = []
    for line in (server.pgdata / "pg_hba.conf").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            methods.append(fields[3] if fields[0] == "local" else fields[4])
    return methods


def test_only_the_secret_admits(
    hermetic_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmbeddedServer(hermetic_env)
    port = server.start().port

    for passfile in (str(tmp_path / "missing"), "/dev/null"):
        with pytest.raises(psycopg.OperationalError, match=REFUSED):
            psycopg.connect(no_secret(port, passfile), connect_timeout=5)
    wrong = tmp_path / "wrong"
    wrong.write_text(pgpass_line(HOST, USER, "not-the-secret"))
    wrong.chmod(0o600)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(no_secret(port, str(wrong)), connect_timeout=5)

    # Our conninfo (passfile=), and libpq's variables as `db env` exports them.
    with psycopg.connect(server.conninfo(port)) as conn:
        assert conn.execute("select current_user").fetchone() == (USER,)
    env = {**os.environ, **server.env(port)}
    psql = [str(bin_path("psql")), "-XAtc", "select current_database()"]
    answered = subprocess.run(psql, env=env, capture_output=True, text=True, timeout=30)
    assert (answered.returncode, answered.stdout.strip()) == (0, "luckygas"), answered.stderr
    env["PGPASSFILE"] = str(tmp_path / "missing")
    refused = subprocess.run([*psql, "-w"], env=env, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "no password supplied" in refused.stderr

    # psycopg with just the exported variables, as after `eval "$(luckygas db env)"`.
    for name, value in server.env(port).items():
        monkeypatch.setenv(name, value)
    with psycopg.connect("") as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    # Some other server's PGPASSWORD in the environment does not get in the way.
    monkeypatch.setenv("PGPASSWORD", "someone-elses")
    target = connection.embedded_target(server, port)
    assert "PGPASSWORD" not in target.env
    with connection.connect(target) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    methods = hba_methods(server)
    assert methods and set(methods) == {"scram-sha-256"}
    assert "trust" not in (server.pgdata / "pg_hba.conf").read_text().split()


@pytest.mark.skipif(not AS_ROOT, reason="needs another OS user")
def test_another_os_user_is_refused(hermetic_env: Path) -> None:
    server = EmbeddedServer(hermetic_env)
    port = server.start().port
    psql = shutil.which("psql")
    assert psql is not None, "expected the Debian PostgreSQL client on PATH"
    # `nobody` may not even read the pgpass file (the home is 0700): libpq skips it.
    env = {"PATH": os.environ["PATH"], **server.env(port)}
    result = subprocess.run(
        [psql, "-w", "-XAtc", "copy (select 1) to program 'id'"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        user="nobody",
        cwd="/",
    )
    assert result.returncode == 2 and "no password supplied" in result.stderr, result


def test_files_and_folders_are_private(hermetic_env: Path) -> None:
    home = hermetic_env
    assert luckygas("db", "start").returncode == 0
    server = EmbeddedServer(home)
    secret = server.password_file.read_text().strip()
    assert len(secret) >= 40  # token_urlsafe(32)
    assert server.pgpass_file.read_text().splitlines() == [
        f"127.0.0.1:*:*:postgres:{secret}",
        f"localhost:*:*:postgres:{secret}",
    ]
    assert mode(home) == 0o700
    for path in (server.password_file, server.pgpass_file, server.log_file, server.state_file):
        assert mode(path) == 0o600, path
    assert mode(server.pgdata) == 0o700
    assert mode(server.pgdata / "pg_hba.conf") == 0o600
    assert json.loads(server.state_file.read_text())["pgdata"] == str(server.pgdata)
    leftovers = [p.name for p in home.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    assert leftovers == []  # no temporary password file left behind
    if AS_ROOT:
        owner = server.pgdata.stat().st_uid
        assert owner != 0 and owner == server.log_file.stat().st_uid
        assert (home / "pgdata").is_symlink() and (home / "pgdata").resolve() == server.pgdata
        assert mode(server.cluster_dir) == 0o700
        assert list(server.cluster_dir.glob(".initdb-password*")) == []

    # A home of the earlier version was 0755 with 0644 files: the next start tightens them.
    assert luckygas("db", "stop").returncode == 0
    home.chmod(0o755)
    server.password_file.chmod(0o644)
    server.log_file.chmod(0o644)
    assert luckygas("db", "start").returncode == 0
    assert [mode(home), mode(server.password_file), mode(server.log_file)] == [0o700] + [0o600] * 2
    assert server.password_file.read_text().strip() == secret  # the same secret


def test_pgpass_escapes_colon_and_backslash(pg_env) -> None:
    """libpq reads `\\:` and `\\\\` in a pgpass field as `:` and `\\`: a real login proves it."""
    assert pgpass_line("h", "u", "a:b\\c") == "h:*:*:u:a\\:b\\\\c\n"
    password = "pa:ss\\word:"
    with psycopg.connect(pg_env.conninfo, autocommit=True) as conn:
        conn.execute("drop role if exists escape_probe")
        conn.execute(f"create role escape_probe login password '{password}'")
    passfile = pg_env.server.home.parent / "escape-pgpass"
    passfile.write_text(pgpass_line(HOST, "escape_probe", password))
    passfile.chmod(0o600)
    try:
        probe = make_conninfo(
            host=HOST,
            port=str(pg_env.port),
            user="escape_probe",
            dbname="postgres",
            passfile=str(passfile),
        )
        with psycopg.connect(probe) as conn:
            assert conn.execute("select current_user").fetchone() == ("escape_probe",)
    finally:
        passfile.unlink()
        with psycopg.connect(pg_env.conninfo, autocommit=True) as conn:
            conn.execute("drop role escape_probe")


def test_no_folder_above_the_home_changes_mode(
    hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private 0700 folder holding the home stays 0700 (as root the server is `pgserver`)."""
    private = hermetic_env.parent / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    home = private / "home"
    ancestors = [private, *private.parents]
    wheel = [bin_path("postgres"), *bin_path("postgres").parents]
    before = {p: mode(p) for p in [*ancestors, *wheel]}
    monkeypatch.setenv("LUCKYGAS_HOME", str(home))
    server = EmbeddedServer(home)
    try:
        started = luckygas("db", "start")
        assert started.returncode == 0, started.stderr
        port = server.running_port()
        assert port is not None
        with psycopg.connect(server.conninfo(port)) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        stopped = luckygas("db", "stop")
        assert stopped.returncode == 0, stopped.stderr
        restarted = luckygas("db", "start")  # the second start (and the stop) as well
        assert restarted.returncode == 0, restarted.stderr
    finally:
        server.stop()
        remove_cluster(server)
    assert {p: mode(p) for p in before} == before
    assert mode(private) == 0o700


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _as_old_version(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a wheel program as the earlier version did (as `pgserver` when root)."""
    kwargs: dict[str, object] = {}
    if AS_ROOT:
        kwargs = {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=True, **kwargs
    )  # type: ignore[call-overload]


def make_trust_cluster(home: Path, *, running: bool) -> int:
    """The earlier version's home: pgdata initdb'd with --auth=trust, 0755 home, 0644 log.

    As root the earlier version ran the server as `pgserver` from `<home>/pgdata` after
    opening every parent folder: here the test's own temp folder is opened instead.
    Returns the port recorded in server.json (the server listens there if `running`).
    """
    home.parent.chmod(0o755)  # the test's temp folder (the earlier version chmodded all)
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    pgdata, log = home / "pgdata", home / "postgres.log"
    pgdata.mkdir(mode=0o700)
    log.touch(mode=0o644)
    if AS_ROOT:
        import pwd

        entry = pwd.getpwnam(SYSTEM_USER)
        for path in (pgdata, log):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    # The programs as `pgserver` may run them: the wheel's own are under the venv, which a CI
    # clone in a private temporary folder does not let it reach; the system copy is the same.
    programs = EmbeddedServer(home)._server_bin()
    initdb = [str(programs / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", USER]
    _as_old_version([*initdb, "--encoding=UTF8", "--locale=C"], cwd=pgdata)
    port = _free_port()
    (home / "server.json").write_text(json.dumps({"port": port}) + "\n")
    if running:
        options = f"-h {HOST} -p {port} -k {shlex.quote('')}"
        pg_ctl = [str(programs / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w"]
        _as_old_version([*pg_ctl, "-o", options, "start"], cwd=pgdata)
    return port


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_trust_cluster_of_the_earlier_version_is_upgraded(
    running: bool, hermetic_env: Path
) -> None:
    home = hermetic_env
    port = make_trust_cluster(home, running=running)
    if running:  # trusted: anyone gets in without a password, and leaves a mark
        with psycopg.connect(no_secret(port, "/nonexistent"), autocommit=True) as conn:
            conn.execute("create table kept_across_the_upgrade (x int)")

    started = luckygas("db", "start")
    assert started.returncode == 0, started.stderr
    server = EmbeddedServer(home)
    new_port = server.running_port()
    assert new_port == port  # the recorded port, still free
    if AS_ROOT:  # moved out of the home, to where `pgserver` needs no folder opened
        assert (home / "pgdata").is_symlink() and server.pgdata.parent != home

    assert "trust" not in hba_methods(server)
    with pytest.raises(psycopg.OperationalError, match=REFUSED):
        psycopg.connect(no_secret(port, "/nonexistent"), connect_timeout=5)
    with psycopg.connect(server.conninfo(port, dbname="postgres")) as conn:
        kept = conn.execute("select to_regclass('kept_across_the_upgrade') is not null")
        assert kept.fetchone() == (running,)
    assert mode(home) == 0o700
    for path in (server.password_file, server.pgpass_file, server.log_file):
        assert mode(path) == 0o600, path

    # And it stays upgraded: stop, start, connect with the same secret.
    assert luckygas("db", "stop").returncode == 0
    assert luckygas("db", "start").returncode == 0
    with psycopg.connect(server.conninfo(port)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_lost_password_file_is_replaced(hermetic_env: Path) -> None:
    """Without the password file nobody gets in: `db start` sets a new password."""
    assert luckygas("db", "start").returncode == 0
    server = EmbeddedServer(hermetic_env)
    old = server.password_file.read_text()
    server.password_file.unlink()
    server.pgpass_file.unlink()
    started = luckygas("db", "start")  # the server runs: stopped, reset, started again
    assert started.returncode == 0, started.stderr
    port = server.running_port()
    assert port is not None and server.password_file.read_text() != old
    with psycopg.connect(server.conninfo(port)) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert "trust" not in hba_methods(server)
