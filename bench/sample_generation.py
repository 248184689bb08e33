"""Benchmark: full-scale sample generation (the set-up step of `make demo`).

Prints the wall time of each part, the file sizes and the peak memory, measured in one run.
Run: .venv/bin/python bench/sample_generation.py [--scale full] [--out DIR]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from rich.console import Console

from loaders.sample.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["small", "full"])
    parser.add_argument("--seed", type=int, default=20250521)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    out = args.out or Path(tempfile.mkdtemp(prefix="luckygas-bench-"))
    started = time.perf_counter()
    doc = generate(out, scale=args.scale, seed=args.seed, console=console)
    seconds = time.perf_counter() - started
    # The history workbook is written by a forked child: report both processes' peaks.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = sum(s["data_rows"] for s in doc["sources"])
    console.print(f"\nscale {args.scale}, seed {args.seed}, into {out}")
    console.print(
        f"generation: {seconds:.1f} s for {rows:,} source rows ({rows / seconds:,.0f} rows/s)"
    )
    console.print(
        f"peak RSS:   {peak_mib:,.0f} MiB (generator), {child_mib:,.0f} MiB (history writer)"
    )
    for f in doc["files"] + [
        {"file": "expected.json", "bytes": (out / "expected.json").stat().st_size}
    ]:
        console.print(f"  {f['bytes'] / 2**20:8.2f} MiB  {f['file']}")


if __name__ == "__main__":
    main()
