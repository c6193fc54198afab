"""OpenQASM 2 / 3 and Qiskit circuit ingestion (FR-003).

:func:`parse_qasm` detects the language version from the ``OPENQASM`` header,
parses with Qiskit's importers, and lowers the circuit with
:func:`compiler.lower.lower_circuit`. Every failure is a
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
import qiskit.qasm3
from qiskit import QuantumCircuit

from compiler.errors import QasmValidationError
from compiler.ir import CircuitIR
from compiler.lower import lower_circuit
from compiler.qasm_errors import qasm2_error, qasm3_error

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


def parse_qasm(text: str, fmt: QasmFormat | None = None, name: str = "circuit") -> CircuitIR:
    """Parse an OpenQASM program into a :class:`CircuitIR`.

    Args:
        text: the program source (UTF-8 string).
        fmt: ``"qasm2"`` or ``"qasm3"``; ``None`` detects it from the
            ``OPENQASM 2.x;`` / ``OPENQASM 3[.x];`` header. An explicit ``fmt``
            must agree with the header; an explicit ``"qasm3"`` may omit the
            header (the OpenQASM 3 spec makes it optional), ``"qasm2"`` may not.
        name: label stored in the IR.

    Returns:
        The circuit's IR (see :func:`compiler.lower.lower_circuit` for the
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
    return from_quantum_circuit(_load(text, chosen), name=name)


def _load(text: str, fmt: QasmFormat) -> QuantumCircuit:
    """Run Qiskit's importer for ``fmt``; translate its exceptions."""
    if fmt == "qasm2":
        try:
            return qiskit.qasm2.loads(
                text,
                include_path=(),
                custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS,
            )
        except Exception as exc:
            raise qasm2_error(exc) from exc
    try:
        return qiskit.qasm3.loads(text)
    except Exception as exc:
        raise qasm3_error(exc) from exc


def from_quantum_circuit(qc: QuantumCircuit, name: str | None = None) -> CircuitIR:
    """Lower a Qiskit circuit to a :class:`CircuitIR`.

    Args:
        qc: the circuit; every parameter must be bound.
        name: label stored in the IR; defaults to ``qc.name``.

    Returns:
        The circuit's IR.

    Raises:
        QasmValidationError: see :func:`compiler.lower.lower_circuit`
            (``line``/``column`` are ``None``).
        TypeError: ``qc`` is not a ``QuantumCircuit``.
    """
    if not isinstance(qc, QuantumCircuit):
        raise TypeError(f"expected a QuantumCircuit, not {type(qc).__name__}")
    return lower_circuit(qc, name=qc.name if name is None else name)


_QREG = re.compile(r"\bqreg\s+[A-Za-z_]\w*\s*\[\s*(\d+)\s*\]")
_QUBIT_ARRAY = re.compile(r"\bqubit\s*\[\s*(\d+)\s*\]")
_QUBIT_SINGLE = re.compile(r"\bqubit\s+[A-Za-z_]")
_PHYSICAL = re.compile(r"\$(\d+)")


def declared_qubits(text: str) -> int:
    """Cheap upper-bound estimate of a program's width, without parsing (FR-014).

    Sums ``qreg name[N]``, ``qubit[N] name`` and single ``qubit name``
    declarations, and counts ``$k`` physical qubits as ``max k + 1``. Used to
    refuse absurd widths before a parser allocates them; the parsed circuit's
    own width is authoritative afterwards.
    """
    total = sum(int(n) for n in _QREG.findall(text)) + sum(int(n) for n in _QUBIT_ARRAY.findall(text))
    total += len(_QUBIT_SINGLE.findall(text))
    physical = [int(k) for k in _PHYSICAL.findall(text)]
    return total + (max(physical) + 1 if physical else 0)
