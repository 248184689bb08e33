"""dbt for the cut-over: `dbt build` into the shadow schemas, the rebuild of the validation
models after a restore, and the after-checks read from target/run_results.json. dbt runs as
a subprocess, as an analyst runs it, its output to a log file."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from loaders import connection
from loaders.cutover.catalog import SHADOW_SUFFIX

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the dbt project (dbt_project.yml)
SUCCESS_TARGETS_VAR = "migration_success_targets"  # dbt var: the plan's target per entity
RECONCILE_TESTS = ("customers_reconcile", "deliveries_reconcile")


def dbt_environment(target: connection.Target, tmp: Path) -> dict[str, str]:
    """target.env; profiles from DBT_PROFILES_DIR, ./profiles.yml, or a copy of the example."""
    env = dict(target.env)
    if not env.get("DBT_PROFILES_DIR") and not (PROJECT_DIR / "profiles.yml").exists():
        profiles = tmp / "profiles"
        profiles.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_DIR / "profiles.yml.example", profiles / "profiles.yml")
        env["DBT_PROFILES_DIR"] = str(profiles)
    return env


def dbt_target_dir(env: dict[str, str]) -> Path:
    value = env.get("DBT_TARGET_PATH")
    if not value:
        return PROJECT_DIR / "target"
    path = Path(value)
    return path if path.is_absolute() else PROJECT_DIR / path


def run_dbt(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """One dbt command of the project, its output to `log`; (exit code, summary)."""
    venv_dbt = Path(sys.executable).parent / "dbt"  # the dbt installed beside loaders
    dbt = venv_dbt if venv_dbt.exists() else Path(shutil.which("dbt") or "dbt")
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(
            [str(dbt), *args, "--project-dir", str(PROJECT_DIR)],
            env=env,
            cwd=PROJECT_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    text = log.read_text(encoding="utf-8", errors="replace")
    done = re.findall(r"Done\. (PASS=\d+ .*TOTAL=\d+)", text)
    return code, done[-1] if done else ""


def run_dbt_build(
    env: dict[str, str], log: Path, targets: Mapping[str, float] | None = None
) -> tuple[int, str]:
    """`dbt build` of the project into the shadow schemas, with the success `targets` (all
    of them: --vars replaces a dict var whole); its output to `log`; (exit code, summary)."""
    variables: dict = {"schema_suffix": SHADOW_SUFFIX}
    if targets:
        variables[SUCCESS_TARGETS_VAR] = dict(targets)
    return run_dbt(["build", "--vars", json.dumps(variables)], env, log)


def rebuild_validation(target: connection.Target, say: Callable[[str], None]) -> str | None:
    """After a restore: rebuild the validation models (raw_tables, source_reconciliation,
    migration_metrics: tables computed from the restored raw and marts, which the backup
    does not hold), so Mary's record shows the restored state and the hook records its
    reconciliation. None, or what went wrong (the restore itself stands)."""
    with tempfile.TemporaryDirectory(prefix="luckygas-dbt-") as tmp:
        env = dbt_environment(target, Path(tmp))
        log = Path(tmp) / "dbt.log"
        code, summary = run_dbt(["run", "--select", "path:models/validation"], env, log)
        if code == 0:
            say(f"validation rebuilt on the restored tables: {summary or 'done'}")
            return None
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    problem = "validation models not rebuilt (run `dbt build`): " + " | ".join(tail)
    say(f"note: {problem}")
    return problem


def check_run_results(target_dir: Path, since: float) -> list[str]:
    """Problems in the dbt build's run_results.json (empty list: every after-check holds)."""
    results_path = target_dir / "run_results.json"
    if not results_path.exists() or results_path.stat().st_mtime < since:
        return [f"{results_path} was not written by this build"]
    results = json.loads(results_path.read_text(encoding="utf-8"))["results"]
    try:
        nodes = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    except (OSError, ValueError, KeyError):
        nodes = {}
    problems = []
    by_name = {
        r["unique_id"].split(".")[-1]: r for r in results if r["unique_id"].startswith("test.")
    }
    for name in RECONCILE_TESTS:
        r = by_name.get(name)
        if r is None:
            problems.append(f"reconciliation test {name} did not run")
        elif r["status"] != "pass":
            problems.append(f"reconciliation test {name}: {r['status']} ({r.get('failures')} rows)")
    for r in results:
        uid = r["unique_id"]
        if not uid.startswith("test.") and r["status"] == "error":
            problems.append(f"{uid.split('.')[0]} {uid.split('.', 2)[-1]}: error")
            continue
        if not uid.startswith("test.") or r["status"] not in ("fail", "error"):
            continue
        severity = str(nodes.get(uid, {}).get("config", {}).get("severity", "error")).lower()
        if severity == "error" and uid.split(".")[-1] not in RECONCILE_TESTS:
            problems.append(f"test {uid.split('.', 2)[-1]}: {r['status']}")
    return problems
