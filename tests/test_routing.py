"""Routing on advertised coupling maps (FR-016): the pure compiler pass, without any device or Qiskit backend.

The node-side half (a device node inserts exactly the SWAPs the plan counts)
is in tests/test_devices.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator

from qb2.compiler import (
    CircuitIR,
    InfeasiblePlanError,
    PlannerOptions,
    plan_circuit,
    routing,
)
from qb2.compiler.ir import Measurement, Operation
from qb2.compiler.routing import (
    fragment_routing_swaps,
    local_ops,
    placement_order,
    restrict,
    route_fragment,
)
from qb2.protocol.advert import ServiceAdvertisement

REPO = Path(__file__).resolve().parents[1]
#: fake_manila's map, both directions of a line 0-1-2-3-4 (what its node advertises).
LINE5 = tuple(p for k in range(4) for p in ((k, k + 1), (k + 1, k)))
FAN_OUT = tuple(Operation("cx", (0, k)) for k in range(1, 5))  # qubit 0 talks to everyone
CHAIN = tuple(Operation("cx", (k, k + 1)) for k in range(4))  # already follows the line


def node(coupling_map=LINE5, *, gate_2q: float = 0.99, gate_2q_us: float = 0.3, ident: str = "L",
         qubits: int = 5) -> ServiceAdvertisement:
    return ServiceAdvertisement(
        node_id="12D3KooW" + ident * 44,
        native_gates=("cx", "id", "rz", "sx", "x"),
        fidelity={"gate_1q": 0.9995, "gate_2q": gate_2q, "readout": 0.98},
        qubit_range={"min": 1, "max": qubits},
        gate_times={"gate_1q_us": 0.035, "gate_2q_us": gate_2q_us, "readout_us": 5.0},
        timestamp=1.0,
        coupling_map=coupling_map,
    )


def circuit(ops: tuple[Operation, ...], n: int = 5, measure: bool = True) -> CircuitIR:
    measurements = tuple(Measurement(q, q) for q in range(n)) if measure else ()
    return CircuitIR(num_qubits=n, num_clbits=n if measure else 0, operations=ops, measurements=measurements)


ONE_FRAGMENT = PlannerOptions(max_fragment_qubits=5)


TOFFOLI = (Operation("ccx", (0, 1, 2)),)  # one operation: it cannot be split, and on a line it needs SWAPs


def test_an_unsplittable_fragment_on_a_line_pays_three_2q_gates_per_swap() -> None:
    ir = circuit(TOFFOLI, n=3)
    routed = plan_circuit(ir, [node()], ONE_FRAGMENT)
    flat = plan_circuit(ir, [node(None)], ONE_FRAGMENT)
    (f, readout), (g, _) = routed.fragments, flat.fragments
    assert f.operation_indices == g.operation_indices == (0,)
    assert f.routing_swaps > 0 and routed.routing_swaps == f.routing_swaps
    assert g.routing_swaps == 0 and flat.routing_swaps == 0 and readout.routing_swaps == 0
    # each SWAP is 3 two-qubit gates at the node's gate_2q fidelity and gate_2q_us duration
    extra = 3 * f.routing_swaps
    assert f.cost.fidelity_risk == pytest.approx(g.cost.fidelity_risk + extra * -math.log(0.99), rel=1e-12)
    assert f.cost.latency_s == pytest.approx(g.cost.latency_s + extra * 0.3e-6, rel=1e-12)
    assert f.estimated_fidelity == pytest.approx(g.estimated_fidelity * 0.99 ** extra, rel=1e-12)
    assert routed.estimated_fidelity == pytest.approx(flat.estimated_fidelity * 0.99 ** extra, rel=1e-12)
    assert routed.cost.total > flat.cost.total
    assert f.translated_ops == g.translated_ops  # translation counts stay unrouted


def test_fan_out_on_a_line_needs_swaps_that_lower_the_estimate() -> None:
    ir = circuit(FAN_OUT)
    routed = plan_circuit(ir, [node()], ONE_FRAGMENT)
    flat = plan_circuit(ir, [node(None)], ONE_FRAGMENT)
    assert routed.routing_swaps == sum(f.routing_swaps for f in routed.fragments) > 0
    assert flat.routing_swaps == 0
    assert routed.estimated_fidelity < flat.estimated_fidelity and routed.cost.total > flat.cost.total


def test_the_search_sees_routing_cost() -> None:
    # The line node has the better advertised 2q fidelity, but the fan-out costs SWAPs there:
    # the all-to-all node is the better choice once routing is counted, and a fidelity floor
    # that only the all-to-all node meets is met.
    ir = circuit(FAN_OUT)
    line, full = node(), node(None, gate_2q=0.985, ident="A")
    on_line = plan_circuit(ir, [line], ONE_FRAGMENT)
    on_full = plan_circuit(ir, [full], ONE_FRAGMENT)
    assert on_line.estimated_fidelity < on_full.estimated_fidelity
    both = plan_circuit(ir, [line, full], ONE_FRAGMENT)
    assert both.cost.total <= min(on_line.cost.total, on_full.cost.total) + 1e-12
    assert both.routing_swaps == 0 and {f.node_id for f in both.fragments} == {full.node_id}
    floor = (on_line.estimated_fidelity + on_full.estimated_fidelity) / 2
    met = plan_circuit(ir, [line, full], ONE_FRAGMENT.model_copy(update={"min_fidelity": floor}))
    assert met.estimated_fidelity >= floor


def test_gates_that_follow_the_map_need_no_swap_and_cost_nothing_more() -> None:
    ir = circuit(CHAIN)
    routed = plan_circuit(ir, [node()], ONE_FRAGMENT)
    flat = plan_circuit(ir, [node(None)], ONE_FRAGMENT)
    assert routed.routing_swaps == 0 and all(f.routing_swaps == 0 for f in routed.fragments)
    assert routed.estimated_fidelity == flat.estimated_fidelity and routed.cost == flat.cost
    # reversed direction is no obstacle: routing ignores direction
    assert fragment_routing_swaps([Operation("cx", (k + 1, k)) for k in range(4)], ((0, 1), (1, 2), (2, 3), (3, 4))) == 0


def test_fragments_are_placed_by_their_relative_qubit_order() -> None:
    # a fragment on circuit qubits 3, 7, 9 runs on node qubits 0, 1, 2 (the j-th smallest on j)
    fragment = [Operation("h", (7,)), Operation("cx", (3, 9))]  # cx(3, 9) is cx(0, 2): not coupled
    assert fragment_routing_swaps(fragment, LINE5) == 1
    assert fragment_routing_swaps([Operation("h", (1,)), Operation("cx", (0, 2))], LINE5) == 1
    assert fragment_routing_swaps([Operation("cx", (3, 9))], LINE5) == 0  # alone: qubits 3, 9 -> 0, 1
    assert fragment_routing_swaps([Operation("h", (4,))], LINE5) == 0


def test_swaps_of_the_fragment_itself_and_wide_gates() -> None:
    # a SWAP gate the circuit asks for is not a routing SWAP
    assert fragment_routing_swaps([Operation("swap", (0, 1))], LINE5) == 0
    # ccx on qubits 0, 1, 2 of a line: its 0-2 cx need routing
    assert fragment_routing_swaps([Operation("ccx", (0, 1, 2))], LINE5) > 0
    # ... but not on a triangle
    assert fragment_routing_swaps([Operation("ccx", (0, 1, 2))], ((0, 1), (0, 2), (1, 2))) == 0


@pytest.mark.parametrize(("num_qubits", "pairs", "order"), [
    (5, LINE5, (0, 1, 2, 3, 4)),
    # fake_lagos's H shape: 0-1-2, 1-3-5, 4-5-6
    (7, ((0, 1), (1, 2), (1, 3), (3, 5), (4, 5), (5, 6)), (0, 1, 2, 3, 5, 4, 6)),
    # qubit 3 unreachable: left out
    (4, ((0, 1), (1, 2)), (0, 1, 2)),
])
def test_placement_order_is_breadth_first_and_restrict_relabels(num_qubits, pairs, order) -> None:
    assert placement_order(num_qubits, pairs) == order
    relabelled = restrict(pairs, order)
    assert all(max(p) < len(order) for p in relabelled)
    assert all(any(max(p) == k for p in relabelled) for k in range(1, len(order)))  # placement-order property
    node(relabelled, qubits=len(order))  # a valid advertisement


def test_plan_json_is_deterministic_and_independent_of_the_cache() -> None:
    ir = circuit(FAN_OUT + CHAIN + (Operation("ccx", (0, 2, 4)), Operation("cz", (1, 4))))
    nodes = [node(), node(None, ident="F", gate_2q=0.95, qubits=3)]
    first = plan_circuit(ir, nodes, ONE_FRAGMENT).to_json()
    routing._route.cache_clear()
    assert plan_circuit(ir, list(reversed(nodes)), ONE_FRAGMENT).to_json() == first
    assert '"routing_swaps":' in first


def test_plan_json_identical_across_hash_seeds() -> None:
    script = textwrap.dedent("""
        from qb2.compiler import CircuitIR, PlannerOptions, plan_circuit
        from qb2.compiler.ir import Operation
        from tests.test_routing import FAN_OUT, node
        ir = CircuitIR(num_qubits=5, num_clbits=0, operations=FAN_OUT * 3)
        print(plan_circuit(ir, [node(), node(None, ident="F", qubits=2)], PlannerOptions(max_fragment_qubits=5)).to_json())
    """)
    outputs = {
        subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "12345")
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["routing_swaps"] > 0


def test_nodes_without_a_coupling_map_never_reach_qiskit(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise AssertionError("routing ran")

    monkeypatch.setattr(routing, "_route", boom)
    ir = circuit(FAN_OUT)
    assert plan_circuit(ir, [node(None)], ONE_FRAGMENT).routing_swaps == 0
    # a coupling-map node whose fragments already follow the map: no Qiskit call either
    assert plan_circuit(circuit(CHAIN), [node()], ONE_FRAGMENT).routing_swaps == 0
    with pytest.raises(AssertionError, match="routing ran"):
        plan_circuit(ir, [node()], ONE_FRAGMENT)


def test_min_fidelity_counts_routing() -> None:
    ir = circuit(TOFFOLI, n=3, measure=False)
    flat = plan_circuit(ir, [node(None)], ONE_FRAGMENT)
    floor = flat.estimated_fidelity * 0.999  # met without routing, missed with it
    with pytest.raises(InfeasiblePlanError) as info:
        plan_circuit(ir, [node()], ONE_FRAGMENT.model_copy(update={"min_fidelity": floor}))
    assert info.value.constraint == "min_fidelity"
    assert plan_circuit(ir, [node(None)], ONE_FRAGMENT.model_copy(update={"min_fidelity": floor}))


# --------------------------------------------------------------------------- the routine itself


def _unrouted(ops, m: int) -> QuantumCircuit:
    return routing._circuit(tuple(ops), m)


COUPLINGS = [LINE5, ((0, 1), (1, 2), (1, 3), (3, 4)), ((1, 0), (2, 0), (3, 1), (4, 2)), ((0, 1), (0, 2), (0, 3), (0, 4))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_routed_fragment_is_the_fragment_on_coupled_pairs(data) -> None:  # type: ignore[no-untyped-def]
    pairs = data.draw(st.sampled_from(COUPLINGS))
    m = data.draw(st.integers(2, 5))
    sub = restrict(pairs, range(m))
    names = {"h": 1, "rz": 1, "cx": 2, "cz": 2, "rzz": 2, "swap": 2, "ccx": 3}
    ops = []
    for _ in range(data.draw(st.integers(1, 8))):
        name = data.draw(st.sampled_from(sorted(g for g, a in names.items() if a <= m)))
        qubits = tuple(data.draw(st.permutations(range(m)))[: names[name]])
        ops.append((name, qubits, (0.4,) if name in ("rz", "rzz") else ()))
    routed = route_fragment(ops, m, sub)
    coupled = {frozenset(p) for p in sub}
    for inst in routed.circuit.data:
        if len(inst.qubits) == 2:
            assert frozenset(routed.circuit.find_bit(q).index for q in inst.qubits) in coupled
        assert len(inst.qubits) <= 2
    assert routed.circuit.count_ops().get("swap", 0) >= routed.swaps
    # undo the final permutation: the unitary is the fragment's
    undo = QuantumCircuit(m)
    undo.compose(routed.circuit, inplace=True)
    where = list(routed.final)
    for j in range(m):
        if where[j] != j:
            other = where.index(j)
            undo.swap(where[j], j)
            where[j], where[other] = j, where[j]
    assert Operator(undo).equiv(Operator(_unrouted(ops, m)))
    # the planner's count is the routine's
    keyed, active = local_ops([Operation(n, q, p) for n, q, p in ops])  # idle qubits are not placed
    placed = route_fragment(keyed, active, restrict(pairs, range(active))).swaps if active > 1 else 0
    assert fragment_routing_swaps([Operation(n, q, p) for n, q, p in ops], pairs) == placed
    assert route_fragment(ops, m, sub) is routed  # memoised


def test_route_fragment_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not a Qiskit standard unitary gate"):
        route_fragment([("measure", (0,), ())], 2, ((0, 1),))
    with pytest.raises(ValueError, match="outside"):
        route_fragment([("cx", (0, 2), ())], 2, ((0, 1),))
    with pytest.raises(ValueError, match="does not connect"):
        route_fragment([("cx", (0, 2), ())], 3, ((0, 1),))
