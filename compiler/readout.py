"""The terminal readout: where untouched qubits land, and the cost of reading every measurement (FR-004).

After the last fragment, untouched qubits take free places
(:func:`final_residency`) and every measurement is read where its qubit
resides (:func:`readout_terms`).
"""

from __future__ import annotations

from collections.abc import Sequence

from qb2.compiler.cost import ZERO, Terms, weighted
from qb2.compiler.problem import Problem


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


def terminal_cost(problem: Problem, res: tuple[int, ...], load: tuple[int, ...]) -> float:
    terms, _ = readout_terms(problem, final_residency(problem, res, load))
    return weighted(terms, problem.weights)
