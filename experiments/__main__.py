"""``python -m experiments run --suite smoke --seed 7 --out DIR``: the FR-013 experiment harness CLI."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from experiments.harness import HarnessConfig, run_config, run_experiment
from experiments.report import write_outputs
from experiments.suites import ALL_SCENARIOS, SUITES, get_suite


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the suite, write the result files; returns the exit code (0 when every run succeeded
    in the fault-free scenario)."""
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite in distributed and centralized mode")
    run.add_argument("--suite", default="smoke", choices=sorted(SUITES))
    run.add_argument("--seed", type=int, default=7, help="base seed; repeat r uses seed + r")
    run.add_argument("--out", type=Path, required=True, help="output directory")
    run.add_argument("--nodes", type=int, default=6, help="service nodes per cluster (1-10)")
    run.add_argument("--repeats", type=int, default=None, help="override the suite's repeats")
    run.add_argument("--scenarios", default=None,
                     help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (default: the suite's)")
    run.add_argument("--min-nodes", type=int, default=2, help="spread each job over at least this many nodes")
    run.add_argument("--ideal", action="store_true", help="noiseless nodes and links (count-equality checks)")
    run.add_argument("--no-centralized", action="store_true", help="skip the centralized baseline")
    args = parser.parse_args(argv)

    suite = get_suite(args.suite)
    if args.repeats is not None:
        from dataclasses import replace

        suite = replace(suite, repeats=args.repeats)
    scenarios = tuple(s.strip() for s in args.scenarios.split(",")) if args.scenarios else suite.scenarios
    unknown = [s for s in scenarios if s not in ALL_SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {ALL_SCENARIOS}")
    if not 1 <= args.nodes <= 10:
        parser.error("--nodes must be 1-10")
    config = HarnessConfig(suite=suite, seed=args.seed, scenarios=scenarios, nodes=args.nodes, ideal=args.ideal,
                           min_nodes=args.min_nodes, centralized=not args.no_centralized)
    started = time.perf_counter()
    doc = run_config(config)
    records = run_experiment(config, args.out)
    write_outputs(records, args.out, doc)
    print(f"{len(records)} runs in {time.perf_counter() - started:.1f} s -> {args.out}/report.md", file=sys.stderr)
    return 0 if all(r.success for r in records if r.scenario == "none") else 1


if __name__ == "__main__":
    sys.exit(main())
