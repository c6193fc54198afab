"""Plan a circuit onto the available nodes: partition, place, cost (FR-004, NFR-001, NFR-003).

:func:`plan_circuit` is the compiler's entry point for the coordinator. It is
pure and deterministic: the same IR, nodes (in any order), options (weights,
link and queue inputs, seed) give a byte-identical :meth:`Plan.to_json` under
any ``PYTHONHASHSEED``.

It runs the named stages of :mod:`qb2.compiler.stages` over one
:class:`qb2.compiler.stages.PlanningContext`; benchmarks and tests run them
one by one or stop after one (:func:`qb2.compiler.stages.run_stages`). The
steps, with the stage and the module that holds each:

1. ``nodes`` (:mod:`qb2.compiler.checks`): keep nodes with ``availability ==
   "available"`` that are not in ``options.degraded``, ordered by
   ``node_id`` (or by a seed-derived permutation when ``options.seed != 0``:
   the tie-break order);
2. ``representation`` (:mod:`qb2.compiler.checks`): choose the representation
   from the circuit width;
3. ``total_width``, ``model`` and ``gate_support`` (:mod:`qb2.compiler.checks`,
   :mod:`qb2.compiler.placement_model`): capability checks with actionable
   errors: a circuit wider than all nodes together, a gate no node can run
   (native or translated, :mod:`qb2.compiler.translation`), a gate wider than
   every node;
4. ``partition`` (:mod:`qb2.compiler.fragmentations`):
   :func:`qb2.compiler.partition.split_fragments` with width caps ``cap,
   cap - 1, ...`` (``cap = min(max_fragment_qubits, largest
   qubit_range.max)``; up to ``partition_candidates`` distinct
   fragmentations, one when the circuit has more than
   ``partition_search_max_ops`` operations), never growing a fragment into
   one that no node could run; every fragmentation is placed and the
   cheapest plan wins (ties: the widest cap);
5. ``cost`` (:mod:`qb2.compiler.placement_model`): the cost model
   (:mod:`qb2.compiler.cost`) per fragment and node, from the translated gate
   counts (:mod:`qb2.compiler.translation`), as one placement instance
   (:mod:`qb2.compiler.problem`) per fragmentation;
6. ``search`` (:mod:`qb2.compiler.candidates`): placement with qubit
   residency (:mod:`qb2.compiler.search`): exact DP (branch and bound) on
   small instances, beam search otherwise; the naive baselines (first-fit,
   round-robin, :mod:`qb2.compiler.baselines`) are evaluated too and the
   cheapest plan is kept, so the planner is never worse than them;
7. ``fidelity_floor`` (:mod:`qb2.compiler.fidelity_floor`): a per-job floor
   ``min_fidelity``: if the cheapest plan misses it, the search is repeated
   with the fidelity terms weighted up (a Lagrangian multiplier ladder ``1,
   10, ..., 1e6``); the first plan meeting the floor is returned, else an
   error names the best achievable fidelity;
8. ``assemble`` (:mod:`qb2.compiler.assembly`): the plan, with a final
   ``readout`` fragment when the circuit measures anything, run on the node
   holding most measured qubits; its estimate reads each measured qubit on
   the node where it resides (:mod:`qb2.compiler.readout`).

Routing (FR-016, :mod:`qb2.compiler.routing`) runs inside ``cost`` and
``assemble``: a fragment placed on a node that advertises a ``coupling_map``
needs the SWAPs that node inserts (the node runs the same routine); they are
counted per (fragment, node) pair and enter the search as ``3 * swaps``
extra two-qubit gates on that node, so the search, the fidelity floor and
the plan's estimates all see the routing cost, and each fragment records its
``routing_swaps``. Nodes without a coupling map cost nothing extra (no Qiskit
call).
"""

from __future__ import annotations

from collections.abc import Sequence

from qb2.compiler.checks import choose_representation
from qb2.compiler.dag import FragmentDAG
from qb2.compiler.ir import CircuitIR
from qb2.compiler.options import PlannerOptions
from qb2.compiler.plan import Plan
from qb2.compiler.problem import Problem
from qb2.compiler.stages import PlanningContext, run_stages
from qb2.protocol.advert import ServiceAdvertisement

__all__ = ["PlannerOptions", "choose_representation", "plan_circuit", "planning_instances"]


def plan_circuit(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    options: PlannerOptions = PlannerOptions(),  # noqa: B008 - frozen, never mutated
) -> Plan:
    """Compile ``ir`` into a feasible, cost-minimal, deterministic :class:`Plan` over ``nodes``.

    Args:
        ir: the circuit (see :func:`qb2.compiler.ingest.parse_qasm`).
        nodes: the registry's current advertisements, in any order; only
            ``available`` nodes not in ``options.degraded`` are used.
            ``node_id`` must be unique.
        options: weights, measured link/queue inputs, limits, seed.

    Returns:
        The plan: gate fragments ``f0..fN`` in topological order, then a
        ``readout`` fragment if the circuit measures anything; per fragment
        its node, teleports, evictions, translated size and cost terms; the
        totals (ebits, estimated fidelity, cost).

    Raises:
        InfeasiblePlanError: ``no_nodes`` (nothing available), ``degraded``
            (every available node degraded), ``representation`` (too wide to
            simulate), ``gate_support`` (a gate, or a fragment's gates, no node
            runs), ``width`` (a gate or fragment wider/narrower than every
            node accepts, or the circuit wider than all nodes together) or
            ``min_fidelity`` (no plan found reaches the floor); each message
            says what would make the circuit feasible.
        ValueError: duplicate ``node_id`` in ``nodes``.
    """
    plan = run_stages(PlanningContext(ir, nodes, options)).plan
    assert plan is not None  # the last stage assembles it
    return plan


def planning_instances(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    options: PlannerOptions = PlannerOptions(),  # noqa: B008 - frozen, never mutated
) -> list[tuple[FragmentDAG, Problem]]:
    """The placement instances :func:`plan_circuit` solves: one per candidate fragmentation.

    For benchmarks and tests (baselines, brute force on the same instances):
    the stages through ``cost``, so it raises the same errors as
    :func:`plan_circuit` does before its search.
    """
    context = run_stages(PlanningContext(ir, nodes, options), until="cost")
    return list(zip(context.dags, context.problems, strict=True))
