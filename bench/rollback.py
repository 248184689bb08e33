"""Benchmark: `luckygas rollback` at full scale, against the plan's 5-minute target.

In a fresh database `bench_rollback_<random>` on the server `luckygas` resolves (the
embedded one, or the one PG* / LUCKYGAS_DSN name):

  (1) `luckygas migrate` of the full-scale sample into the empty database
  (2) `luckygas migrate` again with the same files (nothing changes; its backup holds the
      state after (1): raw and the dbt schemas at full scale)
  (3) `luckygas rollback` of (2), timed: restore (one transaction) and verification (row
      count and checksum of every table)

Prints the seconds of (2)'s backup and backup verification (a restore into a scratch
database), of the rollback's restore, verification and total, and the ratio of the
rollback's total to 300 s. Asserts no timing; exits non-zero if a step fails.

Run from the repository root: .venv/bin/python bench/rollback.py [--sample DIR] [--keep]
Without --sample a full-scale sample is generated into a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's loaders, whatever the venv's install points at


from loaders import connection  # noqa: E402
from loaders.cutover.migrate import migrate  # noqa: E402
from loaders.cutover.rollback import rollback  # noqa: E402
from loaders.sample.generate import generate  # noqa: E402
from loaders.tests.dbt_runner import dbt_env, environ  # noqa: E402

TARGET_SECONDS = 300.0


def say(line: str) -> None:
    print("   " + line, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, help="a full-scale `luckygas sample` directory")
    parser.add_argument("--keep", action="store_true", help="keep the database and backups")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    sample = args.sample
    if sample is None:
        sample = work / "sample"
        print(f"generating a full-scale sample into {sample}", flush=True)
        generate(sample, scale="full")
    server = connection.resolve()
    version = connection.server_version(server)
    db = f"bench_rollback_{secrets.token_hex(4)}"
    with connection.connect(server, autocommit=True) as admin:
        admin.execute(f'create database "{db}"')
    pg_env = {k: v for k, v in server.env.items() if k.startswith("PG")}
    pg_env["PGDATABASE"] = db
    env = dbt_env(pg_env, work / "dbt")
    backups = work / "backups"
    failed = False
    try:
        with environ(env):
            print("(1) migrate: full sample into an empty database", flush=True)
            t = time.perf_counter()
            first = migrate([sample], backup_dir=backups, say=say)
            first_s = time.perf_counter() - t
            print("(2) migrate again: same files", flush=True)
            t = time.perf_counter()
            second = migrate([sample], backup_dir=backups, say=say)
            second_s = time.perf_counter() - t
            print("(3) rollback of (2)", flush=True)
            rb = rollback(second.migration_id, say=say)
        rows = sum(second.counts_before.values())
        size = second.backup_path.stat().st_size if second.backup_path else 0
        print()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {version.split(',')[0]}")
        print(f"sample: {sample}")
        print(f"(1) first migration {first.migration_id}: {first_s:.1f} s")
        print(
            f"(2) second migration {second.migration_id}: {second_s:.1f} s; backup of"
            f" {len(second.counts_before)} tables, {rows:,} rows, {size / 2**20:.1f} MiB"
        )
        print(f"    backup (pg_dump -Fc + counts + checksums): {second.timings.backup:7.2f} s")
        print(f"    load:                                      {second.timings.load:7.2f} s")
        print(f"    dbt build into the shadow schemas:         {second.timings.dbt:7.2f} s")
        print(f"    vacuum (analyze) of the shadow tables:     {second.timings.vacuum:7.2f} s")
        print(f"    swap in (one transaction):                 {second.timings.swap:7.2f} s")
        print(
            f"    backup verification (scratch restore):     {second.timings.backup_verify:7.2f} s"
        )
        print(f"(3) rollback {rb.rollback_id} of migration {rb.migration_id}:")
        print(f"    restore (one transaction):                 {rb.restore_seconds:7.2f} s")
        print(f"    verification (counts + checksums):         {rb.verify_seconds:7.2f} s")
        print(f"    total:                                     {rb.total_seconds:7.2f} s")
        print(
            f"ratio to the {TARGET_SECONDS:.0f} s target: {rb.total_seconds / TARGET_SECONDS:.3f}"
            f" (backup + rollback: {(second.timings.backup + rb.total_seconds) / TARGET_SECONDS:.3f})"
        )
    except Exception as exc:  # a benchmark reports, then fails
        print(f"FAILED: {exc}", file=sys.stderr)
        failed = True
    finally:
        if args.keep:
            print(f"kept: database {db}, files in {work}")
        else:
            with connection.connect(server, autocommit=True) as admin:
                connection.drop_database(admin, db)
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
