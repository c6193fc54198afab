"""OpenQASM 3 import with :class:`~qb2.compiler.limits.IngestLimits` checked statement by statement.

``qiskit.qasm3.loads`` (qiskit-qasm3-import 0.6) allocates every declared
register, broadcasts every gate over whole registers and *deep-copies* a user
gate's definition at each call, so ``qubit[1_000_000] q;`` or 16 nested
two-call gate definitions (33 s, measured) cost whatever the text asks for.
:class:`BoundedConverter` is its converter with the bounds checked before each
statement's work is done:

* register sizes are resolved and counted before the register is allocated;
* a gate definition's expanded size and nesting depth are computed from its
  body before the body is converted (callees are defined earlier, as OpenQASM
  requires);
* a gate call is charged its broadcast width times its expanded size;
* calls become :class:`ProgramGate` objects whose definitions are bound on
  first use instead of copied at every call; gate modifiers (``inv``,
  ``ctrl``, ``pow``), which make Qiskit rebuild the whole definition, are
  charged its expanded size against a budget of their own (1% of
  ``max_operations``) and in ``stats.expanded``.
"""

from __future__ import annotations

import re

import openqasm3
from openqasm3 import ast
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Qubit
from qiskit_qasm3_import.converter import ConvertVisitor, GateBuilder
from qiskit_qasm3_import.state import Scope, State

from qb2.compiler.errors import QasmValidationError
from qb2.compiler.limits import (
    IngestLimits,
    IngestStats,
    LimitExceededError,
    check_width,
    too_deeply_nested,
    too_many_expansion_steps,
    too_many_operations,
)
from qb2.compiler.lower import UNSUPPORTED_HINT

_PHYSICAL = re.compile(r"\$(\d+)")

#: Gate modifiers may expand at most ``max_operations // MODIFIER_BUDGET_DIVISOR`` operations.
MODIFIER_BUDGET_DIVISOR = 100
#: ``pow`` computes a dense matrix power (4**n entries): allowed on gates of at most this many qubits.
MODIFIER_POW_MAX_QUBITS = 3


def _line(node: ast.QASMNode) -> int | None:
    return node.span.start_line if node.span is not None else None


def _column(node: ast.QASMNode) -> int | None:
    return node.span.start_column + 1 if node.span is not None else None


class ProgramGate(Gate):
    """A call of a gate defined in the program, its definition bound on first use.

    The importer binds (and deep-copies) the callee's whole definition tree at
    every call, also for the symbolic calls inside other definitions, which
    makes nested parameterised definitions exponential. Binding lazily costs
    one level per distinct call, and only when the lowering asks for it.
    The lowering shares the expansion of every call with the same builder and
    parameters (``definition_source``).
    """

    def __init__(self, builder: GateBuilder, params: list[object]) -> None:
        super().__init__(builder._name, builder._definition.num_qubits, params)
        self._builder = builder
        self.definition_source = builder  # the lowering shares one expansion per (source, params)

    def _define(self) -> None:
        builder = self._builder
        if not self.params:
            self._definition = builder._definition  # read-only from here on: shared, not copied
        else:
            self._definition = builder._definition.assign_parameters(dict(zip(builder._order, self.params)))


class _LazyGateBuilder:
    """Stands in for the importer's :class:`GateBuilder`: calls give :class:`ProgramGate` objects."""

    def __init__(self, inner: GateBuilder) -> None:
        self._inner = inner

    def __call__(self, *parameters: object) -> Gate:
        if len(parameters) != len(self._inner._order):
            return self._inner(*parameters)  # the importer's own arity error
        return ProgramGate(self._inner, list(parameters))


class BoundedConverter(ConvertVisitor):
    """``qiskit_qasm3_import``'s converter with ingestion limits (see the module docstring).

    Raises (from :meth:`convert`): :class:`LimitExceededError` at the first
    statement that exceeds a limit; the importer's own errors otherwise.
    """

    def __init__(self, limits: IngestLimits, stats: IngestStats) -> None:
        super().__init__()
        self._limits = limits
        self._stats = stats
        self._gate_sizes: dict[str, tuple[int, int]] = {}  # name -> (expanded size, nesting depth)
        self._qubits = 0
        self._clbits = 0
        self._operations = 0
        self._modifier_work = 0

    def _charge(self, work: int) -> None:
        """Count ``work`` steps about to be done; refuse them, undone, if they exceed the budget."""
        if self._stats.expanded + work > self._limits.max_operations:
            raise too_many_expansion_steps(self._stats.expanded + work, self._limits)
        self._stats.expanded += work

    def _count_operations(self, n: int) -> None:
        self._operations += n
        if self._operations > self._limits.max_operations:
            raise too_many_operations(self._operations, self._limits)

    def visit_Program(self, node: ast.Program, context: State) -> State:  # noqa: N802 - visitor protocol
        for statement in node.statements:
            self._stats.instructions += 1
            context = self.visit(statement, context)
        return context

    def visit_QubitDeclaration(self, node: ast.QubitDeclaration, context: State) -> State:  # noqa: N802
        size = 1 if node.size is None else self._resolve_constant_int(node.size, context)
        self._qubits += max(0, size)
        check_width(self._qubits, self._clbits, self._limits)
        return super().visit_QubitDeclaration(node, context)

    def visit_ClassicalDeclaration(self, node: ast.ClassicalDeclaration, context: State) -> State:  # noqa: N802
        if isinstance(node.type, ast.BitType):
            size = 1 if node.type.size is None else self._resolve_constant_int(node.type.size, context)
            self._clbits += max(0, size)
            check_width(self._qubits, self._clbits, self._limits)
        return super().visit_ClassicalDeclaration(node, context)

    def visit_QuantumGateDefinition(self, node: ast.QuantumGateDefinition, context: State) -> State:  # noqa: N802
        size, depth = 0, 1
        for statement in node.body:
            if isinstance(statement, ast.QuantumGate):
                callee_size, callee_depth = self._gate_sizes.get(statement.name.name, (1, 0))
                size += callee_size
                depth = max(depth, callee_depth + 1)
            else:
                size += 1
        name = node.name.name
        if depth > self._limits.max_gate_nesting:
            raise too_deeply_nested(name, depth, self._limits)
        if size > self._limits.max_operations:
            raise too_many_operations(size, self._limits)
        self._gate_sizes[name] = (size, depth)
        return super().visit_QuantumGateDefinition(node, context)

    def _define_gate(self, name, definition, n_parameters, n_qubits, definer, context):  # type: ignore[no-untyped-def]
        if isinstance(definition, GateBuilder):
            # qiskit_qasm3_import 0.6 orders a gate's parameters by name (QuantumCircuit.parameters is
            # sorted), so `gate g(t, s)` called as g(0.1, 0.2) bound t=0.2: restore declaration order.
            declared = [argument.name for argument in getattr(definer, "arguments", [])]
            by_name = {parameter.name: parameter for parameter in definition._order}
            if sorted(declared) == sorted(by_name):
                definition._order = tuple(by_name[n] for n in declared)
            definition = _LazyGateBuilder(definition)
        return super()._define_gate(name, definition, n_parameters, n_qubits, definer, context)

    def visit_QuantumGate(self, node: ast.QuantumGate, context: State) -> State:  # noqa: N802
        self._bound_call(node, self._gate_sizes.get(node.name.name, (1, 0))[0], context)
        return super().visit_QuantumGate(node, context)

    def visit_QuantumPhase(self, node: ast.QuantumPhase, context: State) -> State:  # noqa: N802
        self._bound_call(node, 1, context)
        return super().visit_QuantumPhase(node, context)

    def _bound_call(self, node: ast.QuantumGate | ast.QuantumPhase, size: int, context: State) -> None:
        """Count a gate (or ``gphase``) call: broadcast width x expanded size; charge its modifiers."""
        width = 1
        if context.scope is not Scope.GATE:
            for qarg in node.qubits:
                value = self._resolve_qarg(qarg, context)
                width = max(width, 1 if isinstance(value, Qubit) else len(value))
            self._count_operations(width * size)
        if node.modifiers:
            operands = max(1, len(node.qubits))
            if operands > MODIFIER_POW_MAX_QUBITS and any(
                    m.modifier is ast.GateModifierName.pow for m in node.modifiers):
                raise LimitExceededError(
                    "max_modifier_operations", operands, MODIFIER_POW_MAX_QUBITS,
                    f"'pow' builds the gate's {2 ** operands}x{2 ** operands} matrix; qb2 allows it on gates "
                    f"of at most {MODIFIER_POW_MAX_QUBITS} qubits",
                    line=_line(node), column=_column(node),
                )
            self._charge_modifier(size * width * operands)

    def _unsupported(self, node: ast.QASMNode, what: str) -> None:
        raise QasmValidationError(f"{what}: {UNSUPPORTED_HINT}", line=_line(node), column=_column(node))

    # Refused by the lowering anyway; refused here before their bodies or broadcasts cost anything.
    def visit_QuantumReset(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        target = self._resolve_qarg(node.qubits, context)
        bits = [target] if isinstance(target, Qubit) else list(target)
        indices = [context.circuit.find_bit(bit).index for bit in bits[:8]]
        where = f"qubit {indices[0]}" if len(bits) == 1 else f"qubits {indices}"
        raise QasmValidationError(f"'reset' on {where}: {UNSUPPORTED_HINT}")

    def visit_BranchingStatement(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        self._unsupported(node, "classically controlled 'if'")

    def visit_WhileLoop(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        self._unsupported(node, "'while' loop")

    def visit_ForInLoop(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        self._unsupported(node, "'for' loop")

    def visit_Box(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        self._unsupported(node, "'box'")

    def _charge_modifier(self, work: int) -> None:
        """Gate modifiers (``inv``, ``ctrl``, ``negctrl``, ``pow``) make Qiskit rebuild (and, for a
        broadcast, deep-copy) the whole definition, at about 100 microseconds per operation: they
        get their own budget, ``max_operations // MODIFIER_BUDGET_DIVISOR`` operations in all."""
        budget = max(1, self._limits.max_operations // MODIFIER_BUDGET_DIVISOR)
        self._modifier_work += work
        if self._modifier_work > budget:
            raise LimitExceededError(
                "max_modifier_operations", self._modifier_work, budget,
                f"gate modifiers (inv, ctrl, negctrl, pow) may apply to at most {budget} operations in all "
                f"(limits.max_operations / {MODIFIER_BUDGET_DIVISOR}); define the modified gate explicitly",
            )
        self._charge(work)

    def visit_QuantumMeasurementStatement(self, node, context):  # type: ignore[no-untyped-def]  # noqa: N802
        if context.scope is not Scope.GATE and node.measure is not None:
            value = self._resolve_qarg(node.measure.qubit, context)
            self._count_operations(1 if isinstance(value, Qubit) else len(value))
        return super().visit_QuantumMeasurementStatement(node, context)


def load_bounded(text: str, limits: IngestLimits, stats: IngestStats) -> QuantumCircuit:
    """Parse and convert an OpenQASM 3 program within ``limits``.

    Raises:
        LimitExceededError: a physical qubit ``$k`` with ``k >= max_qubits`` or
            any bound of :class:`BoundedConverter`.
        Exception: whatever ``openqasm3.parse`` or the importer raise for
            invalid programs (translated by :mod:`qb2.compiler.qasm_errors`).
    """
    physical = [int(k) for k in _PHYSICAL.findall(text)]
    if physical:
        check_width(max(physical) + 1, 0, limits)
    return BoundedConverter(limits, stats).convert(openqasm3.parse(text)).circuit
