"""Qiskit interface (FR-015): a Qiskit user's script against a real local cluster.

A coordinator and two ideal service nodes run as real processes on loopback
(like tests/test_integration.py). With ideal nodes and links the counts qb2
returns must equal Aer's for the same seed and the plan's simulation method.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit import Parameter
from qiskit.primitives import BaseSamplerV2
from qiskit.providers import BackendV2, JobStatus, JobV1
from qiskit_aer import AerSimulator

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import ApiError
from qb2.client.qiskit import (
    AER_SEED_STRIDE,
    QB2Backend,
    QB2Job,
    QB2Sampler,
    circuit_to_qasm,
    job_status,
)
from qb2.client.qiskit.submission import combined_status as _combined_status
from qb2.protocol.jobs import JobState

pytestmark = pytest.mark.integration

IDEAL_NODES = [
    NodeSpec("ideal-ibm", "ideal", ["--native-gates", "cx,rz,sx,x", "--qubits", "4"]),
    NodeSpec("ideal-ion", "ideal", ["--native-gates", "rx,ry,rz,rzz", "--qubits", "4"]),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("qiskit-cluster")
    env = {"QB2_COMPILER__LINK_FIDELITY": "1.0", "QB2_DISCOVERY__ADVERT_INTERVAL_S": "0.5"}
    with LocalCluster(root, IDEAL_NODES, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def backend(cluster: LocalCluster):
    with QB2Backend(cluster.api_url) as qb2:
        yield qb2


def aer_counts(circuits, shots: int, seed: int, method: str = "density_matrix") -> list[dict[str, int]]:
    """What Aer returns for the same circuits, seed and simulation method (one batch, like backend.run)."""
    sim = AerSimulator(method=method, seed_simulator=seed)
    result = sim.run(transpile(list(circuits), sim, optimization_level=0), shots=shots).result()
    return [result.get_counts(i) for i in range(len(circuits))]


def entangler(n: int = 5, name: str = "entangler", flip: bool = False) -> QuantumCircuit:
    """A circuit wider than any one node (4 qubits), so fragments cross nodes."""
    qc = QuantumCircuit(n, name=name)
    if flip:
        qc.x(n - 1)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.ry(0.7, 2)
    qc.rzz(0.4, 1, n - 1)
    qc.sx(3)
    qc.measure_all()
    return qc


def test_backend_is_a_qiskit_backend_with_the_registry_target(backend: QB2Backend) -> None:
    assert isinstance(backend, BackendV2)
    target = backend.target
    assert target.num_qubits == 8  # 4 + 4 qubits advertised
    assert set(target.operation_names) == {"cx", "rz", "sx", "x", "rx", "ry", "rzz", "measure"}
    assert backend.max_circuits is None


def test_run_counts_equal_aer_for_the_same_seed(backend: QB2Backend) -> None:
    qc = entangler()
    job = backend.run(qc, shots=1000, seed_simulator=5)
    assert isinstance(job, QB2Job) and isinstance(job, JobV1)
    result = job.result(timeout=120)
    assert job.status() is JobStatus.DONE
    assert backend.client.plan(job.job_id())["representation"] == "density_matrix"
    assert result.get_counts() == aer_counts([qc], 1000, 5)[0]
    assert result.get_counts(qc) == result.get_counts(0)  # lookup by circuit name
    assert sum(result.get_counts().values()) == 1000
    assert result.results[0].header["name"] == "entangler"


def test_batch_uses_aers_per_experiment_seeds(backend: QB2Backend) -> None:
    first, second = entangler(5, "first"), entangler(4, "second", flip=True)
    job = backend.run([first, second], shots=500, seed_simulator=11)
    assert len(job.qb2_job_ids) == 2 and job.job_id() == ",".join(job.qb2_job_ids)
    counts = job.result(timeout=120).get_counts()
    assert counts == aer_counts([first, second], 500, 11)
    assert job.qb2_job_ids and AER_SEED_STRIDE == 2113


def test_transpiled_for_the_backend_target_still_matches_aer(backend: QB2Backend) -> None:
    qc = entangler(6, "transpiled")
    tqc = transpile(qc, backend, optimization_level=1, seed_transpiler=3)
    assert set(tqc.count_ops()) <= set(backend.target.operation_names) | {"barrier"}
    counts = backend.run(tqc, shots=400, seed_simulator=2).result().get_counts()
    assert counts == aer_counts([tqc], 400, 2)[0]


def two_register_circuit() -> QuantumCircuit:
    q, a, b = QuantumRegister(3, "q"), ClassicalRegister(2, "a"), ClassicalRegister(1, "b")
    qc = QuantumCircuit(q, a, b, name="two-registers")
    qc.h(0)
    qc.cx(0, 1)
    qc.ry(1.1, 2)
    qc.measure(0, a[1])
    qc.measure(1, a[0])
    qc.measure(2, b[0])
    return qc


def test_two_classical_registers(backend: QB2Backend) -> None:
    qc = two_register_circuit()
    counts = backend.run(qc, shots=600, seed_simulator=4).result().get_counts()
    expected = aer_counts([qc], 600, 4)[0]
    assert counts == expected
    assert all(len(key.split(" ")) == 2 and len(key.split(" ")[0]) == 1 for key in counts)  # "b aa"

    sampler = QB2Sampler(backend, seed=4)
    data = sampler.run([(qc,)], shots=600).result()[0].data
    a_counts, b_counts = data.a.get_counts(), data.b.get_counts()
    marginal_a: dict[str, int] = {}
    marginal_b: dict[str, int] = {}
    for key, n in expected.items():
        b_bits, a_bits = key.split(" ")
        marginal_a[a_bits] = marginal_a.get(a_bits, 0) + n
        marginal_b[b_bits] = marginal_b.get(b_bits, 0) + n
    assert a_counts == marginal_a and b_counts == marginal_b
    # shot k of register a and shot k of register b are the same measurement
    joint: dict[str, int] = {}
    for a_bits, b_bits in zip(data.a.get_bitstrings(), data.b.get_bitstrings(), strict=True):
        joint[f"{b_bits} {a_bits}"] = joint.get(f"{b_bits} {a_bits}", 0) + 1
    assert joint == expected


def test_sampler_measure_all_counts_equal_aer(backend: QB2Backend) -> None:
    qc = entangler(5, "sampled")
    sampler = QB2Sampler(backend, default_shots=800, seed=9)
    assert isinstance(sampler, BaseSamplerV2)
    job = sampler.run([(qc,)])
    result = job.result(timeout=120)
    assert job.done() and job.in_final_state() and not job.cancelled()
    pub = result[0]
    assert pub.data.meas.num_shots == 800 and pub.data.meas.num_bits == 5
    assert pub.data.meas.get_counts() == aer_counts([qc], 800, 9)[0]
    assert pub.metadata["shots"] == 800 and len(pub.metadata["qb2_job_ids"]) == 1


def test_sampler_binds_two_parameter_sets(backend: QB2Backend) -> None:
    theta, phi = Parameter("theta"), Parameter("phi")
    qc = QuantumCircuit(3, name="param")
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.rx(phi, 2)
    qc.cx(1, 2)
    qc.measure_all()
    values = np.array([[0.3, 1.2], [2.0, -0.5]])
    sampler = QB2Sampler(backend, seed=21)
    result = sampler.run([(qc, values)], shots=700).result()
    data = result[0].data
    assert data.shape == (2,) and data.meas.shape == (2,)
    assert list(qc.parameters) == [phi, theta]  # Qiskit orders parameters by name: columns are (phi, theta)
    bound = [qc.assign_parameters(dict(zip([phi, theta], row, strict=True))) for row in values]
    expected = aer_counts(bound, 700, 21)
    assert [data.meas[i].get_counts() for i in range(2)] == expected
    assert expected[0] != expected[1]  # the parameter sets really differ


def test_job_status_mapping_covers_every_qb2_state() -> None:
    expected = {
        "QUEUED": JobStatus.QUEUED, "COMPILING": JobStatus.VALIDATING, "RESERVING": JobStatus.VALIDATING,
        "EXECUTING": JobStatus.RUNNING, "COMPLETED": JobStatus.DONE, "FAILED": JobStatus.ERROR,
        "CANCELLED": JobStatus.CANCELLED,
    }
    for state in JobState:
        assert job_status(state.value) is expected[state.value]
    assert job_status("RESERVING") is JobStatus.VALIDATING
    with pytest.raises(ValueError, match="unknown qb2 job state"):
        job_status("LOST")
    assert _combined_status(["COMPLETED", "COMPLETED"]) is JobStatus.DONE
    assert _combined_status(["COMPLETED", "FAILED"]) is JobStatus.ERROR
    assert _combined_status(["CANCELLED", "COMPLETED"]) is JobStatus.CANCELLED
    assert _combined_status(["COMPLETED", "QUEUED"]) is JobStatus.RUNNING
    assert _combined_status(["COMPILING", "QUEUED"]) is JobStatus.VALIDATING
    assert _combined_status(["QUEUED", "QUEUED"]) is JobStatus.QUEUED


def test_cancel_of_a_finished_job_is_refused(backend: QB2Backend) -> None:
    job = backend.run(entangler(4, "done"), shots=50, seed_simulator=1)
    job.result(timeout=120)
    assert job.cancel() is False  # already COMPLETED (or no cancel endpoint yet)
    assert job.status() is JobStatus.DONE


def test_rejections_raise_at_run(backend: QB2Backend) -> None:
    theta = Parameter("theta")
    unbound = QuantumCircuit(1)
    unbound.rx(theta, 0)
    unbound.measure_all()
    with pytest.raises(ValueError, match="unbound parameters"):
        backend.run(unbound)
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        backend.run(entangler(4), shots=0)
    with pytest.warns(UserWarning, match=r"ignores option\(s\) \['memory'\]"):
        job = backend.run(entangler(4, "warned"), shots=10, memory=True)
    assert sum(job.result(timeout=120).get_counts().values()) == 10
    mid = QuantumCircuit(2, 2)
    mid.h(0)
    mid.measure(0, 0)
    with mid.if_test((mid.clbits[0], 1)):
        mid.x(1)
    mid.measure(1, 1)
    text, fmt = circuit_to_qasm(mid)
    assert fmt == "qasm3" and "if" in text  # OpenQASM 2 cannot express it
    with pytest.raises(ApiError) as info:
        backend.run(mid)
    assert info.value.status == 422
