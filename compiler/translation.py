"""Native gate counts of circuit gates after translation to a node's gate set (FR-004).

A node runs a fragment after ``qiskit.transpile(fragment, basis_gates=native,
optimization_level=0)`` (``service_node/executor.py``). Level 0 without a
coupling map does no layout, routing or optimisation: it unrolls gates on 3+
qubits and rewrites every gate through the standard equivalence library,
gate by gate. The translated size of a fragment is therefore the *sum* of the
translated sizes of its gates, and the planner does not transpile fragments
at all: it uses a per-``(native set, gate)`` count table built from Qiskit's
own translation of each gate, once per process (tests/test_cost.py checks
that the sum equals the transpiled fragment).

Building the table for a new native set costs one ``transpile`` call of a
circuit holding one instance of every requested gate on disjoint qubits
(about 4 ms for all 50 standard gates; the very first call in a process also
pays Qiskit's import-time warm-up). The table is memoised in this module
(no I/O; a plain dict, safe to share between threads because entries are
immutable and recomputing one gives the same value).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler.exceptions import TranspilerError

from qb2.compiler.estimate import tally

_STANDARD = get_standard_gate_name_mapping()


@dataclass(frozen=True, slots=True)
class NativeCount:
    """How one circuit gate translates on one native set.

    Attributes:
        ops: ``(native gate name, count)`` pairs, sorted by name.
        one_qubit: native gates on 1 qubit (count).
        two_qubit: native gates on 2 qubits, plus ``2k - 3`` per native gate on
            ``k >= 3`` qubits (a 2-qubit-equivalent count for a node that runs
            such a gate natively; ``2k - 3`` is a low-end estimate: 3 for a
            3-qubit gate, the CNOT count of a relative-phase Toffoli, where an
            exact Toffoli needs 6).
    """

    ops: tuple[tuple[str, int], ...]
    one_qubit: int
    two_qubit: int

    @property
    def size(self) -> int:
        """Total native operations."""
        return sum(n for _, n in self.ops)


_TABLE: dict[tuple[frozenset[str], str], NativeCount | None] = {}
_LOCK = threading.Lock()


def transpile_key(native_gates: Collection[str]) -> frozenset[str]:
    """The native names ``transpile`` can target (Qiskit standard gates), as the node computes them."""
    return frozenset(g for g in native_gates if g in _STANDARD)


def _arity(name: str) -> int:
    return _STANDARD[name].num_qubits


def _count(ops: dict[str, int]) -> NativeCount:
    """Gate classes of translated ``ops`` by the one rule of :func:`qb2.compiler.estimate.tally`."""
    counted = tally(ops)
    return NativeCount(tuple(sorted(ops.items())), counted.one_qubit, counted.two_qubit)


def _instance(name: str, salt: int) -> Gate:
    proto = _STANDARD[name]
    if not proto.params:
        return proto
    # Generic angles: level-0 translation never specialises on values, but
    # avoid 0 and multiples of pi all the same.
    return proto.base_class(*(0.3 + 0.1 * (salt + i) for i in range(len(proto.params))))


def _translate_block(native: frozenset[str], names: list[str]) -> dict[str, dict[str, int]] | None:
    """Translate one instance of each gate in ``names`` (disjoint qubits); None if transpile fails."""
    widths = [_arity(n) for n in names]
    qc = QuantumCircuit(sum(widths))
    owner: list[int] = []
    offset = 0
    for index, (name, width) in enumerate(zip(names, widths, strict=True)):
        qc.append(_instance(name, index), range(offset, offset + width), copy=False)
        owner.extend([index] * width)
        offset += width
    try:
        out = transpile(qc, basis_gates=sorted(native), optimization_level=0)
    except TranspilerError:
        return None
    counts: list[dict[str, int]] = [{} for _ in names]
    for inst in out.data:
        block = owner[out.find_bit(inst.qubits[0]).index]
        counts[block][inst.operation.name] = counts[block].get(inst.operation.name, 0) + 1
    return dict(zip(names, counts, strict=True))


def native_counts(native_gates: Collection[str], gates: Iterable[str]) -> dict[str, NativeCount | None]:
    """Translated counts of each gate in ``gates`` on a node with ``native_gates``.

    Args:
        native_gates: the node's advertised native gates.
        gates: circuit gate names (Qiskit standard gates; a non-standard name
            counts as itself when native, else as untranslatable).

    Returns:
        ``{gate: NativeCount}``, ``None`` for a gate Qiskit cannot translate
        into that set. A gate that is itself native counts as one of itself.
    """
    native = frozenset(native_gates)
    key = transpile_key(native)
    result: dict[str, NativeCount | None] = {}
    missing: list[str] = []
    for gate in sorted(set(gates)):
        if gate in native:
            result[gate] = _count({gate: 1})
        elif gate not in _STANDARD or not isinstance(_STANDARD[gate], Gate):
            result[gate] = None
        elif (key, gate) in _TABLE:
            result[gate] = _TABLE[(key, gate)]
        else:
            missing.append(gate)
    if missing:
        translated = _translate_block(key, missing)
        if translated is None:  # some gate does not translate: find which, one by one
            translated = {}
            for gate in missing:
                one = _translate_block(key, [gate])
                if one is not None:
                    translated.update(one)
        with _LOCK:
            for gate in missing:
                ops = translated.get(gate)
                _TABLE[(key, gate)] = None if ops is None else _count(ops)
        for gate in missing:
            result[gate] = _TABLE[(key, gate)]
    return result


def warm_up(native_sets: Iterable[Collection[str]]) -> None:
    """Fill the table for every standard gate on each native set (one ``transpile`` per new set).

    The coordinator may call it when it discovers a node with a new gate set
    (or at start-up), so that no job's compile pays Qiskit's first-call
    warm-up (about 0.5 s) or a table build (about 4 ms per set).
    """
    gates = [g for g, op in _STANDARD.items() if isinstance(op, Gate)]
    for native in native_sets:
        native_counts(native, gates)
