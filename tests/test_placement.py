"""FR-004 / NFR-001: capability rules, fragment placement, plan estimates and determinism."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import qiskit.qasm2
from mqt.bench import BenchmarkLevel, get_benchmark
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.quantum_info import Operator

from qb2.compiler import (
    CircuitIR,
    InfeasiblePlanError,
    Plan,
    PlannerOptions,
    from_quantum_circuit,
    parse_qasm,
    plan_circuit,
    supports_gate,
    unsupported_gates,
)
from qb2.compiler.capability import TRANSLATABLE_ENTANGLERS, UNIVERSAL_1Q_SETS
from qb2.compiler.ir import Measurement, Operation
from qb2.protocol.advert import ServiceAdvertisement

REPO = Path(__file__).resolve().parents[1]
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
IBM = ("cx", "rz", "sx", "x")
STANDARD = get_standard_gate_name_mapping()
NON_GATES = {"measure", "reset", "delay", "global_phase"}


def peer(seed: int) -> str:
    """A valid-looking libp2p peer id: ``12D3KooW`` + 44 base58 characters."""
    rng = np.random.default_rng(seed)
    return "12D3KooW" + "".join(BASE58[i] for i in rng.integers(0, len(BASE58), 44))


def node(
    seed: int,
    gates: tuple[str, ...] = IBM,
    max_qubits: int = 4,
    min_qubits: int = 1,
    f1: float = 0.999,
    f2: float = 0.99,
    readout: float = 0.98,
    availability: str = "available",
) -> ServiceAdvertisement:
    return ServiceAdvertisement(
        node_id=peer(seed),
        native_gates=gates,
        fidelity={"gate_1q": f1, "gate_2q": f2, "readout": readout},
        qubit_range={"min": min_qubits, "max": max_qubits},
        availability=availability,
        timestamp=1_700_000_000.0,
    )


def ir_of(n: int, *ops: tuple[str, tuple[int, ...]], measure: tuple[int, ...] = ()) -> CircuitIR:
    return CircuitIR(
        num_qubits=n,
        num_clbits=len(measure),
        operations=tuple(
            Operation(name, qubits, (0.5,) if name in ("rz", "rx") else ()) for name, qubits in ops
        ),
        measurements=tuple(Measurement(q, c) for c, q in enumerate(measure)),
    )


def bench_ir(name: str, n: int) -> CircuitIR:
    return parse_qasm(qiskit.qasm2.dumps(get_benchmark(name, BenchmarkLevel.INDEP, n)), name=name)


def infeasible(
    ir: CircuitIR, nodes: list[ServiceAdvertisement], **options: object
) -> InfeasiblePlanError:
    with pytest.raises(InfeasiblePlanError) as info:
        plan_circuit(ir, nodes, PlannerOptions(**options))
    return info.value


# --- capability ----------------------------------------------------------------------


def _all_standard(arities: set[int]) -> QuantumCircuit:
    rng = np.random.default_rng(7)
    gates = [
        g for g in sorted(STANDARD) if g not in NON_GATES and STANDARD[g].num_qubits in arities
    ]
    qc = QuantumCircuit(max(arities))
    for g in gates:
        proto = STANDARD[g]
        params = [float(x) for x in rng.uniform(0.1, 3.0, len(proto.params))]
        qc.append(proto.base_class(*params) if params else proto, range(proto.num_qubits))
    return qc


def _translates(qc: QuantumCircuit, basis: list[str]) -> bool:
    try:
        out = transpile(qc, basis_gates=basis, optimization_level=0)
    except Exception:
        return False
    return set(out.count_ops()) <= set(basis) and Operator(out).equiv(Operator(qc))


@pytest.mark.parametrize("basis", [sorted(s) for s in UNIVERSAL_1Q_SETS], ids=lambda b: "+".join(b))
def test_universal_1q_sets_really_translate_every_1q_gate(basis: list[str]) -> None:
    qc = _all_standard({1})
    assert _translates(qc, basis)
    assert all(supports_gate(basis, g) for g in qc.count_ops())


@pytest.mark.parametrize("entangler", sorted(TRANSLATABLE_ENTANGLERS))
def test_entanglers_with_a_universal_set_translate_every_gate(entangler: str) -> None:
    one_q = sorted(
        UNIVERSAL_1Q_SETS[sorted(TRANSLATABLE_ENTANGLERS).index(entangler) % len(UNIVERSAL_1Q_SETS)]
    )
    qc = _all_standard({1, 2, 3, 4})
    assert _translates(qc, [*one_q, entangler])
    assert all(supports_gate([*one_q, entangler], g) for g in qc.count_ops())


@pytest.mark.parametrize("one_q", [sorted(s) for s in UNIVERSAL_1Q_SETS], ids=lambda b: "+".join(b))
def test_each_universal_set_with_cx_translates_every_gate(one_q: list[str]) -> None:
    assert _translates(_all_standard({2, 3}), [*one_q, "cx"])


@pytest.mark.parametrize(
    ("basis", "probe"),
    [
        (["rz", "ry"], "h"),
        (["rz", "ry"], "rx"),
        (["u", "cy"], "cx"),
        (["u", "ch"], "cx"),
        (["u", "dcx"], "cx"),
        (["u", "swap"], "cx"),
        (["u", "csx"], "cz"),
    ],
)
def test_excluded_sets_are_really_unreachable_and_not_claimed(basis: list[str], probe: str) -> None:
    assert not _translates(_gates_circuit([probe]), basis)
    assert not supports_gate(basis, probe)


def _gates_circuit(names: list[str]) -> QuantumCircuit:
    qc = QuantumCircuit(4)
    for g in names:
        proto = STANDARD[g]
        qc.append(
            proto.base_class(*[0.3] * len(proto.params)) if proto.params else proto,
            range(proto.num_qubits),
        )
    return qc


def test_supports_gate_rules() -> None:
    assert supports_gate(("h", "cx"), "cx")  # native
    assert not supports_gate(("h", "cx"), "rz")  # {h} is not universal
    assert supports_gate(("rz", "sx"), "h")
    assert not supports_gate(("rz", "sx"), "cx")  # no entangler
    assert not supports_gate(("rz", "sx", "swap"), "cx")  # swap does not entangle
    assert supports_gate(("rz", "sx", "cz"), "ccx")
    assert not supports_gate(("u", "cx"), "my_gate")  # unknown names only natively
    assert supports_gate(("my_gate",), "my_gate")


def test_unsupported_gates_lists_missing_sorted_distinct() -> None:
    n = node(1, gates=("h", "cx"))
    assert unsupported_gates(n, ["rz", "cx", "ccx", "rz", "h"]) == ("ccx", "rz")
    assert unsupported_gates(node(2), ["rz", "cx", "ccx"]) == ()


# --- placement -----------------------------------------------------------------------


MIXED = [
    node(1, gates=IBM, max_qubits=4),
    node(2, gates=("cz", "rx", "rz"), max_qubits=3, f2=0.98),
    node(3, gates=("rz", "sx"), max_qubits=8),  # no entangling gate
    node(4, gates=("h", "cx"), max_qubits=2),  # not universal
    node(5, gates=IBM, max_qubits=5, availability="busy"),
]


@pytest.mark.parametrize("bench", ["ghz", "qft", "grover", "qaoa", "dj", "wstate"])
def test_assignment_respects_gate_support_and_capacity(bench: str) -> None:
    ir = bench_ir(bench, 5)
    plan = plan_circuit(ir, MIXED)
    by_id = {n.node_id: n for n in MIXED}
    gate_fragments = [f for f in plan.fragments if f.kind == "gates"]
    assert sorted(i for f in gate_fragments for i in f.operation_indices) == list(
        range(len(ir.operations))
    )
    for fragment in gate_fragments:
        n = by_id[fragment.node_id]
        assert n.availability == "available"
        assert n.qubit_range.min <= len(fragment.qubits) <= n.qubit_range.max
        assert len(fragment.qubits) <= 4  # default max_fragment_qubits
        gates = sorted({ir.operations[i].name for i in fragment.operation_indices})
        assert _translates(_gates_circuit(gates), list(n.native_gates)), (fragment, n.native_gates)
        assert set(fragment.translated_ops) <= set(n.native_gates)
        if any(len(ir.operations[i].qubits) >= 2 for i in fragment.operation_indices):
            assert n.node_id != MIXED[2].node_id  # never the node without an entangler


def test_node_without_entangling_gate_gets_only_1q_fragments() -> None:
    nodes = [node(1, gates=("rz", "sx"), max_qubits=8), node(2, gates=IBM, max_qubits=2)]
    ir = ir_of(
        4, *(("h", (q,)) for q in range(4)), *(("cx", (q, q + 1)) for q in range(3)), ("rz", (3,))
    )
    plan = plan_circuit(ir, nodes)
    on_1q_node = [f for f in plan.fragments if f.kind == "gates" and f.node_id == nodes[0].node_id]
    assert on_1q_node  # it does get work
    assert all(len(ir.operations[i].qubits) == 1 for f in on_1q_node for i in f.operation_indices)


def test_ghz8_on_four_nodes_uses_several_nodes() -> None:
    nodes = [node(i) for i in range(4)]
    plan = plan_circuit(bench_ir("ghz", 8), nodes)
    assert len(plan.nodes) > 1
    assert plan.representation == "density_matrix"
    assert [f.fragment_id for f in plan.fragments] == [f"f{i}" for i in range(len(plan.fragments))]
    assert plan.fragments[-1].kind == "readout"


def test_idle_qubits_are_evicted_when_a_node_is_full() -> None:
    """Residency: a full node makes room by teleporting an idle qubit out (one ebit)."""
    good = node(1, f1=0.999, f2=0.99, readout=0.99, max_qubits=2)
    poor = node(2, f1=0.99, f2=0.80, readout=0.90, max_qubits=2)
    ir = ir_of(3, ("cx", (0, 1)), ("cx", (1, 2)), measure=(0, 1, 2))
    options = PlannerOptions(max_fragment_qubits=2, link_fidelity=0.9)
    plan = plan_circuit(ir, [poor, good], options)
    f0, f1, readout = plan.fragments
    # Both fragments run on the good node: f1 needs qubits 1 and 2 there, the
    # node holds 2, so idle qubit 0 moves to the other node (1 ebit) -- the
    # alternative, running f1 on the poor node, also costs 1 ebit (qubit 1).
    assert (f0.node_id, f1.node_id) == (good.node_id, good.node_id)
    assert f0.teleports == () and f1.teleported_qubits == ()
    assert f1.evicted_qubits == ((0, poor.node_id),)
    assert [(t.qubit, t.source, t.target, t.fidelity) for t in f1.teleports] == [
        (0, good.node_id, poor.node_id, 0.9)
    ]
    assert plan.total_ebits == f1.ebits == 1
    assert plan.final_residency == (poor.node_id, good.node_id, good.node_id)
    assert readout.node_id == good.node_id  # holds 2 of the 3 measured qubits
    # the readout estimate reads each qubit where it resides
    assert readout.estimated_fidelity == pytest.approx(0.90 * 0.99 * 0.99, rel=1e-12)
    assert f1.estimated_fidelity == pytest.approx(
        math.exp(-f1.cost.fidelity_risk) * 0.9, rel=1e-12
    )
    assert plan.estimated_fidelity == pytest.approx(
        f0.estimated_fidelity * f1.estimated_fidelity * readout.estimated_fidelity, rel=1e-12
    )
    assert plan.num_operations == 5


def test_evicted_qubit_that_runs_again_arrives_with_its_hops() -> None:
    """A qubit evicted earlier is listed in teleported_qubits of the fragment that next uses it."""
    a = node(1, max_qubits=2, f2=0.999)
    b = node(2, max_qubits=2, f2=0.9)
    ir = ir_of(3, ("cx", (0, 1)), ("cx", (1, 2)), ("cx", (0, 2)))
    plan = plan_circuit(ir, [a, b], PlannerOptions(max_fragment_qubits=2, link_fidelity=0.95))
    moved_out = {q: f.fragment_id for f in plan.fragments for q, _ in f.evicted_qubits}
    assert moved_out, "three qubits on 2-qubit nodes: some qubit must move"
    later = [f for f in plan.fragments if set(f.qubits) & set(moved_out)
             and f.fragment_id > min(moved_out.values())]
    for f in later:
        for q, fid in zip(f.teleported_qubits, f.arrival_fidelity, strict=True):
            assert 0 < fid <= 0.95
    assert plan.total_ebits >= 1


def test_capacity_is_respected_on_small_nodes() -> None:
    """The old planner ran every fragment of a 7-qubit circuit on a 4-qubit node with 0 ebits."""
    nodes = [node(i, max_qubits=4) for i in range(3)]
    for name, n in (("ghz", 7), ("qft", 6)):
        ir = bench_ir(name, n)
        plan = plan_circuit(ir, nodes)
        assert plan.total_ebits >= 1
        assert len({f.node_id for f in plan.fragments if f.kind == "gates"}) > 1
        held = {x: plan.final_residency.count(x) for x in set(plan.final_residency)}
        assert max(held.values()) <= 4


def test_translated_size_and_native_fidelity() -> None:
    n = node(1, f2=0.9)
    plan = plan_circuit(ir_of(3, ("ccx", (0, 1, 2))), [n])
    (f0,) = plan.fragments
    out = transpile(_gates_circuit(["ccx"]), basis_gates=list(IBM), optimization_level=0)
    assert f0.translated_ops == dict(sorted((k, v) for k, v in out.count_ops().items()))
    assert f0.translated_size == sum(out.count_ops().values())
    n1 = sum(v for k, v in f0.translated_ops.items() if k != "cx")
    n2 = f0.translated_ops["cx"]
    assert f0.estimated_fidelity == pytest.approx(0.999**n1 * 0.9**n2, rel=1e-12)


def test_readout_only_circuit_reads_on_the_best_readout_node() -> None:
    nodes = [node(3, readout=0.9), node(1, readout=0.99), node(2, readout=0.9)]
    plan = plan_circuit(ir_of(2, measure=(0, 1)), nodes)
    (readout,) = plan.fragments
    assert readout.node_id == nodes[1].node_id
    assert readout.depends_on == ()
    assert readout.fragment_id == "f0"
    assert readout.estimated_fidelity == pytest.approx(0.99**2, rel=1e-12)


def test_readout_dependencies_skip_untouched_measured_qubits() -> None:
    plan = plan_circuit(ir_of(3, ("h", (0,)), measure=(0, 2)), [node(1)])
    assert plan.fragments[-1].depends_on == ("f0",)
    assert plan.fragments[-1].qubits == (0, 2)


def test_no_measurement_no_readout_fragment() -> None:
    plan = plan_circuit(bench_ir("qaoa", 4), [node(1), node(2)])
    assert all(f.kind == "gates" for f in plan.fragments)


def test_fragments_never_mix_gates_no_single_node_supports() -> None:
    # node 1 runs only {h, cx} (and what Qiskit translates into them: cz = h cx h), node 2
    # only {rz, cz}: h and rz must land in different fragments.
    nodes = [node(1, gates=("cx", "h")), node(2, gates=("cz", "rz"))]
    ir = ir_of(2, ("h", (0,)), ("rz", (0,)), ("cx", (0, 1)), ("cz", (0, 1)), ("h", (1,)))
    plan = plan_circuit(ir, nodes)
    by_id = {n.node_id: n for n in nodes}
    for f in plan.fragments:
        gates = sorted({ir.operations[i].name for i in f.operation_indices})
        assert _translates(_gates_circuit(gates), list(by_id[f.node_id].native_gates)), (f, gates)
        assert not {0, 1} <= set(f.operation_indices)  # h and rz never together


def test_effective_width_cap_follows_the_largest_node() -> None:
    plan = plan_circuit(bench_ir("qft", 6), [node(1, max_qubits=2), node(2, max_qubits=3), node(3, max_qubits=2)])
    assert max(len(f.qubits) for f in plan.fragments if f.kind == "gates") <= 3


def test_representation_follows_width_limits() -> None:
    nodes = [node(1), node(2), node(3)]  # 12 qubits together
    assert plan_circuit(ir_of(9, ("h", (8,))), nodes).representation == "statevector"
    assert plan_circuit(ir_of(8, ("h", (7,))), nodes).representation == "density_matrix"
    assert (
        plan_circuit(
            ir_of(3, ("h", (0,))), nodes, PlannerOptions(density_matrix_max_qubits=2)
        ).representation
        == "statevector"
    )


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        PlannerOptions(link_fidelity=0.0)
    with pytest.raises(ValueError):
        PlannerOptions(max_fragment_qubits=0)
    with pytest.raises(ValueError):
        PlannerOptions(min_fidelity=1.5)
    with pytest.raises(ValueError):
        PlannerOptions(unknown=1)  # type: ignore[call-arg]


def test_duplicate_node_ids_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        plan_circuit(ir_of(1, ("h", (0,))), [node(1), node(1, f1=0.5)])


# --- infeasibility -------------------------------------------------------------------


def test_gate_no_node_supports_is_named() -> None:
    err = infeasible(ir_of(2, ("h", (0,)), ("rz", (1,))), [node(1, gates=("cx", "h"))])
    assert err.constraint == "gate_support"
    assert "'rz'" in err.message
    assert "{cx, h}" in err.message  # lists the available native gate sets
    assert err.to_dict() == {"constraint": "gate_support", "message": err.message}


def test_entangling_gate_without_entangler_is_named() -> None:
    err = infeasible(ir_of(2, ("cx", (0, 1))), [node(1, gates=("rz", "sx"))])
    assert err.constraint == "gate_support"
    assert "'cx'" in err.message
    assert "entangling" in err.message


def test_width_names_needed_and_largest_capacity() -> None:
    err = infeasible(ir_of(3, ("ccx", (0, 1, 2))), [node(1, max_qubits=2), node(2, max_qubits=2)])
    assert err.constraint == "width"
    assert "'ccx'" in err.message and "3 qubits" in err.message and "accepts 2" in err.message
    err = infeasible(ir_of(3, ("ccx", (0, 1, 2))), [node(1)], max_fragment_qubits=2)
    assert err.constraint == "width"
    assert "max_fragment_qubits" in err.message


def test_width_below_every_node_minimum_is_named() -> None:
    err = infeasible(ir_of(2, ("h", (0,))), [node(1, min_qubits=2)])
    assert err.constraint == "width"
    assert "f0" in err.message and "1 qubit" in err.message


def test_min_fidelity_violation() -> None:
    ir = bench_ir("ghz", 4)
    plan = plan_circuit(ir, [node(1)])
    floor = plan.estimated_fidelity * (1 - 1e-12)
    assert plan_circuit(ir, [node(1)], PlannerOptions(min_fidelity=floor)).to_json() == plan.to_json()
    err = infeasible(ir, [node(1)], min_fidelity=min(1.0, plan.estimated_fidelity + 1e-6))
    assert err.constraint == "min_fidelity"
    assert "min_fidelity" in err.message
    assert f"{plan.estimated_fidelity:.6g}" in err.message  # the best achievable, and the fix
    assert "lower min_fidelity to at most" in err.message


def test_min_fidelity_floor_trades_cost_for_fidelity() -> None:
    """The cheapest plan (fast, noisy node) misses the floor; the planner picks the faithful one."""
    fast = node(1, f2=0.90)
    slow = node(2, f2=0.999)
    ir = ir_of(2, ("cx", (0, 1)), ("cx", (0, 1)), ("cx", (0, 1)))
    weights = {"latency": 1.0, "fidelity_risk": 1.0, "entanglement": 1.0, "price": 0.0}
    base = PlannerOptions(weights=weights, link_rtt_s={slow.node_id: 1.0, fast.node_id: 0.001})
    cheapest = plan_circuit(ir, [fast, slow], base)
    assert {f.node_id for f in cheapest.fragments} == {fast.node_id}
    floored = plan_circuit(ir, [fast, slow], base.model_copy(update={"min_fidelity": 0.99}))
    assert floored.estimated_fidelity >= 0.99
    assert {f.node_id for f in floored.fragments} == {slow.node_id}
    assert floored.cost.total > cheapest.cost.total
    assert "fidelity" in floored.algorithm


def test_degraded_nodes_are_never_used_and_all_degraded_is_named() -> None:
    nodes = [node(1, f2=0.999), node(2, f2=0.9)]
    ir = ir_of(2, ("cx", (0, 1)))
    plan = plan_circuit(ir, nodes, PlannerOptions(degraded=frozenset({nodes[0].node_id})))
    assert {f.node_id for f in plan.fragments} == {nodes[1].node_id}
    err = infeasible(ir, nodes, degraded=frozenset(n.node_id for n in nodes))
    assert err.constraint == "degraded"
    assert "degraded" in err.message and "healthy node" in err.message


def test_no_nodes() -> None:
    assert infeasible(ir_of(1, ("h", (0,))), []).constraint == "no_nodes"
    err = infeasible(
        ir_of(1, ("h", (0,))), [node(1, availability="busy"), node(2, availability="draining")]
    )
    assert err.constraint == "no_nodes"
    assert "available" in err.message


def test_too_wide_for_any_representation() -> None:
    err = infeasible(ir_of(25, ("h", (0,))), [node(1)])
    assert err.constraint == "representation"
    assert "25 qubits" in err.message


# --- determinism (NFR-001) -----------------------------------------------------------


def test_plan_json_identical_for_every_node_order() -> None:
    ir = bench_ir("qft", 5)
    nodes = [node(i, max_qubits=2 + i % 3, f2=0.9 + i / 100) for i in range(4)]
    reference = plan_circuit(ir, nodes).to_json()
    assert len({plan_circuit(ir, list(p)).to_json() for p in itertools.permutations(nodes)}) == 1
    assert Plan.model_validate_json(reference).to_json() == reference


_SCRIPT = textwrap.dedent(
    """
    import qiskit.qasm2
    from mqt.bench import BenchmarkLevel, get_benchmark
    from qb2.compiler import parse_qasm, plan_circuit
    from qb2.protocol.advert import ServiceAdvertisement

    B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    nodes = [
        ServiceAdvertisement(
            node_id="12D3KooW" + B58[7 * i % 58 :][:4] * 11,
            native_gates=("cx", "rz", "sx", "x") if i % 2 else ("cz", "rx", "rz"),
            fidelity={"gate_1q": 0.999 - i / 1000, "gate_2q": 0.9 + i / 100, "readout": 0.97},
            qubit_range={"max": 2 + i % 3},
            timestamp=1.0,
        )
        for i in range(5)
    ]
    for name in ("grover", "qft", "wstate"):
        ir = parse_qasm(qiskit.qasm2.dumps(get_benchmark(name, BenchmarkLevel.INDEP, 5)), name=name)
        print(plan_circuit(ir, nodes[::-1]).to_json())
    """
)


def test_plan_json_identical_across_hash_seeds() -> None:
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count('"fragment_id"') > 10


def test_from_quantum_circuit_plan_equals_qasm_plan() -> None:
    qc = get_benchmark("wstate", BenchmarkLevel.INDEP, 4)
    nodes = [node(1), node(2)]
    assert (
        plan_circuit(from_quantum_circuit(qc, "w"), nodes).to_json()
        == plan_circuit(parse_qasm(qiskit.qasm2.dumps(qc), name="w"), nodes).to_json()
    )


def test_circuit_wider_than_all_nodes_together_names_the_width() -> None:
    from qb2.compiler import InfeasiblePlanError, parse_qasm, plan_circuit
    from tests.conftest import InProcessCluster

    nodes = InProcessCluster(ideal=True).adverts  # 5 + 6 + 4 + 3 = 18 qubits together
    ir = parse_qasm('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[19];\nh q[0];\ncx q[0],q[18];\n')
    with pytest.raises(InfeasiblePlanError) as info:
        plan_circuit(ir, nodes)
    assert info.value.constraint == "width"
    assert "19 qubits" in info.value.message and "hold 18 together" in info.value.message
