"""FR-004: the cost model's terms, units and weights; the translation count table."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import get_standard_gate_name_mapping

from qb2.compiler import CircuitIR, CostWeights, PlannerOptions, plan_circuit
from qb2.compiler.cost import DEFAULT_LINK_RTT_S, CostBreakdown, nats, node_cost, teleport_terms, weighted
from qb2.compiler.ir import Measurement, Operation
from qb2.compiler.translation import native_counts
from qb2.protocol.advert import ServiceAdvertisement

STANDARD = get_standard_gate_name_mapping()
BASES = [("cx", "rz", "sx", "x"), ("rx", "ry", "rz", "rzz"), ("cz", "rx", "ry", "rz"), ("cx", "u"),
         ("ecr", "rz", "sx", "x")]
GATES = ["h", "x", "y", "s", "t", "sx", "rz", "ry", "u", "cx", "cz", "cp", "rzz", "swap", "ccx", "cswap",
         "ch", "iswap", "c3sx"]
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def advert(i: int, **kw: object) -> ServiceAdvertisement:
    base: dict[str, object] = {
        "node_id": "12D3KooW" + B58[i] * 44,
        "native_gates": ("cx", "rz", "sx", "x"),
        "fidelity": {"gate_1q": 0.999, "gate_2q": 0.99, "readout": 0.98},
        "qubit_range": {"max": 4},
        "timestamp": 1.0,
    }
    base.update(kw)
    return ServiceAdvertisement(**base)  # type: ignore[arg-type]


def circuit(*ops: tuple[str, tuple[int, ...]], n: int = 2, measure: tuple[int, ...] = ()) -> CircuitIR:
    return CircuitIR(num_qubits=n, num_clbits=len(measure),
                     operations=tuple(Operation(g, q, (0.4,) * len(STANDARD[g].params)) for g, q in ops),
                     measurements=tuple(Measurement(q, c) for c, q in enumerate(measure)))


# --- translation table -----------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.sampled_from(GATES), min_size=1, max_size=8), basis=st.sampled_from(BASES))
def test_table_sum_equals_transpiling_the_whole_fragment(names: list[str], basis: tuple[str, ...]) -> None:
    """Level-0 translation is gate by gate: the per-gate table adds up to the fragment's counts."""
    qc = QuantumCircuit(4)
    for k, g in enumerate(names):
        proto = STANDARD[g]
        gate = proto.base_class(*[0.3 + k / 10] * len(proto.params)) if proto.params else proto
        qc.append(gate, [(k + j) % 4 for j in range(proto.num_qubits)])
    whole = dict(transpile(qc, basis_gates=list(basis), optimization_level=0).count_ops())
    table = native_counts(basis, names)
    summed: dict[str, int] = {}
    for g in names:
        count = table[g]
        assert count is not None
        for native, c in count.ops:
            summed[native] = summed.get(native, 0) + c
    assert summed == whole


def test_untranslatable_gate_is_none_and_native_gate_counts_itself() -> None:
    table = native_counts(("rz", "sx"), ["cx", "h", "rz"])
    assert table["cx"] is None  # no entangler
    assert table["h"] is not None and table["h"].two_qubit == 0
    assert table["rz"] is not None and table["rz"].ops == (("rz", 1),)
    ccx = native_counts(("cx", "rz", "sx", "x"), ["ccx"])["ccx"]
    assert ccx is not None and ccx.two_qubit == 6 and ccx.size == sum(n for _, n in ccx.ops)


# --- terms and units -------------------------------------------------------------------


def test_fragment_terms_follow_the_documented_formulas() -> None:
    node = advert(1, gate_times={"gate_1q_us": 2.0, "gate_2q_us": 50.0, "readout_us": 10.0}, price=0.25,
                  fidelity={"gate_1q": 0.99, "gate_2q": 0.9, "readout": 0.8})
    options = PlannerOptions(link_rtt_s={node.node_id: 0.004}, queue_wait_s={node.node_id: 0.5},
                             weights=CostWeights(latency=2.0, fidelity_risk=3.0, entanglement=5.0, price=7.0))
    plan = plan_circuit(circuit(("cx", (0, 1)), ("x", (0,)), measure=(0, 1)), [node], options)
    f0, readout = plan.fragments
    assert f0.translated_ops == {"cx": 1, "x": 1}
    assert f0.cost.latency_s == pytest.approx(2e-6 + 50e-6 + 0.004 + 0.5, rel=1e-12)
    assert f0.cost.fidelity_risk == pytest.approx(-math.log(0.99) - math.log(0.9), rel=1e-12)
    assert f0.cost.entanglement == 0.0
    assert f0.cost.price == 0.25
    assert f0.cost.total == pytest.approx(2 * f0.cost.latency_s + 3 * f0.cost.fidelity_risk + 7 * 0.25)
    # readout: two measurements on the node, one invocation, its price once
    assert readout.cost.latency_s == pytest.approx(2 * 10e-6 + 0.504, rel=1e-12)
    assert readout.cost.fidelity_risk == pytest.approx(-2 * math.log(0.8), rel=1e-12)
    assert readout.cost.price == 0.25
    assert readout.estimated_fidelity == pytest.approx(0.8**2, rel=1e-12)
    assert plan.cost.total == weighted(plan.cost.terms, plan.weights)
    assert plan.estimated_fidelity == pytest.approx(math.exp(-(plan.cost.fidelity_risk + plan.cost.entanglement)))


def test_teleport_terms_use_the_weakest_link_and_half_round_trips() -> None:
    a = node_cost(advert(1), link_rtt_s={advert(1).node_id: 0.002}, default_link_rtt_s=0.01, queue_wait_s={},
                  link_fidelities={advert(1).node_id: 0.97}, link_fidelity=0.99)
    b = node_cost(advert(2), link_rtt_s={}, default_link_rtt_s=0.01, queue_wait_s={}, link_fidelities={},
                  link_fidelity=0.99)
    lat, risk, ent, price = teleport_terms(a, b, ebit_generation_s=0.5)
    assert lat == pytest.approx(0.006 + 0.5)
    assert (risk, price) == (0.0, 0.0)
    assert ent == pytest.approx(-math.log(0.97))
    assert teleport_terms(b, a, 0.0)[2] == ent
    assert nats(1.0) == 0.0
    assert DEFAULT_LINK_RTT_S == 0.0031


def test_defaults_and_validation_of_weights() -> None:
    assert CostWeights() == CostWeights(latency=1.0, fidelity_risk=1.0, entanglement=1.0, price=1.0)
    for bad in ({"latency": -1.0}, {"price": float("nan")}, {"fidelity_risk": float("inf")}, {"bogus": 1}):
        with pytest.raises(ValueError):
            CostWeights(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PlannerOptions(link_fidelities={"x": 0.0})
    with pytest.raises(ValueError):
        PlannerOptions(queue_wait_s={"x": -1.0})
    assert CostBreakdown.of((1.0, 2.0, 3.0, 4.0), CostWeights(latency=0.0, price=2.0)).total == 2.0 + 3.0 + 8.0


def test_zero_weights_give_zero_cost() -> None:
    zero = CostWeights(latency=0.0, fidelity_risk=0.0, entanglement=0.0, price=0.0)
    plan = plan_circuit(circuit(("cx", (0, 1)), measure=(0,)), [advert(1), advert(2)], PlannerOptions(weights=zero))
    assert plan.cost.total == 0.0 and all(f.cost.total == 0.0 for f in plan.fragments)
    assert plan.cost.latency_s > 0  # the terms are still reported


# --- the weights steer the plan ----------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "expect_cheap"),
    [("price", True), ("rtt", True), ("queue", True), ("fidelity", True)],
)
def test_each_term_steers_placement(knob: str, expect_cheap: bool) -> None:
    cheap, dear = advert(1), advert(2)
    kw: dict[str, object] = {}
    if knob == "price":
        dear = advert(2, price=1.0)
    elif knob == "rtt":
        kw["link_rtt_s"] = {dear.node_id: 0.5, cheap.node_id: 0.001}
    elif knob == "queue":
        kw["queue_wait_s"] = {dear.node_id: 2.0}
    else:
        dear = advert(2, fidelity={"gate_1q": 0.9, "gate_2q": 0.5, "readout": 0.9})
    plan = plan_circuit(circuit(("cx", (0, 1)), ("h", (0,)), measure=(0, 1)), [dear, cheap], PlannerOptions(**kw))
    assert {f.node_id for f in plan.fragments} == {cheap.node_id}


def test_latency_weight_prefers_fast_gates_fidelity_weight_prefers_good_gates() -> None:
    fast_noisy = advert(1, fidelity={"gate_1q": 0.99, "gate_2q": 0.95, "readout": 0.95},
                        gate_times={"gate_1q_us": 0.01, "gate_2q_us": 0.1, "readout_us": 0.1})
    slow_clean = advert(2, fidelity={"gate_1q": 0.9999, "gate_2q": 0.999, "readout": 0.999},
                        gate_times={"gate_1q_us": 100.0, "gate_2q_us": 5000.0, "readout_us": 100.0})
    ir = circuit(*(("cx", (0, 1)) for _ in range(10)), measure=(0, 1))
    speed = PlannerOptions(weights=CostWeights(latency=1e6, fidelity_risk=1.0, entanglement=1.0, price=0.0))
    quality = PlannerOptions(weights=CostWeights(latency=0.0, fidelity_risk=1.0, entanglement=1.0, price=0.0))
    assert {f.node_id for f in plan_circuit(ir, [fast_noisy, slow_clean], speed).fragments} == {fast_noisy.node_id}
    assert {f.node_id for f in plan_circuit(ir, [fast_noisy, slow_clean], quality).fragments} == {slow_clean.node_id}


def test_entanglement_weight_trades_ebits() -> None:
    """With costly ebits the planner keeps qubits together; with free ebits it chases the best gates."""
    small_good = advert(1, qubit_range={"max": 2}, fidelity={"gate_1q": 0.9999, "gate_2q": 0.999, "readout": 0.99})
    big_poor = advert(2, qubit_range={"max": 4}, fidelity={"gate_1q": 0.999, "gate_2q": 0.97, "readout": 0.99})
    ir = circuit(("cx", (0, 1)), ("cx", (1, 2)), ("cx", (2, 3)), ("cx", (0, 3)), n=4, measure=(0, 1, 2, 3))
    opts = {"max_fragment_qubits": 2, "link_fidelity": 0.9, "default_link_rtt_s": 0.0}
    costly = plan_circuit(ir, [small_good, big_poor],
                          PlannerOptions(**opts, weights=CostWeights(entanglement=100.0)))
    free = plan_circuit(ir, [small_good, big_poor], PlannerOptions(**opts, weights=CostWeights(entanglement=0.0)))
    assert costly.total_ebits < free.total_ebits
    assert costly.total_ebits == 0


def test_plan_json_carries_weights_and_breakdown() -> None:
    weights = CostWeights(latency=0.5, fidelity_risk=2.0, entanglement=3.0, price=0.0)
    plan = plan_circuit(circuit(("h", (0,)), measure=(0,)), [advert(1)], PlannerOptions(weights=weights))
    data = json.loads(plan.to_json())
    assert data["weights"] == {"latency": 0.5, "fidelity_risk": 2.0, "entanglement": 3.0, "price": 0.0}
    assert set(data["cost"]) == {"latency_s", "fidelity_risk", "entanglement", "price", "total"}
    assert set(data["fragments"][0]["cost"]) == set(data["cost"])
    assert data["fragments"][0]["translated_size"] >= 1


def test_warm_up_fills_the_table_for_every_standard_gate() -> None:
    from qb2.compiler.translation import _TABLE, warm_up

    warm_up([("cz", "rx", "ry", "rz")])
    key = frozenset({"cz", "rx", "ry", "rz"})
    assert (key, "ccx") in _TABLE and (key, "cswap") in _TABLE and _TABLE[(key, "cx")] is not None


@pytest.mark.parametrize("basis", [("cx", "rz", "sx", "x"), ("rx", "ry", "rz", "rzz"), ("iswap", "r")])
def test_table_does_not_depend_on_which_gates_are_translated_together(basis: tuple[str, ...]) -> None:
    """The table is filled in batches; each gate's counts equal its translation alone (NFR-001)."""
    from qiskit.circuit import Gate

    from qb2.compiler.translation import _translate_block, transpile_key

    key = transpile_key(basis)
    gates = [g for g, op in STANDARD.items() if isinstance(op, Gate)]
    alone = {g: one[g] for g in gates if (one := _translate_block(key, [g])) is not None}
    together = _translate_block(key, sorted(alone))
    reversed_ = _translate_block(key, sorted(alone, reverse=True))
    assert together == alone == reversed_
