"""Issue 12: one fidelity estimate and one gate-arity table for the planner, the result and the ledger."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from qiskit.circuit import Gate
from qiskit.circuit.library import get_standard_gate_name_mapping

from qb2.compiler import CircuitIR, PlannerOptions, capability, cost, plan_circuit
from qb2.compiler.estimate import (
    ClassRisks,
    GateTally,
    estimated_success,
    fidelity_nats,
    gate_arity,
    nats,
    tally,
)
from qb2.compiler.ir import Measurement, Operation
from qb2.compiler.translation import native_counts
from qb2.coordinator.fidelity import estimated_fidelity
from qb2.protocol.advert import Fidelities, ServiceAdvertisement
from qb2.protocol.jobs import FragmentRecord
from qb2.service_node import noise
from qb2.service_node.ledger import estimate_success

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
NATIVE = ("ccx", "cx", "mygate", "rz", "sx", "x")  # a 3-qubit gate and a custom name, both native
STANDARD_GATES = sorted(n for n, op in get_standard_gate_name_mapping().items()
                        if isinstance(op, Gate) and op.num_qubits >= 1)


def node(i: int, fidelity: dict[str, float], capacity: int = 3) -> ServiceAdvertisement:
    return ServiceAdvertisement(node_id="12D3KooW" + B58[i] * 44, native_gates=NATIVE, fidelity=fidelity,
                                qubit_range={"max": capacity}, timestamp=1.0)


def circuit() -> CircuitIR:
    ops = (Operation("h", (0,)), Operation("ccx", (0, 1, 2)), Operation("mygate", (2, 3)),
           Operation("cx", (3, 0)), Operation("ccx", (3, 1, 0)), Operation("rz", (1,), (0.3,)))
    return CircuitIR(num_qubits=4, num_clbits=4, operations=ops,
                     measurements=tuple(Measurement(q, q) for q in range(4)))


def test_one_gate_arity_table() -> None:
    assert capability.gate_arity is gate_arity and noise.gate_arity is gate_arity
    assert [gate_arity(g) for g in ("rz", "cx", "ccx", "c3sx")] == [1, 2, 3, 4]
    for name in ("measure", "reset", "delay", "barrier", "global_phase", "mygate"):
        assert gate_arity(name) is None, name  # only unitary gates on qubits have an arity


def test_formula_and_gate_classes() -> None:
    f = Fidelities(gate_1q=0.99, gate_2q=0.9, readout=0.95)
    counts = {"rz": 3, "cx": 2, "ccx": 1, "c3sx": 1, "mygate": 2, "measure": 2, "barrier": 4, "delay": 1,
              "global_phase": 1}
    # 2 cx + 3 (ccx: 2k - 3) + 5 (c3sx) + 2 unknown = 12 two-qubit gates
    assert tally(counts) == GateTally(one_qubit=3, two_qubit=12, measurements=2)
    expected = 0.99**3 * 0.9**12 * 0.95**2 * 0.97 * 0.9
    assert estimated_success(counts, f, link_fidelities=(0.97, 0.9)) == pytest.approx(expected, rel=1e-12)
    assert fidelity_nats(ClassRisks.of(f), *tally(counts)) == pytest.approx(-math.log(expected / 0.97 / 0.9))
    assert estimated_success({}, f) == 1.0 and nats(1.0) == 0.0 and cost.nats is nats
    with pytest.raises(ValueError, match="negative"):
        tally({"cx": -1})


@pytest.mark.parametrize("basis", [("cx", "rz", "sx", "x"), ("cz", "rx", "rz"), ("rx", "ry", "rz", "rzz"),
                                   NATIVE, ("c3sx", "cswap", "cx", "u")])
def test_planner_translation_counts_use_the_estimate_classes(basis: tuple[str, ...]) -> None:
    """The planner's (1q, 2q-equivalent) counts of every translated gate are :func:`tally`'s."""
    for gate, count in native_counts(basis, [*STANDARD_GATES, "mygate"]).items():
        if count is not None:
            assert (count.one_qubit, count.two_qubit) == tally(dict(count.ops))[:2], (basis, gate)


def test_planner_result_and_ledger_agree_on_every_fragment() -> None:
    """Same native counts, node fidelities and ebits: planner == coordinator result == ledger (x links)."""
    a = node(1, {"gate_1q": 0.999, "gate_2q": 0.97, "readout": 0.95})
    b = node(2, {"gate_1q": 0.998, "gate_2q": 0.98, "readout": 0.95})
    fids = {a.node_id: a.fidelity, b.node_id: b.fidelity}
    plan = plan_circuit(circuit(), [a, b], PlannerOptions(link_fidelity=0.96, max_fragment_ops=2))
    seen: Counter[str] = Counter()
    records = []
    for f in plan.fragments:
        seen.update(f.translated_ops)
        seen["ebits"] += f.ebits
        assert f.routing_swaps == 0
        record = FragmentRecord(fragment_id=f.fragment_id, kind=f.kind, node_id=f.node_id, ebits=f.ebits,
                                native_op_counts=dict(f.translated_ops))
        records.append(record)
        result = estimated_fidelity([record], fids, plan.link_fidelity)
        ledger = estimate_success(dict(f.translated_ops), fids[f.node_id]) * plan.link_fidelity**f.ebits
        shared = estimated_success(f.translated_ops, fids[f.node_id], link_fidelities=[t.fidelity for t in f.teleports])
        assert f.estimated_fidelity == pytest.approx(result, rel=1e-12), f.fragment_id
        assert f.estimated_fidelity == pytest.approx(ledger, rel=1e-12), f.fragment_id
        assert f.estimated_fidelity == pytest.approx(shared, rel=1e-12), f.fragment_id
    assert seen["ccx"] and seen["mygate"] and seen["ebits"] and seen["measure"]  # the case covers them all
    assert estimated_fidelity(records, fids, plan.link_fidelity) == pytest.approx(plan.estimated_fidelity,
                                                                                   rel=1e-12)


def test_ccx_and_custom_gate_risk_follows_the_documented_rule() -> None:
    """cost.py: a native k-qubit gate counts 2k - 3 two-qubit gates; an unknown native name counts one."""
    f = {"gate_1q": 1.0, "gate_2q": 0.9, "readout": 1.0}
    ir = CircuitIR(num_qubits=3, num_clbits=0,
                   operations=(Operation("ccx", (0, 1, 2)), Operation("mygate", (0, 1))))
    (frag,) = plan_circuit(ir, [node(1, f)], PlannerOptions()).fragments
    assert frag.translated_ops == {"ccx": 1, "mygate": 1}
    assert frag.cost.fidelity_risk == pytest.approx(4 * -math.log(0.9), rel=1e-12)
    assert frag.estimated_fidelity == pytest.approx(0.9**4, rel=1e-12)
    assert estimate_success({"ccx": 1, "mygate": 1}, Fidelities(**f)) == pytest.approx(0.9**4, rel=1e-12)


def test_readout_is_the_estimate_per_node_where_each_measured_qubit_resides() -> None:
    a = node(1, {"gate_1q": 0.999, "gate_2q": 0.97, "readout": 0.95})
    b = node(2, {"gate_1q": 0.998, "gate_2q": 0.98, "readout": 0.9})
    plan = plan_circuit(circuit(), [a, b], PlannerOptions(link_fidelity=0.96, max_fragment_ops=2))
    readout = plan.fragments[-1]
    assert readout.kind == "readout"
    held = Counter(plan.final_residency[q] for q in readout.qubits)
    by_id = {a.node_id: a.fidelity, b.node_id: b.fidelity}
    expected = math.prod(estimated_success({"measure": k}, by_id[n]) for n, k in held.items())
    assert readout.estimated_fidelity == pytest.approx(expected, rel=1e-12)
