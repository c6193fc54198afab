"""The placement instance with qubit residency: :class:`Problem` and its node-pair tables (FR-004).

The model (state hand-off, DESIGN.md "Execution semantics")
-----------------------------------------------------------
Fragments run in their topological (creation) order ``0..m-1``. At every
point each circuit qubit *resides* on exactly one node; a qubit no gate has
touched yet resides nowhere, and its first touch places it for free. A node
never holds more resident qubits than its capacity (``qubit_range.max``).

A decision for fragment ``i`` is a node ``N`` that can run it (supports its
gates after translation, ``qubit_range.min <= width``) plus, when needed, a
list of evictions. Running fragment ``i`` on ``N``:

1. every qubit of the fragment resident elsewhere is teleported to ``N``
   (one ebit each, :func:`qb2.compiler.cost.teleport_terms`);
2. if ``N`` now holds more than its capacity, exactly that excess of *idle*
   qubits (resident on ``N``, not in the fragment) is teleported out, each to
   a node with room (one ebit each) — the evictions;
3. the fragment runs (:func:`qb2.compiler.cost.fragment_terms`).

After the last fragment, untouched qubits take free places, and every
measurement is read where its qubit resides (terminal readout cost).

Moves are lazy (a qubit moves only when a fragment needs it, or to make room,
never speculatively, and evictions are minimal). Because the teleport cost
obeys the triangle inequality (``-ln min(F_A, F_B)`` and ``(rtt_A + rtt_B)/2``
both do), relaying a qubit through a third node never beats a direct move.

A :class:`Problem` holds one instance of that model: the fragments' qubits,
the cost of every fragment on every capable node, the teleport and readout
tables between nodes, and per qubit the fragments that use it. The search
(:mod:`qb2.compiler.search`), the baselines (:mod:`qb2.compiler.baselines`) and
the evaluation (:mod:`qb2.compiler.evaluation`) all work on it; the planner
builds it (:mod:`qb2.compiler.placement_model`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from qb2.compiler.cost import CostWeights, NodeCost, Terms, teleport_terms, weighted

INF = math.inf
NEVER = 1 << 60

#: One fragment's decision: ``(node index, ((evicted qubit, destination node index), ...))``.
Decision = tuple[int, tuple[tuple[int, int], ...]]


@dataclass(frozen=True, slots=True)
class LinkTables:
    """Node-pair tables of an instance (see :class:`Problem` for each field)."""

    tele_terms: tuple[tuple[Terms, ...], ...]
    tele_cost: tuple[tuple[float, ...], ...]
    readout_cost: tuple[float, ...]
    min_tele: float
    near: tuple[tuple[int, ...], ...]
    final_cost: tuple[tuple[float, ...], ...]
    near_final: tuple[tuple[int, ...], ...]


@lru_cache(maxsize=64)
def link_tables(nodes: tuple[NodeCost, ...], weights: CostWeights, ebit_generation_s: float) -> LinkTables:
    """Teleport and readout tables of ``nodes`` under ``weights``: ``O(k^2 log k)``, memoised.

    Memoised on the (immutable, hashable) arguments, so the candidate
    fragmentations of one plan, and successive plans over an unchanged
    registry, share them.
    """
    k = len(nodes)
    tele_terms = tuple(tuple(teleport_terms(a, b, ebit_generation_s) for b in nodes) for a in nodes)
    tele_cost = tuple(tuple(weighted(t, weights) for t in row) for row in tele_terms)
    readout_cost = tuple(weighted((n.readout_s, n.r_readout, 0.0, 0.0), weights) for n in nodes)
    final_cost = tuple(
        tuple(tele_cost[a][b] + readout_cost[b] for b in range(k)) for a in range(k)
    )

    def ranked(row: Sequence[float], a: int) -> tuple[int, ...]:
        return tuple(sorted((b for b in range(k) if b != a), key=lambda b: (row[b], b)))

    return LinkTables(
        tele_terms=tele_terms,
        tele_cost=tele_cost,
        readout_cost=readout_cost,
        min_tele=min((tele_cost[a][b] for a in range(k) for b in range(k) if a != b), default=0.0),
        near=tuple(ranked(tele_cost[a], a) for a in range(k)),
        final_cost=final_cost,
        near_final=tuple(ranked(final_cost[a], a) for a in range(k)),
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """A placement instance; node indices follow ``nodes`` (the tie-break order).

    Attributes:
        num_qubits: circuit width ``n``.
        nodes: per-node cost constants (``k`` nodes).
        weights: the cost weights.
        frag_qubits: per fragment, its qubits (ascending); ``m`` fragments.
        frag_cost: ``m x k``: weighted cost of fragment ``i`` on node ``j``
            (gates and invocation, no teleports), ``inf`` where node ``j``
            cannot run it.
        frag_order: per fragment, capable node indices sorted by ``(cost, index)``.
        frag_terms: ``frag_terms(i, j)``: the terms behind ``frag_cost[i][j]``.
        tele_terms / tele_cost: ``[a][b]`` terms and weighted cost of one teleport ``a -> b``.
        measured: the measured qubit of each measurement, in program order.
        ops: per fragment, operation count (for the round-robin baseline).
        uses: per qubit, the ascending indices of the fragments acting on it.
        measure_count: per qubit, how many measurements read it.
        readout_cost: per node, weighted cost of one measurement there
            (readout risk and time).
        capacity: per node, ``qubit_range.max``.
        min_tele: the cheapest teleport cost between two distinct nodes.
        near: per node ``a``, the other nodes sorted by ``(tele_cost[a][b], b)``.
        final_cost / near_final: per node ``a``, ``tele_cost[a][b] +
            readout_cost[b]`` and the other nodes sorted by it (where to evict a
            qubit that is only measured from now on).
    """

    num_qubits: int
    nodes: tuple[NodeCost, ...]
    weights: CostWeights
    frag_qubits: tuple[tuple[int, ...], ...]
    frag_cost: tuple[list[float], ...]
    frag_order: tuple[tuple[int, ...], ...]
    frag_terms: Callable[[int, int], Terms]
    tele_terms: tuple[tuple[Terms, ...], ...]
    tele_cost: tuple[tuple[float, ...], ...]
    measured: tuple[int, ...]
    ops: tuple[int, ...]
    uses: tuple[tuple[int, ...], ...]
    measure_count: tuple[int, ...]
    readout_cost: tuple[float, ...]
    capacity: tuple[int, ...]
    min_tele: float
    near: tuple[tuple[int, ...], ...]
    final_cost: tuple[tuple[float, ...], ...]
    near_final: tuple[tuple[int, ...], ...]

    @classmethod
    def build(
        cls,
        num_qubits: int,
        nodes: Sequence[NodeCost],
        weights: CostWeights,
        frag_qubits: Sequence[tuple[int, ...]],
        frag_cost: Sequence[Sequence[float]],
        frag_order: Sequence[Sequence[int]],
        frag_terms: Callable[[int, int], Terms],
        measured: Sequence[int],
        ops: Sequence[int],
        ebit_generation_s: float,
    ) -> Problem:
        """Assemble an instance: derive the teleport tables (cached per nodes/weights) and per-qubit uses."""
        links = link_tables(tuple(nodes), weights, ebit_generation_s)
        uses: list[list[int]] = [[] for _ in range(num_qubits)]
        for i, qubits in enumerate(frag_qubits):
            for q in qubits:
                uses[q].append(i)
        return cls(
            num_qubits=num_qubits,
            nodes=tuple(nodes),
            weights=weights,
            frag_qubits=tuple(tuple(q) for q in frag_qubits),
            frag_cost=tuple(list(row) for row in frag_cost),
            frag_order=tuple(tuple(o) for o in frag_order),
            frag_terms=frag_terms,
            tele_terms=links.tele_terms,
            tele_cost=links.tele_cost,
            measured=tuple(measured),
            ops=tuple(ops),
            uses=tuple(tuple(u) for u in uses),
            measure_count=tuple(Counter(measured).get(q, 0) for q in range(num_qubits)),
            readout_cost=links.readout_cost,
            capacity=tuple(n.capacity for n in nodes),
            min_tele=links.min_tele,
            near=links.near,
            final_cost=links.final_cost,
            near_final=links.near_final,
        )

    @classmethod
    def from_terms(
        cls,
        num_qubits: int,
        nodes: Sequence[NodeCost],
        weights: CostWeights,
        frag_qubits: Sequence[tuple[int, ...]],
        terms: Sequence[Sequence[Terms | None]],
        measured: Sequence[int] = (),
        ebit_generation_s: float = 0.0,
    ) -> Problem:
        """An instance from an explicit ``m x k`` table of fragment terms (``None``: incapable)."""
        table = tuple(tuple(row) for row in terms)
        cost = [[INF if t is None else weighted(t, weights) for t in row] for row in table]
        order = [
            sorted((j for j, c in enumerate(row) if c < INF), key=lambda j, r=row: (r[j], j))
            for row in cost
        ]

        def frag_terms(i: int, j: int) -> Terms:
            t = table[i][j]
            if t is None:
                raise ValueError(f"node {j} cannot run fragment {i}")
            return t

        return cls.build(num_qubits, nodes, weights, frag_qubits, cost, order, frag_terms,
                         measured, [1] * len(table), ebit_generation_s)

    @property
    def k(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    def next_use(self, q: int, i: int) -> int:
        """Index of the first fragment after ``i`` that acts on ``q`` (a huge number if none)."""
        uses = self.uses[q]
        pos = bisect_right(uses, i)
        return uses[pos] if pos < len(uses) else NEVER
