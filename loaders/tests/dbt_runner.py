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
from pathlib import Path

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
