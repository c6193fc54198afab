"""Aer noise models of a simulated QPU, derived from its advertised fidelities.

DESIGN.md, "Execution semantics": a service node has per-gate-class fidelities
(1q, 2q, readout) and an Aer noise model derived from them. This module turns a
:class:`qb2.protocol.advert.Fidelities` into that model.

Channel and conversion
----------------------
Gate errors are depolarizing channels (Aer ``depolarizing_error(lam, k)``)::

    E(rho) = (1 - lam) * rho + lam * Tr[rho] * I / d,        d = 2**k

Its process (entanglement) fidelity with the identity is
``F = (1 - lam) + lam / d**2 = 1 - lam * (d**2 - 1) / d**2`` (Nielsen & Chuang,
*Quantum Computation and Quantum Information*, sec. 9.3 "entanglement
fidelity", with the depolarizing channel of sec. 8.3.4; the Qiskit Aer API
docs of ``qiskit_aer.noise.depolarizing_error`` state the same relation).
Hence ``lam = (1 - F) * d**2 / (d**2 - 1)``. Note this is the *process*
fidelity, not the average gate fidelity ``F_avg = (d * F + 1) / (d + 1)``.
For ``F`` in ``(0, 1]`` the parameter lies in ``[0, d**2 / (d**2 - 1))``,
which Aer accepts (``lam = 1`` is the fully depolarizing channel; larger
values up to ``d**2/(d**2-1)`` are still completely positive).

Readout errors are symmetric bit flips: a measured bit is reported correctly
with probability ``readout`` and flipped with probability ``1 - readout``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit_aer.noise import NoiseModel, QuantumError, ReadoutError, depolarizing_error

from qb2.compiler.estimate import gate_arity  # the one gate-arity table, re-exported here
from qb2.protocol.advert import Fidelities

__all__ = [
    "build_noise_model",
    "depolarizing_parameter",
    "gate_arity",
    "link_error",
    "readout_noise_model",
]

_STANDARD = get_standard_gate_name_mapping()


def _check_probability(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{name} must be a probability in (0, 1], got {value!r}")


def depolarizing_parameter(process_fidelity: float, num_qubits: int) -> float:
    """Depolarizing parameter ``lam`` giving a ``num_qubits`` channel this process fidelity.

    ``lam = (1 - F) * d**2 / (d**2 - 1)`` with ``d = 2**num_qubits``; see the
    module docstring (Nielsen & Chuang sec. 9.3; Aer ``depolarizing_error``).

    Args:
        process_fidelity: ``F`` in ``(0, 1]`` (dimensionless).
        num_qubits: ``k >= 1``, the width of the channel.

    Returns:
        ``lam`` in ``[0, d**2 / (d**2 - 1))``; 0.0 for ``F == 1``.

    Raises:
        ValueError: ``F`` outside ``(0, 1]`` or ``num_qubits < 1``.
    """
    _check_probability("process fidelity", process_fidelity)
    if num_qubits < 1:
        raise ValueError(f"num_qubits must be >= 1, got {num_qubits}")
    d2 = 4**num_qubits
    return (1.0 - process_fidelity) * d2 / (d2 - 1)


def build_noise_model(native_gates: Sequence[str], fidelity: Fidelities) -> NoiseModel | None:
    """Aer noise model of a node with these native gates and fidelities.

    * after every native 1-qubit gate: depolarizing error of process fidelity
      ``fidelity.gate_1q``;
    * after every native 2-qubit gate: 2-qubit depolarizing error of process
      fidelity ``fidelity.gate_2q``;
    * native gates acting on 3 or more qubits (``ccx``, ``cswap``, ...) get
      **no** gate error: the advertisement has no fidelity class for them.
      Names that are not Qiskit standard unitary gates (``measure``,
      ``reset``, ``delay``, custom names) get no gate error either;
    * on every measurement: symmetric bit flip with probability
      ``1 - fidelity.readout``.

    Gate arities come from :func:`qb2.compiler.estimate.gate_arity` (Qiskit's
    ``get_standard_gate_name_mapping()``, unitary gates only).
    Errors are added for all qubits (``add_all_qubit_*``), so the model fits
    any fragment width.

    Args:
        native_gates: the node's native gate names (Qiskit standard names).
        fidelity: the node's per-class fidelities, probabilities in (0, 1].

    Returns:
        The noise model, or None for an ideal node (all three fidelities 1.0).
    """
    if fidelity.gate_1q == 1.0 and fidelity.gate_2q == 1.0 and fidelity.readout == 1.0:
        return None
    model = NoiseModel(basis_gates=[g for g in native_gates if g in _STANDARD])
    by_arity: dict[int, list[str]] = {1: [], 2: []}
    for name in sorted(set(native_gates)):
        arity = gate_arity(name)
        if arity in by_arity:
            by_arity[arity].append(name)
    for arity, fid in ((1, fidelity.gate_1q), (2, fidelity.gate_2q)):
        if by_arity[arity] and fid < 1.0:
            error = depolarizing_error(depolarizing_parameter(fid, arity), arity)
            model.add_all_qubit_quantum_error(error, by_arity[arity])
    if fidelity.readout < 1.0:
        model.add_all_qubit_readout_error(_readout_error(fidelity.readout))
    return model


def _readout_error(readout_fidelity: float) -> ReadoutError:
    p = 1.0 - readout_fidelity
    return ReadoutError([[1.0 - p, p], [p, 1.0 - p]])


@lru_cache(maxsize=64)
def readout_noise_model(readout_fidelity: float) -> NoiseModel | None:
    """Noise model with only a symmetric readout bit flip of probability ``1 - readout_fidelity``.

    Used for readout fragments (gate noise is already in the state).

    Returns:
        The model (shared, cached per fidelity: do not mutate it), or None for 1.0.

    Raises:
        ValueError: ``readout_fidelity`` outside ``(0, 1]``.
    """
    _check_probability("readout fidelity", readout_fidelity)
    if readout_fidelity == 1.0:
        return None
    model = NoiseModel()
    model.add_all_qubit_readout_error(_readout_error(readout_fidelity))
    return model


@lru_cache(maxsize=64)
def link_error(link_fidelity: float) -> QuantumError | None:
    """1-qubit depolarizing error of a teleported qubit.

    The link's entanglement (ebit) quality is modelled as a 1-qubit
    depolarizing channel of process fidelity ``link_fidelity`` on the moved
    qubit: ``lam = (1 - F) * 4 / 3`` (module docstring).

    Args:
        link_fidelity: process fidelity of the teleportation, in (0, 1].

    Returns:
        The error (shared, cached per fidelity), or None for a perfect link (1.0).

    Raises:
        ValueError: ``link_fidelity`` outside ``(0, 1]``.
    """
    _check_probability("link fidelity", link_fidelity)
    if link_fidelity == 1.0:
        return None
    return depolarizing_error(depolarizing_parameter(link_fidelity, 1), 1)
