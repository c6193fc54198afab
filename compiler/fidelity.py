"""Estimated fidelity of a fragment on a node (FR-004, DESIGN.md "Execution semantics").

The estimate is a product of per-operation success probabilities, evaluated
in a fixed order so that equal inputs give bit-identical floats (NFR-001):

* a 1-qubit gate costs the node's ``gate_1q`` fidelity, a 2-qubit gate its
  ``gate_2q``;
* a gate on ``k >= 3`` qubits costs ``gate_2q ** (2k - 3)`` (3 two-qubit
  gates for ``ccx``, 5 for ``c3sx``): an approximation until fragments are
  costed after translation to the node's native gates;
* each teleported qubit (ebit) costs ``link_fidelity``;
* a readout costs ``readout`` per measurement.
"""

from __future__ import annotations

from collections.abc import Iterable

from compiler.ir import Operation
from protocol.advert import Fidelities


def gate_fidelity(fidelity: Fidelities, arity: int) -> float:
    """Estimated fidelity of one gate on ``arity`` (>= 1) qubits of a node with ``fidelity``."""
    if arity <= 1:
        return fidelity.gate_1q
    if arity == 2:
        return fidelity.gate_2q
    return fidelity.gate_2q ** (2 * arity - 3)


def fragment_fidelity(
    operations: Iterable[Operation], fidelity: Fidelities, link_fidelity: float, ebits: int
) -> float:
    """Estimated fidelity of a gate fragment, in [0, 1].

    Args:
        operations: the fragment's gates, in program order.
        fidelity: the assigned node's fidelities.
        link_fidelity: fidelity per ebit, in (0, 1].
        ebits: number of teleported qubits (>= 0).
    """
    result = 1.0
    for op in operations:
        result *= gate_fidelity(fidelity, len(op.qubits))
    return result * link_fidelity**ebits


def readout_fidelity(fidelity: Fidelities, num_measurements: int) -> float:
    """Estimated fidelity of ``num_measurements`` readouts on a node: ``readout ** n``."""
    return fidelity.readout**num_measurements
