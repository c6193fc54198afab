"""The fragment DAG: what :func:`qb2.compiler.partition.split_fragments` produces (FR-004).

A fragment is a set of circuit operations run together on one node under the
state-handoff model (DESIGN.md, Execution semantics). Fragments are numbered
in creation order, which is a topological order: every dependency points to
a lower index, and running the fragments in index order, each applying its
operations in program order, applies a circuit equivalent to the original.

The DAG is plain immutable data with integer fragment indices; fragment ids
(``f0``, ``f1`` ...) are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass


def fragment_id(index: int) -> str:
    """The public id of fragment ``index``: ``f0``, ``f1``, ..."""
    return f"f{index}"


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment of the circuit.

    Attributes:
        index: position in creation (topological) order, from 0.
        qubits: circuit qubits it acts on, ascending; ``len(qubits)`` is its width.
        operation_indices: indices into ``CircuitIR.operations``, ascending.
        depends_on: indices of the fragments that must run first, ascending;
            all are lower than ``index``.
        sources: ``(qubit, previous)`` for each of ``qubits``, ascending by
            qubit, where ``previous`` is the index of the fragment that last
            touched the qubit before this one, or ``None`` on first touch.
            ``depends_on`` is exactly the distinct non-``None`` ``previous``.
    """

    index: int
    qubits: tuple[int, ...]
    operation_indices: tuple[int, ...]
    depends_on: tuple[int, ...]
    sources: tuple[tuple[int, int | None], ...]

    @property
    def fragment_id(self) -> str:
        """``f{index}``."""
        return fragment_id(self.index)

    @property
    def width(self) -> int:
        """Number of circuit qubits the fragment acts on."""
        return len(self.qubits)


@dataclass(frozen=True, slots=True)
class FragmentDAG:
    """The fragments of one circuit and where each qubit ends up.

    Attributes:
        num_qubits: circuit width.
        fragments: in creation (topological) order; ``fragments[i].index == i``.
        last_fragment: for each circuit qubit, the index of the fragment that
            touched it last, or ``None`` if no gate acts on it.
    """

    num_qubits: int
    fragments: tuple[Fragment, ...]
    last_fragment: tuple[int | None, ...]

    def operation_order(self) -> tuple[int, ...]:
        """Operation indices in execution order (fragment by fragment).

        Applying ``ir.operations`` in this order is equivalent to the
        original program (the dependency-safety property of the partition).
        """
        return tuple(i for f in self.fragments for i in f.operation_indices)
