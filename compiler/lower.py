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

from qb2.compiler.errors import QasmValidationError
from qb2.compiler.ir import CircuitIR, Measurement, Operation, Register
from qb2.compiler.limits import (
    IngestLimits,
    IngestStats,
    check_width,
    too_deeply_nested,
    too_many_expansion_steps,
    too_many_operations,
)

_STANDARD: dict[str, Instruction] = get_standard_gate_name_mapping()
_DROPPED = frozenset({"barrier", "delay", "global_phase"})
#: Why dynamic-circuit instructions are refused (also used by the bounded parsers).
UNSUPPORTED_HINT = "mid-circuit measurement, reset and classical control are not supported yet"


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
    """Decides whether a gate is a standard gate; memoises per lowering call.

    A user gate that carries a standard name is compared with the standard
    gate's unitary only when its definition expands to at most
    ``_EQUIVALENCE_MAX_OPS`` operations: building the operator of a larger
    definition would cost as much as the expansion the limits exist to bound.
    """

    def __init__(self, size: Callable[[Instruction], int]) -> None:
        self._defined: dict[tuple[str, tuple[float, ...]], bool] = {}
        self.size = size  # operations a gate's definition expands to (see _Expander.size)

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
            self._defined[key] = self.size(op) <= _EQUIVALENCE_MAX_OPS and self._same_unitary(op, proto, params)
        return self._defined[key]

    @staticmethod
    def _same_unitary(op: Gate, proto: Gate, params: tuple[float, ...]) -> bool:
        try:
            standard = proto.base_class(*params) if params else proto
            return Operator(op.definition).equiv(Operator(standard))
        except Exception:
            return False


_EQUIVALENCE_MAX_OPS = 64
_UNITARY_MAX_QUBITS = 4

#: One expanded instruction: (instruction, qubit indices, clbit indices), indices
#: local to the definition being expanded (global at the top level).
_Item = tuple[Instruction, tuple[int, ...], tuple[int, ...]]


class _Expander:
    """Expands user-defined gates into standard gates with bounded work (FR-003, FR-014).

    Each distinct definition is sized and expanded once and the result reused
    for every call: 17 nested two-call definitions cost 34 steps to size, not
    131,072. Sizing runs before anything is materialised, so a circuit that
    would expand beyond ``limits.max_operations`` is refused after at most
    that many steps (counted in ``stats.expanded``), whatever its nesting.

    A definition is identified by its source (the gate body's bytecode or
    builder) and parameters for gates defined in an OpenQASM program (each
    call builds its own definition from that source), and by the identity of its definition
    circuit otherwise (library and user gates built in Python, OpenQASM 3 gates
    whose instances share one definition).
    """

    def __init__(self, limits: IngestLimits, stats: IngestStats) -> None:
        self._is_standard = _StandardMatcher(self.size)
        self._limits = limits
        self._stats = stats
        self._sizes: dict[object, tuple[int, int]] = {}  # key -> (expanded size, nesting depth below)
        self._bodies: dict[object, list[_Item]] = {}
        self._alive: dict[int, object] = {}  # keeps keyed objects alive so their ids stay unique

    def expands(self, op: Instruction) -> bool:
        """Whether ``op`` is a user-defined gate to replace by its definition."""
        return isinstance(op, Gate) and op.name not in _DROPPED and not self._is_standard(op)

    def _key(self, op: Instruction) -> object:
        bytecode = getattr(op, "_bytecode", None) if type(op).__name__ == "_DefinedGate" else None
        # qiskit.qasm2 copies a gate's body into a new tuple per call, but of the same item objects;
        # an empty tuple (empty body, or an unpickled gate) identifies nothing: key on the definition.
        source = (bytecode[0], bytecode[-1], len(bytecode)) if bytecode else getattr(op, "definition_source", None)
        if source:
            # qiskit.qasm2's lazily defined gates (their body's bytecode) and
            # qb2.compiler._qasm3_bounded.ProgramGate (its builder): one definition per source object,
            # also when circuits of several programs that reuse a gate name are composed.
            self._alive[id(source)] = source
            ident = tuple(id(x) for x in source[:2]) + source[2:] if isinstance(source, tuple) else id(source)
            return (ident, tuple(repr(p) for p in op.params))
        definition = op.definition
        self._alive[id(definition)] = definition
        return id(definition)

    def _definition(self, op: Instruction) -> QuantumCircuit:
        if op.name == "unitary" and op.num_qubits > _UNITARY_MAX_QUBITS:
            raise QasmValidationError(
                f"a {op.num_qubits}-qubit 'unitary' gate would be synthesised from its dense matrix; "
                f"qb2 accepts unitary gates of at most {_UNITARY_MAX_QUBITS} qubits")
        definition = op.definition
        if definition is None:
            raise QasmValidationError(f"gate '{op.name}' has no definition (opaque gates cannot be simulated)")
        return definition

    def size(self, op: Instruction, depth: int = 1) -> int:
        """Operations ``op`` expands to (1 for a standard gate or a non-gate instruction).

        Raises:
            LimitExceededError: deeper than ``max_gate_nesting``, more than
                ``max_operations`` operations, or more sizing steps than that.
            QasmValidationError: an opaque gate (no definition).
        """
        if not (isinstance(op, Gate) and op.name not in _DROPPED) or _is_standard_gate(op):
            return 1
        return self._measure(op, depth)[0]

    def _measure(self, op: Instruction, depth: int) -> tuple[int, int]:
        """``(expanded size, nesting height)`` of the user gate ``op`` called ``depth`` levels deep."""
        key = self._key(op)
        known = self._sizes.get(key)
        height = known[1] if known is not None else 1
        if depth + height - 1 > self._limits.max_gate_nesting:
            raise too_deeply_nested(op.name, depth + height - 1, self._limits)
        if known is not None:
            return known
        total = 0
        for inst in self._definition(op).data:
            self._stats.expanded += 1
            if self._stats.expanded > self._limits.max_operations:
                raise too_many_expansion_steps(self._stats.expanded, self._limits)
            sub = inst.operation
            if sub.name in _DROPPED:
                continue
            if self.expands(sub):
                sub_size, sub_height = self._measure(sub, depth + 1)
                total += sub_size
                height = max(height, sub_height + 1)
            else:
                total += 1
            if total > self._limits.max_operations:
                raise too_many_operations(total, self._limits)
        self._sizes[key] = (total, height)
        return total, height

    def body(self, op: Instruction) -> list[_Item]:
        """``op``'s expansion on its own qubits ``0..n-1`` and clbits (call :meth:`size` first)."""
        key = self._key(op)
        cached = self._bodies.get(key)
        if cached is not None:
            return cached
        definition = self._definition(op)
        qpos = {bit: i for i, bit in enumerate(definition.qubits)}
        cpos = {bit: i for i, bit in enumerate(definition.clbits)}
        items: list[_Item] = []
        for inst in definition.data:
            sub = inst.operation
            qubits = tuple(qpos[q] for q in inst.qubits)
            clbits = tuple(cpos[c] for c in inst.clbits)
            if self.expands(sub):
                items.extend((o, tuple(qubits[q] for q in qs), tuple(clbits[c] for c in cs))
                             for o, qs, cs in self.body(sub))
            else:
                items.append((sub, qubits, clbits))
        self._bodies[key] = items
        return items


def _flatten(qc: QuantumCircuit, limits: IngestLimits, stats: IngestStats) -> Iterator[_Item]:
    """Yield ``(instruction, qubits, clbits)`` of ``qc`` in program order, user gates expanded.

    Raises:
        LimitExceededError: more than ``limits.max_operations`` operations in
            all (checked before each gate is expanded) or a limit of
            :meth:`_Expander.size`.
    """
    expander = _Expander(limits, stats)
    qpos = {bit: i for i, bit in enumerate(qc.qubits)}
    cpos = {bit: i for i, bit in enumerate(qc.clbits)}
    total = 0
    for inst in qc.data:
        op = inst.operation
        qubits = tuple(qpos[q] for q in inst.qubits)
        clbits = tuple(cpos[c] for c in inst.clbits)
        if expander.expands(op):
            total += expander.size(op)
            if total > limits.max_operations:
                raise too_many_operations(total, limits)
            for sub, qs, cs in expander.body(op):
                yield sub, tuple(qubits[q] for q in qs), tuple(clbits[c] for c in cs)
        else:
            total += op.name not in _DROPPED
            if total > limits.max_operations:
                raise too_many_operations(total, limits)
            yield op, qubits, clbits


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


def lower_circuit(qc: QuantumCircuit, name: str, limits: IngestLimits | None = None,
                  stats: IngestStats | None = None) -> CircuitIR:
    """Lower ``qc`` to a :class:`CircuitIR` named ``name``.

    Args:
        qc: any Qiskit circuit; its parameters must all be bound.
        name: label stored in the IR.
        limits: bounds checked while expanding (defaults: :class:`IngestLimits`).
        stats: receives the work done (also when a limit stops it).

    Returns:
        The IR: standard gates in program order on flat qubit indices, terminal
        measurements, register layout.

    Raises:
        QasmValidationError: zero qubits, non-terminal measurement, reset,
            classical control, other non-unitary instructions, opaque gates,
            unbound / complex / non-finite parameters (``line`` is ``None``).
        LimitExceededError: more qubits, clbits or (expanded) operations than
            ``limits`` allow, or gate definitions nested too deeply.
    """
    limits = limits or IngestLimits()
    stats = stats if stats is not None else IngestStats()
    if qc.num_qubits == 0:
        raise QasmValidationError("the circuit has no qubits")
    check_width(qc.num_qubits, qc.num_clbits, limits)
    operations: list[Operation] = []
    measurements: list[Measurement] = []
    measured: set[int] = set()
    for op, qubits, clbits in _flatten(qc, limits, stats):
        if op.name in _DROPPED or isinstance(op, (Barrier, Delay)):
            continue
        if isinstance(op, Measure):
            measurements.append(Measurement(qubit=qubits[0], clbit=clbits[0]))
            measured.add(qubits[0])
            continue
        if isinstance(op, ControlFlowOp):
            raise QasmValidationError(
                f"classically controlled '{op.name}' on qubits {list(qubits)}: {UNSUPPORTED_HINT}"
            )
        if op.name == "reset":
            raise QasmValidationError(f"'reset' on qubit {qubits[0]}: {UNSUPPORTED_HINT}")
        if not isinstance(op, Gate) or clbits:
            raise QasmValidationError(
                f"non-unitary instruction '{op.name}' on qubits {list(qubits)} is not supported; "
                f"{UNSUPPORTED_HINT}"
            )
        after = sorted(q for q in qubits if q in measured)
        if after:
            raise QasmValidationError(
                f"gate '{op.name}' acts on qubit {after[0]} after it was measured: "
                f"{UNSUPPORTED_HINT} (measurements must be terminal)"
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
