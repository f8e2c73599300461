"""``./govflow.sh bench``: measure the embedded stack against bare baselines.

A tool beside the runtime, not part of it: it starts the stack through ``govflow_cli`` and
times it; nothing in ``govflow/`` imports it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import pathlib
import sys

from benchmarks.params import FIGURES, FULL, QUICK
from benchmarks.run import run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(*, quick: bool, out: pathlib.Path, park: int = 0, park_real: int = 0,
         only: frozenset[str] = FIGURES) -> int:
    """Runs the bench with the options ``cli`` parsed: the quick or full sizes, the scale
    figure's sizes if given, the figures asked for; the exit status."""
    p = QUICK if quick else FULL
    if park:
        p = dataclasses.replace(p, scale_n=park)
    if park_real:
        p = dataclasses.replace(p, scale_real=park_real)
    try:
        asyncio.run(run(p, out, only))
    except KeyboardInterrupt:
        print("govflow bench: interrupted", file=sys.stderr)
        return 130
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="govflow bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds (for CI)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench-results",
                        help="folder for the results (default bench-results/)")
    parser.add_argument("--park", type=int, default=0,
                        help="applications parked for the scale figure (full default 10000)")
    parser.add_argument("--park-real", type=int, default=0,
                        help="how many of them go through the real workflow (full default "
                        "1000; the rest are copies in the read model)")
    parser.add_argument("--only", default="", metavar="FIGURES",
                        help="comma-separated figures to run (default all): "
                        + ",".join(sorted(FIGURES)))
    args = parser.parse_args(argv)
    only = frozenset(x.strip() for x in args.only.split(",") if x.strip()) or FIGURES
    if unknown := only - FIGURES:
        parser.error(f"--only: unknown figures {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(sorted(FIGURES))}")
    return main(quick=args.quick, out=args.out, park=args.park, park_real=args.park_real,
                only=only)


if __name__ == "__main__":
    raise SystemExit(cli())
