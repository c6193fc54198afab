"""Resource bounds enforced *while* a circuit is ingested (FR-003, FR-014).

A short program can describe an enormous circuit: 17 nested two-call gate
definitions expand to 131,072 operations, ``qubit[1_000_000] q;`` allocates a
million qubits, ``h q;`` on a wide register repeats itself. Checking limits on
the finished circuit is too late: the work and the memory are already spent.

So ingestion checks every bound incrementally, where the work happens:

* the source text before any parser sees it (bracket nesting, NUL bytes);
* the OpenQASM 2 bytecode stream, instruction by instruction, and the OpenQASM
  3 syntax tree before Qiskit's importer converts it (register sizes,
  broadcast instructions, the expanded size of every gate definition);
* the expansion of user-defined gates while lowering, with every visited
  definition node counted against :attr:`IngestLimits.max_operations`.

:class:`IngestStats` counts that work, so tests can assert that a hostile
input was refused after bounded work (a count, not a wall time).
"""

from __future__ import annotations

from dataclasses import dataclass

from qb2.compiler.errors import QasmValidationError


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one ingested circuit may cost (FR-014).

    Attributes:
        max_qubits: declared qubits in all registers (counted at declaration).
        max_clbits: declared classical bits in all registers.
        max_operations: gates plus measurements after every user-defined gate
            is expanded; also the budget of expansion work (definition nodes
            visited), so nested definitions cost at most this many steps.
        max_gate_nesting: how deeply user-defined gates may call each other.
        max_bracket_depth: nesting of ``( [ {`` in the source text; deeper
            expressions would exhaust the parsers' recursion (OpenQASM 3's
            ANTLR parser fails at a few hundred levels).
    """

    max_qubits: int = 64
    max_clbits: int = 1024
    max_operations: int = 100_000
    max_gate_nesting: int = 32
    max_bracket_depth: int = 128

    def __post_init__(self) -> None:
        for name in ("max_qubits", "max_clbits", "max_operations", "max_gate_nesting", "max_bracket_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")


@dataclass
class IngestStats:
    """Work done by one ingestion, filled in as it proceeds (also when it is refused).

    Attributes:
        instructions: parsed instructions read (OpenQASM 2 bytecode items, or
            OpenQASM 3 statements checked), before expansion.
        expanded: gate-definition nodes visited while sizing and expanding
            user-defined gates (each leaf gate and each user gate counts one).
    """

    instructions: int = 0
    expanded: int = 0


class LimitExceededError(QasmValidationError):
    """The circuit exceeds one of the :class:`IngestLimits` (422 ``too_*`` errors in the API).

    Attributes:
        limit: which bound was exceeded: an :class:`IngestLimits` field
            (``max_qubits``, ``max_clbits``, ``max_operations``,
            ``max_gate_nesting``, ``max_bracket_depth``) or a budget derived
            from ``max_operations``: ``max_expansion_steps`` (definition nodes
            visited), ``max_modifier_operations`` (OpenQASM 3 gate modifiers)
            or ``max_gate_definitions`` (OpenQASM 2 gate declarations).
        value: the amount found when ingestion stopped (a lower bound of the
            true amount: counting stops at the first excess).
        maximum: the limit's value.
    """

    def __init__(self, limit: str, value: int, maximum: int, message: str,
                 line: int | None = None, column: int | None = None) -> None:
        self.limit = limit
        self.value = value
        self.maximum = maximum
        super().__init__(message, line=line, column=column)

    def to_dict(self) -> dict[str, int | str | None]:
        """The validation error's dict plus ``limit``, ``value`` and ``maximum``."""
        return {**super().to_dict(), "limit": self.limit, "value": self.value, "maximum": self.maximum}


def too_many_operations(value: int, limits: IngestLimits) -> LimitExceededError:
    """The error for a circuit that expands to more than ``limits.max_operations`` operations."""
    return LimitExceededError(
        "max_operations", value, limits.max_operations,
        f"the circuit expands to more than {limits.max_operations} operations (gates and measurements, "
        "after expanding gate definitions); split it or raise limits.max_operations",
    )


def too_many_expansion_steps(value: int, limits: IngestLimits) -> LimitExceededError:
    """The error for expanding gate definitions in more than ``limits.max_operations`` steps."""
    return LimitExceededError(
        "max_expansion_steps", value, limits.max_operations,
        f"expanding the gate definitions takes more than {limits.max_operations} steps (limits.max_operations)",
    )


def too_deeply_nested(gate: str, depth: int, limits: IngestLimits) -> LimitExceededError:
    """The error for user gate definitions nested ``depth`` > ``limits.max_gate_nesting`` deep at ``gate``."""
    return LimitExceededError(
        "max_gate_nesting", depth, limits.max_gate_nesting,
        f"gate '{gate}' makes definitions nest {depth} deep; the limit is {limits.max_gate_nesting}",
    )


def check_source(text: str, limits: IngestLimits) -> None:
    """Refuse source text that would make a parser recurse or misbehave, in one linear scan.

    Raises:
        QasmValidationError: a NUL character (with its position).
        LimitExceededError: brackets nested deeper than ``limits.max_bracket_depth``
            (with the position of the first bracket too deep).
    """
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise QasmValidationError("the program contains a NUL character", line=line,
                                  column=nul - (text.rfind("\n", 0, nul) + 1) + 1)
    depth = 0
    line, line_start = 1, 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > limits.max_bracket_depth:
                raise LimitExceededError(
                    "max_bracket_depth", depth, limits.max_bracket_depth,
                    f"brackets nest deeper than {limits.max_bracket_depth} levels",
                    line=line, column=index - line_start + 1,
                )
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "\n":
            line, line_start = line + 1, index + 1


def check_width(qubits: int, clbits: int, limits: IngestLimits) -> None:
    """Refuse more than ``limits.max_qubits`` qubits or ``limits.max_clbits`` classical bits.

    Raises:
        LimitExceededError: ``max_qubits`` or ``max_clbits``.
    """
    if qubits > limits.max_qubits:
        raise LimitExceededError("max_qubits", qubits, limits.max_qubits,
                                 f"the program declares {qubits} qubits; the limit is {limits.max_qubits}")
    if clbits > limits.max_clbits:
        raise LimitExceededError("max_clbits", clbits, limits.max_clbits,
                                 f"the program declares {clbits} classical bits; the limit is {limits.max_clbits}")
