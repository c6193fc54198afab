"""OpenQASM 2 / 3 and Qiskit circuit ingestion (FR-003).

:func:`parse_qasm` detects the language version from the ``OPENQASM`` header,
parses with Qiskit's importers, and lowers the circuit with
:func:`qb2.compiler.lower.lower_circuit`. Every failure is a
:class:`QasmValidationError` carrying a 1-based line and column where the
parser reported one.

No file is ever read: QASM 2 ``include`` resolves only the built-in
``qelib1.inc`` (the include search path is empty) and the QASM 3 importer
supports only the built-in ``stdgates.inc``.
"""

from __future__ import annotations

import re
from typing import Literal

import qiskit.qasm2
from qiskit import QuantumCircuit
from qiskit._accelerate import qasm2 as _qasm2_native  # the Rust bytecode stream behind qiskit.qasm2.loads
from qiskit.qasm2 import parse as _qasm2_parse

from qb2.compiler._qasm3_bounded import load_bounded
from qb2.compiler.errors import QasmValidationError
from qb2.compiler.ir import CircuitIR
from qb2.compiler.limits import (
    IngestLimits,
    IngestStats,
    LimitExceededError,
    check_source,
    check_width,
    too_many_operations,
)
from qb2.compiler.lower import UNSUPPORTED_HINT, lower_circuit
from qb2.compiler.qasm_errors import qasm2_error, qasm3_error

QasmFormat = Literal["qasm2", "qasm3"]

# Leading whitespace and comments, then the first token.
_SKIP = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.DOTALL)
_HEADER = re.compile(r"OPENQASM\s+(\d+)")


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def detect_format(text: str) -> tuple[QasmFormat | None, int, int]:
    """Read the ``OPENQASM`` version header.

    Args:
        text: program source.

    Returns:
        ``(format, line, column)``: the declared format (``None`` when the
        first token is not an ``OPENQASM`` header) and the 1-based position
        of the first token (of the end of text when there is none).

    Raises:
        QasmValidationError: the header declares a version other than 2 or 3.
    """
    start = _SKIP.match(text)
    offset = start.end() if start else 0
    line, column = _position(text, offset)
    header = _HEADER.match(text, offset)
    if header is None:
        return None, line, column
    major = header.group(1)
    if major == "2":
        return "qasm2", line, column
    if major == "3":
        return "qasm3", line, column
    raise QasmValidationError(
        f"unsupported OpenQASM version {major}; qb2 accepts OpenQASM 2 and 3",
        line=line,
        column=column,
    )


def parse_qasm(text: str, fmt: QasmFormat | None = None, name: str = "circuit",
               limits: IngestLimits | None = None, stats: IngestStats | None = None) -> CircuitIR:
    """Parse an OpenQASM program into a :class:`CircuitIR`.

    Args:
        text: the program source (UTF-8 string).
        fmt: ``"qasm2"`` or ``"qasm3"``; ``None`` detects it from the
            ``OPENQASM 2.x;`` / ``OPENQASM 3[.x];`` header. An explicit ``fmt``
            must agree with the header; an explicit ``"qasm3"`` may omit the
            header (the OpenQASM 3 spec makes it optional), ``"qasm2"`` may not.
        name: label stored in the IR.
        limits: resource bounds checked *while* parsing and expanding
            (defaults: :class:`~qb2.compiler.limits.IngestLimits`), so any input
            is refused after work proportional to the limits, not to what
            the text describes (FR-014).
        stats: receives the work done (instructions read, definition nodes
            expanded), also when a limit stops ingestion.

    Returns:
        The circuit's IR (see :func:`qb2.compiler.lower.lower_circuit` for the
        lowering rules).

    Raises:
        QasmValidationError: empty program, missing or mismatched header, a
            syntax or semantic error reported by the parser (with 1-based
            line/column), or a lowering rule (mid-circuit measurement, reset,
            classical control, unbound parameter, zero qubits; no position).
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"OpenQASM source must be str, not {type(text).__name__}")
    if fmt not in (None, "qasm2", "qasm3"):
        raise ValueError(f"fmt must be 'qasm2', 'qasm3' or None, not {fmt!r}")
    limits = limits or IngestLimits()
    stats = stats if stats is not None else IngestStats()
    check_source(text, limits)
    declared, line, column = detect_format(text)
    if not text.strip():
        raise QasmValidationError("the program is empty", line=1, column=1)
    if declared is None and fmt != "qasm3":
        raise QasmValidationError(
            "missing OpenQASM version header: the program must start with "
            "'OPENQASM 2.0;' or 'OPENQASM 3.0;'",
            line=line,
            column=column,
        )
    if declared is not None and fmt is not None and declared != fmt:
        raise QasmValidationError(
            f"the header declares {declared} but the request says {fmt}",
            line=line,
            column=column,
        )
    chosen: QasmFormat = declared or "qasm3"
    return from_quantum_circuit(_load(text, chosen, limits, stats), name=name, limits=limits, stats=stats)


_QASM2_CUSTOM = tuple(qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
_OP = _qasm2_native.OpCode
_DYNAMIC = (_OP.ConditionedGate, _OP.ConditionedMeasure, _OP.ConditionedReset, _OP.Reset)
#: Gate declarations accepted in one OpenQASM 2 program (building them is quadratic in their number).
MAX_GATE_DEFINITIONS = 2000
_QASM2_OPERATIONS = (_OP.Gate, _OP.ConditionedGate, _OP.Measure, _OP.ConditionedMeasure, _OP.Reset,
                     _OP.ConditionedReset, _OP.Barrier)


def _bounded_bytecode(bytecode: object, limits: IngestLimits, stats: IngestStats) -> object:
    """Pass Qiskit's lazy OpenQASM 2 bytecode through, refusing it at the first item over a limit.

    The Rust parser yields one item per *broadcast* instruction (``h q;`` on
    a 64-qubit register is 64 items) and per register declaration, before
    Python builds anything, so counting here bounds the circuit Qiskit builds.
    Items inside gate definitions (between ``DeclareGate`` and
    ``EndDeclareGate``) are definitions, not operations.
    """
    qubits = clbits = operations = definitions = 0
    in_definition = False
    for item in bytecode:  # type: ignore[attr-defined]
        stats.instructions += 1
        opcode = item.opcode
        if opcode == _OP.DeclareGate:
            in_definition = True
            definitions += 1
            if definitions > MAX_GATE_DEFINITIONS:  # Qiskit's from_bytecode is quadratic in them
                raise LimitExceededError(
                    "max_gate_definitions", definitions, MAX_GATE_DEFINITIONS,
                    f"the program defines more than {MAX_GATE_DEFINITIONS} gates")
        elif opcode == _OP.Reset and not in_definition:
            raise QasmValidationError(f"'reset' on qubit {item.operands[0]}: {UNSUPPORTED_HINT}")
        elif opcode in _DYNAMIC and not in_definition:
            raise QasmValidationError(f"classically controlled instruction: {UNSUPPORTED_HINT}")
        elif opcode == _OP.EndDeclareGate:
            in_definition = False
        elif in_definition:
            pass
        elif opcode in _QASM2_OPERATIONS:
            operations += 1
            if operations > limits.max_operations:
                raise too_many_operations(operations, limits)
        elif opcode == _OP.DeclareQreg:
            qubits += item.operands[1]
            check_width(qubits, clbits, limits)
        elif opcode == _OP.DeclareCreg:
            clbits += item.operands[1]
            check_width(qubits, clbits, limits)
        yield item


def _load(text: str, fmt: QasmFormat, limits: IngestLimits, stats: IngestStats) -> QuantumCircuit:
    """Run Qiskit's importer for ``fmt`` within ``limits``; translate its exceptions."""
    try:
        if fmt == "qasm2":
            bytecode = _qasm2_native.bytecode_from_string(
                text, [],
                [_qasm2_native.CustomInstruction(x.name, x.num_params, x.num_qubits, x.builtin)
                 for x in _QASM2_CUSTOM],
                (), False,
            )
            return _qasm2_parse.from_bytecode(_bounded_bytecode(bytecode, limits, stats), _QASM2_CUSTOM)
        return load_bounded(text, limits, stats)
    except QasmValidationError:  # our own bounds and early refusals, raised while parsing
        raise
    except RecursionError:
        raise QasmValidationError("the program nests too deeply to parse") from None
    except Exception as exc:
        raise (qasm2_error(exc) if fmt == "qasm2" else qasm3_error(exc)) from exc


def from_quantum_circuit(qc: QuantumCircuit, name: str | None = None, limits: IngestLimits | None = None,
                         stats: IngestStats | None = None) -> CircuitIR:
    """Lower a Qiskit circuit to a :class:`CircuitIR`.

    Args:
        qc: the circuit; every parameter must be bound.
        name: label stored in the IR; defaults to ``qc.name``.
        limits: bounds checked while expanding gate definitions (defaults:
            :class:`~qb2.compiler.limits.IngestLimits`).
        stats: receives the expansion work done.

    Returns:
        The circuit's IR.

    Raises:
        QasmValidationError: see :func:`qb2.compiler.lower.lower_circuit`
            (``line``/``column`` are ``None``); :class:`LimitExceededError`
            for a bound of ``limits``.
        TypeError: ``qc`` is not a ``QuantumCircuit``.
    """
    if not isinstance(qc, QuantumCircuit):
        raise TypeError(f"expected a QuantumCircuit, not {type(qc).__name__}")
    return lower_circuit(qc, name=qc.name if name is None else name, limits=limits, stats=stats)
