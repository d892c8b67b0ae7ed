"""``uv run python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: run the scenarios, write the report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import SCENARIOS, report, report_ray
from benchmarks._common import Level

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"
README = HERE.parent / "README.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; write results.json, RESULTS.md and plots."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (what CI runs)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the code runs")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), metavar="NAME", help="run only these")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for results.json and plots")
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rewrite RESULTS.md, plots, README table from results.json",
    )
    args = parser.parse_args(argv)
    level: Level = "smoke" if args.smoke else "quick" if args.quick else "full"
    # RESULTS.md is tracked next to this file; a run elsewhere writes its own copy.
    markdown_path = HERE / "RESULTS.md" if args.out.resolve() == DEFAULT_OUT else args.out / "RESULTS.md"
    measured = {}
    for name in [] if args.render else args.only or SCENARIOS:
        print(f"[{name}] running ({level}) ...", file=sys.stderr, flush=True)
        start, load_before = time.perf_counter(), os.getloadavg()[0]
        figures = SCENARIOS[name](level)
        seconds = time.perf_counter() - start
        print(f"[{name}] done in {seconds:.1f} s", file=sys.stderr, flush=True)
        measured[name] = {
            "level": level,
            "seconds": round(seconds, 2),
            # the 1-minute load average before and after: the machine is shared, so say how busy it was
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "figures": figures,
        }
    previous = report.load(args.out)
    if args.render and previous is None:
        print(f"error: no results.json in {args.out} to render", file=sys.stderr)
        return 2
    results = previous if args.render and previous is not None else report.merge(previous, measured)
    for path in report.write(results, args.out, markdown_path):
        print(f"wrote {path}", file=sys.stderr)
    if args.out.resolve() == DEFAULT_OUT and report.update_readme(results, README):
        print(f"wrote the headline table of {README}", file=sys.stderr)
    if args.out.resolve() == DEFAULT_OUT and report_ray.update_readme(results, README):
        print(f"wrote the cluster figures of {README}", file=sys.stderr)
    print("\n".join(report.targets_table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
