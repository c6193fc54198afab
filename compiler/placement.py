"""Node capability views and the "no node can run this fragment" diagnosis (FR-004).

A node can run a fragment when its ``qubit_range`` holds the fragment's width
and it supports every gate of the fragment, natively or by translation
(:mod:`qb2.compiler.translation`). The placement itself (which capable node, and
where idle qubits reside) is :mod:`qb2.compiler.search`.

No set iteration order reaches an output (NFR-001): listings are sorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qb2.compiler.errors import InfeasiblePlanError
from qb2.protocol.advert import ServiceAdvertisement

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
class NodeCapability:
    """What placement needs of one node: its advert and the circuit gates it supports."""

    advert: ServiceAdvertisement
    supported: frozenset[str]

    def accepts(self, gates: frozenset[str], width: int) -> bool:
        """Whether this node can run a fragment with ``gates`` on ``width`` qubits."""
        rng = self.advert.qubit_range
        return rng.min <= width <= rng.max and gates <= self.supported


def no_candidate(
    fragment_id: str, gates: frozenset[str], width: int, views: Sequence[NodeCapability]
) -> InfeasiblePlanError:
    """The error for a fragment no node accepts: names the gates or the width and the fix.

    Returns ``gate_support`` when no node supports the gates together, else
    ``width`` with the accepted ranges.
    """
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
