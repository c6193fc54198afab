"""One execution request in, one response out: the node's side of FR-006.

:func:`handle_execute` is synchronous and pure apart from simulation; the
daemon runs it in a worker thread, and tests call it directly to run the same
code path without a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qiskit_aer.noise import NoiseModel

from qb2.protocol.execute import ExecuteError, ExecuteRequest, ExecuteResponse, MemberResult, SegmentMember
from qb2.protocol.state import pack_state, unpack_state
from qb2.service_node.config import NodeProfile
from qb2.service_node.executor import ExecutionError, apply_gates, sample_readout
from qb2.service_node.noise import build_noise_model

if TYPE_CHECKING:
    from qb2.service_node.devices import DeviceModel


@dataclass(frozen=True)
class NodeSimulator:
    """What runs a node's fragments: its identity, its :class:`NodeProfile` and the Aer noise model derived from it.

    One node, one name per role (issue 12): :class:`qb2.service_node.daemon.ServiceNode` is
    the daemon, :class:`NodeProfile` what it advertises, :class:`DeviceModel` the calibrated
    model of a real device it may stand for, and this class the simulator the daemon hands
    each execute request to.

    ``device`` is set for a node modelling a real device (FR-016,
    ``profile.device``): fragments are then routed on its coupling map and run
    with its calibrated noise, and ``noise_model`` is None.
    """

    node_id: str
    profile: NodeProfile
    noise_model: NoiseModel | None
    device: DeviceModel | None = None

    @classmethod
    def from_profile(cls, node_id: str, profile: NodeProfile) -> NodeSimulator:
        """Build the noise model (or load the device model) once; it is reused for every fragment.

        Raises:
            qb2.service_node.config.NodeConfigError: unknown ``profile.device``, or
                ``profile.executor == "aer-gpu"`` without a GPU-enabled Aer.
        """
        if profile.device or profile.executor != "aer":
            from qb2.service_node.devices import check_executor, load_device

            check_executor(profile.executor)
            if profile.device:
                return cls(node_id, profile, None, load_device(profile.device, noise=profile.device_noise))
        return cls(node_id, profile, build_noise_model(profile.native_gates, profile.fidelity))

    @property
    def aer_device(self) -> str:
        """Aer device the node simulates on: ``"GPU"`` for executor ``aer-gpu``, else ``"CPU"``."""
        return "GPU" if self.profile.executor == "aer-gpu" else "CPU"


def handle_execute(qpu: NodeSimulator, request: ExecuteRequest, payload: bytes) -> tuple[ExecuteResponse, bytes]:
    """Run one fragment, or one segment's members in order on one state (issue 13), on ``qpu``.

    Args:
        request: the execution header (see :mod:`qb2.protocol.execute`).
        payload: the incoming state as packed by :func:`qb2.protocol.state.pack_state`.

    Returns:
        The response header and the outgoing state payload (empty for a readout
        or an error). Never raises for bad input: errors come back as
        ``ExecuteResponse(ok=False, error=...)``.
    """
    try:
        members = request.members or (
            (SegmentMember(fragment_id=request.fragment_id, ops=request.ops,
                           teleported_qubits=request.teleported_qubits),) if request.kind == "gates" else ())
        if request.members and (request.kind != "gates" or request.ops or request.teleported_qubits):
            raise ExecutionError("bad_request", "a segment request carries its gates in members only")
        for member in members:
            if len(set(q for op in member.ops for q in op.qubits)) > qpu.profile.qubits:
                raise ExecutionError(
                    "capacity",
                    f"fragment acts on more than the {qpu.profile.qubits} qubits this node holds",
                )
        try:
            state = unpack_state(payload, request.representation, request.num_qubits)
        except ValueError as exc:
            raise ExecutionError("bad_request", str(exc)) from None
        if request.kind == "gates":
            results: list[MemberResult] = []
            for member in members:  # back to back on the one state (issue 13)
                outcome = apply_gates(
                    state,
                    request.representation,
                    request.num_qubits,
                    member.ops,
                    qpu.profile.native_gates,
                    qpu.noise_model if request.representation == "density_matrix" else None,
                    teleported_qubits=member.teleported_qubits,
                    link_fidelity=request.link_fidelity,
                    device_model=qpu.device,
                    aer_device=qpu.aer_device,
                )
                state = outcome.state
                # routing_swaps memoised by the compile apply_gates just did (FR-016)
                results.append(MemberResult(fragment_id=member.fragment_id, native_op_counts=outcome.native_op_counts,
                                            simulation_s=outcome.simulation_s, routing_swaps=outcome.routing_swaps))
            counts: dict[str, int] = {}
            for r in results:
                for name, c in r.native_op_counts.items():
                    counts[name] = counts.get(name, 0) + c
            swaps = [r.routing_swaps for r in results if r.routing_swaps is not None]
            header = ExecuteResponse(
                node_id=qpu.node_id,
                ok=True,
                representation=request.representation,
                num_qubits=request.num_qubits,
                native_op_counts=dict(sorted(counts.items())) if request.members else results[0].native_op_counts,
                simulation_s=sum(r.simulation_s for r in results),
                routing_swaps=sum(swaps) if swaps else None,
                members=tuple(results) if request.members else None,
            )
            return header, pack_state(state)
        readout = sample_readout(
            state,
            request.representation,
            request.num_qubits,
            request.measurements,
            request.clbit_registers,
            request.shots,
            request.seed,
            qpu.profile.fidelity.readout,
            readout_noise=_device_readout_noise(qpu, request),
            aer_device=qpu.aer_device,
        )
        header = ExecuteResponse(
            node_id=qpu.node_id,
            ok=True,
            representation=request.representation,
            num_qubits=request.num_qubits,
            native_op_counts={"measure": len(request.measurements)},
            simulation_s=readout.simulation_s,
            counts=readout.counts,
        )
        return header, b""
    except ExecutionError as exc:
        return ExecuteResponse(node_id=qpu.node_id, ok=False, error=exc.to_model()), b""
    except Exception as exc:  # a simulator failure must not kill the node
        error = ExecuteError(code="internal", message=f"{type(exc).__name__}: {exc}")
        return ExecuteResponse(node_id=qpu.node_id, ok=False, error=error), b""


def _device_readout_noise(qpu: NodeSimulator, request: ExecuteRequest) -> NoiseModel | None:
    """The device's calibrated readout errors for the measured qubits (None off-device or for invalid indices,
    which :func:`sample_readout` then reports as ``bad_request``)."""
    measured = [q for q, _ in request.measurements]
    if qpu.device is None or not all(0 <= q < request.num_qubits for q in measured):
        return None
    return qpu.device.readout_noise_model(measured)
