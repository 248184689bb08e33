"""Running the project's dbt against a throwaway database, the way an analyst would.

`dbt_env` gives the environment of a plain shell after the README's one step (PG* naming the
server, profiles.yml copied from profiles.yml.example), with dbt's logs and target kept in a
temporary directory; `run_dbt` runs one dbt command in the project with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from loaders import connection

ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"


def dbt_env(pg_env: dict[str, str], tmp: Path, **extra: str) -> dict[str, str]:
    """The shell's variables without PG*/LUCKYGAS_*, then `pg_env`, dbt's paths and `extra`."""
    profiles = tmp / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "profiles.yml.example", profiles / "profiles.yml")
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LUCKYGAS_"))}
    return {
        **shell,
        **pg_env,
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_LOG_PATH": str(tmp / "logs"),
        "DBT_TARGET_PATH": str(tmp / "target"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
        **extra,
    }


def run_dbt(
    args: list[str], env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(ROOT)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """The process environment with `env` set (the CLI reads PG* from it), then restored."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def fresh_database(pg, prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A new database on the throwaway server `pg`: (conninfo, PG* env); dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.conninfo, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        yield (
            psycopg.conninfo.make_conninfo(pg.conninfo, dbname=name),
            {
                **pg.env,
                "PGDATABASE": name,
            },
        )
    finally:
        with psycopg.connect(pg.conninfo, autocommit=True) as admin:
            connection.drop_database(admin, name)
