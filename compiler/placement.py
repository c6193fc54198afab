"""Assign fragments to nodes; derive teleported qubits and the readout node (FR-004).

The assignment rule is deliberately simple until the cost model lands: in
topological order, each gate fragment goes to the least-loaded candidate
(fewest operations assigned so far, ties by ``node_id``), where a candidate is
an available node whose ``qubit_range`` holds the fragment's width and which
supports every gate of the fragment (:mod:`compiler.capability`). This
spreads work so that several nodes run fragments.

Every function expects ``nodes`` already filtered to available nodes and
sorted by ``node_id`` (the planner does both); no set iteration order reaches
the output (NFR-001).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.capability import supported_subset
from compiler.dag import FragmentDAG
from compiler.errors import InfeasiblePlanError
from compiler.ir import CircuitIR
from protocol.advert import ServiceAdvertisement

_MAX_LISTED = 5


def node_label(node: ServiceAdvertisement) -> str:
    """``name (node_id)`` or just the ``node_id`` when the node has no name."""
    return f"{node.name} ({node.node_id})" if node.name else node.node_id


def describe_native_sets(nodes: Sequence[ServiceAdvertisement]) -> str:
    """The distinct native gate sets of ``nodes``, e.g. ``"{cx, rz, sx} (2 nodes); {h}"``."""
    counts: dict[tuple[str, ...], int] = {}
    for node in nodes:
        counts[node.native_gates] = counts.get(node.native_gates, 0) + 1
    parts = [
        "{" + ", ".join(gates) + "}" + (f" ({n} nodes)" if n > 1 else "")
        for gates, n in sorted(counts.items())
    ]
    more = len(parts) - _MAX_LISTED
    return "; ".join(parts[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class NodeView:
    """What placement needs of one node: its advert and the circuit gates it supports."""

    advert: ServiceAdvertisement
    supported: frozenset[str]

    def accepts(self, gates: frozenset[str], width: int) -> bool:
        """Whether this node can run a fragment with ``gates`` on ``width`` qubits."""
        rng = self.advert.qubit_range
        return rng.min <= width <= rng.max and gates <= self.supported


def node_views(
    nodes: Sequence[ServiceAdvertisement], circuit_gates: frozenset[str]
) -> tuple[NodeView, ...]:
    """Precompute, per node, which of the circuit's gates it supports (same order as ``nodes``)."""
    return tuple(NodeView(n, supported_subset(n.native_gates, circuit_gates)) for n in nodes)


def _no_candidate(
    fragment_id: str, gates: frozenset[str], width: int, views: Sequence[NodeView]
) -> InfeasiblePlanError:
    names = ", ".join(sorted(gates))
    by_gates = [v for v in views if gates <= v.supported]
    by_width = [v for v in views if v.advert.qubit_range.min <= width <= v.advert.qubit_range.max]
    ranges = "; ".join(
        f"{node_label(v.advert)}: {v.advert.qubit_range.min}..{v.advert.qubit_range.max}"
        for v in (by_gates or views)[:_MAX_LISTED]
    )
    if not by_gates:
        return InfeasiblePlanError(
            "gate_support",
            f"fragment {fragment_id} needs gates {{{names}}} together but no available node "
            "supports all of them; add a node whose native gates include them or a universal "
            "set (e.g. rz, sx, cx); available native gate sets: "
            + describe_native_sets([v.advert for v in views]),
        )
    if not by_width:
        return InfeasiblePlanError(
            "width",
            f"fragment {fragment_id} acts on {width} qubit(s) but no available node accepts that "
            f"width (qubit_range min..max: {ranges}); add a node whose qubit_range "
            f"includes {width}",
        )
    return InfeasiblePlanError(
        "width",
        f"fragment {fragment_id} acts on {width} qubit(s) with gates {{{names}}}: the nodes "
        f"supporting those gates accept only widths {ranges}; add a node whose qubit_range "
        f"includes {width} and that supports {{{names}}}",
    )


def assign_fragments(dag: FragmentDAG, ir: CircuitIR, views: Sequence[NodeView]) -> tuple[str, ...]:
    """Choose a node for every gate fragment.

    Args:
        dag: the fragments, in topological order.
        ir: the circuit the fragments index into.
        views: available nodes sorted by ``node_id`` (see :func:`node_views`).

    Returns:
        ``node_id`` per fragment, indexed like ``dag.fragments``.

    Raises:
        InfeasiblePlanError: (``gate_support`` or ``width``) a fragment has no
            candidate node; the message names the fragment, gates and widths.
    """
    load = [0] * len(views)
    chosen: list[str] = []
    for fragment in dag.fragments:
        gates = frozenset(ir.operations[i].name for i in fragment.operation_indices)
        best: int | None = None
        for k, view in enumerate(views):  # sorted by node_id: first minimum wins ties
            if view.accepts(gates, fragment.width) and (best is None or load[k] < load[best]):
                best = k
        if best is None:
            raise _no_candidate(fragment.fragment_id, gates, fragment.width, views)
        load[best] += len(fragment.operation_indices)
        chosen.append(views[best].advert.node_id)
    return tuple(chosen)


def teleported_qubits(dag: FragmentDAG, assignment: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """Per fragment, the qubits whose previous fragment ran on a different node (sorted).

    A qubit's first touch costs nothing (it starts in ``|0>`` on the node);
    each listed qubit costs one ebit.
    """
    return tuple(
        tuple(
            q
            for q, previous in fragment.sources
            if previous is not None and assignment[previous] != assignment[fragment.index]
        )
        for fragment in dag.fragments
    )


def readout_node(
    dag: FragmentDAG,
    ir: CircuitIR,
    assignment: Sequence[str],
    nodes: Sequence[ServiceAdvertisement],
) -> str:
    """The node that gathers the terminal measurements.

    The node holding the most measured qubits after the last gate (ties by
    ``node_id``); if no measured qubit was touched by a gate, the least-loaded
    available node (fewest assigned operations, ties by ``node_id``).

    Args:
        nodes: available nodes sorted by ``node_id`` (non-empty).
    """
    held: dict[str, int] = {}
    for q in sorted({m.qubit for m in ir.measurements}):
        last = dag.last_fragment[q]
        if last is not None:
            held[assignment[last]] = held.get(assignment[last], 0) + 1
    if held:
        return min(held, key=lambda node_id: (-held[node_id], node_id))
    load = {n.node_id: 0 for n in nodes}
    for fragment in dag.fragments:
        load[assignment[fragment.index]] += len(fragment.operation_indices)
    return min(load, key=lambda node_id: (load[node_id], node_id))
