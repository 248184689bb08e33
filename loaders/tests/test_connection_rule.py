"""One connection rule for `luckygas` and dbt, and a project home found from the project.

Against real servers and a real `dbt debug` (no mocks): for each server variable set alone,
`luckygas` (`connection.resolve()` and a libpq connection with its conninfo) and dbt
(profiles.yml.example) reach the same server, or fail on the same one with the same libpq
error, or dbt refuses with the hint to run `luckygas db env`; after `eval "$(luckygas db
env)"` dbt always reaches what `luckygas` reaches. Then the embedded server found from any
subdirectory of a project, the one line before a new cluster, a `db stop` that stays, and a
closed pipe.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from loaders import connection, project
from loaders.embedded import EmbeddedServer, project_home
from loaders.errors import UserError
from loaders.tests.conftest import PgServer, remove_cluster
from loaders.tests.dbt_runner import ROOT, dbt_env, run_dbt

LUCKYGAS = str(Path(sys.executable).with_name("luckygas"))
LOGIN = pwd.getpwuid(os.geteuid()).pw_name  # libpq's default user
HINT = 'eval "$(.venv/bin/luckygas db env)"'


def _libpq_outcome(conninfo: str, env: dict[str, str]) -> tuple[str, ...]:
    """("ok", port, dbname, user) of a connection, or ("failed", libpq's message)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as conn:
            return ("ok", str(conn.info.port), conn.info.dbname, conn.info.user)
    except psycopg.OperationalError as exc:
        return ("failed", _libpq_error(str(exc)))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _libpq_error(text: str) -> str:
    """The first 'connection to server ... failed: ...' line of a libpq error."""
    found = re.search(r"connection to server [^\n]*", text)
    assert found, text
    return found.group(0).strip()


def _luckygas_outcome(env: dict[str, str]) -> tuple[str, ...]:
    """Which server `luckygas` picks with exactly `env`, and what connecting to it gives."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        target = connection.resolve(start_embedded=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return _libpq_outcome(target.conninfo, target.env)


def _dbt_outcome(env: dict[str, str], tmp: Path) -> tuple[str, ...]:
    """("ok", port, dbname[, user]), ("failed", libpq's message) or ("refused", dbt's line)."""
    result = run_dbt(["debug"], dbt_env(env, tmp), timeout=180)
    out = result.stdout
    if "Env var required but not provided" in out:
        line = next(x for x in out.splitlines() if "Env var required" in x)
        return ("refused", line.strip())
    printed = dict(re.findall(r"^\S*\s+(port|database|user): (.*)$", out, flags=re.M))
    if "Connection test: [OK connection ok]" in out:
        return ("ok", printed["port"].strip(), printed["database"].strip())
    return ("failed", _libpq_error(out))


def _db_env(env: dict[str, str]) -> dict[str, str]:
    """The environment after `eval "$(luckygas db env)"` in a shell holding `env`."""
    script = f'eval "$({shlex.quote(LUCKYGAS)} db env)" && env -0'
    result = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)


def _shell(**variables: str) -> dict[str, str]:
    """A plain shell's environment (USER set, as login shells do), with `variables`.

    LUCKYGAS_HOME stays the test's own (conftest.py), never the checkout's.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**base, "USER": LOGIN, **variables}


def _same(luckygas: tuple[str, ...], dbt: tuple[str, ...]) -> bool:
    """dbt reached (or failed on) what luckygas did; dbt prints no user, so that is left out."""
    return luckygas[:3] == dbt[:3]


def _cases(pg: PgServer, tmp: Path) -> dict[str, dict[str, str]]:
    services = tmp / "pg_service.conf"
    services.write_text(
        f"[lucky]\nhost=127.0.0.1\nport={pg.port}\nuser=postgres\ndbname=luckygas\n"
        f"passfile={pg.server.pgpass_file}\n"
    )
    passfile = quote(str(pg.server.pgpass_file), safe="")
    return {
        "PGHOST": {"PGHOST": "127.0.0.1"},
        "PGPORT": {"PGPORT": str(pg.port)},
        "PGUSER": {"PGUSER": "postgres"},
        "PGDATABASE": {"PGDATABASE": "luckygas"},
        "PGHOST+PGPORT": {"PGHOST": "127.0.0.1", "PGPORT": str(pg.port)},
        "all of db env": dict(pg.env),
        "PGSERVICE": {"PGSERVICE": "lucky", "PGSERVICEFILE": str(services)},
        "LUCKYGAS_DSN": {
            "LUCKYGAS_DSN": (
                f"postgresql://postgres@127.0.0.1:{pg.port}/luckygas?passfile={passfile}"
            )
        },
    }


@pytest.mark.parametrize(
    "case",
    [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGHOST+PGPORT",
        "all of db env",
        "PGSERVICE",
        "LUCKYGAS_DSN",
    ],
)
def test_luckygas_and_dbt_reach_the_same_server(case: str, pg: PgServer, tmp_path: Path) -> None:
    env = _shell(**_cases(pg, tmp_path)[case])
    ours = _luckygas_outcome(env)
    theirs = _dbt_outcome(env, tmp_path / "before")
    if case in ("PGSERVICE", "LUCKYGAS_DSN"):
        # libpq alone cannot tell dbt what luckygas uses: dbt refuses, naming the one step.
        assert ours[:2] == ("ok", str(pg.port)), ours
        assert theirs[0] == "refused" and HINT in theirs[1], theirs
    else:
        assert _same(ours, theirs), (ours, theirs)
    if case == "all of db env":
        assert ours == ("ok", str(pg.port), "luckygas", "postgres")
    if case == "PGHOST":
        assert ours[1].startswith('connection to server at "127.0.0.1", port 5432 failed'), ours

    # After the documented step dbt reaches what luckygas reaches, whatever named it.
    evaluated = _db_env(env)
    assert _luckygas_outcome(evaluated) == ours
    after = _dbt_outcome(evaluated, tmp_path / "after")
    assert _same(ours, after), (ours, after)


def test_only_pgpassfile_means_the_embedded_server_and_dbt_says_so(
    pg: PgServer, tmp_path: Path, hermetic_env: Path
) -> None:
    env = _shell(PGPASSFILE=str(pg.server.pgpass_file), LUCKYGAS_HOME=str(hermetic_env))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        assert connection.external_server() is None  # PGPASSFILE names no server
    finally:
        os.environ.clear()
        os.environ.update(saved)
    refused = _dbt_outcome(env, tmp_path)
    assert refused[0] == "refused" and HINT in refused[1] and "embedded" in refused[1]
    assert not hermetic_env.exists()


def test_db_env_translates_a_dsn_and_dbt_notices_a_changed_one(
    pg: PgServer, tmp_path: Path
) -> None:
    dsn = (
        f"host=127.0.0.1 port={pg.port} user=postgres dbname=luckygas"
        f" passfile={pg.server.pgpass_file}"
    )
    env = _shell(LUCKYGAS_DSN=dsn, PGHOST="127.0.0.1", PGPORT="1")  # the DSN wins over PG*
    evaluated = _db_env(env)
    assert (evaluated["PGHOST"], evaluated["PGPORT"]) == ("127.0.0.1", str(pg.port))
    assert evaluated["PGPASSFILE"] == str(pg.server.pgpass_file)
    assert evaluated[connection.DSN_EXPORTED] == dsn
    # LUCKYGAS_DSN changed since the eval: dbt refuses rather than use the old server.
    changed = {**evaluated, "LUCKYGAS_DSN": dsn.replace("dbname=luckygas", "dbname=postgres")}
    refused = _dbt_outcome(changed, tmp_path)
    assert refused[0] == "refused" and "LUCKYGAS_DSN" in refused[1] and HINT in refused[1]


def test_nothing_set_dbt_refuses_with_the_hint(tmp_path: Path) -> None:
    refused = _dbt_outcome(_shell(), tmp_path)
    assert refused[0] == "refused" and HINT in refused[1], refused


# -- the project home ------------------------------------------------------------------


def _fake_project(root: Path) -> Path:
    folder = root / "project"
    for sub in ("data/raw", "models/deep"):
        (folder / sub).mkdir(parents=True)
    shutil.copy(ROOT / "dbt_project.yml", folder / "dbt_project.yml")
    return folder


def _luckygas(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LUCKYGAS, *args], cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_home_is_found_from_the_project_not_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _fake_project(tmp_path)
    monkeypatch.delenv("LUCKYGAS_HOME")
    monkeypatch.chdir(folder / "models" / "deep")
    assert project_home() == folder / ".luckygas"
    assert project.dbt_project_dir() == folder
    monkeypatch.setenv("LUCKYGAS_HOME", str(tmp_path / "elsewhere"))
    assert project_home() == tmp_path / "elsewhere"


def test_embedded_server_from_any_subdirectory_new_cluster_and_stop_that_stays(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _fake_project(tmp_path)
    home = folder / ".luckygas"
    monkeypatch.delenv("LUCKYGAS_HOME")
    server = EmbeddedServer(home)
    try:
        # A first start says, before initdb, that the cluster is new, and where.
        started = _luckygas(folder / "data" / "raw", "db", "start")
        assert started.returncode == 0, started.stderr
        new_line = f"starting a new, empty embedded server in {home} (none there yet)"
        assert started.stderr.strip().splitlines() == [f"luckygas: {new_line}"]
        assert "new data directory" in started.stdout
        assert not (folder / "data" / "raw" / ".luckygas").exists()
        port = server.running_port()
        assert port is not None

        # Found from another subdirectory: the same server, no second cluster.
        status = _luckygas(folder / "models" / "deep", "db", "status")
        assert status.returncode == 0, status.stderr
        assert f"127.0.0.1:{port}" in status.stdout and "running" in status.stdout
        monkeypatch.chdir(folder / "models")
        assert connection.resolve().port == str(port)

        # Stopped by the user: it stays stopped, each command says so in one line.
        stopped = _luckygas(folder / "data", "db", "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        for args in (("db", "psql", "-c", "select 1"), ("db", "env")):
            refused = _luckygas(folder / "data", *args)
            assert refused.returncode == 2, refused
            assert refused.stderr.strip() == f"luckygas: {connection.STOPPED_MESSAGE}"
        with pytest.raises(UserError, match="stopped with `luckygas db stop`"):
            connection.resolve()  # what load, migrate and rollback call
        assert not server.is_running()
        status = _luckygas(folder, "db", "status")
        assert status.returncode == 1 and "stopped with `luckygas db stop`" in status.stdout

        # `db start` starts it again: no "new" line, the same data.
        again = _luckygas(folder / "data", "db", "start")
        assert again.returncode == 0 and again.stderr == "", again.stderr
        assert "new data directory" not in again.stdout
        assert server.running_port() == port and not server.stopped_by_user()

        # Stopped otherwise (a reboot, a crash): the next command starts it and says so.
        server.stop()
        capsys.readouterr()
        assert connection.resolve().port == str(port)
        err = capsys.readouterr().err
        assert err.strip() == f"luckygas: started the embedded server on 127.0.0.1:{port} ({home})"
    finally:
        server.stop()
        remove_cluster(server)


def test_closed_pipe_ends_quietly(pg_env: PgServer) -> None:
    for reader, lines in (("head -2", 2), ("true", 0)):
        script = f"{shlex.quote(LUCKYGAS)} db status | {reader}; echo rc=${{PIPESTATUS[0]}}"
        result = subprocess.run(
            ["bash", "-c", script], env=dict(os.environ), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert result.stderr == "", result.stderr  # no traceback, no "Exception ignored"
        *shown, code = result.stdout.splitlines()
        assert len(shown) == lines and code in ("rc=0", "rc=141"), result.stdout
        if reader == "true":
            assert code == "rc=141"


def test_dbt_finds_the_profile_from_a_subdirectory_after_db_env(
    pg_env: PgServer, tmp_path: Path
) -> None:
    """dbt looks for profiles.yml only in the working directory and ~/.dbt: `db env` names
    the project's folder (DBT_PROFILES_DIR), so `dbt debug` run in `data/` connects."""
    folder = _fake_project(tmp_path)
    shutil.copy(ROOT / "profiles.yml.example", folder / "profiles.yml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "LUCKYGAS_"))}
    env |= {"HOME": str(tmp_path / "home"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_USE_COLORS": "false", "DBT_LOG_PATH": str(tmp_path / "logs")}  # fmt: skip
    dbt = Path(sys.executable).with_name("dbt")
    script = (
        f'eval "$({shlex.quote(LUCKYGAS)} db env)" && echo "profiles=$DBT_PROFILES_DIR"'
        f" && {shlex.quote(str(dbt))} debug"
    )
    result = subprocess.run(
        ["bash", "-c", script], cwd=folder / "data" / "raw", env=env, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert f"profiles={folder}\n" in result.stdout, result.stdout + result.stderr
    assert "Connection test: [OK connection ok]" in result.stdout, result.stdout
    assert f"port: {pg_env.port}" in result.stdout, result.stdout
    assert result.returncode == 0

    # Without the project's profiles.yml, nothing is exported for dbt (no folder to name).
    (folder / "profiles.yml").unlink()
    plain = _luckygas(folder / "data", "db", "env")
    assert plain.returncode == 0 and "DBT_PROFILES_DIR" not in plain.stdout, plain
