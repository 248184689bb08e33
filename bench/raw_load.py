"""Benchmark: the raw loader at full scale, beside the floor and the alternatives.

In one run, on the same machine and server, each step in its own process (wall time, peak
RSS and CPU from /usr/bin/time):

  (a) `luckygas load --force` of the history workbook
  (b) `luckygas load --force` of the app's SQLite file
  (c) psql `\\copy` of the same history rows from a CSV file: the floor for any loader
  (d) the project's xlsx reader alone, iterating every row of the history (no database)
  (e) pgloader (Debian package) on the same SQLite file, if it is installed or installable
  (f) python-calamine alone, iterating every row of every sheet of the history workbook:
      the floor for any Python xlsx loader built on it

Targets: (a) at most 1.3x (f); (b) at most 0.5x (e); the loader's peak RSS <= 512 MiB.
It prints each figure beside its floor, the ratio and the target, and asserts nothing: a
benchmark, not a test.

Beside each step's wall time, where its CPU went: `cpu s`, the step process's own user + system
seconds (its threads and the children it waited for; for (c), psql's), and `server cpu s`, the
database server's during the step (for (c), the COPY's). The server's is read from /proc before
and after the step: the postmaster's user and system time with that of the children it has
reaped (the backends that exited), plus that of every child running now. It is all the server
did meanwhile, for whoever asked (other sessions, autovacuum, checkpoints): (d) and (f) use no
database, so theirs is that background. It is "n/a" when the server is not on this machine or
/proc does not show it (a remote PGHOST, another pid namespace, no permission).

Then where the history load's time goes: a step cannot finish faster than its CPU (process and
server) spread over every core of the machine. That CPU floor is printed beside (f)'s wall
time: a floor above 1.3x (f) means the target needs less CPU, not better overlap. And (f)'s CPU
over its wall time: the cores calamine keeps busy.

Run: .venv/bin/python bench/raw_load.py [--sample DIR]   (DIR: a full-scale `luckygas sample`;
generated into a temporary directory when not given). Uses the server `luckygas` resolves
(embedded by default), in a separate database `luckygas_bench` that it recreates.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from server_cpu import postmaster_pid, server_cpu  # bench/server_cpu.py

from loaders import connection
from loaders.embedded import bin_path

HISTORY = "2025-05 commercial deliver history.xlsx"
APP = "luckygas.db"
BIN = Path(sys.executable).parent
DB = "luckygas_bench"


@dataclass
class Step:
    name: str
    seconds: float
    peak_mib: float
    rows: int
    note: str = ""
    cpu: float = 0.0  # user + system seconds of the step's process and its waited-for children
    server_cpu: float | None = None  # the server's CPU seconds during the step; None: unknown


def timed(
    name: str, argv: list[str], env: dict[str, str], rows: int, postmaster: int | None
) -> Step:
    """Run argv under /usr/bin/time; returns wall seconds, peak RSS, its CPU and the server's."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        before = server_cpu(postmaster)
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M %U %S", "-o", t.name, *argv],
            env=env,
            capture_output=True,
            text=True,
        )
        after = server_cpu(postmaster)
        if result.returncode != 0:
            raise SystemExit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        seconds, kib, user, system = t.read().split()[-4:]
    server = None if before is None or after is None else after - before
    return Step(
        name, float(seconds), int(kib) / 1024, rows, "", float(user) + float(system), server
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="a full-scale sample directory")
    args = parser.parse_args()
    sample = args.sample.resolve() if args.sample else None  # pgloader's URL needs it absolute
    if sample is None:
        sample = Path(tempfile.mkdtemp(prefix="luckygas-bench-"))
        print(f"generating the full-scale sample into {sample} ...", flush=True)
        subprocess.run(
            [str(BIN / "luckygas"), "sample", "--out", str(sample), "--scale", "full"], check=True
        )

    target = connection.resolve()
    with psycopg.connect(target.conninfo, autocommit=True) as admin:
        connection.drop_database(admin, DB)
        admin.execute(f"create database {DB}")
    env = {**os.environ, **target.env, "PGDATABASE": DB}
    env.pop("LUCKYGAS_DSN", None)
    conninfo = psycopg.conninfo.make_conninfo(target.conninfo, dbname=DB)
    postmaster = postmaster_pid(conninfo)  # its session is closed before the steps

    import sqlite3

    with sqlite3.connect(sample / APP) as lite:
        app_rows = sum(
            lite.execute(f'select count(*) from "{t}"').fetchone()[0]
            for (t,) in lite.execute("select name from sqlite_master where type = 'table'")
        )
    steps: list[Step] = []
    print("(a) loader: history workbook", flush=True)
    a = timed(
        "(a) luckygas load: history xlsx",
        [str(BIN / "luckygas"), "load", "--force", str(sample / HISTORY)],
        env,
        0,
        postmaster,
    )
    with psycopg.connect(conninfo) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from raw._sources where source_file = %s and outcome = 'loaded'",
                (HISTORY,),
            )
        ]
        a.rows = sum(conn.execute(f'select count(*) from raw."{t}"').fetchone()[0] for t in tables)
    steps.append(a)

    print("(b) loader: SQLite file", flush=True)
    steps.append(
        timed(
            "(b) luckygas load: SQLite",
            [str(BIN / "luckygas"), "load", "--force", str(sample / APP)],
            env,
            app_rows,
            postmaster,
        )
    )

    print("(c) psql \\copy of the same history rows from CSV", flush=True)
    work = Path(tempfile.mkdtemp(prefix="luckygas-bench-csv-"))
    copies = []
    with psycopg.connect(conninfo) as conn:
        for k, t in enumerate(tables):
            csv = work / f"history{k}.csv"
            with (
                csv.open("wb") as f,
                conn.cursor().copy(f'copy (select * from raw."{t}") to stdout (format csv)') as cp,
            ):
                for block in cp:
                    f.write(block)
            conn.execute(f"drop table if exists public.copy_floor{k}")
            conn.execute(f'create table public.copy_floor{k} (like raw."{t}")')
            copies += ["-c", f"\\copy public.copy_floor{k} from '{csv}' csv"]
        conn.commit()
    psql = str(bin_path("psql"))
    steps.append(
        timed("(c) psql \\copy from CSV (floor)", [psql, "-q", *copies], env, a.rows, postmaster)
    )

    print("(d) the xlsx reader alone", flush=True)
    reader = (
        "import sys; from pathlib import Path; from loaders.readers import open_file\n"
        "n = sum(1 for s in open_file(Path(sys.argv[1])) for _ in s.rows()); print(n)"
    )
    steps.append(
        timed(
            "(d) xlsx reader alone: history",
            [sys.executable, "-c", reader, str(sample / HISTORY)],
            env,
            a.rows,
            postmaster,
        )
    )

    print("(f) python-calamine alone", flush=True)
    calamine = (
        "import sys, python_calamine as pc\n"
        "wb = pc.CalamineWorkbook.from_path(sys.argv[1]); n = 0\n"
        "for name in wb.sheet_names:\n"
        "    for _ in wb.get_sheet_by_name(name).iter_rows(): n += 1\n"
        "print(n)"
    )
    steps.append(
        timed(
            "(f) python-calamine alone: history",
            [sys.executable, "-c", calamine, str(sample / HISTORY)],
            env,
            a.rows,
            postmaster,
        )
    )

    print("(e) pgloader on the SQLite file", flush=True)
    pgloader = shutil.which("pgloader")
    if pgloader is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "pgloader"], capture_output=True)
        pgloader = shutil.which("pgloader")
    if pgloader is None:
        print("    pgloader is not installed and could not be installed: (e) skipped")
    else:
        with psycopg.connect(target.conninfo, autocommit=True) as admin:
            connection.drop_database(admin, "luckygas_bench_pgloader")
            admin.execute("create database luckygas_bench_pgloader")
        host, port = env.get("PGHOST", "127.0.0.1"), env.get("PGPORT", "5432")
        user = env.get("PGUSER", "postgres")
        command = work / "sqlite.load"
        command.write_text(
            f"load database from sqlite://{sample / APP}\n"
            f"  into postgresql://{user}@{host}:{port}/luckygas_bench_pgloader\n"
            "  with include drop, create tables, create no indexes, reset no sequences\n"
            "  cast type real to float8 drop typemod using float-to-string;\n"
        )
        steps.append(
            timed(
                "(e) pgloader: SQLite",
                [pgloader, "--quiet", str(command)],
                env,
                app_rows,
                postmaster,
            )
        )
        # pgloader exits 0 even when it loaded nothing (a wrong path): count what it wrote.
        pg_conninfo = psycopg.conninfo.make_conninfo(
            target.conninfo, dbname="luckygas_bench_pgloader"
        )
        with psycopg.connect(pg_conninfo) as conn:
            loaded = sum(
                conn.execute(f'select count(*) from public."{t}"').fetchone()[0]
                for (t,) in conn.execute(
                    "select table_name from information_schema.tables where table_schema = 'public'"
                )
            )
        if loaded != app_rows:
            raise SystemExit(f"pgloader wrote {loaded:,} rows of {app_rows:,}: its figure is void")

    print()
    print(
        f"{'step':42} {'seconds':>8} {'rows':>9} {'rows/s':>10} {'peak MiB':>9}"
        f" {'cpu s':>7} {'server cpu s':>12}"
    )
    for s in steps:
        server = "n/a" if s.server_cpu is None else f"{s.server_cpu:.2f}"
        print(
            f"{s.name:42} {s.seconds:8.2f} {s.rows:9,} {s.rows / max(s.seconds, 1e-9):10,.0f}"
            f" {s.peak_mib:9.0f} {s.cpu:7.2f} {server:>12}"
        )
    print("(server cpu s: all the server did during the step; (d) and (f) use no database)")
    by = {s.name[:3]: s for s in steps}
    print()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"{'figure':38} {'seconds':>8} {'floor':30} {'seconds':>8} {'ratio':>6} {'target':>7}  met"
    )
    pairs = [
        ("(a) load history xlsx", "(a)", "(f) python-calamine parse", "(f)", 1.3),
        ("(a) load history xlsx", "(a)", "(c) psql \\copy of its rows", "(c)", None),
        ("(d) project's reader alone", "(d)", "(f) python-calamine parse", "(f)", None),
        ("(b) load SQLite", "(b)", "(e) pgloader", "(e)", 0.5),
    ]
    for label, key, floor_label, floor_key, target in pairs:
        if key not in by or floor_key not in by:
            print(f"{label:38} {'':>8} {floor_label:30} {'-':>8}  (floor not measured)")
            continue
        ratio = by[key].seconds / by[floor_key].seconds
        met = "" if target is None else ("yes" if ratio <= target else "NO")
        shown = "" if target is None else f"<= {target}"
        print(
            f"{label:38} {by[key].seconds:8.2f} {floor_label:30} {by[floor_key].seconds:8.2f}"
            f" {ratio:6.2f} {shown:>7}  {met}"
        )
    peak = max(by["(a)"].peak_mib, by["(b)"].peak_mib)
    print(f"loader peak RSS = {peak:.0f} MiB  (target <= 512)  {'yes' if peak <= 512 else 'NO'}")
    a, f, cores = by["(a)"], by["(f)"], os.cpu_count() or 1
    server = "n/a" if a.server_cpu is None else f"{a.server_cpu:.2f} s"
    cpu = a.cpu + (a.server_cpu or 0.0)
    floor = cpu / cores
    print()
    print("where the time goes: (a) load history xlsx")
    print(
        f"  CPU: process {a.cpu:.2f} s + server {server} = {cpu:.2f} s"
        + (" (the server's not known: a lower bound)" if a.server_cpu is None else "")
    )
    print(
        f"  CPU floor = {cpu:.2f} s / {cores} cores = {floor:.2f} s, beside (f) python-calamine"
        f" {f.seconds:.2f} s: floor / (f) = {floor / f.seconds:.2f}  (wall / (f) = "
        f"{a.seconds / f.seconds:.2f}, target <= 1.3)"
    )
    print(
        "  a load cannot finish faster than its CPU spread over every core: a floor ratio above"
        " 1.3 means the 1.3x target needs less CPU, not better overlap"
    )
    print(
        f"  (f) python-calamine: {f.cpu:.2f} s CPU in {f.seconds:.2f} s wall ="
        f" {f.cpu / f.seconds:.2f} cores busy"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
