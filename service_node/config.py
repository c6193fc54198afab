"""Service-node settings (FR-011, FR-016): identity, network, and the simulated QPU.

Read from the same TOML file as the coordinator (``[node]``, ``[p2p]``,
``[discovery]``, ``data_dir``), then ``QB2_`` environment variables
(``QB2_NODE__QUBITS=6``), then CLI flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from qb2.protocol.advert import Fidelities, GateTimes
from qb2.protocol.control import FaultSpec
from qb2.daemon.settings import DiscoverySettings, P2PSettings, qb2_sources


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


class NodeSettings(BaseSettings):
    """All settings of ``qb2 node``. Unknown top-level sections belong to the coordinator."""

    model_config = SettingsConfigDict(env_prefix="QB2_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("data")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    p2p: P2PSettings = P2PSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    node: NodeProfile = NodeProfile()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return qb2_sources(settings_cls, init_settings, env_settings)

    @property
    def state_dir(self) -> Path:
        """Where this node keeps its identity key: ``data_dir/nodes/<name>``."""
        return self.data_dir / "nodes" / self.node.name


#: Built-in node profiles for demos and tests: distinct gate sets, widths and
#: noise, including one node without any entangling gate so placement matters.
PROFILES: dict[str, dict[str, Any]] = {
    "ibm-like": {
        "native_gates": ["cx", "rz", "sx", "x"],
        "qubits": 5,
        "fidelity": {"gate_1q": 0.9995, "gate_2q": 0.99, "readout": 0.98},
    },
    "ion-like": {
        "native_gates": ["rx", "ry", "rz", "rzz"],
        "qubits": 6,
        "fidelity": {"gate_1q": 0.9999, "gate_2q": 0.995, "readout": 0.995},
        "gate_times": {"gate_1q_us": 10.0, "gate_2q_us": 200.0, "readout_us": 100.0},
    },
    "cz-native": {
        "native_gates": ["cz", "rx", "ry", "rz"],
        "qubits": 4,
        "fidelity": {"gate_1q": 0.999, "gate_2q": 0.985, "readout": 0.97},
    },
    "single-qubit": {
        "native_gates": ["rz", "sx", "x"],
        "qubits": 3,
        "fidelity": {"gate_1q": 0.9998, "gate_2q": 1.0, "readout": 0.99},
    },
    "ideal": {
        "native_gates": ["cx", "rz", "sx", "x"],
        "qubits": 5,
        "fidelity": {"gate_1q": 1.0, "gate_2q": 1.0, "readout": 1.0},
    },
}


class NodeConfigError(Exception):
    """Invalid node configuration; the message names the key, the value and what is allowed."""


def load_node_settings(profile: str | None = None, **node_overrides: Any) -> NodeSettings:
    """Settings for one node: config file < env < built-in ``profile`` (if given) < overrides.

    ``node_overrides`` are keys of :class:`NodeProfile` (``name=``, ``qubits=`` ...);
    ``None`` values are ignored.

    Raises:
        NodeConfigError: unknown profile or invalid value.
    """
    if profile is not None and profile not in PROFILES:
        raise NodeConfigError(f"unknown node profile {profile!r}; choose one of {sorted(PROFILES)}")
    try:
        base = NodeSettings()
        node = base.node.model_dump(exclude_unset=True)
        if profile is not None and node.get("device"):
            raise NodeConfigError(
                f"node.device = {node['device']!r} (config file or QB2_NODE__DEVICE) cannot be combined with "
                f"profile {profile!r}: a device node takes its gates and fidelities from the device"
            )
        if profile is None and node.get("device"):
            # ``[node] device = "fake_manila"`` in the file or QB2_NODE__DEVICE: the
            # device's calibration decides gates, fidelities and width (FR-016).
            from qb2.service_node.devices import load_device_node_settings

            # the device's calibrated profile would otherwise replace the configured faults
            node_overrides = {"faults": node.get("faults"), **node_overrides}
            return load_device_node_settings(
                node["device"], node.get("executor", "aer"), noise=node.get("device_noise", True), **node_overrides
            )
        merged = {**node, **PROFILES.get(profile or "", {})}
        merged.update({k: v for k, v in node_overrides.items() if v is not None})
        return base.model_copy(update={"node": NodeProfile.model_validate(merged)})
    except ValidationError as exc:
        details = "; ".join(
            f"node.{'.'.join(str(p) for p in e['loc'])} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise NodeConfigError(f"invalid node configuration: {details}") from None
