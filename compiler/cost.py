"""The planner's cost model: four terms, their units and sources, and the weights (FR-004).

Every step of a plan (a gate fragment on a node, a teleport between two nodes,
the final readout) has four cost terms. The planner minimises their weighted
sum ``total = w.latency * latency_s + w.fidelity_risk * fidelity_risk +
w.entanglement * entanglement + w.price * price`` (:func:`weighted`).

``latency_s`` (seconds) — expected wall-clock time of the step.
    * gate fragment on node ``N``: ``n1 * t1 + n2 * t2`` (the fragment's
      translated 1-qubit and 2-qubit-equivalent native gate counts, see
      :mod:`qb2.compiler.translation`, times the node's advertised
      ``gate_times.gate_1q_us`` / ``gate_2q_us``, converted to seconds) plus
      the invocation overhead ``rtt(N) + queue(N)``: the measured
      coordinator-to-node round trip (``PlannerOptions.link_rtt_s``, default
      ``default_link_rtt_s`` = 3.1 ms, the median libp2p request/response
      round trip measured on loopback, DESIGN.md) and the node's current
      queue/reservation wait (``PlannerOptions.queue_wait_s``, default 0).
      Every fragment is its own reservation and invocation (FR-005), so both
      are paid per fragment.
    * teleport ``A -> B``: ``(rtt(A) + rtt(B)) / 2 + ebit_generation_s``: the
      two classical correction bits travel from ``A`` to ``B`` through the
      coordinator (half a round trip each way), plus the time to distribute
      one ebit (``PlannerOptions.ebit_generation_s``, default 0: the
      simulated links have it ready).
    * readout: ``readout_us`` per measurement on the node where the measured
      qubit resides, plus ``rtt + queue`` once per node that holds a measured
      qubit.
    The plan's latency is the sum over steps: the sequential execution time,
    an upper bound on the makespan (the runtime overlaps independent
    fragments). It is additive, which the exact search needs.

``fidelity_risk`` (nats, ``-ln`` of a success probability) — gate and readout
error on the node, from its advertised fidelities (FR-001):
    ``n1 * -ln(gate_1q) + n2 * -ln(gate_2q)`` for a gate fragment (a native
    gate on ``k >= 3`` qubits counts as ``2k - 3`` two-qubit gates, a name
    Qiskit does not know as one), and ``-ln(readout)`` per measurement on the
    node where the qubit resides.
    ``exp(-risk)`` is the product-of-fidelities success estimate used by NISQ
    placement cost models (e.g. Nishio et al., "Extracting success from
    IBM's 20-qubit machines using error-aware compilation", 2020). The
    formula and its gate classes are :mod:`qb2.compiler.estimate`
    (:func:`~qb2.compiler.estimate.fidelity_nats`), the one estimate that the
    coordinator's result and a node's reservation check also use.

``entanglement`` (nats of link infidelity; one ebit per teleported qubit) —
    each teleport ``A -> B`` consumes one ebit and costs
    ``-ln(min(F(A), F(B)))`` where ``F(X)`` is node ``X``'s link fidelity
    (``PlannerOptions.link_fidelities``, default ``link_fidelity``; FR-008
    link-quality reports feed it). The weakest endpoint bounds the link,
    and ``-ln min`` satisfies the triangle inequality, so a direct teleport
    is never worse than a relay. Counting ebits is the cost metric of
    pytket-dqc; weighting each by its ``-ln`` fidelity makes
    ``fidelity_risk + entanglement = -ln(estimated fidelity)`` of the plan.

``price`` (credits per shot) — the node's advertised ``price`` (0 when it
    advertises none), paid once per fragment it runs (each shot runs every
    fragment) and once per node that reads out measured qubits.

Weights are non-negative floats per unit (per second, per nat, per nat, per
credit); the defaults weigh one second, one nat and one credit alike. With
these units a 2-qubit gate at fidelity 0.99 costs 0.01, a 3.1 ms round trip
0.0031, an ebit on a 0.99 link 0.01 plus its 3.1 ms latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from qb2.compiler.estimate import fidelity_nats, nats
from qb2.protocol.advert import ServiceAdvertisement

#: Median libp2p request/response round trip on loopback (DESIGN.md, "Facts measured"), seconds.
DEFAULT_LINK_RTT_S = 0.0031

#: Term order of the 4-tuples used inside the search: latency, fidelity risk, entanglement, price.
Terms = tuple[float, float, float, float]
ZERO: Terms = (0.0, 0.0, 0.0, 0.0)


class CostWeights(BaseModel):
    """Weights of the four cost terms (see the module docstring for units).

    Attributes:
        latency: cost per second of expected latency (>= 0).
        fidelity_risk: cost per nat of gate/readout error, ``-ln`` fidelity (>= 0).
        entanglement: cost per nat of link infidelity of the ebits used (>= 0).
        price: cost per credit (per shot) of advertised node price (>= 0).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    fidelity_risk: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    entanglement: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    price: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)


class CostBreakdown(BaseModel):
    """The four terms of a step or a plan and their weighted ``total``.

    Attributes:
        latency_s: expected latency, seconds.
        fidelity_risk: ``-ln`` of the gate/readout success probability, nats.
        entanglement: ``-ln`` of the link fidelity over the ebits used, nats.
        price: advertised price, credits per shot.
        total: ``weighted(terms, weights)`` (unitless).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_s: float = Field(ge=0.0)
    fidelity_risk: float = Field(ge=0.0)
    entanglement: float = Field(ge=0.0)
    price: float = Field(ge=0.0)
    total: float = Field(ge=0.0)

    @classmethod
    def of(cls, terms: Terms, weights: CostWeights) -> CostBreakdown:
        """Build from a ``(latency, risk, entanglement, price)`` tuple; ``total`` is :func:`weighted`."""
        lat, risk, ent, price = terms
        return cls(latency_s=lat, fidelity_risk=risk, entanglement=ent, price=price,
                   total=weighted(terms, weights))

    @property
    def terms(self) -> Terms:
        """``(latency_s, fidelity_risk, entanglement, price)``."""
        return (self.latency_s, self.fidelity_risk, self.entanglement, self.price)


def weighted(terms: Terms, weights: CostWeights) -> float:
    """``w.latency*t[0] + w.fidelity_risk*t[1] + w.entanglement*t[2] + w.price*t[3]``, in that order."""
    return (
        weights.latency * terms[0]
        + weights.fidelity_risk * terms[1]
        + weights.entanglement * terms[2]
        + weights.price * terms[3]
    )


def add(a: Terms, b: Terms) -> Terms:
    """Term-wise sum."""
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


@dataclass(frozen=True, slots=True)
class NodeCost:
    """Per-node constants of the cost model, all in the units of the module docstring.

    Attributes:
        node_id: the node.
        capacity: most circuit qubits it may hold at once (``qubit_range.max``).
        min_width: narrowest fragment it accepts (``qubit_range.min``).
        native: its native gate set.
        t1_s / t2_s / readout_s: durations of a native 1q gate, 2q gate and
            readout, seconds (``gate_times`` in microseconds times 1e-6).
        r1 / r2 / r_readout: ``-ln`` of its 1q, 2q and readout fidelities.
        rtt_s: coordinator round trip, seconds.
        invoke_s: ``rtt_s + queue wait``: the overhead of one invocation.
        price: credits per shot per fragment (0 when not advertised).
        link_risk: ``-ln`` of its link fidelity.
        link_fidelity: its link fidelity, in (0, 1].
    """

    node_id: str
    capacity: int
    min_width: int
    native: frozenset[str]
    t1_s: float
    t2_s: float
    readout_s: float
    r1: float
    r2: float
    r_readout: float
    rtt_s: float
    invoke_s: float
    price: float
    link_risk: float
    link_fidelity: float


def node_cost(
    node: ServiceAdvertisement,
    *,
    link_rtt_s: Mapping[str, float],
    default_link_rtt_s: float,
    queue_wait_s: Mapping[str, float],
    link_fidelities: Mapping[str, float],
    link_fidelity: float,
) -> NodeCost:
    """The :class:`NodeCost` of ``node`` given the measured link and queue inputs (missing keys use defaults)."""
    rtt = float(link_rtt_s.get(node.node_id, default_link_rtt_s))
    fid = float(link_fidelities.get(node.node_id, link_fidelity))
    return NodeCost(
        node_id=node.node_id,
        capacity=node.qubit_range.max,
        min_width=node.qubit_range.min,
        native=frozenset(node.native_gates),
        t1_s=node.gate_times.gate_1q_us * 1e-6,
        t2_s=node.gate_times.gate_2q_us * 1e-6,
        readout_s=node.gate_times.readout_us * 1e-6,
        r1=nats(node.fidelity.gate_1q),
        r2=nats(node.fidelity.gate_2q),
        r_readout=nats(node.fidelity.readout),
        rtt_s=rtt,
        invoke_s=rtt + float(queue_wait_s.get(node.node_id, 0.0)),
        price=float(node.price or 0.0),
        link_risk=nats(fid),
        link_fidelity=fid,
    )


def fragment_terms(node: NodeCost, one_qubit: int, two_qubit: int) -> Terms:
    """Terms of a gate fragment of ``one_qubit`` / ``two_qubit`` (2q-equivalent) native gates on ``node``.

    The risk is :func:`qb2.compiler.estimate.fidelity_nats` of those counts on ``node``.
    """
    return (
        one_qubit * node.t1_s + two_qubit * node.t2_s + node.invoke_s,
        fidelity_nats(node, one_qubit, two_qubit),
        0.0,
        node.price,
    )


def teleport_terms(source: NodeCost, target: NodeCost, ebit_generation_s: float) -> Terms:
    """Terms of teleporting one qubit from ``source`` to ``target`` (one ebit)."""
    return (
        (source.rtt_s + target.rtt_s) / 2 + ebit_generation_s,
        0.0,
        max(source.link_risk, target.link_risk),
        0.0,
    )
