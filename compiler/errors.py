"""The compiler's errors (FR-003, FR-004): :class:`CompilerError` and its two user-facing kinds.

Both kinds subclass :class:`ValueError` too (the input, not the compiler, is at fault)
and serialise to plain dicts with :meth:`to_dict` so the job API can return
them as structured error bodies.
"""

from __future__ import annotations

from typing import Literal

from qb2.protocol.errors import Qb2Error

#: Which planning constraint could not be met (see :class:`InfeasiblePlanError`).
Constraint = Literal[
    "no_nodes", "degraded", "gate_support", "width", "representation", "min_fidelity"
]


class CompilerError(Qb2Error):
    """Base of the compiler's errors (the tree is in :mod:`qb2.protocol.errors`)."""


class QasmValidationError(CompilerError, ValueError):
    """The circuit text or object is not something qb2 can run (FR-003).

    Attributes:
        line: 1-based line of the offending token in the submitted text, or
            ``None`` where the error is not tied to a position (for example a
            semantic rule checked after parsing, such as mid-circuit
            measurement, or a circuit given as a ``QuantumCircuit``).
        column: 1-based column (characters from the start of the line, plus
            one), or ``None`` when unknown. Qiskit's parsers report 0-based
            columns; the ingest layer converts them.
        message: one human-readable sentence without the position prefix.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(self._render())

    def _render(self) -> str:
        if self.line is None:
            return self.message
        if self.column is None:
            return f"line {self.line}: {self.message}"
        return f"line {self.line}, column {self.column}: {self.message}"

    def to_dict(self) -> dict[str, int | str | None]:
        """Return ``{"line": int | None, "column": int | None, "message": str}``."""
        return {"line": self.line, "column": self.column, "message": self.message}


class InfeasiblePlanError(CompilerError, ValueError):
    """No assignment of the circuit to the available nodes exists (FR-004).

    Attributes:
        constraint: the violated constraint, one of ``no_nodes`` (no node is
            available), ``gate_support`` (a gate, or a fragment's set of gates,
            is supported by no available node), ``width`` (a fragment needs
            more or fewer qubits than any node accepts), ``representation``
            (the circuit is wider than the simulators allow) or
            ``min_fidelity`` (no plan's estimated fidelity reaches the job's
            floor) or ``degraded`` (every available node is marked degraded).
        message: an actionable sentence: what is missing and what would fix it.
    """

    def __init__(self, constraint: Constraint, message: str) -> None:
        self.constraint: Constraint = constraint
        self.message = message
        super().__init__(f"{constraint}: {message}")

    def to_dict(self) -> dict[str, str]:
        """Return ``{"constraint": str, "message": str}``."""
        return {"constraint": self.constraint, "message": self.message}
