"""dbt through its programmatic API (loaders.cutover.dbt), and `rollback --to` of a migration
already rolled back.

- A migrate off a terminal prints one line per dbt node as it finishes, numbered 1..N of N,
  N the number of results dbt wrote to run_results.json; its summary line is counted from
  the result objects.
- A dbt command's results (a failing reconciliation test's rows included) come from dbt's
  result objects and agree with run_results.json; a display that raises does not stop dbt;
  dbt stopped before any node (a bad argument) is exit code 2 with its error.
- The display alone, on fake events: plain lines, the heartbeat, the bar.
- `rollback --to N` of a migration rolled back (by a rollback of it, or of an earlier one)
  with nothing migrated since is refused with one line; a migration since lifts it.
"""

from __future__ import annotations

import io
import json
import re
import time
from types import SimpleNamespace

import psycopg
import pytest

from loaders.cli import main
from loaders.cutover import dbt, progress
from loaders.cutover.records import claim
from loaders.sample.generate import generate
from loaders.tests.dbt_runner import dbt_env, environ, fresh_database
from loaders.tests.test_migrate import ACCEPT, execute, migrations, rows

NODE_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] (\w+) (\S+) \.\.\. (\S+)")
HOOK_LINE = re.compile(r"^\[hook\] .+ \.\.\. ok \d")


@pytest.fixture(scope="module")
def migrated(pg, tmp_path_factory):
    """(conninfo, env, tmp, stderr of the first migrate) of a database after a first
    `luckygas migrate` of the small sample, its stderr not a terminal."""
    tmp = tmp_path_factory.mktemp("dbt-api")
    sample = tmp / "sample"
    generate(sample, scale="small", seed=9)
    with fresh_database(pg, "a") as (conninfo, env):
        run_env = dbt_env(env, tmp)
        err = io.StringIO()
        with environ(run_env), pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.stderr", err)
            code = main(["migrate", *ACCEPT, "--backup-dir", str(tmp / "backups"), str(sample)])
        assert code == 0, err.getvalue()[-3000:]
        yield conninfo, run_env, tmp, err.getvalue()


def test_migrate_off_a_terminal_prints_a_line_per_node(migrated):
    conninfo, env, tmp, err = migrated
    everything = json.loads((tmp / "target" / "run_results.json").read_text())["results"]
    results = [r for r in everything if not r["unique_id"].startswith("operation.")]
    hooks = len(everything) - len(results)  # the on-run-start/-end hooks: a line each
    assert len(results) > 50 and hooks >= 1
    assert len([line for line in err.splitlines() if HOOK_LINE.match(line)]) == hooks
    lines = [m for m in map(NODE_LINE.match, err.splitlines()) if m]
    other = [x for x in err.splitlines() if x.startswith("[") and not NODE_LINE.match(x)]
    assert len(lines) == len(results), (len(lines), len(results), other[:20])
    assert [int(m[1]) for m in lines] == list(range(1, len(results) + 1)), err[-3000:]
    # of dbt's own total, which counts a unit test twice (its "N of 174" too)
    [total] = {int(m[2]) for m in lines}
    units = sum(r["unique_id"].startswith("unit_test.") for r in results)
    assert total == len(results) + units
    # each line names its node, and says how it went as the result object does
    status_word = {"success": "ok", "pass": "pass", "warn": "warn", "skipped": "skip"}
    by_kind = {m[3] for m in lines}
    assert {"model", "test", "seed"} <= by_kind
    want = sorted(status_word.get(r["status"], r["status"]) for r in results)
    assert sorted(m[5] for m in lines) == want
    assert any(m[4] == "marts__shadow.deliveries" for m in lines)
    # the summary is the results', counted: every node passed or warned
    [summary] = [line for line in err.splitlines() if "dbt build into" in line and "PASS=" in line]
    passed = sum(r["status"] in ("success", "pass") for r in results)
    warned = sum(r["status"] == "warn" for r in results)
    every = len(everything)  # the hooks count in dbt's summary as in run_results
    assert f"PASS={passed + hooks} WARN={warned} ERROR=0 SKIP=0 NO-OP=0 TOTAL={every}" in summary
    [(mid, outcome, *_)] = migrations(conninfo)
    log = tmp / "backups" / f"migration-{mid}-dbt.log"
    text = log.read_text()
    assert "Began running node model.luckygas.deliveries" in text  # every event, debug too
    assert "Done. PASS=" in text


def test_results_come_from_the_result_objects(migrated, capsys):
    """A reconciliation test made to fail (rows deleted from the live marts): its status and
    failing rows from the objects, as in run_results.json; the after-checks see it."""
    conninfo, env, tmp, _ = migrated
    with psycopg.connect(conninfo, autocommit=True) as conn:
        deleted = conn.execute("delete from marts.deliveries where random() < 0.1").rowcount
    assert deleted > 0
    log = tmp / "test.log"
    args = ["test", "--select", "customers_reconcile deliveries_reconcile"]
    with environ(env):
        run = dbt.invoke(args, env, log)
    assert run.code == 1 and run.error is None
    # two tests and the project's hooks, which dbt counts as results
    hooks = sum(r.resource_type == "operation" for r in run.results)
    assert hooks >= 1 and len(run.results) == 2 + hooks
    want = {"PASS": 1 + hooks, "WARN": 0, "ERROR": 1, "SKIP": 0, "NOOP": 0, "TOTAL": 2 + hooks}
    assert run.counts == want
    assert run.summary == f"PASS={1 + hooks} WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL={2 + hooks}"
    [failed] = [r for r in run.results if r.status == "fail"]
    assert failed.name.endswith("deliveries_reconcile") and failed.failures > 0
    metadata = json.loads((run.target_dir / "run_results.json").read_text())["metadata"]
    assert run.invocation_id == metadata["invocation_id"]
    on_disk = {r.unique_id: r for r in dbt.read_run_results(run.target_dir)}
    assert {u: (r.status, r.failures) for u, r in on_disk.items()} == {
        r.unique_id: (r.status, r.failures) for r in run.results
    }
    assert run.problems() == [
        f"reconciliation test deliveries_reconcile: fail ({failed.failures} rows)"
    ]
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "deliveries_reconcile" in line]
    assert re.match(rf"^\[[ 12]/2\] test deliveries_reconcile \.\.\. FAIL {failed.failures} ", line)
    assert (log.stat().st_mode & 0o777) == 0o600


def test_a_failing_display_does_not_stop_dbt(migrated, monkeypatch, capsys):
    conninfo, env, tmp, _ = migrated

    def broken(self, msg):
        if msg.info.name == "NodeStart":
            raise RuntimeError("display broke")

    monkeypatch.setattr(progress.NodeProgress, "on_event", broken)
    with environ(env):
        run = dbt.invoke(["test", "--select", "customers_reconcile"], env, tmp / "broken.log")
    assert run.code == 0 and [r.status for r in run.results if r.resource_type == "test"] == [
        "pass"
    ]
    assert "display broke" in capsys.readouterr().err
    assert "the display failed: RuntimeError: display broke" in (tmp / "broken.log").read_text()


def test_dbt_stopped_before_any_node_is_exit_2_with_its_error(migrated):
    conninfo, env, tmp, _ = migrated
    with environ(env):
        run = dbt.invoke(["build", "--target", "nowhere"], env, tmp / "bad.log")
    assert run.code == 2 and run.results == () and run.summary == ""
    assert "nowhere" in run.error


def test_the_environment_and_umask_are_put_back(migrated):
    import os

    conninfo, env, tmp, _ = migrated
    before, umask = dict(os.environ), os.umask(0o022)
    try:
        odd = {**env, "LUCKYGAS_ONLY_FOR_DBT": "1"}
        with environ(env):
            inside = dict(os.environ)
            dbt.invoke(["test", "--select", "customers_reconcile"], odd, tmp / "env.log")
            assert dict(os.environ) == inside
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(umask)
    assert dict(os.environ) == before


# -- the display alone ----------------------------------------------------------------------


def _event(name: str, uid: str = "", status: str = "", total: int = 0, failures: int = 0):
    kind, _, rest = uid.partition(".")
    relation = SimpleNamespace(schema="marts__shadow", alias=rest.split(".")[-1])
    info = SimpleNamespace(
        unique_id=uid, resource_type=kind, node_name=rest.split(".")[-1], node_relation=relation
    )
    result = SimpleNamespace(status=status, num_failures=failures, execution_time=1.25, message="")
    data = SimpleNamespace(node_info=info, run_result=result, total=total)
    return SimpleNamespace(info=SimpleNamespace(name=name), data=data)


def test_the_plain_display_prints_a_line_per_node_and_a_heartbeat():
    out = io.StringIO()
    with progress.NodeProgress("dbt build", stream=out, heartbeat=0.3) as shown:
        shown.on_event(_event("NodeStart", "model.luckygas.customers"))
        shown.on_event(_event("LogStartLine", "model.luckygas.customers", total=12))
        time.sleep(1.5)  # a slow model: the heartbeat names it
        shown.on_event(_event("NodeFinished", "model.luckygas.customers", "success"))
        shown.on_event(_event("NodeStart", "test.luckygas.rule_c01"))
        shown.on_event(_event("NodeFinished", "test.luckygas.rule_c01", "fail", failures=3))
    lines = out.getvalue().splitlines()
    assert "[ 1/12] model marts__shadow.customers ... ok 1.2 s" in lines
    assert "[ 2/12] test rule_c01 ... FAIL 3 1.2 s" in lines
    assert any(
        line.startswith("[ 0/12] running: model marts__shadow.customers (") for line in lines
    )


def test_the_bar_shows_on_a_terminal_without_failing():
    out = io.StringIO()
    with progress.NodeProgress("dbt build", stream=out, interactive=True) as shown:
        shown.on_event(_event("NodeStart", "model.luckygas.customers"))
        shown.on_event(_event("LogStartLine", "model.luckygas.customers", total=2))
        shown.on_event(_event("NodeFinished", "model.luckygas.customers", "success"))
        shown.on_event(_event("NodeFinished", "test.luckygas.rule_c01", "error"))
    assert shown.done == 2 and "test rule_c01 ... ERROR" in out.getvalue()


def test_the_project_dir_is_found_through_loaders_project(tmp_path, monkeypatch):
    """dbt.PROJECT_DIR (kept for its importers) and project_dir() follow LUCKYGAS_PROJECT_DIR."""
    (tmp_path / "dbt_project.yml").write_text("name: 'luckygas'\nversion: '1'\n")
    monkeypatch.setenv("LUCKYGAS_PROJECT_DIR", str(tmp_path))
    assert dbt.project_dir() == tmp_path.resolve() == dbt.PROJECT_DIR
    assert dbt.dbt_target_dir({}) == tmp_path.resolve() / "target"


# -- rollback --to a rolled-back migration --------------------------------------------------


def test_rollback_to_a_rolled_back_migration_is_refused(pg, tmp_path, capsys):
    with fresh_database(pg, "b") as (conninfo, env), environ(dbt_env(env, tmp_path)):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            claim(conn, "migrate")
            for _ in range(2):
                conn.execute(
                    "insert into validation.migrations (arguments, outcome, backup_path,"
                    " backup_schemas, finished_at) values ('{migrate}', 'succeeded',"
                    " %s, '{raw}', clock_timestamp())",
                    (str(tmp_path / "gone.dump"),),
                )
            conn.execute(
                "insert into validation.rollbacks (migration_id, outcome, finished_at)"
                " values (1, 'rolled back', '2025-06-01 10:00:00+00')"
            )

        def last_line(argv):
            capsys.readouterr()
            assert main(argv) == 2
            return capsys.readouterr().err.strip().splitlines()[-1]

        first = last_line(["rollback", "--to", "1"])
        assert re.fullmatch(
            r"luckygas: migration 1 was already rolled back \(rollback 1 at"
            r" 2025-06-0[12] \d\d:\d\d:\d\d ?\S*\); nothing to do",
            first,
        ), first
        # migration 2 ran after 1: the rollback of 1 undid it too
        second = last_line(["rollback", "--to", "2"])
        assert second.startswith(
            "luckygas: migration 2 was already rolled back (rollback 1 of migration 1 at "
        )
        assert last_line(["rollback"]) == (
            "luckygas: no succeeded migration to roll back (give --to MIGRATION_ID)"
        )
        assert rows(conninfo, "select count(*) from validation.rollbacks") == [(1,)]
        # a migration since the rollback: rolling back to 1 means something again
        execute(
            conninfo,
            "insert into validation.migrations (arguments, outcome, backup_schemas)"
            " values ('{migrate}', 'succeeded', '{raw}')",
        )
        assert last_line(["rollback", "--to", "1"]).endswith(f"{tmp_path / 'gone.dump'} is missing")
