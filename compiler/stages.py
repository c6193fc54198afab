"""The planner as named stages over one :class:`PlanningContext` (FR-004, NFR-001).

In the manner of Qiskit's transpiler (a pass manager running small passes
that share one property set), :func:`qb2.compiler.planner.plan_circuit` is
:data:`STAGES` run in order over one context: each stage reads what earlier
stages left in the context and records its own result there; none has any
other input or output. A stage is pure apart from filling in the context and
raising the planner's errors, so running the stages one by one, stopping
after any of them (:func:`run_stages` with ``until``), or rerunning one (e.g.
only ``search``) gives the same results as :func:`plan_circuit`.

The stages, in order (the context fields each one fills in brackets):

``nodes`` (``usable``)
    available nodes not in ``options.degraded``, in tie-break order (by
    ``node_id``, or a seed-derived permutation when ``options.seed != 0``);
``representation`` (``representation``)
    density matrix or statevector, from the circuit width;
``total_width``
    the nodes together must hold every circuit qubit;
``model`` (``model``)
    the placement model: each node's cost constants, the circuit's gates
    translated into each native gate set, which gates each node supports,
    the coupling maps (:class:`qb2.compiler.placement_model.PlacementModel`);
``gate_support`` (``cap``, ``by_id``)
    the fragment width cap; a gate no node runs, or wider than every node,
    fails here with an actionable error;
``partition`` (``dags``)
    the candidate fragmentations (width caps ``cap, cap - 1, ...``); the
    first one's fragments must each have a node that accepts them; the
    fragmentations with a fragment no node accepts are dropped;
``cost`` (``problems``)
    per fragmentation, the placement instance under the job's weights: every
    fragment's cost on every node, routing SWAPs included (FR-016);
``search`` (``solved``, ``chosen``)
    per instance the search (exact DP or beam) and the naive baselines, the
    cheapest plan kept; the cheapest over fragmentations is chosen (ties:
    the widest cap);
``fidelity_floor`` (``chosen``)
    when the chosen plan misses ``options.min_fidelity``, the Lagrangian
    ladder picks the cheapest plan that reaches it, or fails;
``assemble`` (``plan``)
    the :class:`qb2.compiler.plan.Plan`: gate fragments, the readout
    fragment, totals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from qb2.compiler.assembly import assemble_plan
from qb2.compiler.candidates import Candidate, fidelity_nats, rank, solve
from qb2.compiler.checks import check_gates, check_total_width, choose_representation, tie_order, usable_nodes
from qb2.compiler.dag import FragmentDAG
from qb2.compiler.fidelity_floor import meet_floor
from qb2.compiler.fragmentations import check_fragments, fragmentations, placeable
from qb2.compiler.ir import CircuitIR
from qb2.compiler.options import PlannerOptions
from qb2.compiler.placement_model import PlacementModel
from qb2.compiler.plan import Plan
from qb2.compiler.problem import Problem
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import Representation

_T = TypeVar("_T")


@dataclass(slots=True)
class PlanningContext:
    """What the stages share: the inputs, then each stage's result (``None`` or empty until it ran).

    Attributes:
        ir: the circuit.
        nodes: the registry's advertisements, in any order.
        options: the planner options.
        usable: available, non-degraded nodes in tie-break order (``nodes``);
            node indices everywhere below follow this order.
        representation: ``density_matrix`` or ``statevector`` (``representation``).
        model: the placement model (``model``).
        cap: fragment width cap, qubits (``gate_support``).
        by_id: usable node indices ordered by ``node_id``, the order errors
            list nodes in (``gate_support``).
        dags: the candidate fragmentations every node set can run, widest cap
            first (``partition``).
        problems: one placement instance per fragmentation, job weights (``cost``).
        solved: one solved candidate per fragmentation (``search``).
        chosen: the plan to assemble (``search``, maybe replaced by ``fidelity_floor``).
        plan: the result (``assemble``).
        done: names of the stages run so far, in order.
    """

    ir: CircuitIR
    nodes: Sequence[ServiceAdvertisement]
    options: PlannerOptions = field(default_factory=PlannerOptions)
    usable: tuple[ServiceAdvertisement, ...] = ()
    representation: Representation | None = None
    model: PlacementModel | None = None
    cap: int = 0
    by_id: tuple[int, ...] = ()
    dags: tuple[FragmentDAG, ...] = ()
    problems: tuple[Problem, ...] = ()
    solved: tuple[Candidate, ...] = ()
    chosen: Candidate | None = None
    plan: Plan | None = None
    done: list[str] = field(default_factory=list)


def _need(value: _T | None, what: str, by: str) -> _T:
    """``value``, or a :class:`RuntimeError` saying that stage ``by`` ran before the one producing it."""
    if value is None:
        raise RuntimeError(f"the {by!r} stage needs {what}: run the stages before it first")
    return value


# --------------------------------------------------------------------------- the stages


def select_nodes(context: PlanningContext) -> None:
    """``nodes``: the usable nodes in tie-break order.

    Raises:
        InfeasiblePlanError: ``no_nodes`` or ``degraded``.
        ValueError: duplicate ``node_id``.
    """
    options = context.options
    context.usable = tie_order(usable_nodes(context.nodes, options.degraded), options.seed)


def pick_representation(context: PlanningContext) -> None:
    """``representation``: from the circuit width (raises ``representation``)."""
    context.representation = choose_representation(context.ir.num_qubits, context.options)


def check_width(context: PlanningContext) -> None:
    """``total_width``: the usable nodes together hold the circuit (raises ``width``)."""
    check_total_width(context.ir, _need(context.usable or None, "the usable nodes", "total_width"))


def build_model(context: PlanningContext) -> None:
    """``model``: node costs, translation tables, supported gates, coupling maps."""
    usable = _need(context.usable or None, "the usable nodes", "model")
    context.model = PlacementModel(context.ir, usable, context.options)


def check_gate_support(context: PlanningContext) -> None:
    """``gate_support``: the fragment width cap; every gate runs on, and fits, some node.

    Raises:
        InfeasiblePlanError: ``gate_support`` or ``width``.
    """
    model = _need(context.model, "the placement model", "gate_support")
    usable, options = context.usable, context.options
    context.cap = min(options.max_fragment_qubits, max(n.qubit_range.max for n in usable))
    context.by_id = tuple(sorted(range(len(usable)), key=lambda j: usable[j].node_id))
    by_id = context.by_id
    check_gates(context.ir, [usable[j] for j in by_id], [model.supported[j] for j in by_id], context.cap,
                options)


def partition(context: PlanningContext) -> None:
    """``partition``: the candidate fragmentations some node set can run.

    Raises:
        InfeasiblePlanError: ``gate_support`` or ``width`` for the first
            fragment (of the widest fragmentation) no node accepts.
    """
    model = _need(context.model, "the placement model", "partition")
    cap = _need(context.cap or None, "the width cap", "partition")
    ir = context.ir
    views = model.views()
    dags = fragmentations(ir, model, cap)
    # every candidate splits at least as finely: check the first one only
    check_fragments(ir, dags[0], views, [views[j] for j in context.by_id])
    context.dags = tuple(d for d in dags if placeable(ir, d, views))


def build_problems(context: PlanningContext) -> None:
    """``cost``: the placement instance of each fragmentation under the job's weights."""
    model = _need(context.model, "the placement model", "cost")
    dags = _need(context.dags or None, "the fragmentations", "cost")
    context.problems = tuple(model.problem(dag, context.options.weights) for dag in dags)


def search_placements(context: PlanningContext) -> None:
    """``search``: solve every instance (search and baselines); choose the cheapest."""
    problems = _need(context.problems or None, "the placement instances", "search")
    context.solved = tuple(
        solve(dag, problem, context.options) for dag, problem in zip(context.dags, problems, strict=True)
    )
    context.chosen = min(context.solved, key=rank)  # first minimum: the widest cap wins ties


def apply_fidelity_floor(context: PlanningContext) -> None:
    """``fidelity_floor``: when the chosen plan misses ``min_fidelity``, the cheapest one reaching it.

    Raises:
        InfeasiblePlanError: ``min_fidelity`` (no plan found reaches the floor).
    """
    chosen = _need(context.chosen, "a chosen plan", "fidelity_floor")
    floor = context.options.min_fidelity
    if floor is not None and math.exp(-fidelity_nats(chosen.evaluation)) < floor:
        model = _need(context.model, "the placement model", "fidelity_floor")
        context.chosen = meet_floor(model, context.solved, floor)


def assemble(context: PlanningContext) -> None:
    """``assemble``: the :class:`qb2.compiler.plan.Plan` of the chosen placement."""
    chosen = _need(context.chosen, "a chosen plan", "assemble")
    model = _need(context.model, "the placement model", "assemble")
    representation = _need(context.representation, "the representation", "assemble")
    context.plan = assemble_plan(context.ir, chosen, model, representation, context.options)


# --------------------------------------------------------------------------- running them


@dataclass(frozen=True, slots=True)
class Stage:
    """One named pass over a :class:`PlanningContext`."""

    name: str
    run: Callable[[PlanningContext], None]

    def __call__(self, context: PlanningContext) -> PlanningContext:
        """Run this stage on ``context``; returns it (filled in further)."""
        self.run(context)
        context.done.append(self.name)
        return context


#: The planner's stages, in the order :func:`qb2.compiler.planner.plan_circuit` runs them.
STAGES: tuple[Stage, ...] = (
    Stage("nodes", select_nodes),
    Stage("representation", pick_representation),
    Stage("total_width", check_width),
    Stage("model", build_model),
    Stage("gate_support", check_gate_support),
    Stage("partition", partition),
    Stage("cost", build_problems),
    Stage("search", search_placements),
    Stage("fidelity_floor", apply_fidelity_floor),
    Stage("assemble", assemble),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    """The stage called ``name`` (one of :data:`STAGE_NAMES`).

    Raises:
        KeyError: no stage has that name.
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no planner stage {name!r}; the stages are {', '.join(STAGE_NAMES)}")


def run_stages(context: PlanningContext, *, until: str | None = None) -> PlanningContext:
    """Run :data:`STAGES` in order on ``context``, through the stage ``until`` (all when ``None``).

    Returns:
        ``context``, filled in by the stages run.

    Raises:
        KeyError: ``until`` names no stage.
        InfeasiblePlanError, ValueError: as :func:`qb2.compiler.planner.plan_circuit`.
    """
    last = stage(until).name if until is not None else STAGES[-1].name
    for s in STAGES:
        s(context)
        if s.name == last:
            break
    return context
