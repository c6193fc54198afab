"""Rebuild a Qiskit ``QuantumCircuit`` from a :class:`CircuitIR` (FR-003).

The inverse of lowering, up to what lowering drops (barriers, delays, global
phase, non-standard gate names): gates in the given order on flat qubit
indices, registers as in the IR, terminal measurements last. Used for the
centralized baseline and to check that the IR preserves the circuit.
"""

from __future__ import annotations

from collections.abc import Iterable

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit.library import get_standard_gate_name_mapping

from qb2.compiler.ir import CircuitIR

_STANDARD = get_standard_gate_name_mapping()


def to_quantum_circuit(
    ir: CircuitIR,
    operation_order: Iterable[int] | None = None,
    include_measurements: bool = True,
) -> QuantumCircuit:
    """Build the Qiskit circuit of ``ir``.

    Args:
        ir: the circuit.
        operation_order: indices into ``ir.operations`` to apply, in this
            order; defaults to program order (all operations).
        include_measurements: append ``ir.measurements`` at the end.

    Returns:
        A circuit with ``ir``'s registers (``ir.num_qubits`` qubits,
        ``ir.num_clbits`` clbits) and name.

    Raises:
        KeyError: an operation name is not a Qiskit standard gate.
    """
    qc = QuantumCircuit(
        *(QuantumRegister(r.size, r.name) for r in ir.qregs),
        *(ClassicalRegister(r.size, r.name) for r in ir.cregs),
        name=ir.name,
    )
    if qc.num_qubits != ir.num_qubits or qc.num_clbits != ir.num_clbits:
        qc = QuantumCircuit(ir.num_qubits, ir.num_clbits, name=ir.name)
    order = range(len(ir.operations)) if operation_order is None else operation_order
    for index in order:
        op = ir.operations[index]
        proto = _STANDARD[op.name]
        gate = proto.base_class(*op.params) if op.params else proto
        qc.append(gate, list(op.qubits), copy=False)
    if include_measurements:
        for m in ir.measurements:
            qc.measure(m.qubit, m.clbit)
    return qc
