"""The execution plan: fragments, their dependencies and their nodes (FR-004, NFR-001).

A plan is plain pydantic data so that it serialises to byte-identical JSON for
identical inputs (:meth:`Plan.to_json`), can be stored with the job, and can be
returned by the API as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qb2.compiler.cost import ZERO, CostBreakdown, CostWeights, Terms, add
from qb2.protocol.execute import Representation


class Teleport(BaseModel):
    """One qubit moved between nodes: one ebit.

    Attributes:
        qubit: the circuit qubit.
        source / target: node ids it leaves and reaches.
        fidelity: the link's fidelity ``min(F(source), F(target))``, in (0, 1].
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    qubit: int
    source: str
    target: str
    fidelity: float = Field(gt=0.0, le=1.0)


class FragmentPlan(BaseModel):
    """One fragment: a connected piece of the circuit DAG run on one node.

    Attributes:
        fragment_id: ``f0``, ``f1``, ... in topological order.
        kind: ``gates`` applies operations; ``readout`` samples the terminal
            measurements from the final state (always the last fragment).
        node_id: peer ID of the node assigned to run it.
        qubits: sorted circuit qubits the fragment acts on (its width).
        operation_indices: indices into ``CircuitIR.operations``, ascending.
        depends_on: fragment ids that must finish first.
        teleported_qubits: the fragment's qubits that arrived from another
            node since they last ran (ascending): moved in right before this
            fragment, or evicted earlier to this node. The runtime applies
            link noise to them (for the readout fragment: measured qubits
            evicted after their last gate; the runtime does not apply that
            noise, the estimate counts it).
        arrival_fidelity: per ``teleported_qubits`` entry, the product of the
            link fidelities of every hop the qubit took since it last ran
            (usually one hop; an evicted qubit that is later moved again took
            two).
        teleports: every teleport right before this fragment, incoming qubits
            (ascending) then evictions; one ebit each.
        evicted_qubits: ``(qubit, destination node id)`` of the idle qubits
            moved off this fragment's node to make room (also in ``teleports``).
        estimated_fidelity: ``exp(-(cost.fidelity_risk + cost.entanglement))``:
            the node's gate (or readout) fidelities over the translated gates
            (and the routing SWAPs) times the link fidelity of each teleport,
            in [0, 1].
        cost: this step's cost terms (gates, routing SWAPs, invocation, and
            the teleports right before it; for the readout, the readout of
            every measurement where its qubit resides) and weighted total.
        translated_ops: native gate counts after translation to the node's
            native gates (``transpile(..., basis_gates=native,
            optimization_level=0)``, summed per gate from
            :mod:`qb2.compiler.translation`); ``{"measure": k}`` for the readout.
            Routing SWAPs are not included (see ``routing_swaps``).
        translated_size: sum of ``translated_ops``.
        routing_swaps: SWAPs the node inserts to route this fragment on its
            advertised ``coupling_map`` (FR-016, :mod:`qb2.compiler.routing`; the
            node runs the same routine and reports its count); 0 on a node
            without a coupling map. Each costs 3 two-qubit gates at the
            node's ``gate_2q`` fidelity and duration, included in ``cost``
            and ``estimated_fidelity``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fragment_id: str
    kind: Literal["gates", "readout"]
    node_id: str
    qubits: tuple[int, ...]
    operation_indices: tuple[int, ...]
    depends_on: tuple[str, ...]
    teleported_qubits: tuple[int, ...] = ()
    arrival_fidelity: tuple[float, ...] = ()
    teleports: tuple[Teleport, ...] = ()
    evicted_qubits: tuple[tuple[int, str], ...] = ()
    estimated_fidelity: float = Field(ge=0.0, le=1.0)
    cost: CostBreakdown
    translated_ops: dict[str, int] = Field(default_factory=dict)
    translated_size: int = Field(default=0, ge=0)
    routing_swaps: int = Field(default=0, ge=0)

    @property
    def ebits(self) -> int:
        """Ebits consumed right before this fragment (one per teleport, evictions included)."""
        return len(self.teleports)


class Plan(BaseModel):
    """A complete, feasible assignment of a circuit's fragments to nodes.

    Attributes:
        circuit_name / num_qubits / num_clbits / num_operations: what was planned.
        representation: simulated state kind the runtime hands between nodes.
        link_fidelity: default fidelity per ebit (teleported qubit), in (0, 1];
            per-link values are in each fragment's ``teleports``.
        fragments: in topological order; ``depends_on`` only names earlier ones.
        total_ebits: sum of the fragments' ebits.
        estimated_fidelity: product of the fragments' estimated fidelities.
        weights: the cost weights the plan was optimised for.
        cost: sum of the fragments' cost terms (fragments in order) and its
            weighted total ``qb2.compiler.cost.weighted(terms, weights)``.
        algorithm: how it was found: ``exact`` (optimal DP), ``beam(B)``, or
            a baseline name when a baseline was cheaper (see
            :mod:`qb2.compiler.candidates`), with ``+fidelity(x)`` or ``max-fidelity``
            when the fidelity floor re-solved it (:mod:`qb2.compiler.fidelity_floor`).
        seed: the tie-breaking seed it was planned with.
        final_residency: per circuit qubit, the node it resides on at readout
            (untouched qubits are placed there for free); each measurement
            is read on its qubit's node.
        routing_swaps: sum of the fragments' ``routing_swaps`` (FR-016).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    circuit_name: str
    num_qubits: int
    num_clbits: int
    num_operations: int
    representation: Representation
    link_fidelity: float
    fragments: tuple[FragmentPlan, ...]
    total_ebits: int
    estimated_fidelity: float
    weights: CostWeights
    cost: CostBreakdown
    algorithm: str
    seed: int = 0
    final_residency: tuple[str, ...] = ()
    routing_swaps: int = Field(default=0, ge=0)

    @property
    def segments(self) -> tuple[tuple[str, ...], ...]:
        """Gate fragment ids grouped into segments, in plan order (issue 13); see :func:`segments`."""
        return segments(self.fragments)

    @property
    def nodes(self) -> tuple[str, ...]:
        """Distinct node ids used, sorted."""
        return tuple(sorted({f.node_id for f in self.fragments}))

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): byte-identical for equal plans (NFR-001)."""
        import json

        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def segments(fragments: Iterable[FragmentPlan]) -> tuple[tuple[str, ...], ...]:
    """Group gate fragments into segments: each runs as one invocation (one request, one state transfer).

    A segment is a maximal run of gate fragments that are consecutive in plan
    (topological) order, run on the same node, and each share a qubit with the
    members before it. Consecutive in plan order means every dependency of a
    member outside the segment precedes the segment's first member, so the
    runtime can schedule the segment as one unit (union of dependencies and
    qubits) and the node can apply the members back to back. Requiring a shared
    qubit keeps the state sent as wide as each member alone would have gathered
    (independent pieces still run concurrently). Derived from the plan alone, so
    deterministic (NFR-001); not part of the plan's JSON. The readout is never
    in a segment.
    """
    out: list[list[str]] = []
    node: str | None = None
    qubits: set[int] = set()
    for f in fragments:
        if f.kind != "gates":
            node = None
            continue
        if out and f.node_id == node and qubits.intersection(f.qubits):
            out[-1].append(f.fragment_id)
            qubits.update(f.qubits)
        else:
            out.append([f.fragment_id])
            node, qubits = f.node_id, set(f.qubits)
    return tuple(tuple(s) for s in out)


def summarize(fragments: Iterable[FragmentPlan], weights: CostWeights) -> tuple[CostBreakdown, float]:
    """A plan's totals: the fragments' cost terms summed in order (weighted), and the product
    of their estimated fidelities."""
    totals: Terms = ZERO
    estimated = 1.0
    for f in fragments:
        totals = add(totals, f.cost.terms)
        estimated *= f.estimated_fidelity
    return CostBreakdown.of(totals, weights), estimated
