"""Plan a circuit onto the available nodes: partition, place, estimate (FR-004, NFR-001).

:func:`plan_circuit` is the compiler's entry point for the coordinator. It is
pure and deterministic: the same IR, nodes (in any order) and options give a
byte-identical :meth:`Plan.to_json` under any ``PYTHONHASHSEED``.

Steps:

1. keep nodes with ``availability == "available"``, sorted by ``node_id``;
2. choose the representation from the circuit width;
3. check each gate has some supporting node and fits the width cap
   ``min(options.max_fragment_qubits, largest qubit_range.max)``;
4. :func:`compiler.partition.split_fragments`, never growing a fragment into
   one that no node could run;
5. :func:`compiler.placement.assign_fragments` (least-loaded candidate);
6. teleported qubits, per-fragment fidelity estimates
   (:mod:`compiler.fidelity`), and a final ``readout`` fragment when the
   circuit measures anything.

Readout simplification: the readout fragment has no teleported qubits and
costs no ebits. Each measured qubit is read where its last fragment left it
and only classical outcomes travel to the readout node, so its estimate is
just ``readout ** len(ir.measurements)`` of the readout node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from compiler.capability import TRANSLATABLE_ENTANGLERS, gate_arity, supports_gate
from compiler.dag import FragmentDAG, fragment_id
from compiler.errors import InfeasiblePlanError
from compiler.fidelity import fragment_fidelity, readout_fidelity
from compiler.ir import CircuitIR
from compiler.partition import AcceptsFragment, split_fragments
from compiler.placement import (
    NodeView,
    assign_fragments,
    describe_native_sets,
    node_views,
    readout_node,
    teleported_qubits,
)
from compiler.plan import FragmentPlan, Plan
from protocol.advert import ServiceAdvertisement
from protocol.execute import Representation


class PlannerOptions(BaseModel):
    """Knobs of the planner; all have defaults.

    Attributes:
        max_fragment_qubits: fragment width cap (qubits, >= 1); the effective
            cap is also bounded by the largest available ``qubit_range.max``.
        max_fragment_ops: operations per fragment (>= 1).
        link_fidelity: fidelity per ebit (teleported qubit), in (0, 1].
        density_matrix_max_qubits: widest circuit simulated as a density matrix.
        statevector_max_qubits: widest circuit simulated as a statevector
            (at most 32, the execute protocol's limit).
        min_fidelity: the job's floor on the plan's estimated fidelity, in
            [0, 1], or ``None`` for no floor.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_fragment_qubits: int = Field(default=4, ge=1)
    max_fragment_ops: int = Field(default=12, ge=1)
    link_fidelity: float = Field(default=0.99, gt=0.0, le=1.0)
    density_matrix_max_qubits: int = Field(default=8, ge=0)
    statevector_max_qubits: int = Field(default=24, ge=1, le=32)
    min_fidelity: float | None = Field(default=None, ge=0.0, le=1.0)


def _available(nodes: Sequence[ServiceAdvertisement]) -> tuple[ServiceAdvertisement, ...]:
    """Available nodes sorted by ``node_id``; duplicate ids are a caller error."""
    seen = Counter(n.node_id for n in nodes)
    duplicates = sorted(i for i, count in seen.items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate node_id in node list: {', '.join(duplicates)}")
    available = sorted((n for n in nodes if n.availability == "available"), key=lambda n: n.node_id)
    if not available:
        detail = (
            f"none of the {len(nodes)} known nodes is available (busy or draining)"
            if nodes
            else "no service node is registered"
        )
        raise InfeasiblePlanError("no_nodes", f"{detail}; start or free a service node and retry")
    return tuple(available)


def choose_representation(num_qubits: int, options: PlannerOptions) -> Representation:
    """``density_matrix`` up to its limit, else ``statevector`` up to its limit.

    Raises:
        InfeasiblePlanError: (``representation``) wider than both limits.
    """
    if num_qubits <= options.density_matrix_max_qubits:
        return "density_matrix"
    if num_qubits <= options.statevector_max_qubits:
        return "statevector"
    raise InfeasiblePlanError(
        "representation",
        f"the circuit has {num_qubits} qubits but statevector simulation is limited to "
        f"{options.statevector_max_qubits} (statevector_max_qubits); reduce the circuit "
        "width or raise the limit",
    )


def _check_total_width(ir: CircuitIR, nodes: Sequence[ServiceAdvertisement]) -> None:
    """Every circuit qubit must live on some node: the nodes together must hold the circuit."""
    total = sum(n.qubit_range.max for n in nodes)
    if ir.num_qubits > total:
        raise InfeasiblePlanError(
            "width",
            f"the circuit has {ir.num_qubits} qubits but the {len(nodes)} available nodes hold "
            f"{total} together; add nodes with at least {ir.num_qubits - total} more qubits "
            "or reduce the circuit width",
        )


def _check_gates(
    ir: CircuitIR, nodes: Sequence[ServiceAdvertisement], cap: int, options: PlannerOptions
) -> None:
    """Fail early, with the most specific message, on a gate no node can run or hold."""
    widest: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, op in enumerate(ir.operations):
        if len(op.qubits) > widest.get(op.name, 0):
            widest[op.name] = len(op.qubits)
            first[op.name] = index
    for gate in sorted(widest):
        if not any(supports_gate(n.native_gates, gate, widest[gate]) for n in nodes):
            arity = gate_arity(gate) or widest[gate]
            universal = "a universal set such as {rz, sx}" + (
                f" plus an entangling gate ({', '.join(sorted(TRANSLATABLE_ENTANGLERS))})"
                if arity >= 2
                else ""
            )
            raise InfeasiblePlanError(
                "gate_support",
                f"no available node supports gate '{gate}' (first used by operation "
                f"{first[gate]}); add a node whose native gates include '{gate}' or {universal}; "
                f"available native gate sets: {describe_native_sets(nodes)}",
            )
    for gate in sorted(widest, key=lambda g: (-widest[g], g)):
        width = widest[gate]
        if width <= cap:
            break
        largest = max(n.qubit_range.max for n in nodes)
        if width > largest:
            fix = (
                f"the largest available node accepts {largest} (qubit_range.max); "
                f"add a node with qubit_range.max >= {width}"
            )
        else:
            fix = f"max_fragment_qubits is {options.max_fragment_qubits}; raise it to >= {width}"
        raise InfeasiblePlanError(
            "width",
            f"gate '{gate}' (operation {first[gate]}) acts on {width} qubits but {fix}",
        )


def _accepts(views: Sequence[NodeView]) -> AcceptsFragment:
    """Memoised "some node runs these gates at this width" predicate for the partitioner."""
    cache: dict[tuple[frozenset[str], int], bool] = {}

    def accepts(gates: frozenset[str], width: int) -> bool:
        key = (gates, width)
        if key not in cache:
            cache[key] = any(v.accepts(gates, width) for v in views)
        return cache[key]

    return accepts


def plan_circuit(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    options: PlannerOptions = PlannerOptions(),  # noqa: B008 - frozen, never mutated
) -> Plan:
    """Compile ``ir`` into a feasible, deterministic :class:`Plan` over ``nodes``.

    Args:
        ir: the circuit (see :func:`compiler.ingest.parse_qasm`).
        nodes: the registry's current advertisements, in any order; only
            ``available`` ones are used. ``node_id`` must be unique.
        options: planner knobs.

    Returns:
        The plan: gate fragments ``f0..fN`` in topological order, then a
        ``readout`` fragment if the circuit measures anything; total ebits
        and the estimated fidelity (product over fragments).

    Raises:
        InfeasiblePlanError: ``no_nodes``, ``representation``,
            ``gate_support``, ``width`` (a gate or the whole circuit wider than
            the nodes hold) or ``min_fidelity``, with an
            actionable message.
        ValueError: duplicate ``node_id`` in ``nodes``.
    """
    available = _available(nodes)
    representation = choose_representation(ir.num_qubits, options)
    _check_total_width(ir, available)
    cap = min(options.max_fragment_qubits, max(n.qubit_range.max for n in available))
    _check_gates(ir, available, cap, options)

    views = node_views(available, frozenset(op.name for op in ir.operations))
    dag = split_fragments(ir, cap, options.max_fragment_ops, accepts=_accepts(views))
    assignment = assign_fragments(dag, ir, views)
    teleported = teleported_qubits(dag, assignment)
    by_id = {n.node_id: n for n in available}

    fragments = [
        FragmentPlan(
            fragment_id=fragment.fragment_id,
            kind="gates",
            node_id=assignment[fragment.index],
            qubits=fragment.qubits,
            operation_indices=fragment.operation_indices,
            depends_on=tuple(fragment_id(d) for d in fragment.depends_on),
            teleported_qubits=teleported[fragment.index],
            estimated_fidelity=fragment_fidelity(
                (ir.operations[i] for i in fragment.operation_indices),
                by_id[assignment[fragment.index]].fidelity,
                options.link_fidelity,
                len(teleported[fragment.index]),
            ),
        )
        for fragment in dag.fragments
    ]
    if ir.measurements:
        fragments.append(_readout(dag, ir, assignment, available, by_id))

    estimated = 1.0
    for fragment in fragments:
        estimated *= fragment.estimated_fidelity
    if options.min_fidelity is not None and estimated < options.min_fidelity:
        raise InfeasiblePlanError(
            "min_fidelity",
            f"the best plan's estimated fidelity {estimated:.6g} is below the required "
            f"min_fidelity {options.min_fidelity:.6g} ({len(fragments)} fragments, "
            f"{sum(len(t) for t in teleported)} ebits at link fidelity {options.link_fidelity}); "
            "lower min_fidelity, add higher-fidelity nodes, or raise max_fragment_qubits to "
            "reduce teleportations",
        )
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
    )


def _readout(
    dag: FragmentDAG,
    ir: CircuitIR,
    assignment: Sequence[str],
    available: Sequence[ServiceAdvertisement],
    by_id: dict[str, ServiceAdvertisement],
) -> FragmentPlan:
    """The final ``readout`` fragment (see the module docstring for its simplification)."""
    measured = sorted({m.qubit for m in ir.measurements})
    depends = sorted({dag.last_fragment[q] for q in measured} - {None})  # type: ignore[type-var]
    node_id = readout_node(dag, ir, assignment, available)
    return FragmentPlan(
        fragment_id=fragment_id(len(dag.fragments)),
        kind="readout",
        node_id=node_id,
        qubits=tuple(measured),
        operation_indices=(),
        depends_on=tuple(fragment_id(d) for d in depends),  # type: ignore[arg-type]
        teleported_qubits=(),
        estimated_fidelity=readout_fidelity(by_id[node_id].fidelity, len(ir.measurements)),
    )
