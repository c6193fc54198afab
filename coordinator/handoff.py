"""The simulated quantum state handed from fragment to fragment (DESIGN.md, Execution semantics).

The state is kept as independent *subsystems*: qubit groups that have not yet
interacted carry separate states, so fragments on different subsystems can run
concurrently on different nodes. A fragment touching several subsystems first
merges them (tensor product). Within a subsystem, qubits are kept in ascending
circuit order, so local index ``k`` is the ``k``-th smallest circuit qubit and
the layout matches Qiskit's little-endian convention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from qb2.protocol.execute import Representation
from qb2.protocol.state import zero_state


@dataclass
class Subsystem:
    """A group of circuit qubits (ascending) and their joint state."""

    qubits: tuple[int, ...]
    state: np.ndarray

    def local(self, qubit: int) -> int:
        """Local index of circuit qubit ``qubit`` in this subsystem."""
        return self.qubits.index(qubit)


def reorder(state: np.ndarray, representation: Representation, order: tuple[int, ...]) -> np.ndarray:
    """Permute a state whose local qubit ``k`` is circuit qubit ``order[k]`` into ascending order.

    Args:
        state: shape ``(2**n,)`` or ``(2**n, 2**n)``.
        order: circuit qubit per local index, length ``n``.
    """
    n = len(order)
    target = tuple(sorted(order))
    if target == order:
        return state
    perm = [order.index(q) for q in target]  # new local k' <- old local perm[k']
    # Tensor axis a (big-endian) holds local qubit n-1-a.
    axes = [n - 1 - perm[n - 1 - a] for a in range(n)]
    if representation == "statevector":
        return state.reshape([2] * n).transpose(axes).reshape(1 << n)
    axes2 = axes + [n + a for a in axes]
    return state.reshape([2] * (2 * n)).transpose(axes2).reshape(1 << n, 1 << n)


class QuantumState:
    """All subsystems of one job's simulated state.

    Args:
        num_qubits: circuit width; every qubit starts in its own |0> subsystem.
        representation: ``density_matrix`` or ``statevector``.
    """

    def __init__(self, num_qubits: int, representation: Representation) -> None:
        self.num_qubits = num_qubits
        self.representation = representation
        self._of: dict[int, Subsystem] = {}
        for q in range(num_qubits):
            self._of[q] = Subsystem((q,), zero_state(representation, 1))

    def subsystems_of(self, qubits: Iterable[int]) -> list[Subsystem]:
        """Distinct subsystems holding ``qubits``, ordered by their smallest qubit."""
        seen: dict[int, Subsystem] = {}
        for q in qubits:
            comp = self._of[q]
            seen[id(comp)] = comp
        return sorted(seen.values(), key=lambda c: c.qubits[0])

    def gather(self, qubits: Iterable[int]) -> Subsystem:
        """Merge the subsystems holding ``qubits`` into one and return it."""
        comps = self.subsystems_of(qubits)
        if len(comps) == 1:
            return comps[0]
        order: tuple[int, ...] = ()
        state = np.ones((1, 1) if self.representation == "density_matrix" else 1, dtype=np.complex128)
        for comp in comps:
            # The accumulated part is the low (less significant) qubits.
            state = np.kron(comp.state, state)
            order += comp.qubits
        merged = Subsystem(tuple(sorted(order)), reorder(state, self.representation, order))
        for q in merged.qubits:
            self._of[q] = merged
        return merged

    def update(self, subsystem: Subsystem, state: np.ndarray) -> None:
        """Replace ``subsystem``'s state with the state a node returned.

        Raises:
            ValueError: the shape does not match the subsystem's width.
        """
        dim = 1 << len(subsystem.qubits)
        expected = (dim, dim) if self.representation == "density_matrix" else (dim,)
        if state.shape != expected:
            raise ValueError(f"returned state has shape {state.shape}, expected {expected}")
        subsystem.state = state

    def full(self) -> np.ndarray:
        """The whole state over circuit qubits ``0..n-1`` (merges everything)."""
        return self.gather(range(self.num_qubits)).state
