"""What a device's calibration snapshot says (FR-016): native gates, usable couplers, the advertised profile.

Pure functions over a fake backend's Qiskit ``Target`` (the calibration data
of :mod:`qb2.service_node.device_catalogue`); the device model
(:class:`qb2.service_node.device_model.DeviceModel`) and the node's
advertisement are built from them. Units: Qiskit ``Target`` durations and
errors are per (gate, qubits) entry, durations in seconds; the advertised
:class:`qb2.protocol.advert.GateTimes` are in microseconds.

Conventions read from IBM's calibration data:

* a gate entry whose calibrated duration is exactly 0 is *virtual* (IBM's
  ``rz`` is a frame change: duration 0, error 0) and says nothing about the
  device's gate quality;
* a calibrated error of 1.0 marks a *faulty* entry (a broken coupler); such a
  pair is left out of the coupling map and of the averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qiskit.transpiler import Target

from qb2.protocol.advert import Fidelities, GateTimes
from qb2.service_node.noise import gate_arity
from qb2.service_node.settings import NodeProfile

__all__ = ["MAX_PROFILE_QUBITS", "calibrated_profile", "coupling_pairs", "faulty", "native_gates"]

#: Widest fragment a device node advertises (NodeProfile.qubits' upper bound).
MAX_PROFILE_QUBITS: int = next(
    m.le for m in NodeProfile.model_fields["qubits"].metadata if getattr(m, "le", None) is not None
)


def native_gates(target: Target) -> tuple[str, ...]:
    """Standard unitary gates among the target's operations, sorted (``measure``, ``delay``... dropped)."""
    return tuple(sorted(n for n in target.operation_names if gate_arity(n) is not None))


def faulty(props: Any) -> bool:
    """IBM marks a broken coupler with a calibrated error of 1.0; such a pair is not usable."""
    return props is not None and props.error is not None and props.error >= 1.0


def coupling_pairs(target: Target, gates: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Directed physical pairs on which some 2-qubit gate of ``gates`` is calibrated and not faulty, sorted."""
    pairs: set[tuple[int, int]] = set()
    for gate in gates:
        if gate_arity(gate) == 2:
            pairs.update(q for q, p in target[gate].items() if q is not None and not faulty(p))
    return tuple(sorted(pairs))


def _physical_entries(target: Target, names: Sequence[str]) -> list[tuple[float | None, float | None]]:
    """``(error, duration_s)`` of every calibrated (gate, qargs) of ``names`` that is usable and not virtual.

    A gate entry is virtual when its calibrated duration is exactly 0 (IBM's ``rz``
    is a frame change: duration 0, error 0); faulty entries (error 1.0) and
    entries without properties are skipped.
    """
    out: list[tuple[float | None, float | None]] = []
    for name in names:
        for qargs, props in target[name].items():
            if qargs is None or props is None or props.duration == 0.0 or faulty(props):
                continue
            out.append((props.error, props.duration))
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def _fidelity(mean_error: float | None) -> float:
    if mean_error is None:
        return 1.0
    return min(1.0, max(1e-6, 1.0 - mean_error))


def _us(seconds: float | None, default: float) -> float:
    return default if seconds is None else seconds * 1e6


def calibrated_profile(name: str, target: Target, gates: Sequence[str], max_fragment_qubits: int, *,
                       noise: bool) -> NodeProfile:
    """The :class:`NodeProfile` a node modelling a device advertises, from its calibration.

    * ``native_gates`` = ``gates`` (the device's standard unitary gates, :func:`native_gates`);
    * ``qubits`` = ``max_fragment_qubits`` (qubits connected to physical qubit
      0), at least 1 and capped at :data:`MAX_PROFILE_QUBITS` (24);
    * ``fidelity.gate_1q`` = 1 - mean calibrated error over every (1-qubit
      gate, qubit) entry that is not virtual; ``gate_2q`` = 1 - mean error
      over every usable (2-qubit gate, directed pair); ``readout`` = 1 - mean
      ``measure`` error over the qubits; each clipped to ``[1e-6, 1]``, and
      1.0 when there is no entry. With ``noise=False`` all three are 1.0;
    * ``gate_times``: mean calibrated durations of the same entries (and of
      ``measure``) in microseconds; :class:`GateTimes`' defaults where there is none;
    * ``name`` = ``device`` = ``name``, ``device_noise`` = ``noise``.

    Args:
        name: canonical device name (``fake_manila``).
        target: the device's calibrated ``Target``.
        gates: the device's native gates (:func:`native_gates` of ``target``).
        max_fragment_qubits: widest fragment the device holds on connected qubits.
        noise: whether the node applies the calibrated noise.

    Returns:
        A validated NodeProfile.
    """
    one = [g for g in gates if gate_arity(g) == 1]
    two = [g for g in gates if gate_arity(g) == 2]
    e1 = _physical_entries(target, one)
    e2 = _physical_entries(target, two)
    meas = [(p.error, p.duration) for q, p in target["measure"].items()
            if q is not None and p is not None] if "measure" in target else []
    if noise:
        fidelity = Fidelities(
            gate_1q=_fidelity(_mean([e for e, _ in e1])),
            gate_2q=_fidelity(_mean([e for e, _ in e2])),
            readout=_fidelity(_mean([e for e, _ in meas])),
        )
    else:
        fidelity = Fidelities(gate_1q=1.0, gate_2q=1.0, readout=1.0)
    defaults = GateTimes()
    times = GateTimes(
        gate_1q_us=_us(_mean([d for _, d in e1]), defaults.gate_1q_us),
        gate_2q_us=_us(_mean([d for _, d in e2]), defaults.gate_2q_us),
        readout_us=_us(_mean([d for _, d in meas]), defaults.readout_us),
    )
    return NodeProfile(
        name=name,
        native_gates=list(gates),
        qubits=max(1, min(max_fragment_qubits, MAX_PROFILE_QUBITS)),
        fidelity=fidelity,
        gate_times=times,
        device=name,
        device_noise=noise,
    )
