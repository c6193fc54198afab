"""Plan a circuit onto the available nodes: partition, place, cost (FR-004, NFR-001, NFR-003).

:func:`plan_circuit` is the compiler's entry point for the coordinator. It is
pure and deterministic: the same IR, nodes (in any order), options (weights,
link and queue inputs, seed) give a byte-identical :meth:`Plan.to_json` under
any ``PYTHONHASHSEED``.

Steps:

1. keep nodes with ``availability == "available"`` that are not in
   ``options.degraded``, ordered by ``node_id`` (or by a seed-derived
   permutation when ``options.seed != 0``: the tie-break order);
2. choose the representation from the circuit width;
3. capability checks with actionable errors: a gate no node can run (native
   or translated, :mod:`qb2.compiler.translation`), a gate wider than every node,
   a circuit wider than all nodes together;
4. partitioning: :func:`qb2.compiler.partition.split_fragments` with width caps
   ``cap, cap - 1, ...`` (``cap = min(max_fragment_qubits, largest
   qubit_range.max)``; up to ``partition_candidates`` distinct
   fragmentations, one when the circuit has more than
   ``partition_search_max_ops`` operations), never growing a fragment into
   one that no node could run; every fragmentation is placed and the
   cheapest plan wins (ties: the widest cap);
5. the cost model (:mod:`qb2.compiler.cost`) per fragment and node, from the
   translated gate counts (:mod:`qb2.compiler.translation`);
6. placement with qubit residency (:mod:`qb2.compiler.search`): exact DP
   (branch and bound) on small instances, beam search otherwise; the naive
   baselines (first-fit, round-robin) are evaluated too and the cheapest
   plan is kept, so the planner is never worse than them;
7. a per-job floor ``min_fidelity``: if the cheapest plan misses it, the
   search is repeated with the fidelity terms weighted up (a Lagrangian
   multiplier ladder ``1, 10, ..., 1e6``); the first plan meeting the floor is
   returned, else an error names the best achievable fidelity;
8. a final ``readout`` fragment when the circuit measures anything, run on
   the node holding most measured qubits; its estimate reads each measured
   qubit on the node where it resides;
9. routing (FR-016, :mod:`qb2.compiler.routing`): a fragment placed on a node
   that advertises a ``coupling_map`` needs the SWAPs that node inserts (the
   node runs the same routine); they are counted per (fragment, node) pair
   and enter the search as ``3 * swaps`` extra two-qubit gates on that node,
   so the search, the fidelity floor and the plan's estimates all see the
   routing cost, and each fragment records its ``routing_swaps``. Nodes
   without a coupling map cost nothing extra (no Qiskit call).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from qb2.compiler.capability import TRANSLATABLE_ENTANGLERS, gate_arity
from qb2.compiler.cost import (
    DEFAULT_LINK_RTT_S,
    CostBreakdown,
    CostWeights,
    Terms,
    fragment_terms,
    node_cost,
)
from qb2.compiler.dag import FragmentDAG, fragment_id
from qb2.compiler.errors import InfeasiblePlanError
from qb2.compiler.ir import CircuitIR
from qb2.compiler.partition import AcceptsFragment, split_fragments
from qb2.compiler.placement import NodeView, describe_native_sets, no_candidate, node_label
from qb2.compiler.plan import FragmentPlan, Plan, Teleport, summarize
from qb2.compiler.routing import SWAP_TWO_QUBIT_GATES, fragment_routing_swaps
from qb2.compiler.search import (
    INF,
    Decision,
    Evaluation,
    Problem,
    evaluate,
    first_fit,
    round_robin,
    search,
)
from qb2.compiler.translation import NativeCount, native_counts
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import Representation

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Probability = Annotated[float, Field(gt=0.0, le=1.0)]

#: Multipliers added to the fidelity weights when a plan misses ``min_fidelity``.
FIDELITY_LADDER = (1.0, 10.0, 100.0, 1e3, 1e4, 1e6)


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


# --------------------------------------------------------------------------- checks


def _available(
    nodes: Sequence[ServiceAdvertisement], degraded: frozenset[str]
) -> tuple[ServiceAdvertisement, ...]:
    """Available, non-degraded nodes sorted by ``node_id``; duplicate ids are a caller error."""
    seen = Counter(n.node_id for n in nodes)
    duplicates = sorted(i for i, count in seen.items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate node_id in node list: {', '.join(duplicates)}")
    available = sorted((n for n in nodes if n.availability == "available"), key=lambda n: n.node_id)
    if not available:
        detail = (
            f"none of the {len(nodes)} known nodes is available (busy or draining)"
            if nodes
            else "no service node is registered"
        )
        raise InfeasiblePlanError("no_nodes", f"{detail}; start or free a service node and retry")
    usable = [n for n in available if n.node_id not in degraded]
    if not usable:
        names = ", ".join(node_label(n) for n in available[:5])
        raise InfeasiblePlanError(
            "degraded",
            f"every available node is marked degraded ({names}"
            f"{' and more' if len(available) > 5 else ''}); wait for their quality reports to "
            "recover above the thresholds, lower the degradation thresholds, or start a "
            "healthy node",
        )
    return tuple(usable)


def choose_representation(num_qubits: int, options: PlannerOptions) -> Representation:
    """``density_matrix`` up to its limit, else ``statevector`` up to its limit.

    Raises:
        InfeasiblePlanError: (``representation``) wider than both limits.
    """
    if num_qubits <= options.density_matrix_max_qubits:
        return "density_matrix"
    if num_qubits <= options.statevector_max_qubits:
        return "statevector"
    raise InfeasiblePlanError(
        "representation",
        f"the circuit has {num_qubits} qubits but statevector simulation is limited to "
        f"{options.statevector_max_qubits} (statevector_max_qubits); reduce the circuit "
        "width or raise the limit",
    )


def _check_total_width(ir: CircuitIR, nodes: Sequence[ServiceAdvertisement]) -> None:
    """Every circuit qubit resides on some node: the nodes together must hold the circuit."""
    total = sum(n.qubit_range.max for n in nodes)
    if ir.num_qubits > total:
        raise InfeasiblePlanError(
            "width",
            f"the circuit has {ir.num_qubits} qubits but the {len(nodes)} available nodes hold "
            f"{total} together; add nodes with at least {ir.num_qubits - total} more qubits "
            "or reduce the circuit width",
        )


def _check_gates(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    supported: Sequence[frozenset[str]],
    cap: int,
    options: PlannerOptions,
) -> None:
    """Fail early, with the most specific message, on a gate no node can run or hold."""
    widest: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, op in enumerate(ir.operations):
        if len(op.qubits) > widest.get(op.name, 0):
            widest[op.name] = len(op.qubits)
            first[op.name] = index
    for gate in sorted(widest):
        if not any(gate in s for s in supported):
            arity = gate_arity(gate) or widest[gate]
            universal = "a universal set such as {rz, sx}" + (
                f" plus an entangling gate ({', '.join(sorted(TRANSLATABLE_ENTANGLERS))})"
                if arity >= 2
                else ""
            )
            raise InfeasiblePlanError(
                "gate_support",
                f"no available node supports gate '{gate}' (first used by operation "
                f"{first[gate]}); add a node whose native gates include '{gate}' or {universal}; "
                f"available native gate sets: {describe_native_sets(nodes)}",
            )
    for gate in sorted(widest, key=lambda g: (-widest[g], g)):
        width = widest[gate]
        if width <= cap:
            break
        largest = max(n.qubit_range.max for n in nodes)
        if width > largest:
            fix = (
                f"the largest available node accepts {largest} (qubit_range.max); "
                f"add a node with qubit_range.max >= {width}"
            )
        else:
            fix = f"max_fragment_qubits is {options.max_fragment_qubits}; raise it to >= {width}"
        raise InfeasiblePlanError(
            "width",
            f"gate '{gate}' (operation {first[gate]}) acts on {width} qubits but {fix}",
        )


def _accepts(views: Sequence[NodeView]) -> AcceptsFragment:
    """Memoised "some node runs these gates at this width" predicate for the partitioner."""
    cache: dict[tuple[frozenset[str], int], bool] = {}

    def accepts(gates: frozenset[str], width: int) -> bool:
        key = (gates, width)
        if key not in cache:
            cache[key] = any(v.accepts(gates, width) for v in views)
        return cache[key]

    return accepts


def _tie_order(nodes: Sequence[ServiceAdvertisement], seed: int) -> tuple[ServiceAdvertisement, ...]:
    """``nodes`` by ``node_id`` (seed 0) or by a BLAKE2b digest of ``seed/node_id`` (independent of hash seeds)."""
    if seed == 0:
        return tuple(sorted(nodes, key=lambda n: n.node_id))
    return tuple(
        sorted(
            nodes,
            key=lambda n: (hashlib.blake2b(f"{seed}/{n.node_id}".encode(), digest_size=8).digest(),
                           n.node_id),
        )
    )


# --------------------------------------------------------------------------- the model


class _Model:
    """Translation tables, node costs and per-fragment counts of one planning call."""

    def __init__(
        self,
        ir: CircuitIR,
        nodes: Sequence[ServiceAdvertisement],
        options: PlannerOptions,
    ) -> None:
        self.ir = ir
        self.adverts = tuple(nodes)
        self.options = options
        self.gates = tuple(sorted({op.name for op in ir.operations}))
        self.costs = tuple(
            node_cost(
                n,
                link_rtt_s=options.link_rtt_s,
                default_link_rtt_s=options.default_link_rtt_s,
                queue_wait_s=options.queue_wait_s,
                link_fidelities=options.link_fidelities,
                link_fidelity=options.link_fidelity,
            )
            for n in nodes
        )
        sets: dict[tuple[str, ...], int] = {}
        self.set_of: list[int] = []
        for n in nodes:
            self.set_of.append(sets.setdefault(n.native_gates, len(sets)))
        self.native_sets = sorted(sets, key=lambda s: sets[s])
        self.tables: list[dict[str, NativeCount | None]] = [
            native_counts(s, self.gates) for s in self.native_sets
        ]
        self.supported = tuple(
            frozenset(g for g, c in self.tables[self.set_of[j]].items() if c is not None)
            for j in range(len(nodes))
        )
        #: node index -> advertised coupling map, for nodes that have one (FR-016)
        self.coupled = {j: tuple(n.coupling_map) for j, n in enumerate(nodes) if n.coupling_map is not None}
        self._swaps: dict[tuple[tuple[int, ...], int], int] = {}

    def routing_swaps(self, operation_indices: tuple[int, ...], j: int) -> int:
        """SWAPs node ``j`` inserts to route the fragment of ``operation_indices`` (0 without a coupling map)."""
        coupling = self.coupled.get(j)
        if coupling is None:
            return 0
        key = (operation_indices, j)
        if key not in self._swaps:
            self._swaps[key] = fragment_routing_swaps((self.ir.operations[i] for i in operation_indices), coupling)
        return self._swaps[key]

    def views(self) -> tuple[NodeView, ...]:
        return tuple(NodeView(a, s) for a, s in zip(self.adverts, self.supported, strict=True))

    def problem(self, dag: FragmentDAG, weights: CostWeights) -> Problem:
        """The :class:`qb2.compiler.search.Problem` of ``dag`` under ``weights`` (vectorised over nodes)."""
        ir, m, g = self.ir, len(dag.fragments), len(self.gates)
        index = {name: i for i, name in enumerate(self.gates)}
        counts = np.zeros((m, max(g, 1)))
        rows, cols = [], []
        for f in dag.fragments:
            for i in f.operation_indices:
                rows.append(f.index)
                cols.append(index[ir.operations[i].name])
        np.add.at(counts, (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)), 1.0)
        s = len(self.native_sets)
        one = np.zeros((max(g, 1), s))
        two = np.zeros((max(g, 1), s))
        bad = np.zeros((max(g, 1), s))
        for si, table in enumerate(self.tables):
            for gate, c in table.items():
                if c is None:
                    bad[index[gate], si] = 1.0
                else:
                    one[index[gate], si] = c.one_qubit
                    two[index[gate], si] = c.two_qubit
        n1 = (counts @ one)[:, self.set_of]  # m x k, exact small integers
        n2 = (counts @ two)[:, self.set_of]
        unsupported = (counts @ bad)[:, self.set_of] > 0
        cost = self.costs
        widths = np.array([len(f.qubits) for f in dag.fragments], dtype=np.int64)[:, None]
        lo = np.array([c.min_width for c in cost])[None, :]
        hi = np.array([c.capacity for c in cost])[None, :]
        feasible = (~unsupported) & (widths >= lo) & (widths <= hi)
        for j in self.coupled:  # routing SWAPs as extra 2-qubit gates (step 9)
            for f in dag.fragments:
                if feasible[f.index, j]:
                    n2[f.index, j] += SWAP_TWO_QUBIT_GATES * self.routing_swaps(f.operation_indices, j)
        t1 = np.array([c.t1_s for c in cost])
        t2 = np.array([c.t2_s for c in cost])
        r1 = np.array([c.r1 for c in cost])
        r2 = np.array([c.r2 for c in cost])
        invoke = np.array([c.invoke_s for c in cost])
        price = np.array([c.price for c in cost])
        lat = n1 * t1 + n2 * t2 + invoke
        risk = n1 * r1 + n2 * r2
        total = weights.latency * lat + weights.fidelity_risk * risk + weights.entanglement * 0.0
        total = total + weights.price * price
        total = np.where(feasible, total, INF)
        order = np.argsort(total, axis=1, kind="stable")
        counts_ok = feasible.sum(axis=1)
        frag_order = tuple(
            tuple(order[i, : counts_ok[i]].tolist()) for i in range(m)
        )
        costs_ = self.costs

        def terms(i: int, j: int) -> Terms:
            """Terms of fragment ``i`` on node ``j`` (the search's evaluation uses them)."""
            return fragment_terms(costs_[j], int(n1[i, j]), int(n2[i, j]))

        return Problem.build(
            num_qubits=ir.num_qubits,
            nodes=cost,
            weights=weights,
            frag_qubits=[f.qubits for f in dag.fragments],
            frag_cost=total.tolist(),
            frag_order=frag_order,
            frag_terms=terms,
            measured=[mm.qubit for mm in ir.measurements],
            ops=[len(f.operation_indices) for f in dag.fragments],
            ebit_generation_s=self.options.ebit_generation_s,
        )

    def translated(self, dag_fragment_ops: Sequence[int], j: int) -> dict[str, int]:
        """Native gate counts of operations ``dag_fragment_ops`` on node ``j``."""
        table = self.tables[self.set_of[j]]
        out: Counter[str] = Counter()
        for name, times in sorted(Counter(self.ir.operations[i].name for i in dag_fragment_ops).items()):
            count = table[name]
            assert count is not None  # the node was capable
            for native, n in count.ops:
                out[native] += n * times
        return dict(sorted(out.items()))


# --------------------------------------------------------------------------- planning


def _fidelity_nats(evaluation: Evaluation) -> float:
    """``-ln`` of the estimated fidelity: fidelity risk plus entanglement."""
    return evaluation.terms[1] + evaluation.terms[2]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One solved fragmentation: its DAG, instance, decisions, evaluation under the job's weights."""

    dag: FragmentDAG
    problem: Problem
    decisions: tuple[Decision, ...]
    algorithm: str
    evaluation: Evaluation
    spread: int


def _spread(decisions: Sequence[Decision], goal: int) -> int:
    return min(goal, len({node for node, _ in decisions}))


def _solve(model: _Model, dag: FragmentDAG, weights: CostWeights, reference: Problem | None = None
           ) -> Candidate:
    """Search plus the naive baselines under ``weights``; the cheapest plan.

    ``reference``: the instance (job weights) the result is evaluated in;
    defaults to the one built with ``weights``.
    """
    problem = model.problem(dag, weights)
    opts = model.options
    found = search(
        problem,
        exact_state_limit=opts.exact_state_limit,
        beam_width=opts.beam_width,
        budget=opts.search_budget,
        min_nodes=opts.min_nodes,
        lookahead=2,
    )
    goal = min(opts.min_nodes, len(dag.fragments))
    best, name = found.decisions, found.algorithm
    best_key = (-_spread(best, goal), evaluate(problem, best).total)
    for label, baseline in (("first-fit", first_fit), ("round-robin", round_robin)):
        decisions = baseline(problem)
        key = (-_spread(decisions, goal), evaluate(problem, decisions).total)
        if key < best_key:
            best, best_key, name = decisions, key, label
    target = reference or problem
    return Candidate(dag, target, best, name, evaluate(target, best), _spread(best, goal))


def _shift(weights: CostWeights, extra: float) -> CostWeights:
    return CostWeights(
        latency=weights.latency,
        fidelity_risk=weights.fidelity_risk + extra,
        entanglement=weights.entanglement + extra,
        price=weights.price,
    )


def _min_fidelity_error(floor: float, evaluation: Evaluation, model: _Model) -> InfeasiblePlanError:
    best = math.exp(-_fidelity_nats(evaluation))
    ebits = sum(len(s.teleports) for s in evaluation.steps)
    gate_nats = sum(s.terms[1] for s in evaluation.steps)
    readout_nats = evaluation.readout_terms[1]
    link_nats = evaluation.terms[2]
    return InfeasiblePlanError(
        "min_fidelity",
        f"no plan meets min_fidelity {floor:.6g}: the most faithful plan found on the "
        f"{len(model.costs)} usable nodes has estimated fidelity {best:.6g} (losses: gates "
        f"{gate_nats:.4g} nats, readout {readout_nats:.4g} nats, {ebits} ebits "
        f"{link_nats:.4g} nats); lower min_fidelity to at most {best:.6g}, or add nodes with "
        "higher gate/readout fidelities, wider qubit_range (fewer teleports) or better links",
    )


def fragmentations(ir: CircuitIR, model: _Model, cap: int) -> list[FragmentDAG]:
    """The candidate fragmentations: width caps ``cap, cap - 1, ...`` (distinct results).

    At most ``options.partition_candidates`` caps, never below the widest
    gate or 1, and only the first when the circuit has more than
    ``options.partition_search_max_ops`` operations (the scaling budget).
    """
    opts = model.options
    widest = max((len(op.qubits) for op in ir.operations), default=1)
    count = opts.partition_candidates if len(ir.operations) <= opts.partition_search_max_ops else 1
    accepts = _accepts(model.views())
    dags: list[FragmentDAG] = []
    for width in range(cap, max(widest, 1) - 1, -1):
        if len(dags) >= count:
            break
        dag = split_fragments(ir, width, opts.max_fragment_ops, accepts=accepts)
        if all(d.fragments != dag.fragments for d in dags):
            dags.append(dag)
    return dags


def plan_circuit(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    options: PlannerOptions = PlannerOptions(),  # noqa: B008 - frozen, never mutated
) -> Plan:
    """Compile ``ir`` into a feasible, cost-minimal, deterministic :class:`Plan` over ``nodes``.

    Args:
        ir: the circuit (see :func:`qb2.compiler.ingest.parse_qasm`).
        nodes: the registry's current advertisements, in any order; only
            ``available`` nodes not in ``options.degraded`` are used.
            ``node_id`` must be unique.
        options: weights, measured link/queue inputs, limits, seed.

    Returns:
        The plan: gate fragments ``f0..fN`` in topological order, then a
        ``readout`` fragment if the circuit measures anything; per fragment
        its node, teleports, evictions, translated size and cost terms; the
        totals (ebits, estimated fidelity, cost).

    Raises:
        InfeasiblePlanError: ``no_nodes`` (nothing available), ``degraded``
            (every available node degraded), ``representation`` (too wide to
            simulate), ``gate_support`` (a gate, or a fragment's gates, no node
            runs), ``width`` (a gate or fragment wider/narrower than every
            node accepts, or the circuit wider than all nodes together) or
            ``min_fidelity`` (no plan found reaches the floor); each message
            says what would make the circuit feasible.
        ValueError: duplicate ``node_id`` in ``nodes``.
    """
    representation, model, cap, by_id = _prepare(ir, nodes, options)
    views = model.views()
    sorted_views = [views[j] for j in by_id]
    dags = fragmentations(ir, model, cap)
    for fragment in dags[0].fragments:  # every candidate splits at least as finely: check once
        gates = frozenset(ir.operations[i].name for i in fragment.operation_indices)
        if not any(v.accepts(gates, fragment.width) for v in views):
            raise no_candidate(fragment.fragment_id, gates, fragment.width, sorted_views)
    dags = [d for d in dags if _placeable(ir, d, views)]

    def rank(c: Candidate) -> tuple[int, float]:
        return (-c.spread, c.evaluation.total)

    solved = [_solve(model, dag, options.weights) for dag in dags]
    chosen = min(solved, key=rank)  # first minimum: the widest cap wins ties
    floor = options.min_fidelity
    if floor is not None and math.exp(-_fidelity_nats(chosen.evaluation)) < floor:
        chosen = _meet_floor(model, solved, floor)
    return _assemble(ir, chosen, model, representation, options)


def planning_instances(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    options: PlannerOptions = PlannerOptions(),  # noqa: B008 - frozen, never mutated
) -> list[tuple[FragmentDAG, Problem]]:
    """The placement instances :func:`plan_circuit` solves: one per candidate fragmentation.

    For benchmarks and tests (baselines, brute force on the same instances).
    Runs the same checks as :func:`plan_circuit` and raises the same errors.
    """
    _, model, cap, _ = _prepare(ir, nodes, options)
    views = model.views()
    dags = [d for d in fragmentations(ir, model, cap) if _placeable(ir, d, views)]
    if not dags:
        plan_circuit(ir, nodes, options)  # raises the diagnosis
    return [(d, model.problem(d, options.weights)) for d in dags]


def _prepare(
    ir: CircuitIR, nodes: Sequence[ServiceAdvertisement], options: PlannerOptions
) -> tuple[Representation, _Model, int, list[int]]:
    """Checks and model shared by :func:`plan_circuit` and :func:`planning_instances`.

    Returns:
        The representation, the placement model, the fragment width cap (qubits)
        and the usable node indices ordered by ``node_id``.

    Raises:
        InfeasiblePlanError: as :func:`plan_circuit`.
    """
    usable = _tie_order(_available(nodes, options.degraded), options.seed)
    representation = choose_representation(ir.num_qubits, options)
    _check_total_width(ir, usable)
    model = _Model(ir, usable, options)
    cap = min(options.max_fragment_qubits, max(n.qubit_range.max for n in usable))
    by_id = sorted(range(len(usable)), key=lambda j: usable[j].node_id)
    _check_gates(ir, [usable[j] for j in by_id], [model.supported[j] for j in by_id], cap, options)
    return representation, model, cap, by_id


def _placeable(ir: CircuitIR, dag: FragmentDAG, views: Sequence[NodeView]) -> bool:
    return all(
        any(v.accepts(frozenset(ir.operations[i].name for i in f.operation_indices), f.width)
            for v in views)
        for f in dag.fragments
    )


def _meet_floor(model: _Model, solved: Sequence[Candidate], floor: float) -> Candidate:
    """The cheapest plan (job weights) whose estimated fidelity reaches ``floor``.

    Lagrangian ladder: re-solve each fragmentation with ``FIDELITY_LADDER``
    added to the fidelity weights; the first multiplier that reaches the floor
    gives that fragmentation's candidate; the cheapest over fragmentations
    wins. The fidelity-only solve (weights 0, 1, 1, 0) decides infeasibility.

    Raises:
        InfeasiblePlanError: (``min_fidelity``) no plan found reaches the floor.
    """
    floor_nats = -math.log(floor) if floor > 0 else INF
    fid_only = CostWeights(latency=0.0, fidelity_risk=1.0, entanglement=1.0, price=0.0)
    found: list[Candidate] = []
    most_faithful: Candidate | None = None
    for base in solved:
        reference = base.problem
        faithful = _solve(model, base.dag, fid_only, reference)
        if most_faithful is None or _fidelity_nats(faithful.evaluation) < _fidelity_nats(
            most_faithful.evaluation
        ):
            most_faithful = faithful
        if _fidelity_nats(faithful.evaluation) > floor_nats:
            continue
        for extra in FIDELITY_LADDER:
            trial = _solve(model, base.dag, _shift(model.options.weights, extra), reference)
            if _fidelity_nats(trial.evaluation) <= floor_nats:
                found.append(Candidate(trial.dag, trial.problem, trial.decisions,
                                       f"{trial.algorithm}+fidelity({extra:g})", trial.evaluation,
                                       trial.spread))
                break
        else:
            found.append(Candidate(faithful.dag, faithful.problem, faithful.decisions,
                                   "max-fidelity", faithful.evaluation, faithful.spread))
    if not found:
        assert most_faithful is not None
        raise _min_fidelity_error(floor, most_faithful.evaluation, model)
    return min(found, key=lambda c: (-c.spread, c.evaluation.total))


def _assemble(
    ir: CircuitIR,
    chosen: Candidate,
    model: _Model,
    representation: Representation,
    options: PlannerOptions,
) -> Plan:
    """Turn an evaluated decision sequence into the :class:`Plan` (fragments, readout, totals)."""
    dag, problem, evaluation = chosen.dag, chosen.problem, chosen.evaluation
    ids = [c.node_id for c in model.costs]
    link = [[problem.tele_terms[a][b][2] for b in range(problem.k)] for a in range(problem.k)]
    weights = options.weights
    fragments: list[FragmentPlan] = []
    for fragment, step in zip(dag.fragments, evaluation.steps, strict=True):
        teleports = tuple(
            Teleport(qubit=q, source=ids[a], target=ids[b], fidelity=math.exp(-link[a][b]))
            for q, a, b in step.teleports
        )
        inside = set(fragment.qubits)
        translated = model.translated(fragment.operation_indices, step.node)
        fragments.append(
            FragmentPlan(
                fragment_id=fragment.fragment_id,
                kind="gates",
                node_id=ids[step.node],
                qubits=fragment.qubits,
                operation_indices=fragment.operation_indices,
                depends_on=tuple(fragment_id(d) for d in fragment.depends_on),
                teleported_qubits=tuple(q for q, _ in step.arrived),
                arrival_fidelity=tuple(f for _, f in step.arrived),
                teleports=teleports,
                evicted_qubits=tuple((t.qubit, t.target) for t in teleports if t.qubit not in inside),
                estimated_fidelity=math.exp(-(step.terms[1] + step.terms[2])),
                cost=CostBreakdown.of(step.terms, weights),
                translated_ops=translated,
                translated_size=sum(translated.values()),
                routing_swaps=model.routing_swaps(fragment.operation_indices, step.node),
            )
        )
    if ir.measurements:
        measured = sorted({m.qubit for m in ir.measurements})
        depends = sorted({dag.last_fragment[q] for q in measured if dag.last_fragment[q] is not None})
        assert evaluation.readout_node is not None
        fragments.append(
            FragmentPlan(
                fragment_id=fragment_id(len(dag.fragments)),
                kind="readout",
                node_id=ids[evaluation.readout_node],
                qubits=tuple(measured),
                operation_indices=(),
                depends_on=tuple(fragment_id(d) for d in depends),  # type: ignore[arg-type]
                teleported_qubits=tuple(q for q, _ in evaluation.readout_arrived),
                arrival_fidelity=tuple(f for _, f in evaluation.readout_arrived),
                estimated_fidelity=math.exp(-evaluation.readout_terms[1]),
                cost=CostBreakdown.of(evaluation.readout_terms, weights),
                translated_ops={"measure": len(ir.measurements)},
                translated_size=len(ir.measurements),
            )
        )
    cost, estimated = summarize(fragments, weights)
    return Plan(
        circuit_name=ir.name,
        num_qubits=ir.num_qubits,
        num_clbits=ir.num_clbits,
        num_operations=ir.num_operations,
        representation=representation,
        link_fidelity=options.link_fidelity,
        fragments=tuple(fragments),
        total_ebits=sum(f.ebits for f in fragments),
        estimated_fidelity=estimated,
        weights=weights,
        cost=cost,
        algorithm=chosen.algorithm,
        seed=options.seed,
        final_residency=tuple(ids[r] for r in evaluation.final),
        routing_swaps=sum(f.routing_swaps for f in fragments),
    )
