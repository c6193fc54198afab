"""The planner's knobs and measured inputs: :class:`PlannerOptions` (FR-004, NFR-003).

One frozen model per planning call: the weights, the measured link and queue
inputs, the representation limits, the fidelity floor, the tie-break seed and
the search budgets. Every stage of :mod:`qb2.compiler.stages` reads it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from qb2.compiler.cost import DEFAULT_LINK_RTT_S, CostWeights

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Probability = Annotated[float, Field(gt=0.0, le=1.0)]


class PlannerOptions(BaseModel):
    """Knobs and measured inputs of the planner; all have defaults.

    Attributes:
        max_fragment_qubits: fragment width cap (qubits, >= 1); the effective
            cap is also bounded by the largest available ``qubit_range.max``.
        max_fragment_ops: operations per fragment (>= 1).
        link_fidelity: default fidelity per ebit (teleported qubit), in (0, 1].
        link_fidelities: per-node link fidelity (node_id -> (0, 1]); a
            teleport between ``A`` and ``B`` has fidelity ``min(F(A), F(B))``.
        density_matrix_max_qubits: widest circuit simulated as a density matrix.
        statevector_max_qubits: widest circuit simulated as a statevector
            (at most 32, the execute protocol's limit).
        min_fidelity: the job's floor on the plan's estimated fidelity, in
            [0, 1], or ``None`` for no floor.
        weights: the cost weights (:class:`qb2.compiler.cost.CostWeights`).
        link_rtt_s: measured coordinator-to-node round trip per node, seconds.
        default_link_rtt_s: round trip of nodes missing from ``link_rtt_s``
            (default 3.1 ms, DESIGN.md's measured libp2p median).
        queue_wait_s: current queue/reservation wait per node, seconds (default 0).
        ebit_generation_s: time to distribute one ebit, seconds, added to
            each teleport's latency (default 0).
        degraded: node ids marked degraded (FR-008); never used.
        seed: tie-break seed: 0 orders equal-cost choices by ``node_id``,
            any other value by a seed-derived permutation of node ids.
        min_nodes: run gate fragments on at least this many distinct nodes
            when the circuit has that many fragments and capable nodes allow
            it (default 1: no constraint). For experiments that must exercise
            distribution (FR-013) even where one node would be cheapest.
        partition_candidates: fragmentations tried (width caps ``cap``,
            ``cap - 1``, ...); the cheapest plan over them wins.
        partition_search_max_ops: circuits with more operations try only
            the first fragmentation (the scaling budget of NFR-003).
        exact_state_limit: run the exact DP when ``(nodes + 1) ** qubits`` is
            at most this; else beam search.
        beam_width: largest beam of the beam search (>= 1).
        search_budget: beam search expansions budget (layers x beam x
            candidates); the beam shrinks to respect it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_fragment_qubits: int = Field(default=4, ge=1)
    max_fragment_ops: int = Field(default=12, ge=1)
    link_fidelity: float = Field(default=0.99, gt=0.0, le=1.0)
    link_fidelities: dict[str, Probability] = Field(default_factory=dict)
    density_matrix_max_qubits: int = Field(default=8, ge=0)
    statevector_max_qubits: int = Field(default=24, ge=1, le=32)
    min_fidelity: float | None = Field(default=None, ge=0.0, le=1.0)
    weights: CostWeights = CostWeights()
    link_rtt_s: dict[str, NonNegative] = Field(default_factory=dict)
    default_link_rtt_s: float = Field(default=DEFAULT_LINK_RTT_S, ge=0.0, allow_inf_nan=False)
    queue_wait_s: dict[str, NonNegative] = Field(default_factory=dict)
    ebit_generation_s: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    degraded: frozenset[str] = frozenset()
    seed: int = 0
    min_nodes: int = Field(default=1, ge=1)
    partition_candidates: int = Field(default=3, ge=1)
    partition_search_max_ops: int = Field(default=200, ge=0)
    exact_state_limit: int = Field(default=4096, ge=0)
    beam_width: int = Field(default=8, ge=1)
    search_budget: int = Field(default=60_000, ge=1)
