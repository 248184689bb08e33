"""dbt for the cut-over: `dbt build` into the shadow schemas, the rebuild of the validation
models after a restore, and the after-checks on the build's results.

dbt runs in this process, through its programmatic API (`dbtRunner`), not as a child:
- its results come from its result objects (`DbtRun.results`), not from the text of its
  log; dbt still writes target/run_results.json, which `check_run_results` reads;
- its events drive a display while it runs (progress.py: a line per node, or a bar on a
  terminal) and are written, every one, to the run's log (0600);
- it dies with the migrate: a SIGKILL kills dbt too, its sessions then end with their
  connections (and those still running a statement are ended by the next migrate or
  rollback: they are named, see `dbt_environment` and recovery.py);
- Ctrl-C or SIGTERM reach it as they reach the migrate: dbt cancels its queries and the
  interruption goes on up (dbtRunner hands it back as a result: `invoke` re-raises it).

dbt reads its settings from the process: PG* (PGPASSFILE, PGOPTIONS) and DBT_* from
os.environ, and it writes files with the process umask. So `invoke` sets os.environ to the
run's environment and the umask to 077 for the call, and puts both back after.

The dbt project is found by loaders.project (LUCKYGAS_PROJECT_DIR, the working directory
and up, or the editable checkout): `project_dir()`, not the location of this file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loaders import connection, project
from loaders.cutover import children
from loaders.cutover.catalog import SHADOW_SUFFIX
from loaders.cutover.progress import NodeProgress

SUCCESS_TARGETS_VAR = "migration_success_targets"  # dbt var: the plan's target per entity
RECONCILE_TESTS = ("customers_reconcile", "deliveries_reconcile")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def project_dir() -> Path:
    """The dbt project's folder (dbt_project.yml): loaders.project.dbt_project_dir()."""
    return project.dbt_project_dir()


def __getattr__(name: str) -> Any:
    """`PROJECT_DIR`, found when it is asked for (it was a constant: use project_dir())."""
    if name == "PROJECT_DIR":
        return project_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dbt_environment(
    target: connection.Target, tmp: Path, session: str | None = None, major: int = 0
) -> dict[str, str]:
    """target.env with DBT_PROFILES_DIR always set: from the environment, the project's
    profiles.yml, or a copy of profiles.yml.example (dbt runs in this process, whatever
    the working directory: dbt's own default, ./profiles.yml, would depend on it).

    With `session` (children.session_name), dbt's sessions are named so: dbt-postgres passes
    the profile's application_name (default 'dbt') itself, which wins over PGAPPNAME, so
    the profile is copied into `tmp` with application_name set on every output. On a
    server of `major` 14 or later its backends also check every 2 s that dbt is still
    there (client_connection_check_interval): a statement of a killed dbt stops soon."""
    env = dict(target.env)
    folder = project_dir()
    source = None
    if env.get("DBT_PROFILES_DIR"):
        source = Path(env["DBT_PROFILES_DIR"]) / "profiles.yml"
    elif (folder / "profiles.yml").exists():
        source = folder / "profiles.yml"
        env["DBT_PROFILES_DIR"] = str(folder)
    if source is None or session is not None:
        profiles = tmp / "profiles"
        profiles.mkdir(mode=0o700, parents=True, exist_ok=True)
        original = source if source is not None else folder / "profiles.yml.example"
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
    """Where dbt writes run_results.json and manifest.json: DBT_TARGET_PATH (relative to
    the project), else the project's target/. `invoke` passes it to dbt as --target-path."""
    value = env.get("DBT_TARGET_PATH")
    if not value:
        return project_dir() / "target"
    path = Path(value)
    return path if path.is_absolute() else project_dir() / path


# -- results -------------------------------------------------------------------------------

# dbt's status -> its summary's column (dbt.task.printer.interpret_run_result)
STAT_OF = {
    "error": "error",
    "fail": "error",
    "partial success": "error",
    "runtime error": "error",
    "skipped": "skip",
    "warn": "warn",
    "pass": "pass",
    "success": "pass",
    "no-op": "noop",
}


@dataclass(frozen=True)
class NodeResult:
    """One node's result, from dbt's result object (or a run_results.json entry)."""

    unique_id: str  # test.luckygas.customers_reconcile
    status: str  # success, pass, warn, fail, error, skipped, no-op, partial success
    failures: int | None  # a test's failing rows
    message: str
    seconds: float
    severity: str = "error"  # a test's configured severity, lower case

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".")[0]

    @property
    def name(self) -> str:  # rule_c05.abc, customers
        return self.unique_id.split(".", 2)[-1]

    @classmethod
    def of(cls, result: Any) -> NodeResult:
        """From a dbt RunResult (RunExecutionResult.results)."""
        node = result.node
        config = getattr(node, "config", None)
        severity = getattr(config, "severity", None) or "error"
        return cls(
            unique_id=node.unique_id,
            status=str(result.status),
            failures=result.failures,
            message=result.message or "",
            seconds=float(result.execution_time or 0.0),
            severity=str(severity).lower(),
        )

    @classmethod
    def from_json(cls, entry: Mapping[str, Any], nodes: Mapping[str, Any]) -> NodeResult:
        """From run_results.json's `results` entry, its severity from manifest.json's nodes."""
        uid = entry["unique_id"]
        severity = nodes.get(uid, {}).get("config", {}).get("severity", "error")
        return cls(
            unique_id=uid,
            status=entry["status"],
            failures=entry.get("failures"),
            message=entry.get("message") or "",
            seconds=float(entry.get("execution_time") or 0.0),
            severity=str(severity).lower(),
        )


@dataclass(frozen=True)
class DbtRun:
    """One dbt command's outcome: its exit code as the dbt CLI's (0 success, 1 a node did
    not pass, 2 dbt stopped before its results: `error` says why), its node results, its
    log and target folder."""

    command: str
    code: int
    results: tuple[NodeResult, ...]
    log: Path
    target_dir: Path
    error: str | None = None  # the exception that stopped dbt (code 2)
    started: float = 0.0  # time.time() before dbt started (run_results.json is newer)
    invocation_id: str | None = None  # dbt's, as in run_results.json and the on-run-end hook
    macro_messages: tuple[str, ...] = ()  # what the project's macros said with log(info=True)

    @property
    def counts(self) -> dict[str, int]:
        """PASS/WARN/ERROR/SKIP/NO-OP/TOTAL, counted from the results as dbt counts them."""
        stats = Counter(STAT_OF.get(r.status, "error") for r in self.results)
        keys = ("pass", "warn", "error", "skip", "noop")
        return {**{k.upper(): stats[k] for k in keys}, "TOTAL": len(self.results)}

    @property
    def summary(self) -> str:
        """`PASS=170 WARN=3 ERROR=0 SKIP=0 NO-OP=0 TOTAL=173`; "" when dbt stopped before
        running any node."""
        if self.code == 2 and not self.results:
            return ""
        return " ".join(f"{k.replace('NOOP', 'NO-OP')}={v}" for k, v in self.counts.items())

    def problems(self) -> list[str]:
        """The after-checks on these results (check_results)."""
        return check_results(self.results)


def check_results(results: Sequence[NodeResult]) -> list[str]:
    """Problems in a dbt build's results (empty list: every after-check holds): both
    reconciliation tests pass, no node errors, no test of severity error fails."""
    problems = []
    by_name = {r.unique_id.split(".")[-1]: r for r in results if r.resource_type == "test"}
    for name in RECONCILE_TESTS:
        r = by_name.get(name)
        if r is None:
            problems.append(f"reconciliation test {name} did not run")
        elif r.status != "pass":
            problems.append(f"reconciliation test {name}: {r.status} ({r.failures} rows)")
    for r in results:
        if r.resource_type != "test" and r.status == "error":
            problems.append(f"{r.resource_type} {r.name}: error")
            continue
        if r.resource_type != "test" or r.status not in ("fail", "error"):
            continue
        if r.severity == "error" and r.unique_id.split(".")[-1] not in RECONCILE_TESTS:
            problems.append(f"test {r.name}: {r.status}")
    return problems


def read_run_results(target_dir: Path) -> list[NodeResult]:
    """The results in target_dir's run_results.json (with manifest.json's severities)."""
    entries = json.loads((target_dir / "run_results.json").read_text(encoding="utf-8"))
    try:
        nodes = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    except (OSError, ValueError, KeyError):
        nodes = {}
    return [NodeResult.from_json(e, nodes) for e in entries["results"]]


def check_run_results(target_dir: Path, since: float) -> list[str]:
    """check_results on the dbt build's run_results.json, which must be newer than `since`
    (prefer DbtRun.problems(): the same checks, on the result objects)."""
    results_path = target_dir / "run_results.json"
    if not results_path.exists() or results_path.stat().st_mtime < since:
        return [f"{results_path} was not written by this build"]
    return check_results(read_run_results(target_dir))


# -- running dbt -----------------------------------------------------------------------------


def invoke(
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    progress: bool = True,
    title: str | None = None,
) -> DbtRun:
    """One dbt command of the project, in this process (see the module doc): every event
    into `log` (0600), a display on stderr while it runs (`progress`), the results from
    dbt's result objects. Re-raises an interruption (KeyboardInterrupt, Terminated)."""
    from dbt.cli.main import dbtRunner  # dbt takes seconds to import: only when it runs

    target_dir = dbt_target_dir(dict(env))
    argv = [
        *args,
        "--project-dir",
        str(project_dir()),
        "--target-path",
        str(target_dir),
        "--log-level",
        "none",  # nothing on stdout: the display shows the nodes, the log holds it all
        "--log-level-file",
        "none",  # dbt's own logs/dbt.log: the run's log below holds the same events
        "--no-use-colors",
    ]
    if env.get("DBT_PROFILES_DIR"):
        argv += ["--profiles-dir", env["DBT_PROFILES_DIR"]]
    command = " ".join(["dbt", *args])
    started = time.time() - 1
    display = NodeProgress(title or command) if progress else None
    with _private_log(log) as out, _process_state(env):
        events = _Events(out, display)
        out.write(f"{_stamp()} luckygas: {' '.join(['dbt', *argv])}\n")
        with display if display is not None else contextlib.nullcontext():
            result = dbtRunner(callbacks=[events]).invoke(argv)
        exc = result.exception
        if exc is not None:
            out.write(f"{_stamp()} luckygas: dbt stopped: {exc!r}\n")
        if events.problem:
            out.write(f"{_stamp()} luckygas: the display failed: {events.problem}\n")
    if events.problem:
        print(f"note: dbt's progress display failed ({events.problem}); dbt went on, its log"
              f" is whole: {log}", file=sys.stderr)  # fmt: skip
    if exc is not None and not isinstance(exc, Exception):
        raise exc  # Ctrl-C, SIGTERM (children.Terminated): dbt has cancelled its queries
    outcome = result.result
    nodes = tuple(NodeResult.of(r) for r in getattr(outcome, "results", None) or ())
    if result.success:
        code = 0
    elif exc is None:
        code = 1  # dbt ran: a node did not pass
    else:
        code = 2
    error = None if exc is None else " ".join(str(exc).split()) or repr(exc)
    return DbtRun(
        command,
        code,
        nodes,
        log,
        target_dir,
        error,
        started,
        events.invocation_id,
        tuple(events.macro_messages),
    )


class _Events:
    """dbt's callback: each event into the log, then to the display. It never raises
    (an exception in a callback would stop dbt where the event fired, in a worker thread
    or in dbt's own bookkeeping): a failing display is switched off and reported after."""

    def __init__(self, out, display: NodeProgress | None) -> None:
        self.out = out
        self.display = display
        self.problem: str | None = None
        self.invocation_id: str | None = None
        self.macro_messages: list[str] = []
        self._lock = threading.Lock()
        self._secrets = _secrets()

    def __call__(self, msg: Any) -> None:
        try:
            text = ANSI.sub("", msg.info.msg)
            for secret in self._secrets:
                text = text.replace(secret, "*****")
            line = f"{_stamp()} [{msg.info.level:<5}] [{msg.info.thread}]: {text}\n"
            with self._lock:
                self.out.write(line)
                # the last event's: an early one may carry the previous invoke's id
                self.invocation_id = msg.info.invocation_id or self.invocation_id
                if msg.info.name in ("JinjaLogInfo", "JinjaLogWarning"):
                    self.macro_messages.append(text)
        except Exception as exc:  # noqa: BLE001 - see the class doc
            self._failed(exc)
        display = self.display
        if display is None:
            return
        try:
            display.on_event(msg)
        except Exception as exc:  # noqa: BLE001 - see the class doc
            self.display = None
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            if self.problem is None:
                self.problem = f"{type(exc).__name__}: {exc}"


def _secrets() -> list[str]:
    """What the log must not show: dbt's DBT_ENV_SECRET_* values, and a PGPASSWORD."""
    names = [k for k in os.environ if k.startswith("DBT_ENV_SECRET")] + ["PGPASSWORD"]
    return [v for v in (os.environ.get(k, "") for k in names) if len(v) >= 4]


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


@contextlib.contextmanager
def _private_log(log: Path) -> Iterator[Any]:
    """`log` opened for writing, 0600 (a log of an earlier version may be 0644)."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", buffering=1) as out:
        yield out


@contextlib.contextmanager
def _process_state(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ = `env` and umask 077 (children.CHILD_UMASK) for the block, then both as
    they were. dbt renders the profile from os.environ, libpq under it reads PGPASSFILE and
    PGOPTIONS from it, and dbt's target files get the umask: as a child's would."""
    saved = dict(os.environ)
    umask = os.umask(children.CHILD_UMASK)
    try:
        _set_environ(env)
        yield
    finally:
        _set_environ(saved)
        os.umask(umask)


def _set_environ(env: Mapping[str, str]) -> None:
    """Make os.environ equal `env`, key by key (never empty on the way: other threads)."""
    for key in [k for k in os.environ if k not in env]:
        del os.environ[key]
    for key, value in env.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def build_shadow(
    env: Mapping[str, str], log: Path, targets: Mapping[str, float] | None = None
) -> DbtRun:
    """`dbt build` of the project into the shadow schemas, with the success `targets` (all
    of them: --vars replaces a dict var whole), a line per node on stderr as it runs."""
    variables: dict = {"schema_suffix": SHADOW_SUFFIX}
    if targets:
        variables[SUCCESS_TARGETS_VAR] = dict(targets)
    title = f"dbt build into *{SHADOW_SUFFIX}"
    return invoke(["build", "--vars", json.dumps(variables)], env, log, title=title)


def run_dbt(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    """(exit code, summary) of invoke(args, env, log): for callers of the subprocess era."""
    run = invoke(args, env, log)
    return run.code, run.summary


def run_dbt_build(
    env: dict[str, str], log: Path, targets: Mapping[str, float] | None = None
) -> tuple[int, str]:
    """(exit code, summary) of build_shadow: for callers of the subprocess era (steps.py
    should call build_shadow and keep the DbtRun: its results, its error)."""
    run = build_shadow(env, log, targets)
    return run.code, run.summary


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
        run = invoke(["run", "--select", "path:models/validation"], env, log, progress=False)
        if run.code == 0:
            say(f"validation rebuilt on the restored tables: {run.summary or 'done'}")
            return None
        failed = [f"{r.name}: {r.status} {r.message}" for r in run.results if r.status == "error"]
        tail = failed or ([run.error] if run.error else log.read_text("utf-8").splitlines()[-3:])
    problem = "validation models not rebuilt (run `dbt build`): " + " | ".join(
        " ".join(t.split()) for t in tail
    )
    say(f"note: {problem}")
    return problem
