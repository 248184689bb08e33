"""The documented step makes dbt reach the server: `profiles.yml.example` reads PG* only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from loaders.tests.dbt_runner import dbt_env, run_dbt


def _dbt(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    return run_dbt(args, dbt_env(env, tmp_path), timeout=180)


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
