"""The per-job fidelity floor: re-solving with the fidelity terms weighted up (FR-004).

When the cheapest plan misses ``options.min_fidelity``, :func:`meet_floor`
re-solves each fragmentation with the fidelity weights raised along
:data:`FIDELITY_LADDER` (a Lagrangian multiplier ladder) and returns the
cheapest plan that reaches the floor, or raises an error naming the best
achievable fidelity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qb2.compiler.candidates import Candidate, fidelity_nats, rank, solve
from qb2.compiler.cost import CostWeights
from qb2.compiler.errors import InfeasiblePlanError
from qb2.compiler.evaluation import Evaluation
from qb2.compiler.placement_model import PlacementModel
from qb2.compiler.problem import INF

#: Multipliers added to the fidelity weights when a plan misses ``min_fidelity``.
FIDELITY_LADDER = (1.0, 10.0, 100.0, 1e3, 1e4, 1e6)


def shifted_weights(weights: CostWeights, extra: float) -> CostWeights:
    """``weights`` with ``extra`` added to the fidelity-risk and entanglement weights."""
    return CostWeights(
        latency=weights.latency,
        fidelity_risk=weights.fidelity_risk + extra,
        entanglement=weights.entanglement + extra,
        price=weights.price,
    )


def min_fidelity_error(floor: float, evaluation: Evaluation, model: PlacementModel) -> InfeasiblePlanError:
    """The ``min_fidelity`` error: the best fidelity found (``evaluation``) and its losses."""
    best = math.exp(-fidelity_nats(evaluation))
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


def meet_floor(model: PlacementModel, solved: Sequence[Candidate], floor: float) -> Candidate:
    """The cheapest plan (job weights) whose estimated fidelity reaches ``floor``.

    Lagrangian ladder: re-solve each fragmentation with :data:`FIDELITY_LADDER`
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
        faithful = solve(base.dag, model.problem(base.dag, fid_only), model.options, reference)
        if most_faithful is None or fidelity_nats(faithful.evaluation) < fidelity_nats(
            most_faithful.evaluation
        ):
            most_faithful = faithful
        if fidelity_nats(faithful.evaluation) > floor_nats:
            continue
        for extra in FIDELITY_LADDER:
            weights = shifted_weights(model.options.weights, extra)
            trial = solve(base.dag, model.problem(base.dag, weights), model.options, reference)
            if fidelity_nats(trial.evaluation) <= floor_nats:
                found.append(Candidate(trial.dag, trial.problem, trial.decisions,
                                       f"{trial.algorithm}+fidelity({extra:g})", trial.evaluation,
                                       trial.spread))
                break
        else:
            found.append(Candidate(faithful.dag, faithful.problem, faithful.decisions,
                                   "max-fidelity", faithful.evaluation, faithful.spread))
    if not found:
        assert most_faithful is not None
        raise min_fidelity_error(floor, most_faithful.evaluation, model)
    return min(found, key=rank)
