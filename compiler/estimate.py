"""The one estimate of success probability (fidelity) of running gates on a node (issue 12).

The planner's cost terms (:mod:`qb2.compiler.cost`: ``fidelity_risk`` and
``entanglement``), the coordinator's estimate of a job's result
(:func:`qb2.coordinator.fidelity.estimated_fidelity`) and a service node's
reservation check (:func:`qb2.service_node.ledger.estimate_success`) all call
this module, so they cannot disagree; :func:`gate_arity` is the one gate-arity
table of the code base.

Formula
-------
For gate counts ``{name: count}`` run on a node with advertised per-class
fidelities ``F1 = gate_1q``, ``F2 = gate_2q``, ``FR = readout`` (probabilities
in (0, 1], :class:`qb2.protocol.advert.Fidelities`), and one link fidelity
``FL_e`` in (0, 1] per ebit ``e`` consumed (one per teleported qubit)::

    success = F1**n1 * F2**n2 * FR**nm * prod_e FL_e          (in [0, 1])
    risk    = -ln(success)
            = n1 * -ln(F1) + n2 * -ln(F2) + nm * -ln(FR) + sum_e -ln(FL_e)   (nats, >= 0)

where the counts come from :func:`tally`, one rule per name:

* ``measure``: one readout (``nm``);
* ``barrier``, ``delay`` and ``global_phase`` (a 0-qubit gate): free (factor
  1): no gate error (the simulated nodes' noise model adds none to them);
* a Qiskit standard unitary gate on ``k`` qubits (:func:`gate_arity`):
  ``k == 1``: one 1-qubit gate (``n1``); ``k == 2``: one 2-qubit gate
  (``n2``); ``k >= 3``: ``2k - 3`` 2-qubit gates (a low-end CNOT count: 3
  for a relative-phase Toffoli, where an exact Toffoli needs 6);
* any other name (a node's custom native gate, ``reset``, ...): one 2-qubit
  gate (the conservative class: the advertisement has no fidelity for it).

This is the product-of-component-fidelities success estimate used by
error-aware NISQ placement (Nishio et al., "Extracting success from IBM's
20-qubit machines using error-aware compilation", ACM JETC 16(3), 2020). It
ignores error cancellation and idle decoherence: an estimate, not a bound.

Who passes what:

* planner: the fragment's *translated* native counts as ``(n1, n2)`` per
  node (the count table of :mod:`qb2.compiler.translation` follows the
  classes of :func:`tally`; tests/test_estimate.py checks it gate by gate)
  plus ``3`` 2-qubit gates per routing SWAP, readouts per node where the
  measured qubit resides, and per teleport the link fidelity
  ``min(F(A), F(B))`` (:mod:`qb2.compiler.cost`);
* coordinator: each finished fragment's reported ``native_op_counts`` and
  one link fidelity per ebit;
* service node: the gate counts of the operation it is asked to reserve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

from qiskit.circuit import Gate
from qiskit.circuit.library import get_standard_gate_name_mapping

from qb2.protocol.advert import Fidelities

__all__ = [
    "FREE",
    "ClassRisks",
    "GateTally",
    "NodeRisks",
    "estimated_success",
    "fidelity_nats",
    "gate_arity",
    "nats",
    "tally",
    "two_qubit_equivalent",
]

#: Arity of every Qiskit standard *unitary gate* on at least one qubit.
_ARITY: dict[str, int] = {
    name: op.num_qubits
    for name, op in get_standard_gate_name_mapping().items()
    if isinstance(op, Gate) and op.num_qubits >= 1
}

#: Names that cost nothing in the estimate (no gate error in the node's noise model).
FREE: frozenset[str] = frozenset({"barrier", "delay", "global_phase"})


def gate_arity(name: str) -> int | None:
    """Number of qubits of the Qiskit standard *unitary gate* ``name``.

    The one gate-arity table (``qiskit.circuit.library.get_standard_gate_name_mapping()``).

    Returns:
        The arity (>= 1), or None when ``name`` is not a standard gate or not
        a unitary gate on qubits (``measure``, ``reset``, ``delay``,
        ``barrier``, ``global_phase``, custom names).
    """
    return _ARITY.get(name)


def two_qubit_equivalent(arity: int) -> int:
    """2-qubit gates a native gate on ``arity >= 2`` qubits counts as: 1 for 2, ``2k - 3`` for ``k >= 3``."""
    return 1 if arity <= 2 else 2 * arity - 3


def nats(fidelity: float) -> float:
    """``-ln(fidelity)`` for a fidelity in (0, 1]; exactly 0.0 for 1.0."""
    return 0.0 if fidelity >= 1.0 else -math.log(fidelity)


class GateTally(NamedTuple):
    """Gate counts by fidelity class (see the module docstring).

    Attributes:
        one_qubit: 1-qubit gates (count, >= 0).
        two_qubit: 2-qubit-equivalent gates (count, >= 0).
        measurements: readouts (count, >= 0).
    """

    one_qubit: int = 0
    two_qubit: int = 0
    measurements: int = 0


def tally(gate_counts: Mapping[str, int]) -> GateTally:
    """Classify ``{name: count}`` by the rules of the module docstring.

    Raises:
        ValueError: a negative count.
    """
    one = two = measured = 0
    for name, count in gate_counts.items():
        if count < 0:
            raise ValueError(f"gate count for {name!r} is negative: {count}")
        if name == "measure":
            measured += count
        elif name in FREE:
            continue
        else:
            arity = gate_arity(name)
            if arity == 1:
                one += count
            else:  # 2 qubits and wider, and unknown names
                two += count * two_qubit_equivalent(arity or 2)
    return GateTally(one, two, measured)


class NodeRisks(Protocol):
    """``-ln`` of a node's per-class fidelities, in nats (:class:`qb2.compiler.cost.NodeCost` is one)."""

    @property
    def r1(self) -> float: ...

    @property
    def r2(self) -> float: ...

    @property
    def r_readout(self) -> float: ...


class ClassRisks(NamedTuple):
    """``-ln`` of the 1-qubit, 2-qubit and readout fidelities of a node, nats (a :class:`NodeRisks`)."""

    r1: float
    r2: float
    r_readout: float

    @classmethod
    def of(cls, fidelity: Fidelities) -> ClassRisks:
        """The risks of advertised fidelities (probabilities in (0, 1])."""
        return cls(nats(fidelity.gate_1q), nats(fidelity.gate_2q), nats(fidelity.readout))


def fidelity_nats(
    node: NodeRisks,
    one_qubit: int = 0,
    two_qubit: int = 0,
    measurements: int = 0,
    link_fidelities: Iterable[float] = (),
) -> float:
    """``-ln`` of the estimated success probability, in nats (>= 0): the module docstring's ``risk``.

    ``one_qubit * r1 + two_qubit * r2 + measurements * r_readout + sum(-ln F)``
    over ``link_fidelities`` (one entry per ebit), summed in that order.

    Args:
        node: the node's per-class risks (``-ln`` fidelity, nats).
        one_qubit / two_qubit / measurements: a :class:`GateTally` (``*tally(...)``).
        link_fidelities: one link fidelity in (0, 1] per ebit consumed.
    """
    risk = one_qubit * node.r1 + two_qubit * node.r2
    if measurements:
        risk += measurements * node.r_readout
    for fidelity in link_fidelities:
        risk += nats(fidelity)
    return risk


def estimated_success(
    gate_counts: Mapping[str, int],
    fidelity: Fidelities,
    *,
    link_fidelities: Iterable[float] = (),
) -> float:
    """Estimated success probability of running ``gate_counts`` on a node with ``fidelity``.

    ``exp(-fidelity_nats(ClassRisks.of(fidelity), *tally(gate_counts), link_fidelities))``:
    the product of the per-gate, per-readout and per-ebit fidelities
    (module docstring; Nishio et al. 2020).

    Args:
        gate_counts: ``{name: count}``, e.g. ``{"cx": 3, "rz": 10, "measure": 2}``; counts >= 0.
        fidelity: the node's advertised per-class fidelities, probabilities in (0, 1].
        link_fidelities: one link fidelity in (0, 1] per ebit consumed (e.g.
            ``(link_fidelity,) * ebits``).

    Returns:
        A probability in [0, 1].

    Raises:
        ValueError: a negative count.
    """
    return math.exp(-fidelity_nats(ClassRisks.of(fidelity), *tally(gate_counts), link_fidelities=link_fidelities))
