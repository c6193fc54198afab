"""Solving one fragmentation: search plus naive baselines, the cheapest plan as a :class:`Candidate` (FR-004).

:func:`solve` runs :func:`qb2.compiler.search.search` and the baselines
(:mod:`qb2.compiler.baselines`) on one instance and keeps the cheapest plan,
so the planner never loses to the baselines; candidates rank by the node
spread reached (``min_nodes``), then by weighted cost (:func:`rank`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qb2.compiler.baselines import first_fit, round_robin
from qb2.compiler.dag import FragmentDAG
from qb2.compiler.evaluation import Evaluation, evaluate
from qb2.compiler.options import PlannerOptions
from qb2.compiler.problem import Decision, Problem
from qb2.compiler.search import search


def fidelity_nats(evaluation: Evaluation) -> float:
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


def spread(decisions: Sequence[Decision], goal: int) -> int:
    """Distinct nodes the decisions run gate fragments on, capped at ``goal``."""
    return min(goal, len({node for node, _ in decisions}))


def rank(candidate: Candidate) -> tuple[int, float]:
    """Sort key of candidates: the widest node spread first, then the lowest weighted cost."""
    return (-candidate.spread, candidate.evaluation.total)


def solve(dag: FragmentDAG, problem: Problem, options: PlannerOptions, reference: Problem | None = None
          ) -> Candidate:
    """Search plus the naive baselines on ``problem`` (``dag``'s instance); the cheapest plan.

    ``reference``: the instance (job weights) the result is evaluated in;
    defaults to ``problem``.
    """
    opts = options
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
    best_key = (-spread(best, goal), evaluate(problem, best).total)
    for label, baseline in (("first-fit", first_fit), ("round-robin", round_robin)):
        decisions = baseline(problem)
        key = (-spread(decisions, goal), evaluate(problem, decisions).total)
        if key < best_key:
            best, best_key, name = decisions, key, label
    target = reference or problem
    return Candidate(dag, target, best, name, evaluate(target, best), spread(best, goal))
