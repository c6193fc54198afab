"""The execution plan: fragments, their dependencies and their nodes (FR-004, NFR-001).

A plan is plain pydantic data so that it serialises to byte-identical JSON for
identical inputs (:meth:`Plan.to_json`), can be stored with the job, and can be
returned by the API as is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.execute import Representation


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
        teleported_qubits: circuit qubits that arrive from another node before
            this fragment runs; each costs one ebit.
        estimated_fidelity: product of the node's gate (and readout)
            fidelities and the link fidelity per ebit, in [0, 1].
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fragment_id: str
    kind: Literal["gates", "readout"]
    node_id: str
    qubits: tuple[int, ...]
    operation_indices: tuple[int, ...]
    depends_on: tuple[str, ...]
    teleported_qubits: tuple[int, ...] = ()
    estimated_fidelity: float = Field(ge=0.0, le=1.0)

    @property
    def ebits(self) -> int:
        """Ebits consumed to teleport this fragment's qubits in (one per qubit)."""
        return len(self.teleported_qubits)


class Plan(BaseModel):
    """A complete, feasible assignment of a circuit's fragments to nodes.

    Attributes:
        circuit_name / num_qubits / num_clbits / num_operations: what was planned.
        representation: simulated state kind the runtime hands between nodes.
        link_fidelity: fidelity applied per ebit (teleported qubit), in (0, 1].
        fragments: in topological order; ``depends_on`` only names earlier ones.
        total_ebits: sum of the fragments' ebits.
        estimated_fidelity: product of the fragments' estimated fidelities.
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

    @property
    def nodes(self) -> tuple[str, ...]:
        """Distinct node ids used, sorted."""
        return tuple(sorted({f.node_id for f in self.fragments}))

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): byte-identical for equal plans (NFR-001)."""
        import json

        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
