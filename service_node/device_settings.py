"""Settings of a node that models a real device (FR-016): ``python -m qb2.service_node --device NAME``.

The device's calibration decides what a synthetic node takes from its
configuration: native gates, fidelities, gate times and the width
(:func:`qb2.service_node.device_catalogue.device_profile`); the configuration
still sets the node's name, network, concurrency, faults and executor.
:func:`qb2.service_node.config.load_node_settings` hands over to
:func:`load_device_node_settings` when the file or environment sets ``node.device``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from qb2.service_node.device_catalogue import device_profile
from qb2.service_node.settings import NodeConfigError, NodeProfile, NodeSettings, invalid_node_configuration
from qb2.service_node.simulators import check_executor

__all__ = ["load_device_node_settings"]

#: NodeProfile keys a device node takes from its calibration (overrides are refused).
_CALIBRATED_KEYS = ("native_gates", "fidelity", "gate_times")


def load_device_node_settings(device: str, executor: str = "aer", *, noise: bool = True,
                              **overrides: Any) -> NodeSettings:
    """Settings of a node that models ``device`` (what ``qb2 node --device NAME --executor E`` runs).

    Order: config file < env (``QB2_NODE__...``) < device calibration < ``overrides``.
    The device decides ``native_gates``, ``fidelity``, ``gate_times`` and the width;
    ``name`` defaults to the device name unless the file, env or an override sets one.

    Args:
        device: device name, e.g. ``"fake_manila"`` (see :func:`qb2.service_node.device_catalogue.device_names`).
        executor: ``"aer"`` (CPU) or ``"aer-gpu"``.
        noise: apply the device's calibrated noise (False: an ideal model of the device).
        overrides: NodeProfile keys, ``None`` values ignored: ``name``,
            ``max_concurrent_fragments``, ``qubits`` (at most the device's width).

    Returns:
        NodeSettings whose ``node`` has ``device``, ``device_noise`` and ``executor`` set.

    Raises:
        NodeConfigError: unknown device (lists close and valid names), unknown or
            unavailable executor, an override of a calibrated key, a width above
            the device's, or an invalid value.
    """
    profile = device_profile(device, noise=noise)
    check_executor(executor)
    given = {k: v for k, v in overrides.items() if v is not None}
    refused = sorted(k for k in given if k in _CALIBRATED_KEYS)
    if refused:
        raise NodeConfigError(
            f"node.{refused[0]} cannot be set for a device node: device {profile.device} takes "
            f"{', '.join(_CALIBRATED_KEYS)} from its calibration"
        )
    if "qubits" in given and isinstance(given["qubits"], int) and given["qubits"] > profile.qubits:
        raise NodeConfigError(
            f"node.qubits = {given['qubits']}: device {profile.device} has only {profile.qubits} qubits"
        )
    try:
        base = NodeSettings()
        node = base.node.model_dump(exclude_unset=True)
        node.pop("device", None)
        calibrated = profile.model_dump(exclude={"name", "max_concurrent_fragments"})
        merged = {**node, **calibrated, "executor": executor}
        merged.setdefault("name", profile.name)
        merged.update(given)
        return base.model_copy(update={"node": NodeProfile.model_validate(merged)})
    except ValidationError as exc:
        raise invalid_node_configuration(exc) from None
