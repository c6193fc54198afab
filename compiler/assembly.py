"""Plan assembly: an evaluated placement becomes the :class:`qb2.compiler.plan.Plan` (FR-004).

Gate fragments ``f0..fN`` in topological order with their node, teleports,
evictions, translated size, routing SWAPs and cost terms, then a ``readout``
fragment when the circuit measures anything (on the node holding most
measured qubits), then the totals.
"""

from __future__ import annotations

import math

from qb2.compiler.candidates import Candidate
from qb2.compiler.cost import CostBreakdown
from qb2.compiler.dag import fragment_id
from qb2.compiler.ir import CircuitIR
from qb2.compiler.options import PlannerOptions
from qb2.compiler.placement_model import PlacementModel
from qb2.compiler.plan import FragmentPlan, Plan, Teleport, summarize
from qb2.protocol.execute import Representation


def assemble_plan(
    ir: CircuitIR,
    chosen: Candidate,
    model: PlacementModel,
    representation: Representation,
    options: PlannerOptions,
) -> Plan:
    """Turn an evaluated decision sequence into the :class:`Plan` (fragments, readout, totals)."""
    dag, problem, evaluation = chosen.dag, chosen.problem, chosen.evaluation
    ids = [c.node_id for c in model.costs]
    link = [[problem.tele_terms[a][b][2] for b in range(problem.k)] for a in range(problem.k)]
    weights = options.weights
    fragments: list[FragmentPlan] = []
    for fragment, step in zip(dag.fragments, evaluation.steps, strict=True):
        teleports = tuple(
            Teleport(qubit=q, source=ids[a], target=ids[b], fidelity=math.exp(-link[a][b]))
            for q, a, b in step.teleports
        )
        inside = set(fragment.qubits)
        translated = model.translated(fragment.operation_indices, step.node)
        fragments.append(
            FragmentPlan(
                fragment_id=fragment.fragment_id,
                kind="gates",
                node_id=ids[step.node],
                qubits=fragment.qubits,
                operation_indices=fragment.operation_indices,
                depends_on=tuple(fragment_id(d) for d in fragment.depends_on),
                teleported_qubits=tuple(q for q, _ in step.arrived),
                arrival_fidelity=tuple(f for _, f in step.arrived),
                teleports=teleports,
                evicted_qubits=tuple((t.qubit, t.target) for t in teleports if t.qubit not in inside),
                estimated_fidelity=math.exp(-(step.terms[1] + step.terms[2])),
                cost=CostBreakdown.of(step.terms, weights),
                translated_ops=translated,
                translated_size=sum(translated.values()),
                routing_swaps=model.routing_swaps(fragment.operation_indices, step.node),
            )
        )
    if ir.measurements:
        measured = sorted({m.qubit for m in ir.measurements})
        depends = sorted({dag.last_fragment[q] for q in measured if dag.last_fragment[q] is not None})
        assert evaluation.readout_node is not None
        fragments.append(
            FragmentPlan(
                fragment_id=fragment_id(len(dag.fragments)),
                kind="readout",
                node_id=ids[evaluation.readout_node],
                qubits=tuple(measured),
                operation_indices=(),
                depends_on=tuple(fragment_id(d) for d in depends),  # type: ignore[arg-type]
                teleported_qubits=tuple(q for q, _ in evaluation.readout_arrived),
                arrival_fidelity=tuple(f for _, f in evaluation.readout_arrived),
                estimated_fidelity=math.exp(-evaluation.readout_terms[1]),
                cost=CostBreakdown.of(evaluation.readout_terms, weights),
                translated_ops={"measure": len(ir.measurements)},
                translated_size=len(ir.measurements),
            )
        )
    cost, estimated = summarize(fragments, weights)
    return Plan(
        circuit_name=ir.name,
        num_qubits=ir.num_qubits,
        num_clbits=ir.num_clbits,
        num_operations=ir.num_operations,
        representation=representation,
        link_fidelity=options.link_fidelity,
        fragments=tuple(fragments),
        total_ebits=sum(f.ebits for f in fragments),
        estimated_fidelity=estimated,
        weights=weights,
        cost=cost,
        algorithm=chosen.algorithm,
        seed=options.seed,
        final_residency=tuple(ids[r] for r in evaluation.final),
        routing_swaps=sum(f.routing_swaps for f in fragments),
    )
