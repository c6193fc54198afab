"""Lower a Qiskit ``QuantumCircuit`` to the compiler's :class:`CircuitIR` (FR-003).

Rules, applied in program order:

* Qiskit standard gates (``get_standard_gate_name_mapping``) are kept as is,
  on flat circuit qubit indices (``qc.find_bit(q).index``).
* A user-defined gate that carries a standard name and arity and whose
  definition equals that standard gate (up to global phase) is recognised as
  the standard gate; ``qiskit.qasm3.dumps`` emits such definitions for gates
  missing from ``stdgates.inc`` (``rzz``, ``u2`` ...), so QASM 2 and QASM 3
  exports of one circuit give the same IR.
* Any other gate (mqt-bench's ``Q``, ``Oracle``, ``gate_Q``, ``mcphase``,
  open-controlled gates such as ``cx_o0``, ``unitary`` ...) is replaced by its
  ``.definition``, recursively, until only standard gates remain.
* ``barrier``, ``delay`` and ``global_phase`` are dropped (the IR has no timing
  and no global phase; both are unobservable in the measured counts).
* ``measure`` becomes a :class:`Measurement`; measurements must be terminal.
* Everything else (``reset``, control flow such as ``if_else`` / ``while_loop``
  / ``for_loop`` / ``switch_case`` / ``box``, other non-unitary instructions),
  a gate on an already measured qubit, or a gate with an unbound or non-real
  parameter raises :class:`QasmValidationError` (no position: these rules are
  checked on the parsed circuit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from numbers import Real

from qiskit.circuit import (
    Barrier,
    Bit,
    ControlFlowOp,
    ControlledGate,
    Delay,
    Gate,
    Instruction,
    Measure,
    ParameterExpression,
    QuantumCircuit,
)
from qiskit.circuit import Register as QiskitRegister
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Operator

from compiler.errors import QasmValidationError
from compiler.ir import CircuitIR, Measurement, Operation, Register

_STANDARD: dict[str, Instruction] = get_standard_gate_name_mapping()
_DROPPED = frozenset({"barrier", "delay", "global_phase"})
_UNSUPPORTED_HINT = "mid-circuit measurement, reset and classical control are not supported yet"


def _is_standard_gate(op: Instruction) -> bool:
    """Whether ``op`` is exactly the Qiskit standard gate its name says it is."""
    proto = _STANDARD.get(op.name)
    if proto is None or not isinstance(op, Gate) or not isinstance(op, proto.base_class):
        return False
    if op.num_qubits != proto.num_qubits or len(op.params) != len(proto.params):
        return False
    if isinstance(op, ControlledGate) and op.ctrl_state != (1 << op.num_ctrl_qubits) - 1:
        return False
    return True


class _StandardMatcher:
    """Decides whether a gate is a standard gate; memoises per lowering call."""

    def __init__(self) -> None:
        self._defined: dict[tuple[str, tuple[float, ...]], bool] = {}

    def __call__(self, op: Instruction) -> bool:
        if _is_standard_gate(op):
            return True
        proto = _STANDARD.get(op.name)
        if (
            proto is None
            or not isinstance(op, Gate)
            or not isinstance(proto, Gate)
            or op.num_qubits != proto.num_qubits
            or len(op.params) != len(proto.params)
            or op.definition is None
        ):
            return False
        try:
            params = tuple(_real_param(p, op.name) for p in op.params)
        except QasmValidationError:
            return False  # unbound: the expansion reports it
        key = (op.name, params)
        if key not in self._defined:
            self._defined[key] = self._same_unitary(op, proto, params)
        return self._defined[key]

    @staticmethod
    def _same_unitary(op: Gate, proto: Gate, params: tuple[float, ...]) -> bool:
        try:
            standard = proto.base_class(*params) if params else proto
            return Operator(op.definition).equiv(Operator(standard))
        except Exception:
            return False


def _real_param(value: object, gate: str) -> float:
    """Convert one gate parameter to a finite float (radians).

    Raises:
        QasmValidationError: the parameter is unbound, complex or not finite.
    """
    if isinstance(value, ParameterExpression):
        unbound = sorted(p.name for p in value.parameters)
        if unbound:
            noun = "parameter" if len(unbound) == 1 else "parameters"
            verb = "is" if len(unbound) == 1 else "are"
            raise QasmValidationError(
                f"{noun} {', '.join(unbound)} {verb} unbound (in gate '{gate}'); "
                "bind every parameter to a number before submitting"
            )
        value = value.numeric()
    if isinstance(value, complex):
        if abs(value.imag) > 1e-12:
            raise QasmValidationError(f"gate '{gate}' has a complex parameter {value!r}")
        value = value.real
    if not isinstance(value, Real):  # int, float and numpy scalars are Real
        raise QasmValidationError(f"gate '{gate}' has a non-numeric parameter {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise QasmValidationError(f"gate '{gate}' has a non-finite parameter {result!r}")
    return result


def _flatten(
    circuit: QuantumCircuit,
    outer: Sequence[int],
    clbits: Sequence[int],
    is_standard: Callable[[Instruction], bool],
) -> Iterator[tuple[Instruction, tuple[int, ...], tuple[int, ...]]]:
    """Yield ``(instruction, global qubits, global clbits)``, expanding non-standard gates.

    ``outer[i]`` / ``clbits[i]`` are the global indices of ``circuit``'s i-th
    qubit / clbit.
    """
    qpos = {bit: i for i, bit in enumerate(circuit.qubits)}
    cpos = {bit: i for i, bit in enumerate(circuit.clbits)}
    for inst in circuit.data:
        op = inst.operation
        qubits = tuple(outer[qpos[q]] for q in inst.qubits)
        cbits = tuple(clbits[cpos[c]] for c in inst.clbits)
        if isinstance(op, Gate) and op.name not in _DROPPED and not is_standard(op):
            definition = op.definition
            if definition is None:
                raise QasmValidationError(
                    f"gate '{op.name}' on qubits {list(qubits)} has no definition "
                    "(opaque gates cannot be simulated)"
                )
            yield from _flatten(definition, qubits, cbits, is_standard)
        else:
            yield op, qubits, cbits


def _layout(
    bits: Sequence[Bit], registers: Sequence[QiskitRegister], default: str
) -> tuple[Register, ...]:
    """Registers in declaration order when they list ``bits`` exactly, in order.

    Circuits with loose bits (QASM 3 ``qubit a;`` or physical ``$0``) or
    aliasing registers get one synthetic register named ``default`` covering
    every bit, so that ``sum(sizes) == len(bits)`` always holds.
    """
    listed = [bit for reg in registers for bit in reg]
    if listed == list(bits):
        return tuple(Register(reg.name, len(reg)) for reg in registers)
    return (Register(default, len(bits)),) if bits else ()


def lower_circuit(qc: QuantumCircuit, name: str) -> CircuitIR:
    """Lower ``qc`` to a :class:`CircuitIR` named ``name``.

    Args:
        qc: any Qiskit circuit; its parameters must all be bound.
        name: label stored in the IR.

    Returns:
        The IR: standard gates in program order on flat qubit indices, terminal
        measurements, register layout.

    Raises:
        QasmValidationError: zero qubits, non-terminal measurement, reset,
            classical control, other non-unitary instructions, opaque gates,
            unbound / complex / non-finite parameters (``line`` is ``None``).
    """
    if qc.num_qubits == 0:
        raise QasmValidationError("the circuit has no qubits")
    operations: list[Operation] = []
    measurements: list[Measurement] = []
    measured: set[int] = set()
    qubit_ids = range(qc.num_qubits)
    clbit_ids = range(qc.num_clbits)
    for op, qubits, clbits in _flatten(qc, qubit_ids, clbit_ids, _StandardMatcher()):
        if op.name in _DROPPED or isinstance(op, (Barrier, Delay)):
            continue
        if isinstance(op, Measure):
            measurements.append(Measurement(qubit=qubits[0], clbit=clbits[0]))
            measured.add(qubits[0])
            continue
        if isinstance(op, ControlFlowOp):
            raise QasmValidationError(
                f"classically controlled '{op.name}' on qubits {list(qubits)}: {_UNSUPPORTED_HINT}"
            )
        if op.name == "reset":
            raise QasmValidationError(f"'reset' on qubit {qubits[0]}: {_UNSUPPORTED_HINT}")
        if not isinstance(op, Gate) or clbits:
            raise QasmValidationError(
                f"non-unitary instruction '{op.name}' on qubits {list(qubits)} is not supported; "
                f"{_UNSUPPORTED_HINT}"
            )
        after = sorted(q for q in qubits if q in measured)
        if after:
            raise QasmValidationError(
                f"gate '{op.name}' acts on qubit {after[0]} after it was measured: "
                f"{_UNSUPPORTED_HINT} (measurements must be terminal)"
            )
        params = tuple(_real_param(p, op.name) for p in op.params)
        operations.append(Operation(name=op.name, qubits=qubits, params=params))
    return CircuitIR(
        num_qubits=qc.num_qubits,
        num_clbits=qc.num_clbits,
        operations=tuple(operations),
        measurements=tuple(measurements),
        qregs=_layout(qc.qubits, qc.qregs, "q"),
        cregs=_layout(qc.clbits, qc.cregs, "c"),
        name=name,
    )
