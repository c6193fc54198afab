"""Placement with qubit residency: exact DP, beam search, baselines, brute force (FR-004).

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

The search
----------
The cost of steps ``i..m-1`` depends only on the residency before step ``i``
(which qubit is where): the problem is a shortest path over layered states
``(i, residency)``, and dynamic programming over the topologically ordered
fragments with one entry per distinct residency is exact (Bellman's
principle). :func:`search` runs

* a beam search first: the same DP keeping the ``B`` best residencies per
  layer (ranked by cost so far plus a look-ahead guess of the teleports the
  next multi-qubit fragments need), each expanded to the nodes already
  holding some of the fragment's qubits plus the ``top`` cheapest capable
  nodes, with every eviction choice when there are few, else one (furthest
  next use first, Belady's rule, to the cheapest node with room, preferring
  the one holding most of the evicted qubit's next fragment). ``B`` shrinks
  to keep ``layers * B * candidates`` under a work budget (the 5,000-operation
  target); cost ``O(m * B * (top + width) * (n + k))``.
* then, when the state-space bound ``(k + 1) ** n`` is at most
  ``exact_state_limit``, the exhaustive DP (every capable node, every minimal
  eviction choice: every subset of idle qubits of the right size, every
  destination with room) as branch and bound: the beam's plan is an upper
  bound, and a state whose cost plus a lower bound of the remaining
  fragments (each at its cheapest node, no teleports; the cheapest readout)
  exceeds it is cut. Cutting never removes an optimal path, so the result is
  the optimum over the decision space above (``exact``); the tests check it
  against :func:`brute_force` on random instances.

An optional ``min_nodes`` spreads the gate fragments over at least that many
distinct nodes (the state then also carries the set of nodes used so far).

Determinism (NFR-001): nodes are indices in a fixed order (node_id, or a
seed-derived permutation), states are tuples, ties go to the lexicographically
smaller ``(cost, residency)``; no set or dict order reaches a decision.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from qb2.compiler.cost import ZERO, CostWeights, NodeCost, Terms, add, teleport_terms, weighted

INF = math.inf
_NEVER = 1 << 60

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
        return uses[pos] if pos < len(uses) else _NEVER


# --------------------------------------------------------------------------- transitions


def _move_in(
    problem: Problem, i: int, node: int, res: tuple[int, ...], load: tuple[int, ...]
) -> tuple[list[int], list[int], float, int]:
    """Residency and load after moving fragment ``i``'s qubits to ``node``; teleport cost; excess."""
    new_res = list(res)
    new_load = list(load)
    cost = 0.0
    tele = problem.tele_cost
    for q in problem.frag_qubits[i]:
        r = res[q]
        if r == node:
            continue
        if r >= 0:
            cost += tele[r][node]
            new_load[r] -= 1
        new_res[q] = node
        new_load[node] += 1
    return new_res, new_load, cost, new_load[node] - problem.nodes[node].capacity


def eviction_options(
    problem: Problem, i: int, node: int, res: Sequence[int], load: Sequence[int], excess: int
) -> Iterator[tuple[tuple[int, int], ...]]:
    """Every minimal eviction choice (exhaustive): ``excess`` idle qubits of ``node``, each to a node with room.

    Yields tuples of ``(qubit, destination)`` in a fixed order (subsets in
    lexicographic order, destinations in index order).
    """
    inside = set(problem.frag_qubits[i])
    idle = [q for q in range(problem.num_qubits) if res[q] == node and q not in inside]
    room = [
        m for m in range(problem.k) if m != node and load[m] < problem.nodes[m].capacity
    ]
    for victims in itertools.combinations(idle, excess):
        for targets in itertools.product(room, repeat=excess):
            extra: dict[int, int] = {}
            ok = True
            for m in targets:
                extra[m] = extra.get(m, 0) + 1
                if load[m] + extra[m] > problem.nodes[m].capacity:
                    ok = False
                    break
            if ok:
                yield tuple(zip(victims, targets, strict=True))


def heuristic_evictions(
    problem: Problem, i: int, node: int, res: Sequence[int], load: Sequence[int], excess: int
) -> tuple[tuple[int, int], ...]:
    """One eviction choice: furthest next use first (Belady), each to the best node with room.

    The destination of a victim minimises ``(teleport cost + readout cost if
    the victim is only measured from now on, -affinity, index)`` where
    affinity counts the qubits of the victim's next fragment resident there
    (so that fragment may run there without moving it back). Cost:
    ``O(n log n)`` plus, per victim, a walk of the destinations presorted by
    cost that stops at the first with room.
    """
    inside = problem.frag_qubits[i]
    idle = [q for q in range(problem.num_qubits) if res[q] == node and q not in inside]
    idle.sort(key=lambda q: (-problem.next_use(q, i), q))
    caps = problem.capacity
    taken: dict[int, int] = {}
    out: list[tuple[int, int]] = []
    for q in idle[:excess]:
        nxt = problem.next_use(q, i)
        if nxt == _NEVER and problem.measure_count[q] == 1:
            ranked, key = problem.near_final[node], problem.final_cost[node]
        elif nxt == _NEVER and problem.measure_count[q] > 1:
            c = problem.measure_count[q]
            key = [t + c * r for t, r in zip(problem.tele_cost[node], problem.readout_cost, strict=True)]
            ranked = sorted((m for m in range(problem.k) if m != node), key=lambda m: (key[m], m))
        else:
            ranked, key = problem.near[node], problem.tele_cost[node]
        best = next(m for m in ranked if load[m] + taken.get(m, 0) < caps[m])
        if nxt != _NEVER:  # prefer, among equally cheap, the node holding most of the next fragment
            affinity: dict[int, int] = {}
            for p in problem.frag_qubits[nxt]:
                r = res[p]
                if p != q and r >= 0 and r != node:
                    affinity[r] = affinity.get(r, 0) + 1
            for m in sorted(affinity, key=lambda m: (-affinity[m], m)):
                if key[m] == key[best] and load[m] + taken.get(m, 0) < caps[m]:
                    if (-affinity[m], m) < (-affinity.get(best, 0), best):
                        best = m
                    break
        taken[best] = taken.get(best, 0) + 1
        out.append((q, best))
    return tuple(out)


def _few_evictions(problem: Problem, i: int, node: int, load: Sequence[int],
                   excess: int, limit: int) -> bool:
    """Whether :func:`eviction_options` yields at most about ``limit`` choices (``load`` after move-in)."""
    idle = load[node] - len(problem.frag_qubits[i])
    subsets = math.comb(max(idle, 0), excess)
    if subsets > limit:
        return False
    room = 0
    caps = problem.capacity
    for m in range(problem.k):
        if m != node and load[m] < caps[m]:
            room += 1
            if subsets * room**excess > limit:
                return False
    return True


def _apply_evictions(
    problem: Problem, node: int, new_res: list[int], new_load: list[int],
    evictions: Sequence[tuple[int, int]],
) -> float:
    tele = problem.tele_cost[node]
    cost = 0.0
    for q, m in evictions:
        new_res[q] = m
        new_load[node] -= 1
        new_load[m] += 1
        cost += tele[m]
    return cost


# --------------------------------------------------------------------------- terminal readout


def final_residency(problem: Problem, res: Sequence[int], load: Sequence[int]) -> tuple[int, ...]:
    """Place untouched qubits (free first placement): measured ones on the cheapest readout with room."""
    res = list(res)
    spare = [problem.nodes[m].capacity - load[m] for m in range(problem.k)]
    readout_key = problem.readout_cost
    for q in range(problem.num_qubits):
        if res[q] >= 0 or not problem.measure_count[q]:
            continue
        m = min((m for m in range(problem.k) if spare[m] > 0), key=lambda m: (readout_key[m], m))
        res[q] = m
        spare[m] -= 1
    for q in range(problem.num_qubits):
        if res[q] < 0:
            m = min(m for m in range(problem.k) if spare[m] > 0)
            res[q] = m
            spare[m] -= 1
    return tuple(res)


def readout_terms(problem: Problem, final: Sequence[int]) -> tuple[Terms, int | None]:
    """Terms of reading every measurement where its qubit resides, and the readout node.

    Latency: ``readout_s`` per measurement plus ``invoke_s`` per node holding a
    measured qubit; risk: ``r_readout`` per measurement; price: once per such
    node. The readout node (where the single readout fragment executes) is the
    node holding the most measured qubits, ties to the lower index; ``None``
    when nothing is measured.
    """
    if not problem.measured:
        return ZERO, None
    lat = risk = 0.0
    held: dict[int, int] = {}
    for q in problem.measured:
        node = problem.nodes[final[q]]
        lat += node.readout_s
        risk += node.r_readout
    for q in sorted(set(problem.measured)):
        held[final[q]] = held.get(final[q], 0) + 1
    price = 0.0
    for m in sorted(held):
        lat += problem.nodes[m].invoke_s
        price += problem.nodes[m].price
    reader = min(held, key=lambda m: (-held[m], m))
    return (lat, risk, 0.0, price), reader


def _terminal_cost(problem: Problem, res: tuple[int, ...], load: tuple[int, ...]) -> float:
    terms, _ = readout_terms(problem, final_residency(problem, res, load))
    return weighted(terms, problem.weights)


# --------------------------------------------------------------------------- search


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The decisions of the best plan found and how it was found.

    Attributes:
        decisions: one :data:`Decision` per fragment.
        algorithm: ``exact`` or ``beam(B)``.
        cost: the search's own weighted total (equal to the evaluation's up to rounding).
    """

    decisions: tuple[Decision, ...]
    algorithm: str
    cost: float


#: ``used`` marker of a state that already ran fragments on ``min_nodes`` distinct nodes.
_FULL: tuple[int, ...] = (-1,)


class _Entry:
    __slots__ = ("cost", "res", "load", "used", "parent", "decision")

    def __init__(self, cost: float, res: tuple[int, ...], load: tuple[int, ...],
                 used: tuple[int, ...], parent: _Entry | None, decision: Decision | None) -> None:
        self.cost = cost
        self.res = res
        self.load = load
        self.used = used
        self.parent = parent
        self.decision = decision

    def spread(self, goal: int) -> int:
        """Distinct nodes used so far, capped at ``goal``."""
        return goal if self.used == _FULL else len(self.used)


def search(
    problem: Problem,
    *,
    exact_state_limit: int = 4096,
    beam_width: int = 8,
    top: int = 3,
    budget: int = 60_000,
    few: int = 12,
    min_nodes: int = 1,
    lookahead: int = 0,
) -> SearchResult:
    """Minimise the weighted cost over fragment decisions (see the module docstring).

    Args:
        problem: the instance; every fragment must have a capable node.
        exact_state_limit: run exhaustively when ``(k + 1) ** n`` is at most this.
        beam_width: largest beam ``B`` otherwise (>= 1).
        top: cheapest capable nodes tried per state in beam mode, besides the
            nodes already holding the fragment's qubits.
        budget: beam mode keeps ``m * B * (top + width)`` under this many
            expansions by shrinking ``B`` (never below 1).
        few: beam mode enumerates every eviction choice when there are at
            most about this many, else takes :func:`heuristic_evictions`.
        min_nodes: prefer plans whose gate fragments run on at least this many
            distinct nodes (capped at the number of fragments). The state then
            also records the nodes used so far (until there are
            ``min_nodes``), the beam keeps ``B`` states per count, and the
            result is the cheapest state with the largest count reached —
            exactly ``min_nodes`` whenever a plan reaching it exists and the
            search is exact.

    Returns:
        The best :class:`SearchResult`. In exact mode the beam runs first and
        its plan's cost bounds a branch-and-bound exhaustive pass (a state
        whose cost plus a lower bound of the remaining fragments exceeds it is
        cut), which keeps the exact pass fast without changing its optimum.

    Raises:
        ValueError: a fragment has no capable node.
    """
    m, n, k = len(problem.frag_qubits), problem.num_qubits, problem.k
    for i, order in enumerate(problem.frag_order):
        if not order:
            raise ValueError(f"fragment {i} has no capable node")
    exact = (k + 1) ** n <= exact_state_limit if n < 64 else False
    goal = min(min_nodes, m)
    avg_width = sum(len(q) for q in problem.frag_qubits) / max(m, 1)
    per_state = min(k, top + avg_width)
    width = max(1, min(beam_width, int(budget / max(1.0, m * per_state))))
    best = _dp(problem, width, top, few, goal, INF, lookahead)
    if exact:
        ub = best[0] if best[3] == goal else INF
        found = _dp(problem, None, top, few, goal, ub)
        if (-found[3], found[0]) <= (-best[3], best[0]):
            best = found
    total, _, _, _, entry = best
    decisions: list[Decision] = []
    while entry is not None and entry.decision is not None:
        decisions.append(entry.decision)
        entry = entry.parent
    decisions.reverse()
    return SearchResult(tuple(decisions), "exact" if exact else f"beam({width})", total)


def _lower_bounds(problem: Problem) -> list[float]:
    """``lb[i]``: a lower bound of the cost of fragments ``i..m-1`` plus the readout."""
    m = len(problem.frag_qubits)
    lb = [0.0] * (m + 1)
    lb[m] = min(problem.readout_cost) * len(problem.measured) if problem.measured else 0.0
    for i in range(m - 1, -1, -1):
        lb[i] = lb[i + 1] + problem.frag_cost[i][problem.frag_order[i][0]]
    return lb


def _outlook(res: tuple[int, ...], upcoming: Sequence[tuple[int, ...]], unit: float) -> float:
    """Beam ranking heuristic: teleports the ``upcoming`` fragments need from residency ``res``.

    For each upcoming multi-qubit fragment, its placed qubits not on the node
    holding most of them, times ``unit`` (the cheapest teleport); a guess (not
    a bound), used only to rank states when the beam is cut.
    """
    total = 0
    for qubits in upcoming:
        count: dict[int, int] = {}
        for q in qubits:
            r = res[q]
            if r >= 0:
                count[r] = count.get(r, 0) + 1
        if len(count) > 1:
            total += sum(count.values()) - max(count.values())
    return total * unit


def _dp(
    problem: Problem, width: int | None, top: int, few: int, goal: int, ub: float,
    lookahead: int = 0,
) -> tuple[float, tuple[int, ...], tuple[int, ...], int, _Entry | None]:
    """One layered DP pass: exhaustive when ``width`` is None, else a beam of ``width``.

    ``ub``: cut states whose cost plus the remaining lower bound exceeds it.
    Returns ``(total with readout, residency, used, spread reached, last
    entry)``; ``(inf, ...)`` when the bound cut everything.
    """
    m, n, k = len(problem.frag_qubits), problem.num_qubits, problem.k
    exact = width is None
    lb = _lower_bounds(problem) if ub < INF else None
    slack = ub + 1e-9 * max(1.0, abs(ub)) if ub < INF else INF
    layer = [_Entry(0.0, (-1,) * n, (0,) * k, () if goal > 1 else _FULL, None, None)]
    for i in range(m):
        qubits = problem.frag_qubits[i]
        costs = problem.frag_cost[i]
        order = problem.frag_order[i]
        best: dict[tuple[tuple[int, ...], tuple[int, ...]], _Entry] = {}
        rest = lb[i + 1] if lb is not None else 0.0
        for entry in layer:
            res, load, used = entry.res, entry.load, entry.used
            if exact:
                candidates: Sequence[int] = order
            else:
                held = {res[q] for q in qubits if res[q] >= 0}
                candidates = sorted({j for j in held if costs[j] < INF} | set(order[:top]))
            for node in candidates:
                if used == _FULL or node in used:
                    now_used = used
                else:
                    now_used = tuple(sorted((*used, node)))
                    if len(now_used) >= goal:
                        now_used = _FULL
                new_res, new_load, tele, excess = _move_in(problem, i, node, res, load)
                base = entry.cost + costs[node] + tele
                if base + rest > slack:
                    continue
                options: Iterable[tuple[tuple[int, int], ...]]
                if excess <= 0:
                    options = ((),)
                elif exact or _few_evictions(problem, i, node, new_load, excess, few):
                    options = eviction_options(problem, i, node, new_res, new_load, excess)
                else:
                    options = (heuristic_evictions(problem, i, node, new_res, new_load, excess),)
                for evictions in options:
                    if evictions:
                        r2, l2 = list(new_res), list(new_load)
                        cost = base + _apply_evictions(problem, node, r2, l2, evictions)
                        if cost + rest > slack:
                            continue
                        key, load_t = tuple(r2), tuple(l2)
                    else:
                        cost, key, load_t = base, tuple(new_res), tuple(new_load)
                    old = best.get((key, now_used))
                    if old is None or cost < old.cost:
                        best[(key, now_used)] = _Entry(
                            cost, key, load_t, now_used, entry, (node, evictions)
                        )
        if not best:
            return INF, (), (), -1, None
        if width is not None and lookahead and len(best) > width:
            upcoming = [
                q for q in problem.frag_qubits[i + 1 : i + 1 + lookahead] if len(q) > 1
            ]
            unit = problem.min_tele
            entries = sorted(
                best.values(),
                key=lambda e: (e.cost + _outlook(e.res, upcoming, unit), e.res, e.used),
            )
        else:
            entries = sorted(best.values(), key=lambda e: (e.cost, e.res, e.used))
        if width is None:
            layer = entries
        elif goal <= 1:
            layer = entries[:width]
        else:  # B per spread count, so that spread states survive the cheaper ones
            kept = [0] * (goal + 1)
            layer = []
            for e in entries:
                c = e.spread(goal)
                if kept[c] < width:
                    kept[c] += 1
                    layer.append(e)
    reach = max(e.spread(goal) for e in layer)
    total, res, used, last = min(
        (
            (e.cost + _terminal_cost(problem, e.res, e.load), e.res, e.used, e)
            for e in layer
            if e.spread(goal) == reach
        ),
        key=lambda t: (t[0], t[1], t[2]),
    )
    return total, res, used, reach, last


# --------------------------------------------------------------------------- baselines


def greedy(problem: Problem, choose: Callable[[int], int]) -> tuple[Decision, ...]:
    """Place fragments in order with ``choose(i) -> node index``; evictions by :func:`heuristic_evictions`.

    ``choose`` must return a capable node of fragment ``i`` (one of
    ``problem.frag_order[i]``). Returns one :data:`Decision` per fragment.
    """
    n, k = problem.num_qubits, problem.k
    res = [-1] * n
    load = [0] * k
    decisions: list[Decision] = []
    for i in range(len(problem.frag_qubits)):
        node = choose(i)
        new_res, new_load, _, excess = _move_in(problem, i, node, tuple(res), tuple(load))
        evictions: tuple[tuple[int, int], ...] = ()
        if excess > 0:
            evictions = heuristic_evictions(problem, i, node, new_res, new_load, excess)
            _apply_evictions(problem, node, new_res, new_load, evictions)
        res, load = new_res, new_load
        decisions.append((node, evictions))
    return tuple(decisions)


def first_fit(problem: Problem) -> tuple[Decision, ...]:
    """Naive baseline: each fragment on the first capable node (index order), heuristic evictions."""
    return greedy(problem, lambda i: min(problem.frag_order[i]))


def round_robin(problem: Problem) -> tuple[Decision, ...]:
    """Naive baseline: each fragment on the capable node with the fewest operations so far (ties by index).

    This is qb2's placement rule before the cost model (least-loaded), with
    heuristic evictions added so that it respects capacities.
    """
    load = [0] * problem.k

    def choose(i: int) -> int:
        node = min(sorted(problem.frag_order[i]), key=lambda j: (load[j], j))
        load[node] += problem.ops[i]
        return node

    return greedy(problem, choose)


def brute_force(
    problem: Problem, limit: int = 2_000_000, min_nodes: int = 1
) -> tuple[tuple[Decision, ...], float]:
    """The optimum by exhaustive enumeration of every decision sequence (tests and benchmarks only).

    Enumerates every capable node per fragment and every minimal eviction
    choice (:func:`eviction_options`) and evaluates each complete plan with
    :func:`evaluate`; no pruning, no state merging.

    Args:
        problem: the instance.
        limit: most complete plans to evaluate.
        min_nodes: as in :func:`search`: the cheapest plan among those using
            the most distinct nodes up to ``min(min_nodes, fragments)``.

    Returns:
        ``(decisions, weighted total)`` of the first minimum in enumeration order.

    Raises:
        ValueError: more than ``limit`` complete plans would be evaluated.
    """
    m = len(problem.frag_qubits)
    goal = min(min_nodes, m)
    best: list[object] = [None, (1, INF)]
    count = [0]

    def rec(i: int, res: tuple[int, ...], load: tuple[int, ...], prefix: list[Decision]) -> None:
        if i == m:
            count[0] += 1
            if count[0] > limit:
                raise ValueError(f"brute force exceeds {limit} plans")
            key = (-min(goal, len({d[0] for d in prefix})), evaluate(problem, prefix).total)
            if key < best[1]:  # type: ignore[operator]
                best[0], best[1] = tuple(prefix), key
            return
        for node in sorted(problem.frag_order[i]):
            new_res, new_load, _, excess = _move_in(problem, i, node, res, load)
            options = (
                [()] if excess <= 0
                else list(eviction_options(problem, i, node, new_res, new_load, excess))
            )
            for evictions in options:
                r2, l2 = list(new_res), list(new_load)
                _apply_evictions(problem, node, r2, l2, evictions)
                prefix.append((node, evictions))
                rec(i + 1, tuple(r2), tuple(l2), prefix)
                prefix.pop()

    rec(0, (-1,) * problem.num_qubits, (0,) * problem.k, [])
    return best[0], best[1][1]  # type: ignore[return-value,index]


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happens at one fragment: teleports, arrivals and terms.

    Attributes:
        node: node index.
        teleports: ``(qubit, source, target)`` right before the fragment:
            incoming qubits (ascending) then evictions (decision order).
        arrived: fragment qubits that moved since they last ran (ascending),
            each with the product of the link fidelities of its hops.
        terms: the fragment's terms, teleports included.
    """

    node: int
    teleports: tuple[tuple[int, int, int], ...]
    arrived: tuple[tuple[int, float], ...]
    terms: Terms


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A complete plan's outcome: per fragment steps, the readout, totals.

    Attributes:
        steps: one per fragment.
        readout_node: node index of the readout fragment (``None`` without measurements).
        readout_terms: its terms.
        readout_arrived: measured qubits moved since they last ran, with hop fidelity.
        final: residency of every qubit at readout.
        terms: sum of all terms (fragments in order, then readout).
        total: weighted ``terms``.
    """

    steps: tuple[StepOutcome, ...]
    readout_node: int | None
    readout_terms: Terms
    readout_arrived: tuple[tuple[int, float], ...]
    final: tuple[int, ...]
    terms: Terms
    total: float


def evaluate(problem: Problem, decisions: Sequence[Decision]) -> Evaluation:
    """Replay ``decisions`` and compute every term; the single source of reported costs.

    Raises:
        ValueError: a decision is infeasible (node cannot run the fragment,
            capacity exceeded, eviction of a non-idle or non-resident qubit,
            or more/fewer evictions than the excess).
    """
    n, k = problem.num_qubits, problem.k
    if len(decisions) != len(problem.frag_qubits):
        raise ValueError("one decision per fragment is required")
    res = [-1] * n
    load = [0] * k
    hops = [0.0] * n  # link nats accumulated since the qubit last ran
    moved = [False] * n
    steps: list[StepOutcome] = []
    total_terms = ZERO
    for i, (node, evictions) in enumerate(decisions):
        if not problem.frag_cost[i][node] < INF:
            raise ValueError(f"node {node} cannot run fragment {i}")
        terms = problem.frag_terms(i, node)
        qubits = problem.frag_qubits[i]
        teleports: list[tuple[int, int, int]] = []
        for q in qubits:
            r = res[q]
            if r == node:
                continue
            if r >= 0:
                teleports.append((q, r, node))
                terms = add(terms, problem.tele_terms[r][node])
                load[r] -= 1
                hops[q] += problem.tele_terms[r][node][2]
                moved[q] = True
            res[q] = node
            load[node] += 1
        excess = load[node] - problem.nodes[node].capacity
        if len(evictions) != max(excess, 0):
            raise ValueError(f"fragment {i}: {len(evictions)} evictions for an excess of {excess}")
        for q, dest in evictions:
            if res[q] != node or q in qubits or dest == node:
                raise ValueError(f"fragment {i}: cannot evict qubit {q} to {dest}")
            res[q] = dest
            load[node] -= 1
            load[dest] += 1
            if load[dest] > problem.nodes[dest].capacity:
                raise ValueError(f"fragment {i}: node {dest} over capacity")
            teleports.append((q, node, dest))
            terms = add(terms, problem.tele_terms[node][dest])
            hops[q] += problem.tele_terms[node][dest][2]
            moved[q] = True
        arrived = tuple((q, math.exp(-hops[q])) for q in qubits if moved[q])
        for q in qubits:
            hops[q], moved[q] = 0.0, False
        steps.append(StepOutcome(node, tuple(teleports), arrived, terms))
        total_terms = add(total_terms, terms)
    final = final_residency(problem, res, load)
    rterms, reader = readout_terms(problem, final)
    total_terms = add(total_terms, rterms)
    arrived = tuple((q, math.exp(-hops[q])) for q in sorted(set(problem.measured)) if moved[q])
    return Evaluation(
        steps=tuple(steps),
        readout_node=reader,
        readout_terms=rterms,
        readout_arrived=arrived,
        final=final,
        terms=total_terms,
        total=weighted(total_terms, problem.weights),
    )
