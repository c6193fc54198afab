"""What a service node's settings are (FR-011, FR-016): the types, without the loading.

:class:`NodeProfile` (the simulated QPU), :class:`NodeSettings` (everything
``python -m qb2.service_node`` reads) and :class:`NodeConfigError` are shared by
the two ways settings are built: :func:`qb2.service_node.config.load_node_settings`
(built-in profiles, synthetic nodes) and
:func:`qb2.service_node.device_settings.load_device_node_settings` (a node that
models a real device). Both import them from here, so neither imports the other
to get them. :mod:`qb2.service_node.config` re-exports all three.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from qb2.daemon.settings import DiscoverySettings, P2PSettings, Qb2Settings
from qb2.protocol.advert import Fidelities, GateTimes
from qb2.protocol.control import FaultSpec
from qb2.service_node.errors import NodeError

__all__ = ["NodeConfigError", "NodeProfile", "NodeSettings", "invalid_node_configuration"]


class NodeProfile(BaseModel):
    """What the simulated QPU is: gates, width, noise, speed.

    Attributes:
        name: label shown in tables and logs; also names the node's state folder.
        native_gates: Qiskit gate names the node executes natively.
        qubits: the largest fragment width the node accepts.
        fidelity: per-gate-class fidelities in (0, 1]; all 1.0 makes an ideal node.
        gate_times: advertised native operation durations in microseconds.
        max_concurrent_fragments: fragments simulated at once (each uses a CPU core).
        accept_control: serve the fault-injection protocol; off by default, since
            it lets a peer crash or degrade the node (restrict it further with
            ``p2p.allowed_peers``).
        device: name of a real-device model (FR-016), a qiskit-ibm-runtime fake
            backend such as ``fake_manila``; None for a synthetic node. A device
            node routes fragments on the device's coupling map and applies its
            calibrated noise (:mod:`qb2.service_node.devices`); build its settings
            with :func:`qb2.service_node.devices.load_device_node_settings`.
        device_noise: whether a device node applies the device's calibrated
            noise (False: its gates and coupling map only, fidelities 1.0).
        executor: simulator the node runs on and advertises: ``"aer"`` (CPU)
            or ``"aer-gpu"`` (needs a GPU-enabled Aer and an NVIDIA GPU).
        faults: faults injected from start-up (FR-013 harness support, see
            :mod:`qb2.service_node.faults`); their ``after_s`` counts from the moment
            the node listens. ``kind = "clear"`` is refused here (control protocol only).
        reservation_grace_s: seconds after a granted reservation window's
            start within which an execution must consume it (or the
            coordinator release it); after that, or at the window's end if
            sooner, the node's ledger expires it (FR-005,
            :mod:`qb2.service_node.ledger`).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="node", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    native_gates: list[str] = Field(default_factory=lambda: ["cx", "rz", "sx", "x"], min_length=1)
    qubits: int = Field(default=5, ge=1, le=24)
    fidelity: Fidelities = Fidelities(gate_1q=0.999, gate_2q=0.99, readout=0.98)
    gate_times: GateTimes = GateTimes()
    max_concurrent_fragments: int = Field(default=1, ge=1, le=64)
    accept_control: bool = Field(default=False, description="serve fault injection over /qb2/control/1.0.0")
    device: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    device_noise: bool = True
    executor: Literal["aer", "aer-gpu"] = "aer"
    faults: list[FaultSpec] = Field(default_factory=list, max_length=64)
    reservation_grace_s: float = Field(default=30.0, gt=0.0, le=86400.0,
                                       description="unconsumed reservation windows expire this long after their start")

    @field_validator("faults")
    @classmethod
    def _no_clear(cls, value: list[FaultSpec]) -> list[FaultSpec]:
        if any(spec.kind == "clear" for spec in value):
            raise ValueError('kind "clear" is only accepted over the control protocol, not in configuration')
        return value


class NodeSettings(Qb2Settings):
    """All settings of ``qb2 node``. Unknown top-level sections belong to the coordinator."""

    model_config = SettingsConfigDict(env_prefix="QB2_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("data")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    p2p: P2PSettings = P2PSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    node: NodeProfile = NodeProfile()

    @property
    def state_dir(self) -> Path:
        """Where this node keeps its identity key: ``data_dir/nodes/<name>``."""
        return self.data_dir / "nodes" / self.node.name


class NodeConfigError(NodeError):
    """Invalid node configuration; the message names the key, the value and what is allowed."""


def invalid_node_configuration(exc: ValidationError) -> NodeConfigError:
    """The :class:`NodeConfigError` for a failed validation of node settings (to raise ``from None``).

    Its message is ``invalid node configuration: `` followed by one
    ``node.<key path> = <input>: <reason>`` per error, joined with ``; ``.
    """
    details = "; ".join(
        f"node.{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()
    )
    return NodeConfigError(f"invalid node configuration: {details}")
