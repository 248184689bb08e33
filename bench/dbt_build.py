"""Benchmark: `dbt build` at full scale (every model and test), beside the raw load.

In one run, on the same machine and server, each step in its own process (wall time and
peak RSS from /usr/bin/time), into a fresh database:

  (a) `luckygas load` of the full-scale sample (all three exports)
  (b) `dbt build`: seeds, every model, every test, on the freshly loaded raw layer
  (c) `dbt build` again with nothing new loaded (the incremental marts have no day to redo)
  (d) `luckygas load` of the daily increment (`luckygas sample --increment`)
  (e) `dbt build` after it: incremental, only the client-days the increment touches
  (f) `dbt build --full-refresh`: every table rebuilt from scratch, increment included

Target: (b) at most 60 s on the 2-core machine. Prints figures, ratios and the slowest nodes
of (b); asserts nothing (a benchmark, not a test), but stops if a step fails.

Run: .venv/bin/python bench/dbt_build.py [--sample DIR]   (DIR: a full-scale `luckygas
sample`; the increment is written beside it into DIR-increment. Both are generated into a
temporary directory when not given.) Uses the server `luckygas` resolves (embedded by
default), in a database `luckygas_bench_dbt` that it recreates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from loaders import connection

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DB = "luckygas_bench_dbt"
TARGET_SECONDS = 60.0

sys.path.insert(0, str(ROOT))
from loaders.tests.dbt_runner import dbt_env  # noqa: E402  (the analyst's dbt environment)


@dataclass
class Step:
    name: str
    seconds: float
    peak_mib: float
    note: str = ""


def timed(name: str, argv: list[str], env: dict[str, str], dbt: bool = False) -> Step:
    """Run argv under /usr/bin/time; stop the benchmark if it fails."""
    print(name, flush=True)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", t.name, *argv],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        failed = result.returncode != 0 or (dbt and "ERROR=0" not in result.stdout)
        if failed:
            raise SystemExit(f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        seconds, kib = t.read().split()[-2:]
    note = ""
    if dbt:
        done = [line for line in result.stdout.splitlines() if "Done. PASS=" in line]
        note = done[-1].split("Done. ", 1)[1] if done else ""
    return Step(name, float(seconds), int(kib) / 1024, note)


def slowest(target: Path, n: int = 8) -> list[tuple[float, str]]:
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    nodes = sorted(((r["execution_time"], r["unique_id"]) for r in results), reverse=True)
    return nodes[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="a full-scale sample directory")
    args = parser.parse_args()
    sample = args.sample
    if sample is None:
        sample = Path(tempfile.mkdtemp(prefix="luckygas-bench-dbt-")) / "sample"
    increment = sample.parent / f"{sample.name}-increment"
    luckygas = str(BIN / "luckygas")
    if not (sample / "expected.json").exists():
        print(f"generating the full-scale sample into {sample} ...", flush=True)
        subprocess.run([luckygas, "sample", "--out", str(sample), "--scale", "full"], check=True)
    if not (increment / "expected-increment.json").exists():
        print(f"generating its increment into {increment} ...", flush=True)
        subprocess.run(
            [luckygas, "sample", "--out", str(increment), "--scale", "full", "--increment"],
            check=True,
        )

    server = connection.resolve()
    with psycopg.connect(server.conninfo, autocommit=True) as admin:
        admin.execute(f"drop database if exists {DB} with (force)")
        admin.execute(f"create database {DB}")
        version = admin.execute("show server_version").fetchone()[0]
    pg_env = {k: v for k, v in server.env.items() if k.startswith("PG")}
    pg_env["PGDATABASE"] = DB
    work = Path(tempfile.mkdtemp(prefix="luckygas-bench-dbt-run-"))
    env = dbt_env(pg_env, work)
    env.pop("LUCKYGAS_DSN", None)
    dbt = [str(BIN / "dbt"), "build", "--project-dir", str(ROOT)]

    steps = [timed("(a) luckygas load: full sample", [luckygas, "load", str(sample)], env)]
    steps.append(timed("(b) dbt build: first, full", dbt, env, dbt=True))
    first_slowest = slowest(Path(env["DBT_TARGET_PATH"]))
    steps.append(timed("(c) dbt build: nothing new", dbt, env, dbt=True))
    steps.append(timed("(d) luckygas load: increment", [luckygas, "load", str(increment)], env))
    steps.append(timed("(e) dbt build: incremental", dbt, env, dbt=True))
    steps.append(timed("(f) dbt build --full-refresh", [*dbt, "--full-refresh"], env, dbt=True))
    verify = subprocess.run(
        [luckygas, "verify", str(increment / "expected-increment.json")],
        env=env,
        capture_output=True,
        text=True,
    )

    with psycopg.connect(psycopg.conninfo.make_conninfo(server.conninfo, dbname=DB)) as conn:
        deliveries, items, sources = conn.execute(
            "select (select count(*) from marts.deliveries),"
            " (select count(*) from marts.delivery_items),"
            " (select count(*) from marts.delivery_sources)"
        ).fetchone()
    with psycopg.connect(server.conninfo, autocommit=True) as admin:
        admin.execute(f"drop database if exists {DB} with (force)")

    print()
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {version}"
    )
    print(f"{'step':36} {'seconds':>8} {'peak MiB':>9}  dbt")
    for s in steps:
        print(f"{s.name:36} {s.seconds:8.2f} {s.peak_mib:9.0f}  {s.note}")
    by = {s.name[:3]: s for s in steps}
    print()
    print("slowest nodes of (b):")
    for seconds, node in first_slowest:
        print(f"  {seconds:7.2f}  {node}")
    print()
    build = by["(b)"].seconds
    print(
        f"full dbt build (b): {build:.1f} s  (target <= {TARGET_SECONDS:.0f} s):"
        f" ratio {build / TARGET_SECONDS:.2f}"
    )
    print(
        f"raw load (a): {by['(a)'].seconds:.1f} s;  load + build: {by['(a)'].seconds + build:.1f} s"
    )
    print(
        f"incremental build after the increment (e): {by['(e)'].seconds:.1f} s;"
        f" full refresh (f): {by['(f)'].seconds:.1f} s;"
        f" incremental / full refresh = {by['(e)'].seconds / by['(f)'].seconds:.2f}"
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
