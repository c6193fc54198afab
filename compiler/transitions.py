"""Transitions between residencies: moving a fragment's qubits in, and the evictions (FR-004).

Running fragment ``i`` on node ``N`` teleports the fragment's qubits resident
elsewhere to ``N`` (:func:`move_in`); when ``N`` then holds more than its
capacity, exactly that excess of idle qubits is teleported out (the evictions:
every minimal choice, :func:`eviction_options`, or one chosen by Belady's rule,
:func:`heuristic_evictions`). See :mod:`qb2.compiler.problem` for the model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

from qb2.compiler.problem import NEVER, Problem


def move_in(
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
        if nxt == NEVER and problem.measure_count[q] == 1:
            ranked, key = problem.near_final[node], problem.final_cost[node]
        elif nxt == NEVER and problem.measure_count[q] > 1:
            c = problem.measure_count[q]
            key = [t + c * r for t, r in zip(problem.tele_cost[node], problem.readout_cost, strict=True)]
            ranked = sorted((m for m in range(problem.k) if m != node), key=lambda m: (key[m], m))
        else:
            ranked, key = problem.near[node], problem.tele_cost[node]
        best = next(m for m in ranked if load[m] + taken.get(m, 0) < caps[m])
        if nxt != NEVER:  # prefer, among equally cheap, the node holding most of the next fragment
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


def few_evictions(problem: Problem, i: int, node: int, load: Sequence[int],
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


def apply_evictions(
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
