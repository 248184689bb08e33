"""Benchmark: `dbt build` at full scale (every seed, model and test), beside the raw load.

In one run, on the same machine and server, each step in its own process (wall time, and
peak RSS of that process and its children from wait4), into a fresh database
`bench_dbt_<random>`:

  (a) `luckygas load` of the full-scale sample (all three exports)
  (b) `dbt build`: seeds, every model, every test, on the empty marts: the full build
  (c) `dbt build` again with nothing new loaded (the incremental marts have no day to redo)
  (d) `dbt build --selector daily` with nothing new loaded: the daily build (selectors.yml:
      every model and every data test on a model, without the seeds, the tests of the seeds
      alone and the unit tests)
  (e) `luckygas load` of the daily increment (`luckygas sample --increment`)
  (f) `dbt build --selector daily` after it: incremental, only the client-days the increment
      touches
  (g) `dbt build --full-refresh`: every table rebuilt from scratch, increment included
  (h) `dbt ls --selector daily`: dbt's own start-up, parse and selection, no query (the
      floor under any dbt command)

Rows: for a load, the raw rows it wrote; for a dbt build, the rows it wrote into the three
incremental delivery marts (deliveries, delivery_items, delivery_sources).

CPU: each step's process (dbt, or luckygas), user + system from wait4, and the server's during
the step (bench/server_cpu.py: from /proc, n/a when the server is not on this machine). dbt's
Python runs under one interpreter lock whatever its threads, so a dbt command cannot take less
than its process's CPU: for (f), that floor is printed beside the target.

Targets: (b) at most 45 s on the 2-core machine; (f) at most 0.2 of (g) (a daily build touches
only the day's rows). Prints figures, ratios beside their targets and the slowest nodes of (b)
and (f); asserts no timing (a benchmark, not a test), but exits non-zero if a step fails (a
non-zero exit, or dbt's summary without ERROR=0).

Run from the repository root: .venv/bin/python bench/dbt_build.py [--sample DIR] [--keep]
DIR is a full-scale `luckygas sample`; its increment is read from DIR-increment when that
holds one, else generated (with the sample's seed) into a temporary directory. Without
--sample both are generated. Uses the server `luckygas` resolves (the embedded one, or the
one PG* / LUCKYGAS_DSN name); the database is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's loaders, whatever the venv's install points at

import psycopg  # noqa: E402
from server_cpu import postmaster_pid, server_cpu  # noqa: E402  (bench/server_cpu.py)

from loaders import connection  # noqa: E402
from loaders.sample.generate import generate  # noqa: E402
from loaders.tests.dbt_runner import dbt_env  # noqa: E402  (the analyst's dbt environment)

BIN = Path(sys.executable).parent
POSTMASTER: list[int | None] = [None]  # the server's postmaster, when it runs on this machine
SEED = 20250521
TARGET_SECONDS = 45.0
TARGET_INCREMENTAL_RATIO = 0.2
INCREMENTAL_MARTS = ("deliveries", "delivery_items", "delivery_sources")
DONE = re.compile(r"Done\. (PASS=\d+ .*TOTAL=\d+)")


@dataclass
class Step:
    name: str
    seconds: float
    peak_mib: float
    rows: int | None = None
    note: str = ""
    cpu: float = 0.0  # user + system seconds of the process and its waited-for children
    server_cpu: float | None = None  # the server's during the step (server_cpu.py); None: unknown


def run(name: str, argv: list[str], env: dict[str, str]) -> tuple[Step, str]:
    """Run argv, timing it; peak RSS and CPU from wait4 (the child and its waited-for
    children), the server's CPU from /proc (POSTMASTER, when the server is on this machine)."""
    print(name, flush=True)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        before = server_cpu(POSTMASTER[0])
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        after = server_cpu(POSTMASTER[0])
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{output[-4000:]}")
    server = None if before is None or after is None else after - before
    cpu = usage.ru_utime + usage.ru_stime
    return Step(name, seconds, usage.ru_maxrss / 1024, cpu=cpu, server_cpu=server), output


def load(name: str, path: Path, env: dict[str, str], conninfo: str) -> Step:
    step, _ = run(name, [str(BIN / "luckygas"), "load", str(path)], env)
    with psycopg.connect(conninfo) as conn:
        step.rows = conn.execute(
            "select coalesce(sum(rows_written), 0)::bigint from raw._sources"
            " where load_id = (select max(load_id) from raw._loads)"
        ).fetchone()[0]
    return step


def dbt_build(name: str, argv: list[str], env: dict[str, str]) -> tuple[Step, list[dict]]:
    """One `dbt build`; stops the benchmark unless it exits 0 with ERROR=0 in its summary."""
    step, output = run(name, argv, env)
    done = DONE.findall(output)
    if not done or not re.search(r"\bERROR=0\b", done[-1]):
        raise SystemExit(f"{name}: no `ERROR=0` in dbt's summary:\n{output[-4000:]}")
    step.note = done[-1]
    results_path = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    text = results_path.read_text(encoding="utf-8")
    # each build's node timings kept beside the target (read them with --keep)
    (results_path.parent / f"run_results-{name[1]}.json").write_text(text, encoding="utf-8")
    results = json.loads(text)["results"]
    step.rows = sum(
        (r.get("adapter_response") or {}).get("rows_affected") or 0
        for r in results
        if r["unique_id"] in {f"model.luckygas.{m}" for m in INCREMENTAL_MARTS}
    )
    return step, results


def seed_of(expected: Path) -> int:
    doc = json.loads(expected.read_text(encoding="utf-8"))
    return int(doc.get("generator", {}).get("seed", SEED))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="a full-scale sample directory")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the temporary files"
    )
    args = parser.parse_args()
    os.chdir(ROOT)  # the embedded server's home is <cwd>/.luckygas

    work = Path(tempfile.mkdtemp(prefix="luckygas-bench-dbt-"))
    if args.sample is None:
        sample = work / "sample"
        print(f"generating the full-scale sample into {sample} ...", flush=True)
        generate(sample, scale="full", seed=SEED)
    else:
        sample = args.sample.resolve()
        if not (sample / "expected.json").is_file():
            raise SystemExit(f"{sample}: not a `luckygas sample` directory (no expected.json)")
    seed = seed_of(sample / "expected.json")
    increment = sample.parent / f"{sample.name}-increment"
    found = increment / "expected-increment.json"
    if not found.is_file() or seed_of(found) != seed:
        increment = work / "increment"
        print(f"generating its daily increment into {increment} ...", flush=True)
        generate(increment, scale="full", seed=seed, increment=True)

    server = connection.resolve()
    version = connection.server_version(server)
    db = f"bench_dbt_{secrets.token_hex(4)}"
    with psycopg.connect(server.conninfo, autocommit=True) as admin:
        admin.execute(f'create database "{db}"')
    conninfo = psycopg.conninfo.make_conninfo(server.conninfo, dbname=db)
    POSTMASTER[0] = postmaster_pid(conninfo)  # its session is closed before the steps
    pg_env = {k: v for k, v in server.env.items() if k.startswith("PG")}
    pg_env["PGDATABASE"] = db
    env = dbt_env(pg_env, work / "dbt")
    dbt = [str(BIN / "dbt"), "build", "--project-dir", str(ROOT)]
    print(f"database {db} on {server.description}", flush=True)

    try:
        steps = [load("(a) luckygas load: full sample", sample, env, conninfo)]
        step, first = dbt_build("(b) dbt build: first, full", dbt, env)
        steps.append(step)
        steps.append(dbt_build("(c) dbt build: nothing new", dbt, env)[0])
        daily = [*dbt, "--selector", "daily"]
        steps.append(dbt_build("(d) dbt build --selector daily: nothing new", daily, env)[0])
        steps.append(load("(e) luckygas load: increment", increment, env, conninfo))
        step, incremental = dbt_build("(f) dbt build --selector daily: increment", daily, env)
        steps.append(step)
        steps.append(dbt_build("(g) dbt build --full-refresh", [*dbt, "--full-refresh"], env)[0])
        ls = [str(BIN / "dbt"), "ls", "--project-dir", str(ROOT), "--selector", "daily", "-q"]
        steps.append(run("(h) dbt ls --selector daily: dbt's start-up", ls, env)[0])
        verify = subprocess.run(
            [str(BIN / "luckygas"), "verify", str(increment / "expected-increment.json")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        with psycopg.connect(conninfo) as conn:
            deliveries, items, sources = conn.execute(
                "select (select count(*) from marts.deliveries),"
                " (select count(*) from marts.delivery_items),"
                " (select count(*) from marts.delivery_sources)"
            ).fetchone()
    finally:
        if args.keep:
            print(f"kept: database {db} (PGDATABASE={db}), files in {work}")
        else:
            with psycopg.connect(server.conninfo, autocommit=True) as admin:
                connection.drop_database(admin, db)
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {version}")
    print(f"{'step':46} {'seconds':>8} {'rows':>9} {'peak MiB':>9} {'cpu s':>7} {'server':>7}  dbt")
    for s in steps:
        rows = "" if s.rows is None else f"{s.rows:,}"
        server_s = "n/a" if s.server_cpu is None else f"{s.server_cpu:.2f}"
        print(
            f"{s.name:46} {s.seconds:8.2f} {rows:>9} {s.peak_mib:9.0f} {s.cpu:7.2f}"
            f" {server_s:>7}  {s.note}"
        )
    print("(cpu s: the step's process, dbt or luckygas, user + system; server: the server's CPU")
    print(" during the step, n/a when it is not on this machine)")
    print("(rows: raw rows written by a load; rows written into the incremental delivery marts")
    print(" by a dbt build)")
    print()
    for label, results in (("(b)", first), ("(f)", incremental)):
        print(f"slowest nodes of {label}:")
        slowest = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:10]
        for r in slowest:
            print(f"  {r['execution_time']:7.2f}  {r['unique_id']}")
        print()
    by = {s.name[:3]: s for s in steps}
    build, raw = by["(b)"].seconds, by["(a)"].seconds
    print(
        f"full dbt build: {build:.1f} s (target <= {TARGET_SECONDS:.0f} s):"
        f" ratio {build:.1f}/{TARGET_SECONDS:.0f} = {build / TARGET_SECONDS:.2f}:"
        f" {'met' if build <= TARGET_SECONDS else 'NOT met'}"
    )
    print(f"raw load: {raw:.1f} s; load + build: {raw + build:.1f} s")
    ratio = by["(f)"].seconds / by["(g)"].seconds
    print(
        f"nothing new: every node (c) {by['(c)'].seconds:.1f} s, the daily selector (d)"
        f" {by['(d)'].seconds:.1f} s; daily build after the increment (f):"
        f" {by['(f)'].seconds:.1f} s; full refresh (g): {by['(g)'].seconds:.1f} s"
    )
    print(
        f"daily build / full refresh (f)/(g) = {ratio:.2f}"
        f" (target <= {TARGET_INCREMENTAL_RATIO}): {'met' if ratio <= TARGET_INCREMENTAL_RATIO else 'NOT met'}"
    )
    kinds: dict[str, list[float]] = {}
    for r in incremental:
        kinds.setdefault(r["unique_id"].split(".")[0], []).append(r["execution_time"])
    print(
        f"where (f) goes: dbt's start-up, parse and selection (h) {by['(h)'].seconds:.1f} s;"
        " node time (summed over the threads): "
        + ", ".join(f"{len(v)} {k}s {sum(v):.1f} s" for k, v in sorted(kinds.items()))
    )
    f, g, h = by["(f)"], by["(g)"], by["(h)"]
    print(
        f"dbt's own CPU in (f): {f.cpu:.1f} s (its start-up (h) {h.cpu:.1f} s), the server's"
        f" {'n/a' if f.server_cpu is None else f'{f.server_cpu:.1f} s'}. dbt's Python runs"
        " under one interpreter lock, so (f) cannot take less than dbt's CPU however fast its"
        f" SQL: {f.cpu:.1f} s = {f.cpu / g.seconds:.2f} of (g), beside the target"
        f" {TARGET_INCREMENTAL_RATIO} ({TARGET_INCREMENTAL_RATIO * g.seconds:.1f} s)"
    )
    print(
        f"final: {deliveries:,} deliveries, {items:,} items, {sources:,} source rows in the bridge"
    )
    last = [line for line in verify.stdout.splitlines() if "checks match" in line]
    print(
        f"increment against expected-increment.json: {last[-1] if last else verify.stdout[-500:]}"
    )


if __name__ == "__main__":
    main()
