"""The device catalogue (FR-016): which real-device models exist, and loading one by name.

A node started with ``--device fake_manila`` models that IBM device. The
models are qiskit-ibm-runtime's fake backends
(``qiskit_ibm_runtime.fake_provider.FakeProviderForBackendV2``, 68 backends of
1-156 qubits in 0.51): snapshots of real IBM devices' gates, coupling maps and
calibration data. Names are canonical lower-case ``fake_<device>``
(:func:`device_names`); ``manila``, ``Fake-Manila`` and ``fake_manila`` name
the same device.

- :func:`device_names`: every device name, sorted.
- :func:`load_device`: the :class:`qb2.service_node.device_model.DeviceModel`
  of a device (cached).
- :func:`device_profile`: the :class:`qb2.service_node.settings.NodeProfile` a
  node modelling it advertises.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from functools import lru_cache

from qiskit.providers import BackendV2

from qb2.service_node.device_model import DeviceModel
from qb2.service_node.settings import NodeConfigError, NodeProfile

__all__ = ["device_names", "device_profile", "load_device"]

_PROVIDER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _backends() -> dict[str, BackendV2]:
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    with _PROVIDER_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fake_nighthawk warns that its errors are not typical
        return {b.name: b for b in FakeProviderForBackendV2().backends()}


def device_names() -> list[str]:
    """Names of every available device model, sorted (``fake_manila``, ``fake_sherbrooke``, ...).

    Source: ``qiskit_ibm_runtime.fake_provider.FakeProviderForBackendV2`` (68 in 0.51).
    """
    return sorted(_backends())


def _resolve(name: str) -> str:
    """Canonical device name: lower-case, ``fake_`` prefix added when missing.

    Raises:
        NodeConfigError: no such device (the message lists close matches and a few valid names).
    """
    if not isinstance(name, str) or not name.strip():
        raise NodeConfigError(f"device name must be a non-empty string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if not key.startswith("fake_"):
        key = "fake_" + key
    names = _backends()
    if key in names:
        return key
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.75)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise NodeConfigError(
        f"unknown device {name!r}; {hint}valid names include fake_manila, fake_lagos, fake_sherbrooke, "
        f"fake_torino ({len(names)} qiskit-ibm-runtime fake backends; qb2.service_node.devices.device_names() lists all)"
    )


def load_device(name: str, *, noise: bool = True) -> DeviceModel:
    """The :class:`qb2.service_node.device_model.DeviceModel` of device ``name``.

    Cached per canonical name and ``noise``: every caller gets the same model
    (and shares its caches of compiled fragments and noise models).

    Args:
        name: e.g. ``"fake_manila"`` or ``"manila"``.
        noise: apply calibrated noise (False: the device's gates and coupling only).

    Raises:
        NodeConfigError: unknown device (message lists close matches and valid names).
    """
    return _load(_resolve(name), bool(noise))


@lru_cache(maxsize=32)
def _load(key: str, noise: bool) -> DeviceModel:
    return DeviceModel(_backends()[key], noise=noise)


def device_profile(name: str, *, noise: bool = True) -> NodeProfile:
    """The :class:`NodeProfile` a node modelling device ``name`` advertises.

    Derived from the fake backend's ``Target`` (calibration snapshot;
    :func:`qb2.service_node.device_calibration.calibrated_profile`):

    * ``native_gates``: the target's operation names that are Qiskit standard
      unitary gates (fake_manila: ``cx, id, rz, sx, x``);
    * ``qubits``: ``backend.num_qubits``, capped at NodeProfile's limit (24)
      for larger devices;
    * ``fidelity.gate_1q`` = 1 - mean calibrated error over every (1-qubit
      native gate, qubit) entry that is not virtual (duration 0: ``rz``);
      ``gate_2q`` = 1 - mean error over every usable (2-qubit native gate,
      directed pair) (faulty couplers, error 1.0, are left out as they are
      left out of the coupling map); ``readout`` = 1 - mean ``measure`` error over the qubits. IBM's
      errors are average-gate infidelities (randomized benchmarking), so these
      are average gate fidelities, slightly above the process fidelities the
      synthetic model uses (``F_pro = ((d + 1) F_avg - 1) / d``);
    * ``gate_times``: mean calibrated durations of the same entries (and of
      ``measure``), converted from seconds to microseconds;
    * ``name`` = ``device`` = the canonical device name, ``device_noise`` = ``noise``.

    With ``noise=False`` the node runs the device's gates and connectivity
    without any error, and advertises fidelities of 1.0 accordingly.

    Args:
        name: device name, e.g. ``"fake_manila"`` (``"manila"`` also works).
        noise: whether the node applies the device's calibrated noise.

    Returns:
        A validated NodeProfile.

    Raises:
        NodeConfigError: unknown device name.
    """
    model = load_device(name, noise=noise)
    return model.profile()
