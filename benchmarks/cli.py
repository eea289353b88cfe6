"""python benchmarks/run.py [--targets 1,20,50,100] [--repeat 3] [--ansible-once-above 50] [--fab-only] [--out benchmarks/out]

Brings up the lab with enough Docker targets (a bigger lab is used as it is), deploys the
registry on deploy1, then for each N times on the first N Docker nodes, resetting them
between runs: the SSH floors, fab configure-targets (default flags), ansible-core and
pyinfra (not with --fab-only), first and no-op runs. Writes results.md (the table, the goals, the 100- and
1000-node projection), results.json and results.png to --out. Needs root (the lab);
exits 1 when any run failed or left a node not trusting the registry.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from fabfile.engine.runner import default_parallel

from . import bench, projection, report
from .tools import versions

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    counts = sorted(set(args.targets))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = bench.run(counts, args.repeat, args.out, args.ansible_once_above, others=not args.fab_only)
    table = report.cells(results)
    found = report.checks(table)
    parallel = default_parallel()
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started),
        "targets": counts,
        "repeat": args.repeat,
        "ansible_once_above": args.ansible_once_above,
        "fab_only": args.fab_only,
        "default_parallel": parallel,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "versions": versions(),
    }
    text = report.markdown(table, found, meta) + "\n" + projection.markdown(table, parallel)
    (args.out / "results.md").write_text(text)
    report.write_json(args.out / "results.json", table, found, meta, results.failures)
    report.plot(args.out / "results.png", table)
    print(text)
    for failure in results.failures:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
    print(f"bench: wrote {args.out}/results.md, results.json, results.png", file=sys.stderr)
    return 1 if results.failures else 0


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("give numbers of targets >= 1, e.g. 1,20,50,100")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--targets", type=_counts, default=[1, 20, 50, 100], help="N values (default 1,20,50,100)"
    )
    parser.add_argument(
        "--ansible-once-above", type=int, default=50,
        help="ansible-core runs once, not --repeat times, where N is above this (default 50; 0: always --repeat)",
    )  # fmt: skip
    parser.add_argument(
        "--fab-only", action="store_true",
        help="only the floors and fab's rows (plain and TLS): no ansible-core, no pyinfra",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per cell (default 3; the median is shown)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"where results go (default {DEFAULT_OUT})"
    )
    return parser
