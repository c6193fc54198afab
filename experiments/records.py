"""What the experiment harness (FR-013) runs and what each run records.

- :class:`HarnessConfig`: the suite, seed, scenarios and cluster of one experiment.
- :class:`RunRecord`: one run of one circuit in one mode and scenario (a row of
  ``results.csv`` / a line of ``results.jsonl``, :func:`to_json_line`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from qb2.experiments.suites import Suite

__all__ = ["HarnessConfig", "RunRecord", "to_json_line"]


@dataclass
class RunRecord:
    """One run of one circuit in one mode and scenario; times in seconds, fidelities in [0, 1].

    ``representation`` is ``density_matrix`` or ``statevector`` (noise only
    estimated). ``plan_fingerprint`` (distributed only) identifies the job's
    stored plan independently of peer IDs (:func:`qb2.experiments.reproducibility.plan_fingerprint`);
    ``plan_nodes`` names the nodes that plan uses and ``ran_on`` the nodes
    that completed fragments (they differ after a fallback).

    Counted the same way in both modes: ``operations`` is
    ``qb2.compiler.ir.CircuitIR.num_operations`` of the harness's own parse of the
    circuit (gates plus measurements; barriers are not operations);
    ``fragments`` is the number of fragment records with status DONE in
    distributed mode (failed or timed-out attempts not counted) and 2 in
    centralized mode (one ``gates`` request, one ``readout`` request).
    ``fragment_overheads_s`` (distributed only) lists ``round_trip_s -
    simulation_s`` of each DONE fragment record, seconds;
    ``overhead_per_fragment_s`` is their mean.
    """

    mode: str
    scenario: str
    circuit: str
    qubits: int
    operations: int
    repeat: int
    seed: int
    success: bool
    representation: str | None = None
    compile_s: float | None = None
    latency_s: float | None = None
    overhead_per_fragment_s: float | None = None
    fragment_overheads_s: list[float] = field(default_factory=list)
    estimated_fidelity: float | None = None
    measured_fidelity: float | None = None
    ebits: int = 0
    fragments: int = 0
    retries: int = 0
    fallbacks: int = 0
    nodes_used: int = 0
    plan_fingerprint: str | None = None
    plan_nodes: list[str] = field(default_factory=list)
    ran_on: list[str] = field(default_factory=list)
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class HarnessConfig:
    """What to run.

    Attributes:
        suite: circuits, repeats and shots.
        seed: base seed; repeat ``r`` runs with ``seed + r``.
        scenarios: fault scenarios for distributed mode (subset of :data:`qb2.experiments.suites.ALL_SCENARIOS`).
        nodes: service nodes per cluster.
        ideal: every node (and the centralized QPU) uses the noiseless ``ideal``
            profile and link fidelity 1.0 (for count-equality checks).
        min_nodes: ask the planner to spread gate fragments over at least this
            many nodes (1: let the cost model decide; small circuits then stay on one node).
        centralized: also run the centralized baseline.
        max_qubits: widest circuit to run (qubits); None: :func:`qb2.experiments.widths.width_limits`'s default.
    """

    suite: Suite
    seed: int = 7
    scenarios: tuple[str, ...] = ("none",)
    nodes: int = 6
    ideal: bool = False
    min_nodes: int = 2
    centralized: bool = True
    max_qubits: int | None = None


def to_json_line(record: RunRecord) -> str:
    """One ``results.jsonl`` line."""
    return json.dumps(asdict(record), sort_keys=True)
