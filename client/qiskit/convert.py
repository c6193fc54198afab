"""Qiskit circuits and results in qb2's wire formats (FR-015): OpenQASM out, counts in.

- :func:`circuit_to_qasm`: a ``QuantumCircuit`` as the OpenQASM text
  ``POST /api/v1/circuits/submit`` takes (OpenQASM 2 when it can express the
  circuit, else OpenQASM 3).
- :func:`check_registers`: qb2 numbers classical bits by position over the
  registers in order; a circuit must agree to be submitted.
- :func:`hex_counts`: qb2 counts (bitstrings, registers separated by spaces)
  as the raw hex counts of a Qiskit ``Result``.
- :func:`register_bits`: qb2 counts as one packed bit array per classical
  register (what a Sampler's ``BitArray`` holds), shots aligned across registers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.primitives.containers import BitArray

__all__ = ["check_registers", "circuit_to_qasm", "hex_counts", "register_bits"]


def check_registers(circuit: QuantumCircuit) -> None:
    """qb2 numbers classical bits by position over the registers in order; the circuit must agree.

    Raises:
        ValueError: a classical bit outside every register, in two registers,
            or registers not in the circuit's bit order.
    """
    in_registers = [bit for reg in circuit.cregs for bit in reg]
    if in_registers != list(circuit.clbits):
        raise ValueError(
            f"circuit {circuit.name!r}: every classical bit must belong to exactly one register, "
            "registers in circuit order (add bits through ClassicalRegister)"
        )


def circuit_to_qasm(circuit: QuantumCircuit) -> tuple[str, str]:
    """Serialise a circuit for ``POST /api/v1/circuits/submit``.

    Returns:
        ``(text, format)``: ``qiskit.qasm2.dumps`` output and ``"qasm2"``, or,
        when OpenQASM 2 cannot express the circuit, ``qiskit.qasm3.dumps``
        output and ``"qasm3"``.

    Raises:
        ValueError: unbound parameters, or bits outside registers.
        qiskit.qasm3.QASM3ExporterError: neither exporter can write it.
    """
    if circuit.parameters:
        names = ", ".join(sorted(p.name for p in circuit.parameters))
        raise ValueError(f"circuit {circuit.name!r} has unbound parameters ({names}); assign_parameters first")
    check_registers(circuit)
    try:
        return qasm2.dumps(circuit), "qasm2"
    except Exception:  # noqa: BLE001 - QASM2ExportError and friends: try OpenQASM 3
        return qasm3.dumps(circuit), "qasm3"


def hex_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """qb2 bitstring counts (space-separated registers) -> Qiskit's raw hex counts.

    ``{"1 01": 5}`` -> ``{"0x5": 5}``; the empty bitstring (no classical bit)
    is ``"0x0"``; keys that collapse to the same value are summed.
    """
    out: dict[str, int] = {}
    for key, value in counts.items():
        bits = key.replace(" ", "")
        hexkey = hex(int(bits, 2)) if bits else "0x0"
        out[hexkey] = out.get(hexkey, 0) + int(value)
    return out


def register_bits(counts: Mapping[str, int], circuit: QuantumCircuit, shots: int) -> dict[str, np.ndarray]:
    """Per classical register, packed shots ``(shots, ceil(size / 8))`` uint8, shot-aligned across registers.

    A count key's bits (spaces removed) are the flat clbits, highest first;
    register ``i`` holds bits ``[offset_i, offset_i + size_i)`` counted from
    the right. Every register expands the outcomes in the same order, so
    shot ``k`` of every register comes from the same measurement.

    Args:
        counts: qb2 counts of ``circuit`` (bitstring -> shots).
        circuit: the submitted circuit (its ``cregs`` name the arrays).
        shots: the job's shots, ``sum(counts.values())``.

    Returns:
        Register name -> uint8 array of shape ``(shots, ceil(size / 8))``
        (``BitArray`` packing, big-endian within a byte).

    Raises:
        ValueError: the counts do not hold ``shots`` shots.
    """
    ordered = sorted(counts.items())
    total = sum(int(v) for _, v in ordered)
    if total != shots:
        raise ValueError(f"counts hold {total} shots, expected {shots}")
    width = circuit.num_clbits
    joint = [int(k.replace(" ", "") or "0", 2) for k, _ in ordered]
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for creg in circuit.cregs:
        mask = (1 << creg.size) - 1
        values = [(j >> offset) & mask for j in joint]
        samples = (v for v, (_, n) in zip(values, ordered, strict=True) for _ in range(int(n)))
        if creg.size == 0 or shots == 0:
            arrays[creg.name] = np.zeros((shots, 0 if creg.size == 0 else (creg.size + 7) // 8), dtype=np.uint8)
        else:
            arrays[creg.name] = BitArray.from_samples(samples, num_bits=creg.size).array
        offset += creg.size
    if offset != width:  # pragma: no cover - guarded by check_registers
        raise ValueError("classical registers do not cover the circuit's bits")
    return arrays
