"""Can a node run a gate? Native gates plus what Qiskit can translate (FR-004).

A node supports gate ``g`` if ``g`` is one of its native gates, or if Qiskit's
``BasisTranslator`` (``transpile(..., basis_gates=native, optimization_level=0)``)
can rewrite ``g`` into the native set:

* a 1-qubit gate, when the native set contains one of
  :data:`UNIVERSAL_1Q_SETS`;
* a gate on 2 or more qubits, when it also contains one of
  :data:`TRANSLATABLE_ENTANGLERS`.

Both lists hold only what the translator actually reaches with qiskit 2.6's
standard equivalence library (tests/test_placement.py transpiles every
standard gate into each listed combination). Notably ``{rz, ry}`` is *not*
reachable (no equivalence path), nor are the entanglers ``ch``, ``cy``,
``cu``, ``cu3``, ``cs``, ``csdg``, ``csx``, ``dcx``, ``swap``,
``xx_plus_yy`` and ``xx_minus_yy``: a node with those gates runs them
natively but cannot translate other gates into them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from qb2.compiler.estimate import gate_arity
from qb2.protocol.advert import ServiceAdvertisement

__all__ = [
    "TRANSLATABLE_ENTANGLERS",
    "UNIVERSAL_1Q_SETS",
    "gate_arity",  # the one table, :func:`qb2.compiler.estimate.gate_arity` (re-exported)
    "has_entangler",
    "has_universal_1q",
    "supported_subset",
    "supports_gate",
    "unsupported_gates",
]

#: Native 1-qubit sets from which every standard 1-qubit gate is reachable.
UNIVERSAL_1Q_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(s)
    for s in (
        {"u"},
        {"u3"},
        {"r"},
        {"rz", "sx"},
        {"rz", "sxdg"},
        {"rz", "rx"},
        {"rx", "ry"},
        {"rz", "h"},
        {"p", "sx"},
        {"p", "h"},
        {"rx", "p"},
        {"u1", "u2"},
        {"u1", "sx"},
        {"u1", "h"},
    )
)

#: 2-qubit gates into which (with a universal 1-qubit set) every standard gate translates.
TRANSLATABLE_ENTANGLERS: frozenset[str] = frozenset(
    {"cx", "cz", "ecr", "iswap", "rzz", "rxx", "ryy", "rzx", "cp", "crz", "crx", "cry", "cu1"}
)

def has_universal_1q(native_gates: Collection[str]) -> bool:
    """Whether ``native_gates`` contains one of :data:`UNIVERSAL_1Q_SETS`."""
    native = frozenset(native_gates)
    return any(s <= native for s in UNIVERSAL_1Q_SETS)


def has_entangler(native_gates: Collection[str]) -> bool:
    """Whether ``native_gates`` contains one of :data:`TRANSLATABLE_ENTANGLERS`."""
    return not TRANSLATABLE_ENTANGLERS.isdisjoint(native_gates)


def supports_gate(native_gates: Collection[str], gate: str, num_qubits: int | None = None) -> bool:
    """Whether a node with ``native_gates`` can run ``gate`` (natively or translated).

    Args:
        native_gates: the node's native gate names.
        gate: a Qiskit gate name.
        num_qubits: the gate's arity; looked up for standard gates when
            ``None``. Non-standard gates of unknown arity are supported only
            natively.
    """
    if gate in native_gates:
        return True
    arity = gate_arity(gate) if num_qubits is None else num_qubits
    if arity is None or arity < 1 or not has_universal_1q(native_gates):
        return False
    return arity == 1 or has_entangler(native_gates)


def supported_subset(native_gates: Collection[str], gates: Iterable[str]) -> frozenset[str]:
    """The members of ``gates`` that a node with ``native_gates`` supports."""
    native = frozenset(native_gates)
    return frozenset(g for g in gates if supports_gate(native, g))


def unsupported_gates(node: ServiceAdvertisement, gate_names: Iterable[str]) -> tuple[str, ...]:
    """The gates of ``gate_names`` that ``node`` cannot run, sorted and distinct."""
    native = frozenset(node.native_gates)
    return tuple(sorted({g for g in gate_names if not supports_gate(native, g)}))
