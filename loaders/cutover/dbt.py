"""dbt for the cut-over: `dbt build` into the shadow schemas, the rebuild of the validation
models after a restore, and the after-checks read from target/run_results.json. dbt runs as
a subprocess, as an analyst runs it, its output to a log file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml

from loaders import connection
from loaders.cutover import children
from loaders.cutover.catalog import SHADOW_SUFFIX

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the dbt project (dbt_project.yml)
SUCCESS_TARGETS_VAR = "migration_success_targets"  # dbt var: the plan's target per entity
RECONCILE_TESTS = ("customers_reconcile", "deliveries_reconcile")


def dbt_environment(
    target: connection.Target, tmp: Path, session: str | None = None, major: int = 0
) -> dict[str, str]:
    """target.env; profiles from DBT_PROFILES_DIR, ./profiles.yml, or a copy of the example.

    With `session` (children.session_name), dbt's sessions are named so: dbt-postgres passes
    the profile's application_name (default 'dbt') itself, which wins over PGAPPNAME, so
    the profile is copied into `tmp` with application_name set on every output. On a
    server of `major` 14 or later its backends also check every 2 s that dbt is still
    there (client_connection_check_interval): a statement of a killed dbt stops soon."""
    env = dict(target.env)
    source = None
    if env.get("DBT_PROFILES_DIR"):
        source = Path(env["DBT_PROFILES_DIR"]) / "profiles.yml"
    elif (PROJECT_DIR / "profiles.yml").exists():
        source = PROJECT_DIR / "profiles.yml"
    if source is None or session is not None:
        profiles = tmp / "profiles"
        profiles.mkdir(mode=0o700, parents=True, exist_ok=True)
        original = source if source is not None else PROJECT_DIR / "profiles.yml.example"
        text = _named_profiles(original, session) if session is not None else None
        if text is None:
            shutil.copy(original, profiles / "profiles.yml")
        else:
            (profiles / "profiles.yml").write_text(text, encoding="utf-8")
        env["DBT_PROFILES_DIR"] = str(profiles)
    if session is not None:
        env["PGAPPNAME"] = session  # for an adapter or a profile that reads it
        if major >= 14:
            check = "-c client_connection_check_interval=2000"
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {check}".strip()
    return env


def _named_profiles(path: Path, session: str) -> str | None:
    """The profiles file at `path` with application_name `session` on every output; None
    when it is not the usual shape (then it is used as it is, its sessions unnamed)."""
    try:
        profiles = yaml.safe_load(path.read_text(encoding="utf-8"))
        outputs = [
            o
            for name, p in profiles.items()
            if name != "config" and isinstance(p, dict)
            for o in (p.get("outputs") or {}).values()
            if isinstance(o, dict)
        ]
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    if not outputs:
        return None
    for o in outputs:
        o["application_name"] = session
    return yaml.safe_dump(profiles, sort_keys=False, allow_unicode=True)


def dbt_target_dir(env: dict[str, str]) -> Path:
    value = env.get("DBT_TARGET_PATH")
    if not value:
        return PROJECT_DIR / "target"
    path = Path(value)
    return path if path.is_absolute() else PROJECT_DIR / path


def run_dbt(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """One dbt command of the project, its output to `log` (0600); (exit code, summary).
    dbt runs as a child that cannot outlive this process (children.py)."""
    venv_dbt = Path(sys.executable).parent / "dbt"  # the dbt installed beside loaders
    dbt = venv_dbt if venv_dbt.exists() else Path(shutil.which("dbt") or "dbt")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a log of an earlier version may be 0644
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        argv = [str(dbt), *args, "--project-dir", str(PROJECT_DIR)]
        with children.guarded(
            children.popen(argv, env=env, cwd=PROJECT_DIR, stdout=out, stderr=subprocess.STDOUT)
        ) as proc:
            code = proc.wait()
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


def rebuild_validation(
    target: connection.Target,
    say: Callable[[str], None],
    session: str | None = None,
    major: int = 0,
) -> str | None:
    """After a restore: rebuild the validation models (raw_tables, source_reconciliation,
    migration_metrics: tables computed from the restored raw and marts, which the backup
    does not hold), so Mary's record shows the restored state and the hook records its
    reconciliation. None, or what went wrong (the restore itself stands)."""
    with tempfile.TemporaryDirectory(prefix="luckygas-dbt-") as tmp:
        env = dbt_environment(target, Path(tmp), session, major)
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
