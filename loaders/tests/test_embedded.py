"""The embedded PostgreSQL and server resolution, against real servers (no mocks).

`luckygas db start` runs as a subprocess where the server must outlive the command;
everything else drives the CLI in-process. The automatic `hermetic_env` fixture
(conftest.py) gives each test an empty LUCKYGAS_HOME and stops any server started there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from loaders import connection, project
from loaders.cli import main
from loaders.embedded import EmbeddedServer, project_home
from loaders.errors import UserError
from loaders.tests.conftest import PgServer

LUCKYGAS = str(Path(sys.executable).with_name("luckygas"))


def luckygas(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `luckygas` in a new process, with the (monkeypatched) environment."""
    return subprocess.run(
        [LUCKYGAS, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted) -> {NAME: value}."""
    env = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue  # a comment naming the server
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, line
        name, _, value = words[1].partition("=")
        env[name] = value
    return env


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_project_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LUCKYGAS_HOME", str(tmp_path / "elsewhere"))
    assert project_home() == tmp_path / "elsewhere"
    monkeypatch.delenv("LUCKYGAS_HOME")
    monkeypatch.chdir(tmp_path)  # no project here: the checkout's, never the working directory
    assert project_home() == project.CHECKOUT / ".luckygas"


def test_lifecycle(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> None:
    home = hermetic_env
    server = EmbeddedServer(home)

    started = luckygas("db", "start")
    assert started.returncode == 0, started.stderr
    assert "started" in started.stdout and "new data directory" in started.stdout
    port = server.running_port()
    assert port is not None and port != 5432
    assert (home / "pgdata" / "PG_VERSION").exists() and (home / "server.json").exists()

    code, out, _ = run(capsys, "db", "status")
    assert code == 0
    assert "embedded PostgreSQL: running" in out
    assert f"127.0.0.1:{port}" in out and str(server.pgdata) in out and "PostgreSQL 16" in out

    code, out, _ = run(capsys, "db", "env")
    assert code == 0
    exported = parse_exports(out)
    assert exported == {
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGUSER": "postgres",
        "PGDATABASE": "luckygas",
        "PGPASSFILE": str(home / "pgpass"),  # the password (loaders/tests/test_server_security)
        **(
            {"DBT_PROFILES_DIR": str(p)}
            if ((p := project.dbt_project_dir()) / "profiles.yml").is_file()
            else {}
        ),
    }

    # The Debian psql 15 on PATH reaches the same server through `eval "$(luckygas db env)"`.
    psql = shutil.which("psql")
    assert psql is not None, "expected the Debian PostgreSQL client on PATH"
    script = f'eval "$({shlex.quote(LUCKYGAS)} db env)" && {psql} -XAtc "select 1"'
    answered = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert (answered.returncode, answered.stdout.strip()) == (0, "1"), answered.stderr

    # psycopg with exactly those variables and nothing else.
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    with psycopg.connect("") as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.info.port == port and conn.info.dbname == "luckygas"

    # With its own exports in the environment, the server is still "embedded", not external.
    assert connection.resolve(start_embedded=False).kind == "embedded"
    code, out, _ = run(capsys, "db", "start")
    assert code == 0 and "already running" in out and str(port) in out

    code, out, _ = run(capsys, "db", "stop")
    assert (code, server.is_running()) == (0, False)
    assert "stopped" in out
    code, out, _ = run(capsys, "db", "stop")
    assert code == 0 and "not running" in out

    code, out, _ = run(capsys, "db", "status")
    assert code == 1 and "not running" in out
    code, out, err = run(capsys, "db", "env")
    assert code == 2 and out == "" and "luckygas db start" in err

    restarted = luckygas("db", "start")
    assert restarted.returncode == 0, restarted.stderr
    assert "new data directory" not in restarted.stdout
    assert server.running_port() == port
    with psycopg.connect(server.conninfo(port)) as conn:
        data_directory = conn.execute("select current_setting('data_directory')").fetchone()
    assert data_directory == (str(server.pgdata),)  # as root under /var/lib/luckygas
    assert (home / "pgdata").resolve() == server.pgdata


def test_server_outlives_the_starting_process(hermetic_env: Path) -> None:
    assert luckygas("db", "start").returncode == 0
    # A later process finds it running and can query it.
    status = luckygas("db", "status")
    assert status.returncode == 0, status.stderr
    answered = luckygas("db", "psql", "-XAtc", "select current_database()")
    assert (answered.returncode, answered.stdout.strip()) == (0, "luckygas"), answered.stderr


def test_recovers_from_crash_and_stale_pidfile(
    capsys: pytest.CaptureFixture[str], hermetic_env: Path
) -> None:
    server = EmbeddedServer(hermetic_env)
    port = server.start().port

    # A broken config: start fails, naming the log and the lines that explain why.
    server.stop()
    conf = server.pgdata / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nno_such_setting = 1\n")
    with pytest.raises(UserError) as failed:
        server.start()
    assert str(server.log_file) in str(failed.value)
    assert "no_such_setting" in str(failed.value)
    conf.write_text(original)

    # The postmaster killed outright leaves postmaster.pid and socket lock files behind.
    assert server.start().port == port
    postmaster = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (server.pgdata / "postmaster.pid").exists()
    result = server.start()
    assert (result.already_running, result.port) == (False, port)

    # A postmaster.pid whose PID now belongs to an unrelated live process (this one).
    server.stop()
    stale = (server.pgdata / "postmaster.pid", server.pgdata / f".s.PGSQL.{port}.lock")
    for path in stale:
        path.write_text(f"{os.getpid()}\n{server.pgdata}\n0\n{port}\n\n127.0.0.1\n0 0\nready\n")
    code, out, _ = run(capsys, "db", "status")
    assert code == 1 and "not running" in out
    code, out, _ = run(capsys, "db", "start")
    assert code == 0 and "started" in out
    assert server.running_port() == port

    # The recorded port taken by someone else: a new one is chosen, recorded, and reported.
    server.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        code, out, _ = run(capsys, "db", "start")
    new_port = server.running_port()
    assert code == 0 and new_port not in (None, port)
    assert server.recorded_port() == new_port
    assert f"port {port} was taken, now {new_port}" in out


@pytest.mark.parametrize("named_by", ["PG variables", "LUCKYGAS_DSN"])
def test_external_server_is_used_and_embedded_never_started(
    named_by: str,
    pg: PgServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hermetic_env: Path,
) -> None:
    if named_by == "LUCKYGAS_DSN":
        passfile = quote(str(pg.server.pgpass_file), safe="")
        monkeypatch.setenv(
            "LUCKYGAS_DSN",
            f"postgresql://postgres@127.0.0.1:{pg.port}/luckygas?passfile={passfile}",
        )
        # The DSN wins over PG* variables naming another (closed) server.
        monkeypatch.setenv("PGHOST", "127.0.0.1")
        monkeypatch.setenv("PGPORT", str(closed_port()))
    else:
        for name, value in pg.env.items():
            monkeypatch.setenv(name, value)

    code, out, _ = run(capsys, "db", "start")
    assert code == 0
    assert len(out.splitlines()) == 1 and "external" in out and "not started" in out
    assert f"127.0.0.1:{pg.port}" in out

    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and "external PostgreSQL: running" in out and f"127.0.0.1:{pg.port}" in out

    psql = luckygas("db", "psql", "-XAt", "-c", "select current_setting('port')")
    assert (psql.returncode, psql.stdout.strip()) == (0, str(pg.port)), psql.stderr

    # `db env` names the server, then exports what libpq and dbt need to reach it.
    code, out, _ = run(capsys, "db", "env")
    assert code == 0 and out.startswith("# luckygas: using the external server")
    exported = parse_exports(out)
    wanted = {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "postgres"}
    assert {k: exported[k] for k in wanted} == wanted and exported["PGDATABASE"] == "luckygas"
    if named_by == "LUCKYGAS_DSN":
        assert exported["PGPASSFILE"] == str(pg.server.pgpass_file)
        assert exported[connection.DSN_EXPORTED] == os.environ["LUCKYGAS_DSN"]

    code, out, _ = run(capsys, "db", "stop")
    assert code == 0 and pg.server.is_running()

    target = connection.resolve()
    assert (target.kind, target.port) == ("external", str(pg.port))
    assert target.env["PGPORT"] == str(pg.port)  # what dbt and pg_dump will get
    with connection.connect(target) as conn:
        assert conn.execute("select current_setting('port')").fetchone() == (str(pg.port),)
        assert not conn.autocommit

    assert not hermetic_env.exists(), "the embedded home must not be created"


def test_unreachable_external_server_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(port))
    for command in ("status", "psql"):
        result = luckygas("db", command, *(["-c", "select 1"] if command == "psql" else []))
        assert result.returncode == 2, result
        if command == "status":  # psql reports for itself
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert f"127.0.0.1:{port}" in result.stderr
            assert "Traceback" not in result.stderr
    with pytest.raises(UserError, match=f"127.0.0.1:{port}.*PGHOST, PGPORT"):
        connection.connect()


def test_pg_env_fixture_points_resolve_at_the_session_server(pg_env: PgServer) -> None:
    with connection.connect() as conn:
        assert conn.execute("select current_setting('port')").fetchone() == (str(pg_env.port),)
