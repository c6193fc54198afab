"""Fragment execution over :data:`qb2.protocol.ids.EXECUTE_PROTOCOL_ID` (FR-006).

One request/response per stream. The request frame's header is an
:class:`ExecuteRequest` and its payload the incoming simulated state (see
:mod:`qb2.protocol.state`); the response frame's header is an
:class:`ExecuteResponse` and its payload the outgoing state (empty for a
readout).

Two kinds of fragment exist:

``gates``
    Apply ``ops`` (Qiskit standard gate names, qubit indices local to the
    state) with the node's noise to the incoming state and return the new
    state. Qubits listed in ``teleported_qubits`` arrived from another node and
    first pass through a depolarizing channel of fidelity ``link_fidelity``
    (density matrices only: a statevector carries no noise, it is estimated).
``readout``
    Measure ``measurements`` (qubit -> clbit) on the incoming state ``shots``
    times with the node's readout error and return ``counts``, keyed by
    bitstrings in Qiskit's format for ``clbit_registers``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Representation = Literal["density_matrix", "statevector"]


class GateOp(BaseModel):
    """One gate: a Qiskit standard gate name, its qubits and real parameters (radians)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=32)
    qubits: tuple[int, ...] = Field(min_length=1)
    params: tuple[float, ...] = ()


class ClbitRegister(BaseModel):
    """A classical register: name and width in bits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: int = Field(ge=0)


class SegmentMember(BaseModel):
    """One fragment of a segment request (issue 13): its gates and teleported qubits, local to the request's state.

    ``reservation_id`` is the member's own window (FR-005); the first member's
    is also the request's ``reservation_id``. Added in protocol 1.4.0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fragment_id: str
    ops: tuple[GateOp, ...] = ()
    teleported_qubits: tuple[int, ...] = ()
    reservation_id: str | None = Field(default=None, max_length=128)


class MemberResult(BaseModel):
    """What the node reports per segment member, in request order. Added in protocol 1.4.0."""

    model_config = ConfigDict(extra="forbid")

    fragment_id: str
    native_op_counts: dict[str, int] = {}
    simulation_s: float = 0.0
    routing_swaps: int | None = Field(default=None, ge=0)


class ExecuteRequest(BaseModel):
    """Header of an execution request; the frame payload carries the input state.

    ``num_qubits`` is the width of the incoming state; the payload holds
    ``2**num_qubits`` complex128 amplitudes (statevector) or a
    ``2**num_qubits x 2**num_qubits`` density matrix, little-endian qubit
    order as in Qiskit.

    ``members`` (protocol 1.4.0, gates only): a segment, several fragments run
    back to back on the one state, each member's teleported qubits first
    passing the link channel right before its own gates; ``fragment_id`` is
    then the first member's and ``ops`` / ``teleported_qubits`` stay empty.
    None (omitted on the wire) for a single fragment (the pre-1.4 form).
    """

    model_config = ConfigDict(extra="forbid")

    job_id: str
    fragment_id: str
    kind: Literal["gates", "readout"]
    representation: Representation
    num_qubits: int = Field(ge=1, le=32)
    ops: tuple[GateOp, ...] = ()
    teleported_qubits: tuple[int, ...] = ()
    link_fidelity: float = Field(default=1.0, gt=0.0, le=1.0)
    measurements: tuple[tuple[int, int], ...] = ()
    clbit_registers: tuple[ClbitRegister, ...] = ()
    shots: int = Field(default=0, ge=0, le=1_000_000)
    seed: int | None = None
    reservation_id: str | None = Field(default=None, max_length=128, description="window this run consumes")
    members: tuple[SegmentMember, ...] | None = None

    @property
    def reservation_ids(self) -> list[str]:
        """Every window this request consumes, once each, in order: its own, then each member's (FR-005)."""
        ids = [self.reservation_id, *(m.reservation_id for m in self.members or ())]
        return list(dict.fromkeys(i for i in ids if i is not None))


class ExecuteError(BaseModel):
    """Why a node refused or failed a fragment. ``code`` is machine-readable."""

    model_config = ConfigDict(extra="forbid")

    code: Literal["bad_request", "unsupported_gate", "capacity", "internal"]
    message: str


class ExecuteResponse(BaseModel):
    """Header of an execution response; the frame payload carries the output state.

    Fields:
        node_id: peer ID of the node that ran the fragment.
        ok: whether the fragment ran; when False, ``error`` says why.
        representation / num_qubits: shape of the returned state.
        native_op_counts: gate counts after translation to the node's native
            gate set, e.g. ``{"rz": 12, "sx": 4, "cx": 3}``.
        simulation_s: wall time the simulator spent, in seconds.
        counts: readout outcomes (readout fragments only).
        routing_swaps: SWAPs the node inserted to route a gate fragment on
            its coupling map (FR-016; included in ``native_op_counts`` as
            native gates); None (omitted on the wire) from a node without
            a coupling map and for readouts. Added in protocol 1.2.0.
        members: per segment member, in request order (only for a request
            with ``members``); the top-level counts, time and SWAPs are then
            their sums. Added in protocol 1.4.0.
    """

    model_config = ConfigDict(extra="forbid")

    node_id: str
    ok: bool
    error: ExecuteError | None = None
    representation: Representation | None = None
    num_qubits: int = 0
    native_op_counts: dict[str, int] = {}
    simulation_s: float = 0.0
    counts: dict[str, int] = {}
    routing_swaps: int | None = Field(default=None, ge=0)
    members: tuple[MemberResult, ...] | None = None
