"""Realistic device models for service nodes (FR-016): qiskit-ibm-runtime's fake backends.

A node started with ``--device fake_manila`` is a model of that IBM device:

* **advertisement** (:func:`device_profile`): native gates = the device's
  standard unitary gate names, width = its qubit count, per-class fidelities
  and gate times from its calibration (see :func:`device_profile` for the
  exact formulas);
* **connectivity**: the node advertises the device's coupling map
  (:meth:`DeviceModel.advertised_coupling`, in placement order); a fragment's
  qubits are placed on a connected set of physical qubits and routed on that
  map by :func:`qb2.compiler.routing.route_fragment`, the routine the planner
  also uses to count the plan's routing SWAPs (SWAPs are inserted, reported
  in ``ExecuteResponse.routing_swaps`` and counted as native gates);
* **noise**: the calibrated errors of the physical qubits used, as Aer builds
  them for ``NoiseModel.from_backend(backend)`` (depolarizing gate error
  combined with thermal relaxation from T1/T2 and gate durations; per-qubit
  readout errors), instead of the synthetic depolarizing model of
  :mod:`qb2.service_node.noise`.

Source of the calibration data: ``qiskit_ibm_runtime.fake_provider``
(``FakeProviderForBackendV2``, 68 backends of 1-156 qubits in 0.51), snapshots
of real IBM devices. Units: Qiskit ``Target`` durations are seconds; the
advertisement is in microseconds.

This module gathers the public names; each part lives in its own module:

- :mod:`qb2.service_node.device_catalogue`: which devices exist and loading
  one by name (:func:`device_names`, :func:`load_device`, :func:`device_profile`);
- :mod:`qb2.service_node.device_calibration`: what the calibration snapshot
  says (native gates, usable couplers, the advertised profile's formulas);
- :mod:`qb2.service_node.device_model`: :class:`DeviceModel`, placement,
  routing and translation of a fragment on the device (the exact steps are in
  that module's docstring), :class:`DeviceFragment`;
- :mod:`qb2.service_node.device_noise`: the calibrated noise attached to the
  state qubits a fragment uses;
- :mod:`qb2.service_node.simulators`: the executor, Aer on the CPU or a GPU
  (:data:`EXECUTORS`, :func:`check_executor`, :func:`gpu_available`);
- :mod:`qb2.service_node.device_settings`: a device node's settings
  (:func:`load_device_node_settings`).
"""

from __future__ import annotations

from qb2.service_node.device_catalogue import device_names, device_profile, load_device
from qb2.service_node.device_model import DeviceFragment, DeviceModel
from qb2.service_node.device_settings import load_device_node_settings
from qb2.service_node.simulators import EXECUTORS, check_executor, gpu_available

__all__ = [
    "EXECUTORS",
    "DeviceFragment",
    "DeviceModel",
    "check_executor",
    "device_names",
    "device_profile",
    "gpu_available",
    "load_device",
    "load_device_node_settings",
]
