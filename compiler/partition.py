"""Split a circuit's operations into fragments (state-handoff model, FR-004).

The rule, one pass in program order, tracking for every qubit its *current
fragment* (the fragment that last touched it):

For an operation on qubits ``Q``, let ``S`` be the set of current fragments of
the already-touched qubits in ``Q``.

* If ``S == {F}``, ``F`` holds fewer than ``max_fragment_ops`` operations
  (is not closed), ``len(F.qubits | Q) <= max_fragment_qubits`` and the optional
  ``accepts`` predicate allows the grown fragment, the operation joins ``F``.
* Otherwise a new fragment holding just this operation is created; it depends
  on every fragment in ``S`` (empty ``S``: it depends on nothing).

Why joining ``F`` is safe: every qubit of ``Q`` is either untouched or has
``F`` as its current fragment, so no operation placed in a later fragment
touches ``Q``. The joined operation therefore commutes with everything that
was scheduled after ``F`` was created and may run as part of ``F``. Creating a
new fragment is always safe. Hence running fragments in creation order
reproduces the circuit exactly (tests/test_partition.py checks the unitary).

Cost: O(operations x width) time, O(qubits + operations) memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qb2.compiler.dag import Fragment, FragmentDAG
from qb2.compiler.errors import InfeasiblePlanError
from qb2.compiler.ir import CircuitIR

#: ``accepts(gate_names, width)``: may one fragment hold these gates at this width?
AcceptsFragment = Callable[[frozenset[str], int], bool]


@dataclass(slots=True)
class _Open:
    """A fragment under construction."""

    index: int
    qubits: set[int]
    ops: list[int]
    gates: set[str]
    sources: dict[int, int | None]
    depends_on: set[int] = field(default_factory=set)

    def freeze(self) -> Fragment:
        return Fragment(
            index=self.index,
            qubits=tuple(sorted(self.qubits)),
            operation_indices=tuple(self.ops),
            depends_on=tuple(sorted(self.depends_on)),
            sources=tuple(sorted(self.sources.items())),
        )


def split_fragments(
    ir: CircuitIR,
    max_fragment_qubits: int = 4,
    max_fragment_ops: int = 12,
    accepts: AcceptsFragment | None = None,
) -> FragmentDAG:
    """Partition ``ir.operations`` into dependency-ordered fragments.

    Args:
        ir: the circuit.
        max_fragment_qubits: width cap of a fragment (qubits), >= 1.
        max_fragment_ops: operations per fragment, >= 1; a fragment that
            reaches it is closed.
        accepts: optional extra condition for growing a fragment, called with
            the grown fragment's gate names and width; the planner passes "some
            available node supports these gates at this width" so that a
            fragment is never grown into one no node can run. It never
            prevents creating a fragment.

    Returns:
        The :class:`FragmentDAG`; fragment indices follow creation order and
        operation indices are ascending within each fragment.

    Raises:
        InfeasiblePlanError: (``constraint="width"``) an operation acts on more
            than ``max_fragment_qubits`` qubits.
        ValueError: a cap is below 1.
    """
    if max_fragment_qubits < 1 or max_fragment_ops < 1:
        raise ValueError("max_fragment_qubits and max_fragment_ops must be >= 1")
    current: list[int | None] = [None] * ir.num_qubits
    fragments: list[_Open] = []
    for op_index, op in enumerate(ir.operations):
        touched = {current[q] for q in op.qubits} - {None}
        if len(touched) == 1:
            owner = fragments[touched.pop()]  # type: ignore[index]
            new_qubits = [q for q in op.qubits if q not in owner.qubits]
            width = len(owner.qubits) + len(new_qubits)
            if (
                len(owner.ops) < max_fragment_ops
                and width <= max_fragment_qubits
                and (accepts is None or accepts(frozenset(owner.gates | {op.name}), width))
            ):
                owner.ops.append(op_index)
                owner.gates.add(op.name)
                for q in new_qubits:  # untouched so far: first touch, no source
                    owner.qubits.add(q)
                    owner.sources[q] = None
                    current[q] = owner.index
                continue
        if len(op.qubits) > max_fragment_qubits:
            raise InfeasiblePlanError(
                "width",
                f"operation {op_index} ('{op.name}') acts on {len(op.qubits)} qubits but "
                f"fragments are capped at {max_fragment_qubits} qubits",
            )
        created = _Open(
            index=len(fragments),
            qubits=set(op.qubits),
            ops=[op_index],
            gates={op.name},
            sources={q: current[q] for q in op.qubits},
            depends_on={current[q] for q in op.qubits if current[q] is not None},  # type: ignore[misc]
        )
        fragments.append(created)
        for q in op.qubits:
            current[q] = created.index
    return FragmentDAG(
        num_qubits=ir.num_qubits,
        fragments=tuple(f.freeze() for f in fragments),
        last_fragment=tuple(current),
    )
