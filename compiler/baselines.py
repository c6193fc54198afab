"""Reference placements the search is measured against: naive baselines and the brute-force optimum (FR-004).

The planner evaluates :func:`first_fit` and :func:`round_robin` next to the
search and keeps the cheapest plan, so it never loses to them;
:func:`brute_force` is for tests and benchmarks only.
"""

from __future__ import annotations

from collections.abc import Callable

from qb2.compiler.evaluation import evaluate
from qb2.compiler.problem import INF, Decision, Problem
from qb2.compiler.transitions import apply_evictions, eviction_options, heuristic_evictions, move_in


def greedy(problem: Problem, choose: Callable[[int], int]) -> tuple[Decision, ...]:
    """Place fragments in order with ``choose(i) -> node index``; evictions by Belady's rule.

    Evictions come from :func:`qb2.compiler.transitions.heuristic_evictions`.

    ``choose`` must return a capable node of fragment ``i`` (one of
    ``problem.frag_order[i]``). Returns one :data:`Decision` per fragment.
    """
    n, k = problem.num_qubits, problem.k
    res = [-1] * n
    load = [0] * k
    decisions: list[Decision] = []
    for i in range(len(problem.frag_qubits)):
        node = choose(i)
        new_res, new_load, _, excess = move_in(problem, i, node, tuple(res), tuple(load))
        evictions: tuple[tuple[int, int], ...] = ()
        if excess > 0:
            evictions = heuristic_evictions(problem, i, node, new_res, new_load, excess)
            apply_evictions(problem, node, new_res, new_load, evictions)
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
    choice (:func:`qb2.compiler.transitions.eviction_options`) and evaluates
    each complete plan with :func:`qb2.compiler.evaluation.evaluate`; no
    pruning, no state merging.

    Args:
        problem: the instance.
        limit: most complete plans to evaluate.
        min_nodes: as in :func:`qb2.compiler.search.search`: the cheapest plan
            among those using the most distinct nodes up to ``min(min_nodes, fragments)``.

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
            new_res, new_load, _, excess = move_in(problem, i, node, res, load)
            options = (
                [()] if excess <= 0
                else list(eviction_options(problem, i, node, new_res, new_load, excess))
            )
            for evictions in options:
                r2, l2 = list(new_res), list(new_load)
                apply_evictions(problem, node, r2, l2, evictions)
                prefix.append((node, evictions))
                rec(i + 1, tuple(r2), tuple(l2), prefix)
                prefix.pop()

    rec(0, (-1,) * problem.num_qubits, (0,) * problem.k, [])
    return best[0], best[1][1]  # type: ignore[return-value,index]
