"""Routing on a node's coupling map (FR-016): one pure routine for the planner and the device node.

A node that advertises a ``coupling_map`` (:class:`qb2.protocol.advert.ServiceAdvertisement`)
can apply a 2-qubit gate only to a coupled pair of its qubits; a fragment whose
2-qubit gates are not all on coupled pairs needs SWAPs. This module decides
those SWAPs, and both sides call it:

* the node (:class:`qb2.service_node.devices.DeviceModel`) routes each fragment it
  runs with :func:`route_fragment`, then translates the routed circuit to its
  calibrated device target (which inserts no further SWAPs);
* the planner (:func:`qb2.compiler.planner.plan_circuit`) counts the same
  routine's SWAPs (:func:`fragment_routing_swaps`) for every fragment it
  could place on such a node, and charges them in its search as extra
  two-qubit gates on that node.

Same routine, same inputs, fixed seed: the plan's ``routing_swaps`` is the
number of SWAPs the node inserts (tests/test_devices.py checks it).

Placement contract (the advertised numbering)
---------------------------------------------
A node numbers its qubits ``0..max-1`` (``qubit_range.max``) in *placement
order*: every qubit ``k > 0`` is coupled to some qubit ``< k``
(:func:`qb2.protocol.advert.ServiceAdvertisement` enforces it), so qubits
``0..m-1`` are connected for every ``m``. A fragment acting on ``m`` distinct
qubits is placed on qubits ``0..m-1``, its ``j``-th smallest qubit on qubit
``j`` (the coordinator hands states over in ascending circuit-qubit order,
``coordinator/handoff.py``, so the node sees the same relative order). A
device node builds this numbering with :func:`placement_order`: a breadth-first
walk from physical qubit 0, neighbours in ascending order.

The routine (:func:`route_fragment`)
------------------------------------
1. build the fragment on ``m`` qubits; gates on 3 or more qubits are unrolled
   through their Qiskit definitions (``Unroll3qOrMore``), since a coupling map
   only describes pairs;
2. if every 2-qubit gate is on a coupled pair (either direction: direction is
   fixed later by gate translation, not by SWAPs), nothing is inserted;
3. else SABRE (``SabreSwap(heuristic="decay", trials=5, seed=11)``, Li, Ding
   and Xie, "Tackling the qubit mapping problem for NISQ-era quantum devices",
   ASPLOS 2019; Qiskit's routing pass at ``optimization_level=1``) on the
   coupling map restricted to qubits ``0..m-1``, from the trivial initial
   layout. The fixed seed and trial count make it deterministic (the trial
   count is not left to Qiskit's ``QISKIT_SABRE_ALL_THREADS`` default).

Results are memoised per ``(ops, m, coupling)`` (LRU, 4096 entries): a
fragment costs one SABRE run (about 1 ms for 12 gates on 5 qubits) the first
time it is seen, nothing after. Fragments on nodes without a coupling map are
never looked at.

Cost of a SWAP in the plan
--------------------------
A SWAP is 3 two-qubit gates (``SWAP = CX(a,b) CX(b,a) CX(a,b)``, Qiskit's
``SwapGate`` definition; 3 CNOTs are necessary, Vatan and Williams, "Optimal
quantum circuits for general two-qubit gates", PRA 69, 032315, 2004), each at
the node's advertised 2-qubit fidelity and duration: it adds
``3 * -ln(gate_2q)`` nats of fidelity risk and ``3 * gate_2q_us`` of latency
(``qb2.compiler.placement_model.PlacementModel.problem``). The 1-qubit gates a
translation may add around a SWAP (direction fixes on ``ecr`` devices) are not counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from qiskit import QuantumCircuit
from qiskit.circuit import Gate, QuantumRegister
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.transpiler import CouplingMap, PropertySet
from qiskit.transpiler.passes import SabreSwap, Unroll3qOrMore

__all__ = [
    "ROUTING_SEED",
    "ROUTING_TRIALS",
    "SWAP_TWO_QUBIT_GATES",
    "OpKey",
    "RoutedFragment",
    "fragment_routing_swaps",
    "local_ops",
    "placement_order",
    "restrict",
    "route_fragment",
]

#: SABRE seed shared by the planner and device nodes (the node's value before this module existed).
ROUTING_SEED = 11
#: SABRE trials (Qiskit's ``optimization_level=1`` default), fixed so every machine routes alike.
ROUTING_TRIALS = 5
#: Two-qubit gates per SWAP (module docstring).
SWAP_TWO_QUBIT_GATES = 3

_STANDARD = get_standard_gate_name_mapping()

Pair = tuple[int, int]
#: ``(name, qubits, params)`` of one gate: the hashable form used as a cache key.
OpKey = tuple[str, tuple[int, ...], tuple[float, ...]]


class GateLike(Protocol):
    """What routing reads from a gate: ``qb2.compiler.ir.Operation`` and ``qb2.protocol.execute.GateOp`` both fit."""

    @property
    def name(self) -> str: ...

    @property
    def qubits(self) -> tuple[int, ...]: ...

    @property
    def params(self) -> tuple[float, ...]: ...


@dataclass(frozen=True)
class RoutedFragment:
    """A fragment routed on ``m`` qubits (:func:`route_fragment`).

    Attributes:
        circuit: ``m``-qubit circuit (register ``q``): the fragment's gates
            (3+-qubit gates unrolled) plus the inserted ``swap`` gates; every
            2-qubit gate is on a coupled pair. Shared by the cache: never mutate it.
        final: logical qubit ``j`` ends on wire ``final[j]`` (identity without SWAPs).
        swaps: SWAPs inserted by routing (SWAP gates of the fragment itself are not counted).
    """

    circuit: QuantumCircuit
    final: tuple[int, ...]
    swaps: int


# --------------------------------------------------------------------------- placement


def placement_order(num_qubits: int, pairs: Iterable[Pair]) -> tuple[int, ...]:
    """Physical qubits reachable from qubit 0, in breadth-first order (neighbours ascending).

    Pairs are read undirected. A device node numbers its qubits in this
    order for its advertisement (the first ``m`` are always connected).

    Args:
        num_qubits: the device's qubit count (qubits are ``0..num_qubits-1``).
        pairs: coupled physical pairs.
    """
    neighbours: dict[int, set[int]] = {q: set() for q in range(num_qubits)}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    order = [0] if num_qubits else []
    queue = deque(order)
    visited = set(order)
    while queue:
        q = queue.popleft()
        for nb in sorted(neighbours[q]):
            if nb not in visited:
                visited.add(nb)
                order.append(nb)
                queue.append(nb)
    return tuple(order)


def restrict(pairs: Iterable[Pair], qubits: Sequence[int]) -> tuple[Pair, ...]:
    """The pairs among ``qubits``, relabelled ``qubits[j] -> j``, sorted (direction kept).

    A device node advertises ``restrict(coupling, placement_order(...)[:max])``;
    the planner and the node route an ``m``-qubit fragment on ``restrict(advertised, range(m))``.
    """
    index = {q: j for j, q in enumerate(qubits)}
    return tuple(sorted((index[a], index[b]) for a, b in pairs if a in index and b in index))


def local_ops(ops: Iterable[GateLike]) -> tuple[tuple[OpKey, ...], int]:
    """``ops`` relabelled onto ``0..m-1`` (the ``j``-th smallest qubit -> ``j``), and ``m``."""
    ops = tuple(ops)
    active = sorted({q for op in ops for q in op.qubits})
    index = {q: j for j, q in enumerate(active)}
    keyed = tuple(
        (op.name, tuple(index[q] for q in op.qubits), tuple(float(p) for p in op.params)) for op in ops
    )
    return keyed, len(active)


# --------------------------------------------------------------------------- routing


def _gate(name: str, params: tuple[float, ...]) -> Gate:
    template = _STANDARD.get(name)
    if template is None or not isinstance(template, Gate):
        raise ValueError(f"cannot route gate {name!r}: not a Qiskit standard unitary gate")
    if len(params) != len(template.params):
        raise ValueError(f"gate {name!r} takes {len(template.params)} parameter(s), got {len(params)}")
    return template if not params else type(template)(*params)


def _mapped(ops: Iterable[OpKey], coupled: frozenset[frozenset[int]]) -> bool:
    """Every gate on at most 2 qubits, and every 2-qubit gate on a coupled pair (undirected)."""
    for _, qubits, _ in ops:
        if len(qubits) > 2 or (len(qubits) == 2 and frozenset(qubits) not in coupled):
            return False
    return True


def _undirected(pairs: Iterable[Pair]) -> frozenset[frozenset[int]]:
    return frozenset(frozenset(p) for p in pairs)


def _circuit(ops: Sequence[OpKey], m: int) -> QuantumCircuit:
    qc = QuantumCircuit(QuantumRegister(m, "q"))
    for name, qubits, params in ops:
        qc.append(_gate(name, params), list(qubits), copy=False)
    return qc


@lru_cache(maxsize=4096)
def _route(ops: tuple[OpKey, ...], m: int, pairs: tuple[Pair, ...]) -> RoutedFragment:
    identity = tuple(range(m))
    qc = _circuit(ops, m)
    if _mapped(ops, _undirected(pairs)):
        return RoutedFragment(qc, identity, 0)
    if any(len(q) > 2 for _, q, _ in ops):
        qc = Unroll3qOrMore()(qc)
        unrolled = tuple(
            (inst.operation.name, tuple(qc.find_bit(q).index for q in inst.qubits), ())
            for inst in qc.data
        )
        if _mapped(unrolled, _undirected(pairs)):
            return RoutedFragment(qc, identity, 0)
    if m > 1 and len(placement_order(m, pairs)) < m:
        raise ValueError(f"coupling map {list(pairs)} does not connect qubits 0..{m - 1}")
    before = qc.count_ops().get("swap", 0)
    props = PropertySet()
    sabre = SabreSwap(CouplingMap([list(p) for p in pairs]), heuristic="decay", seed=ROUTING_SEED,
                      trials=ROUTING_TRIALS)
    routed = sabre(qc, property_set=props)
    layout = props["final_layout"]
    final = identity if layout is None else tuple(int(layout[qc.qubits[j]]) for j in range(m))
    return RoutedFragment(routed, final, int(routed.count_ops().get("swap", 0)) - before)


def route_fragment(ops: Sequence[OpKey], num_qubits: int, coupling: Sequence[Pair]) -> RoutedFragment:
    """Route a fragment on a coupling map (module docstring, steps 1-3). Deterministic and memoised.

    Args:
        ops: ``(name, qubits, params)`` per gate, qubits in ``0..num_qubits-1``
            (:func:`local_ops` builds them); Qiskit standard gate names.
        num_qubits: ``m``, the qubits the fragment is placed on.
        coupling: coupled pairs among ``0..m-1`` (see :func:`restrict`); qubits
            ``0..m-1`` must be connected when routing is needed.

    Returns:
        The :class:`RoutedFragment` (shared, read-only).

    Raises:
        ValueError: an unknown or non-unitary gate, a wrong parameter count, or
            a coupling map that leaves the qubits disconnected.
    """
    key_ops = tuple((str(n), tuple(int(q) for q in qs), tuple(float(p) for p in ps)) for n, qs, ps in ops)
    pairs = tuple(sorted((int(a), int(b)) for a, b in coupling))
    for q in [q for _, qubits, _ in key_ops for q in qubits] + [q for p in pairs for q in p]:
        if not 0 <= q < num_qubits:
            raise ValueError(f"qubit {q} outside the {num_qubits} qubits of the fragment")
    return _route(key_ops, int(num_qubits), pairs)


def fragment_routing_swaps(ops: Iterable[GateLike], coupling: Sequence[Pair]) -> int:
    """SWAPs a node with ``coupling`` (advertised numbering) inserts for a fragment of ``ops``.

    ``ops`` are on any qubit indices (circuit or state): they are placed by
    the placement contract (``j``-th smallest qubit on qubit ``j``). Fragments
    whose 2-qubit gates already follow the map cost no Qiskit call.

    Raises:
        ValueError: the fragment is wider than the map's qubits allow (see :func:`route_fragment`).
    """
    keyed, m = local_ops(ops)
    if m < 2:
        return 0
    pairs = restrict(coupling, range(m))
    if _mapped(keyed, _undirected(pairs)):
        return 0
    return route_fragment(keyed, m, pairs).swaps


# --------------------------------------------------------------------------- the plan pass
