"""Service-node settings (FR-011, FR-016): loading them, and the built-in node profiles.

Read from the same TOML file as the coordinator (``[node]``, ``[p2p]``,
``[discovery]``, ``data_dir``), then ``QB2_`` environment variables
(``QB2_NODE__QUBITS=6``), then CLI flags.

- :data:`PROFILES`: built-in synthetic node profiles (``ibm-like``, ``ion-like`` ...).
- :func:`load_node_settings`: the settings of one node; a node whose
  configuration names a real device (``node.device``) is built by
  :func:`qb2.service_node.device_settings.load_device_node_settings`, imported
  when needed (it loads Qiskit).
- :class:`NodeProfile`, :class:`NodeSettings`, :class:`NodeConfigError`: the
  types, defined in :mod:`qb2.service_node.settings` (shared with the device
  loader, which imports nothing from this module) and re-exported here.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from qb2.service_node.settings import NodeConfigError, NodeProfile, NodeSettings, invalid_node_configuration

__all__ = ["PROFILES", "NodeConfigError", "NodeProfile", "NodeSettings", "load_node_settings"]


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


def load_node_settings(profile: str | None = None, **node_overrides: Any) -> NodeSettings:
    """Settings for one node: config file < env < built-in ``profile`` (if given) < overrides.

    ``node_overrides`` are keys of :class:`NodeProfile` (``name=``, ``qubits=`` ...);
    ``None`` values are ignored. When the file or environment sets ``node.device``
    (and no ``profile`` is given) the node models that device:
    :func:`qb2.service_node.device_settings.load_device_node_settings` builds it.

    Returns:
        Validated :class:`NodeSettings`.

    Raises:
        NodeConfigError: unknown profile, ``node.device`` combined with a
            profile, an invalid value, or (device node) what
            ``load_device_node_settings`` refuses.
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
            from qb2.service_node.device_settings import load_device_node_settings

            # the device's calibrated profile would otherwise replace the configured faults
            node_overrides = {"faults": node.get("faults"), **node_overrides}
            return load_device_node_settings(
                node["device"], node.get("executor", "aer"), noise=node.get("device_noise", True), **node_overrides
            )
        merged = {**node, **PROFILES.get(profile or "", {})}
        merged.update({k: v for k, v in node_overrides.items() if v is not None})
        return base.model_copy(update={"node": NodeProfile.model_validate(merged)})
    except ValidationError as exc:
        raise invalid_node_configuration(exc) from None
