"""A device's calibrated noise (FR-016), as Aer builds it, attached to the state qubits a fragment uses.

The errors are those ``qiskit_aer.noise.NoiseModel.from_backend(backend)``
builds from the calibration snapshot (Aer's ``basic_device_gate_errors`` and
``basic_device_readout_errors`` on the device ``Target``): a depolarizing gate
error combined with thermal relaxation from T1/T2 and the gate durations, and
a per-qubit readout error. They replace the synthetic depolarizing model of
:mod:`qb2.service_node.noise` on a device node.

A fragment runs on the device's physical qubits ``phys`` (chosen by
:meth:`qb2.service_node.device_model.DeviceModel.physical_qubits`) but on the
coordinator's state qubits; the models built here re-key every error from
physical qubit ``phys[j]`` onto state qubit ``active[j]`` (the ``j``-th of the
fragment's sorted qubits). Qubits of the state the fragment does not touch get
no noise (they are not on this device).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from qiskit.transpiler import Target
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError

__all__ = ["CalibratedNoise"]


class CalibratedNoise:
    """The calibrated errors of one device and the Aer noise models made of them.

    The error tables are read from the target on first use and kept (building
    them takes a while on large devices); the models themselves are not
    cached here (:class:`qb2.service_node.device_model.DeviceModel` caches them
    per qubit set).

    Args:
        target: the device's calibrated ``Target``.
        native_gates: the device's native gate names; errors of other
            operations (``measure``, ``delay``...) are left out of gate noise.
    """

    def __init__(self, target: Target, native_gates: Sequence[str]) -> None:
        self.target = target
        self.native_gates = tuple(native_gates)
        self._gate_errors: list[tuple[str, tuple[int, ...], QuantumError]] | None = None
        self._readout_errors: dict[int, ReadoutError] | None = None

    def gate_errors(self) -> list[tuple[str, tuple[int, ...], QuantumError]]:
        """``(gate name, physical qubits, error)`` of every calibrated native gate entry (Aer's gate errors)."""
        if self._gate_errors is None:
            from qiskit_aer.noise.device.models import basic_device_gate_errors

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                errors = [
                    (name, tuple(qubits), error)
                    for name, qubits, error in basic_device_gate_errors(target=self.target)
                    if name in self.native_gates
                ]
            self._gate_errors = errors
        return self._gate_errors

    def readout_errors(self) -> dict[int, ReadoutError]:
        """Physical qubit -> its calibrated ``ReadoutError`` (Aer's readout errors)."""
        if self._readout_errors is None:
            from qiskit_aer.noise.device.models import basic_device_readout_errors

            self._readout_errors = {
                int(qubits[0]): error for qubits, error in basic_device_readout_errors(target=self.target)
            }
        return self._readout_errors

    def gate_noise_model(self, physical: Sequence[int], active: Sequence[int]) -> NoiseModel:
        """Gate noise of the physical qubits ``physical``, keyed by state qubit: ``physical[j]`` -> ``active[j]``.

        Every native gate error whose qubits all lie in ``physical`` is added
        (on the matching state qubits); basis gates = the device's native gates.

        Args:
            physical: the fragment's physical qubits, one per active qubit.
            active: the fragment's distinct state qubits, sorted; same length as ``physical``.
        """
        to_state = {p: active[j] for j, p in enumerate(physical)}
        model = NoiseModel(basis_gates=list(self.native_gates))
        for name, qubits, error in self.gate_errors():
            if all(q in to_state for q in qubits):
                model.add_quantum_error(error, name, [to_state[q] for q in qubits], warnings=False)
        return model

    def readout_noise_model(self, physical: Sequence[int], measured: Sequence[int]) -> NoiseModel:
        """Readout noise for measuring the state qubits ``measured``.

        The ``j``-th measured qubit gets the calibrated ``ReadoutError`` of
        ``physical[j]``; measured qubits beyond ``len(physical)`` (wider than
        the device) get the mean of the device's readout error matrices.

        Args:
            physical: physical qubits of the first ``len(physical)`` measured qubits.
            measured: the measured state qubits, sorted and distinct.
        """
        errors = self.readout_errors()
        mean = None
        if errors:
            mean = ReadoutError(np.mean([e.probabilities for e in errors.values()], axis=0))
        model = NoiseModel()
        for j, q in enumerate(measured):
            error = errors.get(physical[j]) if j < len(physical) else mean
            if error is not None:
                model.add_readout_error(error, [q], warnings=False)
        return model
