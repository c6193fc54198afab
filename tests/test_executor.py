"""Service-node executor and noise model (DESIGN.md "Execution semantics", FR-006, FR-016).

Everything here runs real Aer simulations; nothing is mocked.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Gate
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import (
    DensityMatrix,
    Operator,
    Statevector,
    average_gate_fidelity,
    process_fidelity,
    state_fidelity,
)
from qiskit_aer import AerSimulator

from qb2.protocol.advert import Fidelities
from qb2.protocol.execute import ClbitRegister, ExecuteError, GateOp
from qb2.protocol.state import pack_state, unpack_state, zero_state
from qb2.service_node.executor import (
    MAX_DENSITY_MATRIX_QUBITS,
    MAX_STATEVECTOR_QUBITS,
    ExecutionError,
    apply_gates,
    sample_readout,
    translate,
)
from qb2.service_node.noise import build_noise_model, depolarizing_parameter, link_error, readout_noise_model

STANDARD = get_standard_gate_name_mapping()
NATIVE_SETS = (
    ("rz", "sx", "x", "cx"),
    ("rx", "ry", "rz", "cz"),
    ("u", "cx"),
)
IDEAL = Fidelities(gate_1q=1.0, gate_2q=1.0, readout=1.0)
#: Unitary standard gates by arity.
UNITARY = {name: g for name, g in STANDARD.items() if isinstance(g, Gate) and g.num_qubits >= 1}
GATES_1_2 = sorted(name for name, g in UNITARY.items() if g.num_qubits <= 2)


def ops_of(qc: QuantumCircuit) -> tuple[GateOp, ...]:
    """The unitary part of ``qc`` as wire ops (barriers skipped, measurements rejected)."""
    ops = []
    for inst in qc.data:
        if inst.operation.name == "barrier":
            continue
        assert inst.operation.name in UNITARY, inst.operation.name
        ops.append(
            GateOp(
                name=inst.operation.name,
                qubits=tuple(qc.find_bit(q).index for q in inst.qubits),
                params=tuple(float(p) for p in inst.operation.params),
            )
        )
    return tuple(ops)


def circuit_of(ops, num_qubits: int) -> QuantumCircuit:
    """Reference circuit built directly from Qiskit classes (independent of the executor)."""
    qc = QuantumCircuit(num_qubits)
    for op in ops:
        qc.append(type(STANDARD[op.name])(*op.params) if op.params else STANDARD[op.name], list(op.qubits))
    return qc


def run_in_chunks(ops, num_qubits, representation, native_sets, noise=None):
    """Apply ``ops`` from |0..0> in len(native_sets) consecutive fragments, one per node."""
    state = zero_state(representation, num_qubits)
    bounds = np.linspace(0, len(ops), len(native_sets) + 1).astype(int)
    for native, lo, hi in zip(native_sets, bounds[:-1], bounds[1:]):
        outcome = apply_gates(state, representation, num_qubits, ops[lo:hi], native, noise)
        # the state crosses the wire between nodes
        state = unpack_state(pack_state(outcome.state), representation, num_qubits)
    return state


# --------------------------------------------------------------------------- translation


@pytest.mark.parametrize("native", NATIVE_SETS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_translate_preserves_unitary_including_global_phase(native, seed):
    qc = random_circuit(4, 4, max_operands=3, seed=seed)
    ops = ops_of(qc)
    out = translate(ops, 4, native)
    assert out.num_qubits == 4
    assert set(out.count_ops()) <= set(native)
    assert Operator(out) == Operator(qc)  # exact equality: global phase included


@pytest.mark.parametrize("name", sorted(UNITARY))
def test_translate_every_standard_gate(name):
    g = UNITARY[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params = tuple(float(x) for x in rng.uniform(-math.pi, math.pi, len(g.params)))
    # place it on the top qubits, reversed, to catch any remapping
    qubits = tuple(range(g.num_qubits, 0, -1))
    op = GateOp(name=name, qubits=qubits, params=params)
    ref = circuit_of([op], g.num_qubits + 1)
    for native in (("u", "cx"), ("rz", "sx", "x", "cx")):
        out = translate([op], g.num_qubits + 1, native)
        assert set(out.count_ops()) <= set(native)
        assert Operator(out) == Operator(ref), (name, native)


def test_translate_global_phase_is_kept():
    # rz(t) = exp(-i t/2 Z) differs from p(t) / u(0,0,t) by a global phase only
    ops = [GateOp(name="rz", qubits=(0,), params=(0.7,))]
    out = translate(ops, 1, ("u", "cx"))
    assert out.global_phase != 0.0
    assert Operator(out) == Operator(circuit_of(ops, 1))
    assert not Operator(out) == Operator(circuit_of([GateOp(name="p", qubits=(0,), params=(0.7,))], 1))


def test_translate_cache_returns_independent_copies():
    ops = [GateOp(name="h", qubits=(0,)), GateOp(name="cx", qubits=(0, 1))]
    a = translate(ops, 2, ("u", "cx"))
    a.x(0)
    b = translate(ops, 2, ("cx", "u"))  # native order does not matter
    assert Operator(b) == Operator(circuit_of(ops, 2))


# --------------------------------------------------------------------------- ideal nodes


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_ideal_statevector_handoff_equals_statevector(seed, chunks):
    qc = random_circuit(5, 6, max_operands=3, seed=seed)
    ops = ops_of(qc)
    natives = [NATIVE_SETS[(seed + i) % 3] for i in range(chunks)]
    state = run_in_chunks(ops, 5, "statevector", natives)
    assert state.shape == (32,) and state.dtype == np.complex128
    np.testing.assert_allclose(state, Statevector(qc).data, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("chunks", [1, 2, 3])
def test_ideal_density_matrix_handoff_equals_density_matrix(seed, chunks):
    qc = random_circuit(5, 6, max_operands=3, seed=seed)
    ops = ops_of(qc)
    natives = [NATIVE_SETS[(seed + i) % 3] for i in range(chunks)]
    noise = build_noise_model(natives[0], IDEAL)
    assert noise is None
    state = run_in_chunks(ops, 5, "density_matrix", natives, noise)
    assert state.shape == (32, 32) and state.dtype == np.complex128
    np.testing.assert_allclose(state, DensityMatrix(qc).data, rtol=0, atol=1e-9)


@pytest.mark.parametrize("representation", ["statevector", "density_matrix"])
def test_width_is_kept_when_fragment_touches_one_qubit(representation):
    # a product state on 5 qubits, a gate on qubit 3 only: idle qubits must survive
    prep = QuantumCircuit(5)
    for q, angle in enumerate([0.3, 1.1, 2.0, 0.4, 2.9]):
        prep.ry(angle, q)
    sv = Statevector(prep)
    state = sv.data if representation == "statevector" else DensityMatrix(sv).data
    out = apply_gates(state, representation, 5, [GateOp(name="h", qubits=(3,))], ("u", "cx"), None)
    prep.h(3)
    expected = Statevector(prep) if representation == "statevector" else DensityMatrix(prep)
    np.testing.assert_allclose(out.state, expected.data, rtol=0, atol=1e-9)


def test_native_op_counts_are_sorted_translated_counts():
    ops = [GateOp(name="h", qubits=(0,)), GateOp(name="cx", qubits=(0, 1)), GateOp(name="swap", qubits=(1, 2))]
    out = apply_gates(zero_state("statevector", 3), "statevector", 3, ops, ("rz", "sx", "x", "cx"), None)
    assert list(out.native_op_counts) == sorted(out.native_op_counts)
    assert out.native_op_counts == dict(translate(ops, 3, ("rz", "sx", "x", "cx")).count_ops())
    assert out.native_op_counts["cx"] == 4  # 1 + 3 for the swap
    assert out.simulation_s > 0


def test_empty_fragment_is_identity():
    state = Statevector(random_circuit(3, 3, seed=5)).data
    out = apply_gates(state, "statevector", 3, (), ("u", "cx"), None)
    np.testing.assert_allclose(out.state, state, rtol=0, atol=1e-12)
    assert out.native_op_counts == {}


# --------------------------------------------------------------------------- identical counts


def _split_benchmark(name: str, n: int):
    from mqt.bench import BenchmarkLevel, get_benchmark

    qc = get_benchmark(name, BenchmarkLevel.INDEP, n)
    while custom := sorted({i.operation.name for i in qc.data if i.operation.name not in STANDARD} - {"barrier"}):
        qc = qc.decompose(gates_to_decompose=custom)
    unitary = QuantumCircuit(*qc.qregs)
    measurements = []
    for inst in qc.data:
        if inst.operation.name == "measure":
            measurements.append((qc.find_bit(inst.qubits[0]).index, qc.find_bit(inst.clbits[0]).index))
        elif inst.operation.name != "barrier":
            assert not measurements, "measurements must be final"
            unitary.append(inst)
    registers = [ClbitRegister(name=r.name, size=r.size) for r in qc.cregs]
    return qc, ops_of(unitary), measurements, registers


BENCHMARKS = [(name, n) for name in ("ghz", "qft", "wstate", "dj") for n in (4, 5, 6)]


@pytest.mark.parametrize("representation", ["statevector", "density_matrix"])
@pytest.mark.parametrize(("name", "n"), BENCHMARKS)
def test_ideal_distributed_counts_equal_centralized(name, n, representation):
    """DESIGN.md invariant: ideal nodes give identical counts for the same seed.

    The centralized reference pins ``method="statevector"``: Aer's automatic
    method picks the stabilizer simulator for Clifford circuits (ghz), whose
    sampling consumes the random stream differently.
    """
    full, ops, measurements, registers = _split_benchmark(name, n)
    state = run_in_chunks(ops, n, representation, NATIVE_SETS[:2])
    for seed in (7, 2024):
        ref = AerSimulator(method="statevector", seed_simulator=seed).run(full, shots=2000).result().get_counts()
        got = sample_readout(state, representation, n, measurements, registers, 2000, seed, 1.0)
        assert got.counts == dict(ref)
        assert sum(got.counts.values()) == 2000


@pytest.mark.parametrize(("name", "n"), [("qft", 5), ("wstate", 5), ("dj", 5)])
def test_ideal_counts_equal_default_aer_for_non_clifford(name, n):
    full, ops, measurements, registers = _split_benchmark(name, n)
    state = run_in_chunks(ops, n, "statevector", NATIVE_SETS[1:])
    ref = AerSimulator(seed_simulator=99).run(full, shots=1000).result().get_counts()
    assert sample_readout(state, "statevector", n, measurements, registers, 1000, 99, 1.0).counts == dict(ref)


def test_counts_with_several_registers_and_partial_measurement():
    qc = QuantumCircuit(QuantumRegister(4, "q"), ClassicalRegister(2, "a"), ClassicalRegister(3, "b"))
    qc.h(0)
    qc.cx(0, 2)
    qc.ry(0.8, 3)
    qc.x(1)
    unitary = qc.copy()
    measurements = [(0, 4), (1, 0), (3, 2)]  # clbit 4 = b[2], 0 = a[0], 2 = b[0]
    for q, c in measurements:
        qc.measure(q, c)
    registers = [ClbitRegister(name="a", size=2), ClbitRegister(name="b", size=3)]
    for representation in ("statevector", "density_matrix"):
        state = run_in_chunks(ops_of(unitary), 4, representation, NATIVE_SETS[2:])
        got = sample_readout(state, representation, 4, measurements, registers, 500, 3, 1.0).counts
        ref = AerSimulator(method="statevector", seed_simulator=3).run(qc, shots=500).result().get_counts()
        assert got == dict(ref)
        assert all(len(k) == 6 and k[3] == " " for k in got)  # "bbb aa"


# --------------------------------------------------------------------------- noise


def test_noise_model_none_for_ideal_node_and_arity_rules():
    assert build_noise_model(("u", "cx"), IDEAL) is None
    model = build_noise_model(("ccx", "cx", "measure", "u"), Fidelities(gate_1q=0.99, gate_2q=0.9, readout=1.0))
    assert set(model.noise_instructions) == {"u", "cx"}  # no error on 3-qubit gates nor on measure
    model = build_noise_model(("u", "cx"), Fidelities(gate_1q=1.0, gate_2q=1.0, readout=0.95))
    assert set(model.noise_instructions) == {"measure"}


@pytest.mark.parametrize("fid", [0.999, 0.95, 0.6])
@pytest.mark.parametrize("k", [1, 2])
def test_depolarizing_error_has_the_advertised_process_fidelity(fid, k):
    natives = {1: ("sx",), 2: ("cz",)}[k]
    fids = Fidelities(gate_1q=fid, gate_2q=fid, readout=1.0)
    model = build_noise_model(natives, fids)
    error = model._default_quantum_errors[natives[0]]  # the channel Aer applies after the gate
    channel = error.to_quantumchannel()
    assert process_fidelity(channel) == pytest.approx(fid, abs=1e-12)
    d = 2**k
    assert average_gate_fidelity(channel) == pytest.approx((d * fid + 1) / (d + 1), abs=1e-12)
    assert depolarizing_parameter(fid, k) == pytest.approx((1 - fid) * d * d / (d * d - 1))
    assert process_fidelity(link_error(fid).to_quantumchannel()) == pytest.approx(fid, abs=1e-12)


def test_noisy_gate_is_applied_exactly_not_sampled():
    # X then CX with depolarizing errors: closed form, so the DM must match to 1e-12
    f1, f2 = 0.9, 0.8
    model = build_noise_model(("x", "cx"), Fidelities(gate_1q=f1, gate_2q=f2, readout=1.0))
    ops = [GateOp(name="x", qubits=(0,)), GateOp(name="cx", qubits=(0, 1))]
    out = apply_gates(zero_state("density_matrix", 2), "density_matrix", 2, ops, ("x", "cx"), model).state
    l1, l2 = depolarizing_parameter(f1, 1), depolarizing_parameter(f2, 2)
    rho1 = (1 - l1) * np.diag([0, 1.0]) + l1 * np.eye(2) / 2  # qubit 0 after noisy X
    rho = np.kron(np.diag([1.0, 0]), rho1)  # qubit 1 in |0>, little-endian kron(q1, q0)
    cx = Operator(circuit_of(ops[1:], 2)).data
    expected = (1 - l2) * cx @ rho @ cx.conj().T + l2 * np.eye(4) / 4
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_noisy_density_matrix_loses_purity_and_fidelity_monotonically():
    qc = random_circuit(4, 3, max_operands=1, seed=31)
    for q in range(3):
        qc.cx(q, q + 1)
    qc.compose(random_circuit(4, 3, max_operands=2, seed=32), inplace=True)
    ops = ops_of(qc)
    ideal = DensityMatrix(qc)
    fidelities = []
    for f2 in (1.0, 0.99, 0.95, 0.9, 0.8):
        model = build_noise_model(("rz", "sx", "x", "cx"), Fidelities(gate_1q=1.0, gate_2q=f2, readout=1.0))
        rho = run_in_chunks(ops, 4, "density_matrix", [("rz", "sx", "x", "cx")], model)
        purity = float(np.real(np.trace(rho @ rho)))
        assert np.trace(rho) == pytest.approx(1.0, abs=1e-12)
        if f2 < 1.0:
            assert purity < 1.0 - 1e-6
        fidelities.append(state_fidelity(DensityMatrix(rho), ideal, validate=False))
    assert fidelities[0] == pytest.approx(1.0, abs=1e-9)
    assert all(a > b for a, b in zip(fidelities, fidelities[1:])), fidelities


def test_statevector_representation_applies_no_noise():
    qc = random_circuit(3, 4, max_operands=2, seed=8)
    model = build_noise_model(("u", "cx"), Fidelities(gate_1q=0.9, gate_2q=0.8, readout=0.9))
    out = apply_gates(
        zero_state("statevector", 3),
        "statevector",
        3,
        ops_of(qc),
        ("u", "cx"),
        model,
        teleported_qubits=(1,),
        link_fidelity=0.5,
    )
    np.testing.assert_allclose(out.state, Statevector(qc).data, rtol=0, atol=1e-9)


def test_link_depolarization_on_teleported_qubit():
    # Bell pair; qubit 1 is teleported over a link of fidelity 0.8
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    rho = DensityMatrix(bell).data
    out = apply_gates(rho, "density_matrix", 2, (), ("u", "cx"), None, teleported_qubits=(1,), link_fidelity=0.8)
    lam = depolarizing_parameter(0.8, 1)
    purity = float(np.real(np.trace(out.state @ out.state)))
    assert purity < 1.0 - 1e-3
    # depolarizing one half of a Bell pair: fidelity with the Bell state is (1-lam) + lam/4 = F
    fidelity = state_fidelity(DensityMatrix(out.state), Statevector(bell), validate=False)
    assert fidelity == pytest.approx(0.8, abs=1e-12)
    assert lam == pytest.approx(0.2 * 4 / 3)
    # a perfect link changes nothing
    same = apply_gates(rho, "density_matrix", 2, (), ("u", "cx"), None, teleported_qubits=(1,), link_fidelity=1.0)
    np.testing.assert_allclose(same.state, rho, rtol=0, atol=1e-12)


@pytest.mark.parametrize("representation", ["statevector", "density_matrix"])
def test_readout_error_makes_wrong_outcomes_appear(representation):
    state = zero_state(representation, 3)
    regs = [ClbitRegister(name="c", size=3)]
    meas = [(0, 0), (1, 1), (2, 2)]
    clean = sample_readout(state, representation, 3, meas, regs, 4000, 5, 1.0).counts
    assert clean == {"000": 4000}
    noisy = sample_readout(state, representation, 3, meas, regs, 4000, 5, 0.9).counts
    assert sum(noisy.values()) == 4000
    wrong = 4000 - noisy.get("000", 0)
    # P(any of 3 bits flipped) = 1 - 0.9**3 = 0.271; 4000 shots -> sd ~ 28
    assert 0.271 * 4000 - 200 < wrong < 0.271 * 4000 + 200
    assert readout_noise_model(1.0) is None


def test_readout_is_reproducible_per_seed():
    state = Statevector(random_circuit(4, 4, seed=2)).data
    regs = [ClbitRegister(name="c", size=4)]
    meas = [(q, q) for q in range(4)]
    a = sample_readout(state, "statevector", 4, meas, regs, 300, 17, 0.95).counts
    b = sample_readout(state, "statevector", 4, meas, regs, 300, 17, 0.95).counts
    c = sample_readout(state, "statevector", 4, meas, regs, 300, 18, 0.95).counts
    assert a == b and a != c


# --------------------------------------------------------------------------- errors


def _code(fn, *args, **kwargs) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        fn(*args, **kwargs)
    return info.value


def test_error_unknown_gate_is_bad_request():
    err = _code(translate, [GateOp(name="foo", qubits=(0,))], 1, ("u", "cx"))
    assert err.code == "bad_request" and "foo" in err.message
    model = err.to_model()
    assert isinstance(model, ExecuteError) and model.code == "bad_request" and model.message == err.message


def test_error_untranslatable_gate_is_unsupported_gate():
    ops = [GateOp(name="h", qubits=(0,)), GateOp(name="cx", qubits=(0, 1))]
    err = _code(apply_gates, zero_state("statevector", 2), "statevector", 2, ops, ("rz", "sx", "x"), None)
    assert err.code == "unsupported_gate"
    assert "cx" in err.message and "h" not in err.message.split("cannot")[0]
    assert "rz, sx, x" in err.message


@pytest.mark.parametrize(
    ("op", "fragment"),
    [
        (GateOp(name="cx", qubits=(0,)), "acts on 2"),
        (GateOp(name="h", qubits=(0, 1)), "acts on 1"),
        (GateOp(name="rz", qubits=(0,)), "1 parameter"),
        (GateOp(name="h", qubits=(0,), params=(0.1,)), "0 parameter"),
        (GateOp(name="h", qubits=(3,)), "out of range"),
        (GateOp(name="h", qubits=(-1,)), "out of range"),
        (GateOp(name="cx", qubits=(1, 1)), "repeats"),
        (GateOp(name="rx", qubits=(0,), params=(math.nan,)), "non-finite"),
        (GateOp(name="measure", qubits=(0,)), "not a unitary"),
        (GateOp(name="reset", qubits=(0,)), "not a unitary"),
        (GateOp(name="barrier", qubits=(0,)), "unknown gate"),
    ],
)
def test_error_malformed_ops_are_bad_request(op, fragment):
    err = _code(apply_gates, zero_state("density_matrix", 3), "density_matrix", 3, [op], ("u", "cx"), None)
    assert err.code == "bad_request" and fragment in err.message


@pytest.mark.parametrize(
    ("representation", "state", "fragment"),
    [
        ("statevector", np.zeros(4, dtype=complex), "shape"),
        ("statevector", np.ones(8, dtype=complex), "norm"),
        ("density_matrix", np.zeros(8, dtype=complex), "shape"),
        ("density_matrix", np.eye(8, dtype=complex), "trace"),
        ("density_matrix", np.diag([1.0] + [0.0] * 7).astype(complex) + np.triu(np.ones((8, 8)), 1), "Hermitian"),
        ("statevector", np.full(8, np.nan, dtype=complex), "non-finite"),
        ("mps", np.zeros(8, dtype=complex), "representation"),
    ],
)
def test_error_bad_state_is_bad_request(representation, state, fragment):
    err = _code(apply_gates, state, representation, 3, [], ("u", "cx"), None)
    assert err.code == "bad_request" and fragment in err.message
    err = _code(sample_readout, state, representation, 3, [(0, 0)], [ClbitRegister(name="c", size=1)], 10, 1, 1.0)
    assert err.code == "bad_request"


def test_error_capacity():
    tiny = np.zeros(1, dtype=complex)  # never read: the width is refused first
    err = _code(apply_gates, tiny, "density_matrix", MAX_DENSITY_MATRIX_QUBITS + 1, [], ("u",), None)
    assert err.code == "capacity"
    err = _code(sample_readout, tiny, "statevector", MAX_STATEVECTOR_QUBITS + 1, [], [], 1, None, 1.0)
    assert err.code == "capacity"


def test_error_bad_teleport_and_readout_arguments():
    sv = zero_state("density_matrix", 2)
    assert _code(apply_gates, sv, "density_matrix", 2, [], ("u",), None, teleported_qubits=(2,)).code == "bad_request"
    assert _code(apply_gates, sv, "density_matrix", 2, [], ("u",), None, teleported_qubits=(0, 0)).code == "bad_request"
    assert _code(apply_gates, sv, "density_matrix", 2, [], ("u",), None, (0,), 1.5).code == "bad_request"
    regs = [ClbitRegister(name="c", size=2)]
    assert _code(sample_readout, sv, "density_matrix", 2, [(0, 2)], regs, 10, 1, 1.0).code == "bad_request"
    assert _code(sample_readout, sv, "density_matrix", 2, [(2, 0)], regs, 10, 1, 1.0).code == "bad_request"
    assert _code(sample_readout, sv, "density_matrix", 2, [(0, 0)], regs, 0, 1, 1.0).code == "bad_request"
    assert _code(sample_readout, sv, "density_matrix", 2, [(0, 0)], regs, 10, 1, 0.0).code == "bad_request"
    with pytest.raises(ValueError):
        link_error(0.0)
    with pytest.raises(ValueError):
        ExecutionError("nope", "x")


# --------------------------------------------------------------------------- property


@st.composite
def gate_sequences(draw):
    n = draw(st.integers(1, 4))
    names = [g for g in GATES_1_2 if UNITARY[g].num_qubits <= n]
    ops = []
    for _ in range(draw(st.integers(0, 10))):
        name = draw(st.sampled_from(names))
        g = UNITARY[name]
        qubits = tuple(draw(st.permutations(range(n)))[: g.num_qubits])
        params = tuple(
            draw(st.floats(-2 * math.pi, 2 * math.pi, allow_nan=False, allow_infinity=False)) for _ in g.params
        )
        ops.append(GateOp(name=name, qubits=qubits, params=params))
    cut = draw(st.integers(0, len(ops)))
    first, second = draw(st.permutations(NATIVE_SETS))[:2]
    return n, ops, cut, first, second


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gate_sequences())
def test_property_two_chunks_on_two_native_sets_equal_statevector(case):
    n, ops, cut, first, second = case
    state = zero_state("statevector", n)
    state = apply_gates(state, "statevector", n, ops[:cut], first, None).state
    state = apply_gates(state, "statevector", n, ops[cut:], second, None).state
    np.testing.assert_allclose(state, Statevector(circuit_of(ops, n)).data, rtol=0, atol=1e-9)


def test_concurrent_fragments_share_simulators_safely():
    # the daemon runs fragments from worker threads; shared AerSimulator instances must not mix results
    from concurrent.futures import ThreadPoolExecutor

    model = build_noise_model(("u", "cx"), Fidelities(gate_1q=0.99, gate_2q=0.95, readout=1.0))
    circuits = [random_circuit(4, 4, max_operands=2, seed=100 + i) for i in range(12)]

    def job(i):
        rep = "density_matrix" if i % 2 else "statevector"
        return run_in_chunks(ops_of(circuits[i]), 4, rep, [("u", "cx")], model if i % 2 else None)

    serial = [job(i) for i in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(job, range(12)))
    for a, b in zip(serial, parallel):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
