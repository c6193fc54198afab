"""``python -m qb2.experiments run --suite smoke --seed 7 --out DIR``: the FR-013 experiment harness CLI.

``qb2 experiment run ...`` (client/cli.py) is the same command: it runs this
module as a child program with the same arguments, so both share this one
parser and code path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from qb2.coordinator.config import ConfigError, load_settings
from qb2.experiments.harness import run_experiment
from qb2.experiments.provenance import run_config
from qb2.experiments.records import HarnessConfig, RunRecord
from qb2.experiments.report import write_outputs
from qb2.experiments.scenarios import node_specs
from qb2.experiments.suites import ALL_SCENARIOS, SUITES, get_suite
from qb2.experiments.widths import suite_circuits, width_limits

#: Narrowest ``--max-qubits``: the suites' smallest circuits have 3 qubits.
MIN_QUBITS = 3

_DESCRIPTION = (
    "Run a benchmark suite distributed (a local cluster: coordinator + N node processes, over the HTTP API) "
    "and centralized (one in-process monolithic QPU), under fault scenarios; write results.csv, "
    "results.jsonl, report.md, PNG plots and run_config.json into --out (also when interrupted: then for the "
    "runs that finished). Exit status 0 when every run of the fault-free scenario none succeeded (every run "
    "when none is not selected), 1 otherwise or when nothing ran, 2 for invalid options, 130 after Ctrl-C."
)


def build_parser(prog: str = "python -m qb2.experiments") -> argparse.ArgumentParser:
    """The harness's argument parser (``prog`` names the command in usage and help)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite in distributed and centralized mode", description=_DESCRIPTION)
    add_run_arguments(run)
    run.set_defaults(handler=lambda args: execute(args, run))
    return parser


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``run`` (shared by ``python -m qb2.experiments run`` and ``qb2 experiment run``)."""
    suites = "; ".join(f"{name}: {len(s.circuits)} circuits"
                       + (f" + {','.join(s.widest)} at the width limit" if s.widest else "")
                       + f" x {s.repeats} repeats, scenarios {','.join(s.scenarios)}" for name, s in SUITES.items())
    run.add_argument("--suite", default="smoke", choices=sorted(SUITES), help=f"which suite ({suites})")
    run.add_argument("--seed", type=int, default=7,
                     help="base seed, 0 to 2**63-1-repeats; repeat r uses seed + r for the simulator (same seed: same "
                          "plans and counts)")
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
                     help="widest circuit to run, in qubits (>= 3); wider suite circuits are skipped and the suite's "
                          "'widest' benchmarks run at this width. Default: the smallest of what the cluster "
                          "still holds in every selected scenario, the coordinator's statevector limit and "
                          "the machine's memory (24 qubits for 6 nodes and scenario none; 17 with all "
                          "scenarios). Above compiler.density_matrix_max_qubits (8) circuits run as a "
                          "statevector: gate and link noise are then only estimated. The default depends on the "
                          "machine's memory: pin it to rerun identically on another machine")
    run.add_argument("--ideal", action="store_true", help="noiseless nodes and links (count-equality checks)")
    run.add_argument("--no-centralized", action="store_true", help="skip the centralized baseline")


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)
    raise AssertionError("unreachable")  # parser.error exits


def execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Validate parsed ``run`` options, run the suite and write the result files.

    Every option, the ``QB2_`` configuration and the suite's circuits are
    checked (circuits generated) before any cluster starts. The result files
    are written even when the experiment is interrupted (Ctrl-C, a cluster
    that fails): they then cover the runs that finished and ``report.md`` says
    the run was interrupted.

    Returns:
        1 when there are no records; else 0 when every run of scenario ``none``
        succeeded (both modes), or every run when ``none`` is not selected; else 1.
        130 after Ctrl-C (outputs written).

    Raises:
        SystemExit: (status 2, via ``parser.error``) for invalid option values, an invalid ``QB2_``
            configuration, or a suite circuit mqt-bench cannot build.
    """
    from qiskit.exceptions import QiskitError

    suite = get_suite(args.suite)
    if args.repeats is not None:
        if args.repeats < 1:
            _fail(parser, "--repeats must be >= 1")
        suite = replace(suite, repeats=args.repeats)
    max_seed = 2**63 - 1 - suite.repeats
    if not 0 <= args.seed <= max_seed:
        _fail(parser, f"--seed must be 0-{max_seed} (repeat r uses seed + r, which must fit in a signed 64-bit "
                      f"integer), got {args.seed}")
    raw = [s.strip() for s in args.scenarios.split(",")] if args.scenarios else list(suite.scenarios)
    scenarios = tuple(dict.fromkeys(raw))  # de-duplicated, order kept
    unknown = [s for s in scenarios if s not in ALL_SCENARIOS]
    if unknown:
        _fail(parser, f"unknown scenario(s) {unknown}; choose from {ALL_SCENARIOS}")
    if not 1 <= args.nodes <= 10:
        _fail(parser, "--nodes must be 1-10")
    if args.min_nodes < 1:
        _fail(parser, "--min-nodes must be >= 1")
    if args.out.exists() and not args.out.is_dir():
        _fail(parser, f"--out {args.out} exists and is not a directory")
    try:
        load_settings()
        if args.max_qubits is not None:
            limits = width_limits(node_specs(args.nodes, args.ideal), scenarios)
            ceiling = min(limits["statevector"], limits["cluster"])
            if not MIN_QUBITS <= args.max_qubits <= ceiling:
                _fail(parser, f"--max-qubits must be {MIN_QUBITS}-{ceiling} (cluster capacity {limits['cluster']}, "
                              f"statevector limit {limits['statevector']})")
        config = HarnessConfig(suite=suite, seed=args.seed, scenarios=scenarios, nodes=args.nodes,
                               ideal=args.ideal, min_nodes=args.min_nodes, centralized=not args.no_centralized,
                               max_qubits=args.max_qubits)
        doc = run_config(config)
    except ConfigError as exc:
        _fail(parser, f"invalid QB2_ configuration: {exc}")
    try:
        circuits = suite_circuits(config)
    except (ValueError, QiskitError) as exc:
        _fail(parser, f"cannot generate the circuits of suite {suite.name!r} up to {doc['max_qubits']} qubits: {exc}")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(parser, f"cannot create --out {args.out}: {exc}")

    started = time.perf_counter()
    records: list[RunRecord] = []
    events: dict[str, Any] = {}
    status: int | None = None
    try:
        run_experiment(config, args.out, circuits=circuits, records=records, events=events)
    except KeyboardInterrupt:
        doc["interrupted"] = "KeyboardInterrupt (Ctrl-C)"
        status = 130
    except BaseException as exc:
        doc["interrupted"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        doc["wall_s"] = round(time.perf_counter() - started, 1)
        doc["completed_runs"] = len(records)
        if "drop_node" in scenarios:
            killed = events.get("drop_node_killed")
            doc["fault_events"] = {"drop_node_killed": killed}
        write_outputs(records, args.out, doc)
        note = f" (INTERRUPTED: {doc['interrupted']})" if "interrupted" in doc else ""
        print(f"{len(records)} runs in {time.perf_counter() - started:.1f} s -> {args.out}/report.md{note}",
              file=sys.stderr)
    return status if status is not None else exit_status(records, scenarios)


def exit_status(records: list[RunRecord], scenarios: tuple[str, ...]) -> int:
    """0 when the judged runs all succeeded, else 1 (also 1 when there are no records).

    Judged: the runs of scenario ``none`` (distributed and centralized) when
    ``none`` is among ``scenarios``, else every record.
    """
    if not records:
        return 1
    judged = [r for r in records if r.scenario == "none"] if "none" in scenarios else records
    return 0 if judged and all(r.success for r in judged) else 1


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit status.

    Raises:
        SystemExit: ``--help`` (status 0) or invalid arguments (status 2), from argparse.
    """
    # ``qb2 experiment`` runs this module as its own program and says so in QB2_PROG, for the usage line
    prog = prog or os.environ.get("QB2_PROG", "python -m qb2.experiments")
    args = build_parser(prog).parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
