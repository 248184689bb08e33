"""The documented step makes dbt reach the server: `profiles.yml.example` reads PG* only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"


def _dbt(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    shutil.copy(ROOT / "profiles.yml.example", profiles / "profiles.yml")
    run_env = {
        **os.environ,
        **env,
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    return subprocess.run(
        [str(DBT), *args, "--project-dir", str(ROOT)],
        env=run_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dbt_debug_through_the_example_profile(pg, tmp_path):
    result = _dbt(["debug"], pg.env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed!" in result.stdout
    assert f"port: {pg.env['PGPORT']}" in result.stdout


def test_dbt_debug_fails_clearly_when_no_server_answers(pg, tmp_path):
    env = {**pg.env, "PGPORT": "1"}  # nothing listens there
    result = _dbt(["debug"], env, tmp_path)
    assert result.returncode != 0
    assert "Connection test: [ERROR]" in result.stdout
