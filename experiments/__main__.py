"""``python -m experiments run --suite smoke --seed 7 --out DIR``: the FR-013 experiment harness CLI.

``qb2 experiment run ...`` (coordinator/cli.py) is the same command: it hands
its arguments to :func:`main`, so both share this one parser and code path.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from experiments.harness import (
    HarnessConfig,
    node_specs,
    run_config,
    run_experiment,
    width_limits,
)
from experiments.report import write_outputs
from experiments.suites import ALL_SCENARIOS, SUITES, get_suite

_DESCRIPTION = (
    "Run a benchmark suite distributed (a local cluster: coordinator + N node processes, over the HTTP API) "
    "and centralized (one in-process monolithic QPU), under fault scenarios; write results.csv, "
    "results.jsonl, report.md, PNG plots and run_config.json into --out. Exit status 0 when every run of the "
    "fault-free scenario succeeded, 1 otherwise, 2 for invalid options."
)


def build_parser(prog: str = "python -m experiments") -> argparse.ArgumentParser:
    """The harness's argument parser (``prog`` names the command in usage and help)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite in distributed and centralized mode", description=_DESCRIPTION)
    add_run_arguments(run)
    run.set_defaults(handler=lambda args: execute(args, run))
    return parser


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``run`` (shared by ``python -m experiments run`` and ``qb2 experiment run``)."""
    suites = "; ".join(f"{name}: {len(s.circuits)} circuits"
                       + (f" + {','.join(s.widest)} at the width limit" if s.widest else "")
                       + f" x {s.repeats} repeats, scenarios {','.join(s.scenarios)}" for name, s in SUITES.items())
    run.add_argument("--suite", default="smoke", choices=sorted(SUITES), help=f"which suite ({suites})")
    run.add_argument("--seed", type=int, default=7,
                     help="base seed; repeat r uses seed + r for the simulator (same seed: same plans and counts)")
    run.add_argument("--out", type=Path, required=True, help="output directory (created; cluster data under "
                     "OUT/clusters/ is replaced)")
    run.add_argument("--nodes", type=int, default=6, help="service nodes per cluster, 1-10 (profiles cycle "
                     "ibm-like, ion-like, cz-native, single-qubit)")
    run.add_argument("--repeats", type=int, default=None, help="override the suite's repeats per circuit")
    run.add_argument("--scenarios", default=None,
                     help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (default: the suite's)")
    run.add_argument("--min-nodes", type=int, default=2,
                     help="spread each job's gate fragments over at least this many nodes (1: planner's choice)")
    run.add_argument("--max-qubits", type=int, default=None,
                     help="widest circuit to run, in qubits; wider suite circuits are skipped and the suite's "
                          "'widest' benchmarks run at this width. Default: the smallest of what the cluster "
                          "still holds in every selected scenario, the coordinator's statevector limit and "
                          "the machine's memory (24 qubits for 6 nodes and scenario none; 17 with all "
                          "scenarios). Above compiler.density_matrix_max_qubits (8) circuits run as a "
                          "statevector: gate and link noise are then only estimated")
    run.add_argument("--ideal", action="store_true", help="noiseless nodes and links (count-equality checks)")
    run.add_argument("--no-centralized", action="store_true", help="skip the centralized baseline")


def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Validate parsed ``run`` options, run the suite and write the result files.

    Returns:
        0 when every run of scenario ``none`` succeeded, else 1.

    Raises:
        SystemExit: (status 2, via ``parser.error``) for invalid option values.
    """
    suite = get_suite(args.suite)
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be >= 1")
        suite = replace(suite, repeats=args.repeats)
    scenarios = tuple(s.strip() for s in args.scenarios.split(",")) if args.scenarios else suite.scenarios
    unknown = [s for s in scenarios if s not in ALL_SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {ALL_SCENARIOS}")
    if not 1 <= args.nodes <= 10:
        parser.error("--nodes must be 1-10")
    if args.min_nodes < 1:
        parser.error("--min-nodes must be >= 1")
    if args.max_qubits is not None:
        limits = width_limits(node_specs(args.nodes, args.ideal), scenarios)
        ceiling = min(limits["statevector"], limits["cluster"])
        if not 1 <= args.max_qubits <= ceiling:
            parser.error(f"--max-qubits must be 1-{ceiling} (cluster capacity {limits['cluster']}, "
                         f"statevector limit {limits['statevector']})")
    config = HarnessConfig(suite=suite, seed=args.seed, scenarios=scenarios, nodes=args.nodes, ideal=args.ideal,
                           min_nodes=args.min_nodes, centralized=not args.no_centralized,
                           max_qubits=args.max_qubits)
    started = time.perf_counter()
    doc = run_config(config)
    records = run_experiment(config, args.out)
    doc["wall_s"] = round(time.perf_counter() - started, 1)
    write_outputs(records, args.out, doc)
    print(f"{len(records)} runs in {time.perf_counter() - started:.1f} s -> {args.out}/report.md", file=sys.stderr)
    return 0 if all(r.success for r in records if r.scenario == "none") else 1


def main(argv: list[str] | None = None, prog: str = "python -m experiments") -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit status.

    Raises:
        SystemExit: ``--help`` (status 0) or invalid arguments (status 2), from argparse.
    """
    args = build_parser(prog).parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
