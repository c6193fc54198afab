"""Realistic device models on nodes (FR-016): qiskit-ibm-runtime fake backends.

Real Aer simulations throughout; the references are Qiskit's own
``Statevector`` / ``DensityMatrix`` and ``NoiseModel.from_backend``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm2, transpile
from qiskit.quantum_info import DensityMatrix, Operator, Statevector, partial_trace, random_statevector
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime.fake_provider import FakeLagosV2, FakeManilaV2, FakeSherbrooke

from qb2.client.cluster import LocalCluster, _die_with_parent, _wait_for_file
from qb2.client.http import Client
from qb2.compiler import CircuitIR, PlannerOptions, plan_circuit
from qb2.compiler.ir import Measurement, Operation
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import ClbitRegister, ExecuteRequest, GateOp
from qb2.protocol.framing import encode_frame
from qb2.protocol.state import pack_state, unpack_state, zero_state
from qb2.service_node.config import NodeConfigError, load_node_settings
from qb2.service_node.devices import (
    check_executor,
    device_names,
    device_profile,
    gpu_available,
    load_device,
    load_device_node_settings,
)
from qb2.service_node.executor import ExecutionError, apply_gates, sample_readout
from qb2.service_node.executor import logical_circuit as _logical_circuit
from qb2.service_node.handler import NodeSimulator, handle_execute
from qb2.service_node.noise import gate_arity

NODE_ID = "12D3KooW" + "D" * 44


@pytest.fixture(autouse=True)
def no_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node settings read $QB2_CONFIG; another test's in-process CLI call may have left one set."""
    monkeypatch.delenv("QB2_CONFIG", raising=False)


def op(name: str, *qubits: int, params: tuple[float, ...] = ()) -> GateOp:
    return GateOp(name=name, qubits=qubits, params=params)


#: Needs routing on a line (fake_manila 0-1-2-3-4): cx(0, 4), a triangle 1-3-4, a swap.
ROUTED_OPS = (
    op("h", 0), op("cx", 0, 4), op("ry", 2, params=(0.3,)), op("cx", 3, 1), op("rzz", 0, 2, params=(0.7,)),
    op("cx", 4, 1), op("swap", 1, 4), op("u", 3, params=(0.1, 0.2, 0.3)), op("cz", 2, 4),
)


def random_state(n: int, seed: int) -> np.ndarray:
    return random_statevector(2**n, seed=seed).data


# --------------------------------------------------------------------------- advertisement


def test_fake_manila_profile_matches_the_backend_calibration() -> None:
    backend = FakeManilaV2()
    target = backend.target
    profile = device_profile("fake_manila")
    assert profile.name == profile.device == "fake_manila"
    assert profile.qubits == backend.num_qubits == 5
    assert profile.native_gates == ["cx", "id", "rz", "sx", "x"]
    assert set(profile.native_gates) == {n for n in backend.operation_names if gate_arity(n) is not None}

    def mean(values):
        return sum(values) / len(values)

    e1 = [target[g][(q,)].error for g in ("sx", "x", "id") for q in range(5)]  # rz is virtual (duration 0)
    e2 = [props.error for props in target["cx"].values()]
    ro = [target["measure"][(q,)].error for q in range(5)]
    assert profile.fidelity.gate_1q == pytest.approx(1 - mean(e1), abs=1e-12)
    assert profile.fidelity.gate_2q == pytest.approx(1 - mean(e2), abs=1e-12)
    assert profile.fidelity.readout == pytest.approx(1 - mean(ro), abs=1e-12)
    assert profile.fidelity.gate_2q < profile.fidelity.gate_1q < 1.0
    assert profile.gate_times.gate_1q_us == pytest.approx(1e6 * target["sx"][(0,)].duration)
    assert profile.gate_times.gate_2q_us == pytest.approx(1e6 * mean([p.duration for p in target["cx"].values()]))
    assert profile.gate_times.readout_us == pytest.approx(1e6 * mean([target["measure"][(q,)].duration for q in range(5)]))
    ideal = device_profile("manila", noise=False)
    assert ideal.fidelity.gate_1q == ideal.fidelity.gate_2q == ideal.fidelity.readout == 1.0
    assert ideal.device_noise is False and ideal.native_gates == profile.native_gates


def test_device_names_and_unknown_device_error() -> None:
    names = device_names()
    assert len(names) >= 60 and {"fake_manila", "fake_lagos", "fake_sherbrooke"} <= set(names)
    with pytest.raises(NodeConfigError) as info:
        device_profile("fake_manilla")
    assert "did you mean fake_manila?" in str(info.value) and "unknown device" in str(info.value)
    with pytest.raises(NodeConfigError, match="valid names include fake_manila, fake_lagos"):
        device_profile("qpu9000x")
    assert load_device("Manila") is load_device("fake_manila")


def test_load_device_node_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_device_node_settings("fake_lagos")
    node = settings.node
    assert (node.device, node.executor, node.name, node.qubits) == ("fake_lagos", "aer", "fake_lagos", 7)
    named = load_device_node_settings("fake_lagos", name="lagos-1", max_concurrent_fragments=2, qubits=4)
    assert (named.node.name, named.node.max_concurrent_fragments, named.node.qubits) == ("lagos-1", 2, 4)
    with pytest.raises(NodeConfigError, match="native_gates cannot be set for a device node"):
        load_device_node_settings("fake_lagos", native_gates=["cx", "h"])
    with pytest.raises(NodeConfigError, match="only 7 qubits"):
        load_device_node_settings("fake_lagos", qubits=9)
    with pytest.raises(NodeConfigError, match="unknown executor"):
        load_device_node_settings("fake_lagos", executor="qpu")
    with pytest.raises(NodeConfigError, match="unknown device"):
        load_device_node_settings("fake_nowhere")
    # the config file / env path: [node] device = "fake_manila" is honoured by load_node_settings
    monkeypatch.setenv("QB2_NODE__DEVICE", "fake_manila")
    monkeypatch.setenv("QB2_NODE__NAME", "from-env")
    via_env = load_node_settings()
    assert via_env.node.device == "fake_manila" and via_env.node.native_gates == ["cx", "id", "rz", "sx", "x"]
    assert via_env.node.name == "from-env"
    with pytest.raises(NodeConfigError, match="cannot be combined with profile 'ideal'"):
        load_node_settings("ideal")


@pytest.mark.skipif(gpu_available(), reason="this Aer has a GPU: aer-gpu is accepted here")
def test_aer_gpu_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(NodeConfigError, match="aer-gpu"):
        check_executor("aer-gpu")
    with pytest.raises(NodeConfigError, match="aer-gpu"):
        load_device_node_settings("fake_manila", executor="aer-gpu")
    assert check_executor("aer") == "CPU"


@pytest.mark.skipif(not gpu_available(), reason="needs qiskit-aer-gpu and an NVIDIA GPU")
def test_aer_gpu_executor_gives_the_cpu_state() -> None:  # pragma: no cover - CI has no GPU
    settings = load_device_node_settings("fake_manila", executor="aer-gpu", noise=False)
    qpu = NodeSimulator.from_profile(NODE_ID, settings.node)
    assert qpu.aer_device == "GPU"
    state = random_state(5, 3)
    gpu = apply_gates(state, "statevector", 5, ROUTED_OPS, qpu.profile.native_gates, None,
                      device_model=qpu.device, aer_device="GPU")
    cpu = apply_gates(state, "statevector", 5, ROUTED_OPS, qpu.profile.native_gates, None, device_model=qpu.device)
    assert np.allclose(gpu.state, cpu.state, atol=1e-9)


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(("device", "n", "ops"), [
    ("fake_manila", 5, ROUTED_OPS),
    # a 7-qubit state whose fragment touches 3 of its qubits: placed on physical 0-1-2
    ("fake_manila", 7, (op("h", 6), op("cx", 6, 1), op("cx", 1, 3), op("cx", 3, 6), op("rx", 3, params=(0.4,)))),
    # fake_lagos is H-shaped: the 5 qubits used (0, 1, 2, 3, 5) must be a connected set
    ("fake_lagos", 5, ROUTED_OPS),
    # heavy-hex, ECR (one direction per pair only), 127 qubits
    ("fake_sherbrooke", 5, ROUTED_OPS),
])
def test_ideal_device_equals_statevector_for_a_routed_fragment(device: str, n: int, ops) -> None:
    model = load_device(device, noise=False)
    state = random_state(n, seed=n)
    out = apply_gates(state, "statevector", n, ops, model.native_gates, None, device_model=model)
    expected = Statevector(state).evolve(_logical_circuit(ops, n)).data
    assert np.max(np.abs(out.state - expected)) < 1e-9  # global phase included
    compiled = model.compile_fragment(ops, n)
    assert compiled.swaps > 0, "the fragment must need routing"
    assert set(out.native_op_counts) <= set(model.native_gates)
    # every 2-qubit gate of the routed circuit sits on a coupled physical pair
    phys = compiled.physical_qubits
    to_phys = {q: phys[j] for j, q in enumerate(compiled.active_qubits)}
    coupled = {frozenset(pair) for pair in model.coupling}
    for inst in compiled.circuit.data:
        if inst.operation.name == "swap":  # the noiseless un-permutation, not a device gate
            continue
        if len(inst.qubits) == 2:
            a, b = (compiled.circuit.find_bit(q).index for q in inst.qubits)
            assert frozenset((to_phys[a], to_phys[b])) in coupled, inst.operation.name
    rho = DensityMatrix(state)
    dm = apply_gates(rho.data, "density_matrix", n, ops, model.native_gates, None, device_model=model)
    assert np.max(np.abs(dm.state - rho.evolve(_logical_circuit(ops, n)).data)) < 1e-9
    assert dm.native_op_counts == out.native_op_counts


def _ir(ops) -> CircuitIR:
    n = 1 + max(q for o in ops for q in o.qubits)
    return CircuitIR(num_qubits=n, num_clbits=n, operations=tuple(Operation(o.name, o.qubits, o.params) for o in ops),
                     measurements=tuple(Measurement(q, q) for q in range(n)))


def _device_advert(model, qubits: int) -> ServiceAdvertisement:
    profile = model.profile()
    return ServiceAdvertisement(
        node_id=NODE_ID, native_gates=tuple(profile.native_gates), fidelity=profile.fidelity,
        qubit_range={"min": 1, "max": qubits}, gate_times=profile.gate_times, timestamp=1.0,
        coupling_map=model.advertised_coupling(qubits),
    )


FAN_OUT = (op("h", 0), op("cx", 0, 1), op("cx", 0, 2), op("cx", 0, 3), op("cx", 0, 4))


@pytest.mark.parametrize("device", ["fake_manila", "fake_lagos", "fake_sherbrooke"])
def test_plan_routing_swaps_equal_the_swaps_the_device_node_inserts(device: str) -> None:
    """FR-016: the plan counts exactly the SWAPs the node's DeviceModel inserts, fragment by fragment."""
    model = load_device(device, noise=False)
    qpu = NodeSimulator.from_profile(NODE_ID, load_device_node_settings(device, noise=False).node)
    # Toffolis cannot be split into smaller fragments, so a routing-aware planner cannot avoid their SWAPs
    ir = _ir(FAN_OUT + ROUTED_OPS + (op("ccx", 0, 1, 2), op("ccx", 4, 2, 3)) + FAN_OUT[::-1])
    advert = _device_advert(load_device(device), 5)  # calibrated fidelities; same coupling map
    plan = plan_circuit(ir, [advert], PlannerOptions(max_fragment_qubits=5, max_fragment_ops=6))
    gates = [f for f in plan.fragments if f.kind == "gates"]
    assert len(gates) >= 3 and plan.routing_swaps == sum(f.routing_swaps for f in gates) > 0
    for f in gates:
        ops = tuple(GateOp(name=ir.operations[i].name, qubits=ir.operations[i].qubits,
                           params=ir.operations[i].params) for i in f.operation_indices)
        assert model.compile_fragment(ops, ir.num_qubits).swaps == f.routing_swaps, f.fragment_id
        # what the node reports back over the wire (the runtime records it next to the plan's count)
        request = ExecuteRequest(job_id="j", fragment_id=f.fragment_id, kind="gates", representation="statevector",
                                 num_qubits=ir.num_qubits, ops=ops)
        header, _ = handle_execute(qpu, request, pack_state(zero_state("statevector", ir.num_qubits)))
        assert header.ok and header.routing_swaps == f.routing_swaps
    # the same plan on the same node without its coupling map: no SWAPs, a higher estimate
    flat = plan_circuit(ir, [advert.model_copy(update={"coupling_map": None})],
                        PlannerOptions(max_fragment_qubits=5, max_fragment_ops=6))
    assert flat.routing_swaps == 0 and flat.estimated_fidelity > plan.estimated_fidelity
    assert flat.cost.latency_s < plan.cost.latency_s
    # a synthetic node reports no routing at all
    plain = NodeSimulator.from_profile(NODE_ID, load_node_settings("ibm-like").node)
    header, _ = handle_execute(plain, request, pack_state(zero_state("statevector", ir.num_qubits)))
    assert header.ok and header.routing_swaps is None
    assert "routing_swaps" not in encode_frame(header).decode("latin-1")  # omitted on the wire (older peers)


@pytest.mark.parametrize(("device", "qubits"), [("fake_manila", 5), ("fake_lagos", 7), ("fake_lagos", 4),
                                                ("fake_sherbrooke", 24)])
def test_advertised_coupling_map_is_the_device_map_in_placement_order(device: str, qubits: int) -> None:
    model = load_device(device)
    advertised = model.advertised_coupling(qubits)
    phys = model.physical_qubits(qubits)
    assert {(phys[a], phys[b]) for a, b in advertised} == {p for p in model.coupling if set(p) <= set(phys)}
    assert _device_advert(model, qubits).coupling_map == advertised  # a valid advertisement
    if device == "fake_manila":
        assert advertised == ((0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3))


def test_faulty_couplers_are_left_out() -> None:
    """fake_sherbrooke's calibration marks ecr (6, 5) and (7, 6) faulty (error 1.0): never routed over."""
    target = FakeSherbrooke().target
    assert target["ecr"][(6, 5)].error == 1.0 and target["ecr"][(7, 6)].error == 1.0
    model = load_device("fake_sherbrooke")
    assert (6, 5) not in model.coupling and (7, 6) not in model.coupling and (5, 4) in model.coupling
    assert 6 not in model.physical_qubits(24)  # isolated once its two couplers are gone
    usable = [p.error for q, p in target["ecr"].items() if p.error < 1.0]
    assert device_profile("fake_sherbrooke").fidelity.gate_2q == pytest.approx(1 - sum(usable) / len(usable))
    assert device_profile("fake_sherbrooke").qubits == 24  # capped at NodeProfile's limit


def test_compiled_fragment_unitary_and_capacity() -> None:
    model = load_device("fake_manila", noise=False)
    compiled = model.compile_fragment(ROUTED_OPS, 5)
    assert Operator(compiled.circuit).equiv(Operator(_logical_circuit(ROUTED_OPS, 5)))
    assert compiled.native_op_counts["cx"] >= 3 * compiled.swaps  # routing SWAPs are counted as cx
    too_wide = tuple(op("cx", q, q + 1) for q in range(5))  # 6 active qubits on a 5-qubit device
    with pytest.raises(ExecutionError) as info:
        model.compile_fragment(too_wide, 6)
    assert info.value.code == "capacity"
    with pytest.raises(ExecutionError) as info:
        model.compile_fragment((op("measure", 0),), 2)
    assert info.value.code == "bad_request"


# --------------------------------------------------------------------------- noise


def _errors(model: NoiseModel) -> dict[tuple[str, tuple[int, ...]], list]:
    out = {}
    for entry in model.to_dict()["errors"]:
        if entry["type"] == "qerror":
            for name in entry["operations"]:
                for qubits in entry["gate_qubits"]:
                    out[(name, tuple(qubits))] = entry["probabilities"]
    return out


def test_device_noise_is_the_calibrated_noise_of_the_physical_qubits_used() -> None:
    backend = FakeManilaV2()
    reference = _errors(NoiseModel.from_backend(backend))
    model = load_device("fake_manila")
    full = _errors(model.noise_model(range(5)))
    native = {k: v for k, v in reference.items() if k[0] in model.native_gates}
    assert full.keys() == native.keys() and full == native
    # state qubits (2, 4, 6) of a wider state sit on physical (0, 1, 2)
    remapped = _errors(model.noise_model((2, 4, 6)))
    assert remapped[("sx", (4,))] == reference[("sx", (1,))]
    assert remapped[("cx", (6, 4))] == reference[("cx", (2, 1))]
    assert ("cx", (2, 3)) not in remapped and ("sx", (0,)) not in remapped
    reference_ro = {tuple(e["gate_qubits"][0]): e["probabilities"]
                    for e in NoiseModel.from_backend(backend).to_dict()["errors"] if e["type"] == "roerror"}
    readout = model.readout_noise_model((5, 1)).to_dict()["errors"]  # sorted: 1 -> physical 0, 5 -> physical 1
    by_qubit = {tuple(e["gate_qubits"][0]): e["probabilities"] for e in readout}
    assert by_qubit == {(1,): reference_ro[(0,)], (5,): reference_ro[(1,)]}
    assert load_device("fake_manila", noise=False).noise_model((0, 1)) is None


def test_noisy_device_state_equals_aer_with_noise_model_from_backend() -> None:
    """The node's noisy density matrix is Qiskit's own device simulation of the same circuit."""
    model = load_device("fake_manila")
    ops = (op("h", 0), op("cx", 0, 1), op("cx", 1, 2), op("ry", 2, params=(0.3,)))
    out = apply_gates(zero_state("density_matrix", 3), "density_matrix", 3, ops, model.native_gates, None,
                      device_model=model)
    backend = FakeManilaV2()
    qc = _logical_circuit(ops, 3)
    tqc = transpile(qc, backend=backend, initial_layout=[0, 1, 2], optimization_level=1, seed_transpiler=11)
    tqc.save_density_matrix()
    sim = AerSimulator(method="density_matrix", noise_model=NoiseModel.from_backend(backend))
    full = DensityMatrix(sim.run(tqc).result().data(0)["density_matrix"])
    expected = partial_trace(full, [3, 4]).data  # physical 3 and 4 stay |0>
    assert np.max(np.abs(out.state - expected)) < 1e-9


def test_noisy_device_lowers_fidelity_and_purity_through_the_handler() -> None:
    noisy = NodeSimulator.from_profile(NODE_ID, load_device_node_settings("fake_manila").node)
    ideal = NodeSimulator.from_profile(NODE_ID, load_device_node_settings("fake_manila", noise=False).node)
    assert noisy.device is not None and noisy.noise_model is None and noisy.device.noisy
    ghz = (op("h", 0), op("cx", 0, 2), op("cx", 2, 1), op("cx", 1, 3))  # cx(0, 2) needs a SWAP
    request = ExecuteRequest(job_id="j", fragment_id="f0", kind="gates", representation="density_matrix",
                             num_qubits=4, ops=ghz)
    payload = pack_state(zero_state("density_matrix", 4))
    states = {}
    for label, qpu in (("noisy", noisy), ("ideal", ideal)):
        header, out = handle_execute(qpu, request, payload)
        assert header.ok, header.error
        assert header.native_op_counts["cx"] > 3  # routing added cx beyond the 3 of the GHZ
        states[label] = unpack_state(out, "density_matrix", 4)
    target = Statevector(_logical_circuit(ghz, 4)).data
    fid = {k: float(np.real(target.conj() @ rho @ target)) for k, rho in states.items()}
    purity = {k: float(np.real(np.trace(rho @ rho))) for k, rho in states.items()}
    assert fid["ideal"] == pytest.approx(1.0, abs=1e-9) and purity["ideal"] == pytest.approx(1.0, abs=1e-9)
    assert 0.8 < fid["noisy"] < 0.999 and purity["noisy"] < 0.99
    # the advertised fidelities predict the loss to within a factor of three
    f = noisy.profile.fidelity
    counts = handle_execute(noisy, request, payload)[0].native_op_counts
    physical_1q = sum(v for k, v in counts.items() if k in ("sx", "x"))
    estimated = f.gate_1q ** physical_1q * f.gate_2q ** counts["cx"]
    assert (1 - estimated) / 3 < 1 - fid["noisy"] < 3 * (1 - estimated)

    readout = ExecuteRequest(job_id="j", fragment_id="r", kind="readout", representation="density_matrix",
                             num_qubits=4, measurements=((0, 0), (1, 1), (2, 2), (3, 3)),
                             clbit_registers=(ClbitRegister(name="c", size=4),), shots=4000, seed=3)
    ideal_counts = handle_execute(ideal, readout, pack_state(states["ideal"]))[0].counts
    noisy_counts = handle_execute(noisy, readout, pack_state(states["ideal"]))[0].counts
    assert set(ideal_counts) == {"0000", "1111"}
    wrong = sum(v for k, v in noisy_counts.items() if k not in ("0000", "1111")) / 4000
    assert 0.5 * (1 - f.readout) < wrong < 4 * 4 * (1 - f.readout)  # about 4 bits x the mean error


def test_readout_noise_is_the_calibrated_error_of_each_physical_qubit() -> None:
    model = load_device("fake_lagos")
    props = FakeLagosV2().target["measure"]
    errors = [props[(q,)].error for q in range(7)]
    shots = 20000
    noise = model.readout_noise_model(range(8))  # one more than the device holds: it gets the mean
    outcome = sample_readout(zero_state("statevector", 8), "statevector", 8, tuple((q, q) for q in range(8)),
                             (ClbitRegister(name="c", size=8),), shots, 5, 1.0, readout_noise=noise)
    flips = np.zeros(8)
    for key, n in outcome.counts.items():
        flips += n * np.array([int(b) for b in reversed(key)])
    expected = [*errors, float(np.mean(errors))]  # physical order (BFS from 0) on lagos: 0,1,2,3,5,4,6
    expected[4], expected[5] = errors[5], errors[4]
    for q in range(8):
        p = expected[q]
        assert abs(flips[q] / shots - p) < 5 * np.sqrt(p * (1 - p) / shots), (q, flips[q] / shots, p)
    assert max(errors) - min(errors) > 0.05  # the qubits really differ, so a mean model would fail


def test_handler_reports_capacity_for_a_fragment_wider_than_the_device() -> None:
    qpu = NodeSimulator.from_profile(NODE_ID, load_device_node_settings("fake_manila").node)
    ops = tuple(op("cx", q, q + 1) for q in range(5))
    request = ExecuteRequest(job_id="j", fragment_id="f", kind="gates", representation="statevector",
                             num_qubits=6, ops=ops)
    header, _ = handle_execute(qpu, request, pack_state(zero_state("statevector", 6)))
    assert not header.ok and header.error.code == "capacity"


def test_a_synthetic_node_is_unchanged() -> None:
    qpu = NodeSimulator.from_profile(NODE_ID, load_node_settings("ibm-like").node)
    assert qpu.device is None and qpu.noise_model is not None and qpu.aer_device == "CPU"
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.cx(0, 1)
    request = ExecuteRequest(job_id="j", fragment_id="f", kind="gates", representation="statevector",
                             num_qubits=2, ops=(op("h", 0), op("cx", 0, 1)))
    header, out = handle_execute(qpu, request, pack_state(zero_state("statevector", 2)))
    assert header.ok and header.native_op_counts == {"cx": 1, "rz": 2, "sx": 1}
    assert np.allclose(unpack_state(out, "statevector", 2), Statevector(qc).data, atol=1e-9)


# --------------------------------------------------------------------------- a device node process


@pytest.fixture(scope="module")
def device_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A coordinator plus one real node process modelling fake_manila without noise.

    The node is configured the way a config file does it (``[node] device``,
    here through ``QB2_NODE__DEVICE``), so the daemon path (settings ->
    NodeSimulator -> handler -> executor) runs exactly as in production.
    """
    root = tmp_path_factory.mktemp("device-cluster")
    env = {"QB2_COMPILER__LINK_FIDELITY": "1.0", "QB2_DISCOVERY__ADVERT_INTERVAL_S": "0.5"}
    cluster = LocalCluster(root, [], env=env)
    try:
        cluster.start_coordinator()
        ready = root / "run" / "node-manila.json"
        cluster.log_dir.mkdir(parents=True, exist_ok=True)
        with open(cluster.log_dir / "node-manila.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "qb2.service_node", "--name", "manila-ideal",
                 "--bootstrap", cluster.coordinator_multiaddr, "--ready-file", str(ready),
                 *cluster.admission_args("manila-ideal")],
                env={**cluster.env, "QB2_NODE__DEVICE": "fake_manila", "QB2_NODE__DEVICE_NOISE": "false"},
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
            )
        cluster.procs["node-manila"] = proc
        _wait_for_file(ready, proc, 60)
        with Client(cluster.api_url) as client:
            client.wait_for_nodes(1, timeout_s=60)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.integration
def test_a_device_node_process_advertises_the_device_and_routes_correctly(device_cluster) -> None:
    qc = QuantumCircuit(5)
    qc.h(0)
    qc.cx(0, 4)  # not coupled on fake_manila's line: the node must route
    qc.cx(4, 2)
    qc.ry(0.6, 1)
    qc.cx(1, 3)
    qc.rzz(0.5, 0, 3)
    qc.measure_all()
    with Client(device_cluster.api_url) as client:
        (node,) = client.nodes()["nodes"]
        assert node["native_gates"] == ["cx", "id", "rz", "sx", "x"] and node["qubits"] == 5
        assert node["executor"] == "aer" and node["name"] == "manila-ideal"
        assert node["fidelity"] == {"gate_1q": 1.0, "gate_2q": 1.0, "readout": 1.0}
        assert node["coupling_map"] == [[0, 1], [1, 0], [1, 2], [2, 1], [2, 3], [3, 2], [3, 4], [4, 3]]
        job = client.submit(qasm2.dumps(qc), shots=1000, seed=8)
        final = client.wait(job["job_id"], timeout_s=120)
        assert final["state"] == "COMPLETED", final
        result = client.result(job["job_id"])
    sim = AerSimulator(method=result["representation"], seed_simulator=8)
    expected = sim.run(transpile(qc, sim, optimization_level=0), shots=1000).result().get_counts()
    assert result["counts"] == expected
    gate_counts: dict[str, int] = {}
    for fragment in result["fragments"]:
        for name, n in fragment["native_op_counts"].items():
            gate_counts[name] = gate_counts.get(name, 0) + n
    assert set(gate_counts) - {"measure"} <= {"cx", "id", "rz", "sx", "x"}
    assert gate_counts["cx"] > 4 + 2  # 4 cx and 2 for the rzz, plus the routing SWAPs
    # FR-016: the SWAPs the node reports are the ones the plan counted, fragment by fragment
    gates = [f for f in result["fragments"] if f["kind"] == "gates"]
    assert all(f["routing_swaps"] == f["planned_routing_swaps"] for f in gates), gates
    assert sum(f["routing_swaps"] for f in gates) > 0
    with Client(device_cluster.api_url) as client:
        plan = client.plan(job["job_id"])
    assert [(f["fragment_id"], f["routing_swaps"]) for f in plan["fragments"] if f["kind"] == "gates"] == [
        (f["fragment_id"], f["planned_routing_swaps"]) for f in gates]
    assert plan["routing_swaps"] == sum(f["routing_swaps"] for f in gates)


@pytest.mark.integration
def test_cluster_of_device_nodes_via_the_cli_flag(tmp_path: Path) -> None:
    """``qb2 node --device`` (what ``qb2 up --devices`` starts) runs noisy device models end to end."""
    from qb2.client.cluster import NodeSpec
    from qb2.experiments.circuits import benchmark_circuit

    specs = [NodeSpec(d, None, device=d) for d in ("fake_manila", "fake_lima")]
    with LocalCluster(tmp_path, specs) as cluster, Client(cluster.api_url) as client:
        nodes = {n["name"]: n for n in client.nodes()["nodes"]}
        job_id = client.submit(benchmark_circuit("ghz", 5).qasm, shots=2000, seed=3)["job_id"]
        assert client.wait(job_id, timeout_s=120)["state"] == "COMPLETED"
        result = client.result(job_id)
        listing = subprocess.run([sys.executable, "-m", "qb2.client.cli", "nodes", "--url", cluster.api_url],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
    assert set(nodes) == {"fake_manila", "fake_lima"}
    # both are 5-qubit devices: a line (manila) and a T (lima), 4 undirected edges = 8 directed pairs
    assert all(len(n["coupling_map"]) == 8 for n in nodes.values())
    assert all(line.split()[6:8] == ["8", "pairs"] for line in listing.splitlines() if line.startswith("fake_"))
    assert all(n["qubits"] == 5 and "cx" in n["native_gates"] for n in nodes.values())
    assert 0.5 < result["measured_fidelity"] < 0.99  # calibrated noise: clearly below ideal
    top = sorted(result["counts"], key=result["counts"].get, reverse=True)[:2]
    assert set(top) == {"00000", "11111"}
