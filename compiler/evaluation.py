"""Replaying a decision sequence: every teleport, arrival and cost term of a plan (FR-004).

:func:`evaluate` is the single source of reported costs: the planner's
estimates and the search's totals both come from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qb2.compiler.cost import ZERO, Terms, add, weighted
from qb2.compiler.problem import INF, Decision, Problem
from qb2.compiler.readout import final_residency, readout_terms


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
