"""Placement search with qubit residency: beam search, then exact branch and bound (FR-004).

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
  against :func:`qb2.compiler.baselines.brute_force` on random instances.

An optional ``min_nodes`` spreads the gate fragments over at least that many
distinct nodes (the state then also carries the set of nodes used so far).

The instance is a :class:`qb2.compiler.problem.Problem`; the transitions are in
:mod:`qb2.compiler.transitions`, the terminal readout in
:mod:`qb2.compiler.readout`.

Determinism (NFR-001): nodes are indices in a fixed order (node_id, or a
seed-derived permutation), states are tuples, ties go to the lexicographically
smaller ``(cost, residency)``; no set or dict order reaches a decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qb2.compiler.problem import INF, Decision, Problem
from qb2.compiler.readout import terminal_cost
from qb2.compiler.transitions import (
    apply_evictions,
    eviction_options,
    few_evictions,
    heuristic_evictions,
    move_in,
)


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
            most about this many, else takes
            :func:`qb2.compiler.transitions.heuristic_evictions`.
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
                new_res, new_load, tele, excess = move_in(problem, i, node, res, load)
                base = entry.cost + costs[node] + tele
                if base + rest > slack:
                    continue
                options: Iterable[tuple[tuple[int, int], ...]]
                if excess <= 0:
                    options = ((),)
                elif exact or few_evictions(problem, i, node, new_load, excess, few):
                    options = eviction_options(problem, i, node, new_res, new_load, excess)
                else:
                    options = (heuristic_evictions(problem, i, node, new_res, new_load, excess),)
                for evictions in options:
                    if evictions:
                        r2, l2 = list(new_res), list(new_load)
                        cost = base + apply_evictions(problem, node, r2, l2, evictions)
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
            (e.cost + terminal_cost(problem, e.res, e.load), e.res, e.used, e)
            for e in layer
            if e.spread(goal) == reach
        ),
        key=lambda t: (t[0], t[1], t[2]),
    )
    return total, res, used, reach, last
