"""The planner's early checks: usable nodes and their tie order, representation, widths, gate support (FR-004).

Each check fails with an actionable :class:`qb2.compiler.errors.InfeasiblePlanError`
that names what would make the circuit feasible, before any fragment is
built; the stages of :mod:`qb2.compiler.stages` run them in this order:
:func:`usable_nodes` and :func:`tie_order`, :func:`choose_representation`,
:func:`check_total_width`, :func:`check_gates`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from qb2.compiler.capability import TRANSLATABLE_ENTANGLERS, gate_arity
from qb2.compiler.errors import InfeasiblePlanError
from qb2.compiler.ir import CircuitIR
from qb2.compiler.options import PlannerOptions
from qb2.compiler.placement import describe_native_sets, node_label
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import Representation


def usable_nodes(
    nodes: Sequence[ServiceAdvertisement], degraded: frozenset[str]
) -> tuple[ServiceAdvertisement, ...]:
    """Available, non-degraded nodes sorted by ``node_id``; duplicate ids are a caller error."""
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
    usable = [n for n in available if n.node_id not in degraded]
    if not usable:
        names = ", ".join(node_label(n) for n in available[:5])
        raise InfeasiblePlanError(
            "degraded",
            f"every available node is marked degraded ({names}"
            f"{' and more' if len(available) > 5 else ''}); wait for their quality reports to "
            "recover above the thresholds, lower the degradation thresholds, or start a "
            "healthy node",
        )
    return tuple(usable)


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


def check_total_width(ir: CircuitIR, nodes: Sequence[ServiceAdvertisement]) -> None:
    """Every circuit qubit resides on some node: the nodes together must hold the circuit."""
    total = sum(n.qubit_range.max for n in nodes)
    if ir.num_qubits > total:
        raise InfeasiblePlanError(
            "width",
            f"the circuit has {ir.num_qubits} qubits but the {len(nodes)} available nodes hold "
            f"{total} together; add nodes with at least {ir.num_qubits - total} more qubits "
            "or reduce the circuit width",
        )


def check_gates(
    ir: CircuitIR,
    nodes: Sequence[ServiceAdvertisement],
    supported: Sequence[frozenset[str]],
    cap: int,
    options: PlannerOptions,
) -> None:
    """Fail early, with the most specific message, on a gate no node can run or hold."""
    widest: dict[str, int] = {}
    first: dict[str, int] = {}
    for index, op in enumerate(ir.operations):
        if len(op.qubits) > widest.get(op.name, 0):
            widest[op.name] = len(op.qubits)
            first[op.name] = index
    for gate in sorted(widest):
        if not any(gate in s for s in supported):
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


def tie_order(nodes: Sequence[ServiceAdvertisement], seed: int) -> tuple[ServiceAdvertisement, ...]:
    """``nodes`` by ``node_id`` (seed 0) or by a BLAKE2b digest of ``seed/node_id`` (independent of hash seeds)."""
    if seed == 0:
        return tuple(sorted(nodes, key=lambda n: n.node_id))
    return tuple(
        sorted(
            nodes,
            key=lambda n: (hashlib.blake2b(f"{seed}/{n.node_id}".encode(), digest_size=8).digest(),
                           n.node_id),
        )
    )
