"""Real processes on loopback: a coordinator and three service nodes over libp2p and HTTP (issue 2).

The nodes are ideal (fidelity 1.0) and links too, so the counts that come back
over the network must equal Aer's centralized counts for the same seed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import trio
from qiskit import transpile
from qiskit_aer import AerSimulator

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.compiler import parse_qasm
from qb2.compiler.export import to_quantum_circuit
from qb2.daemon.host import load_or_create_identity, make_host, make_pubsub
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.advert import ServiceAdvertisement
from tests.conftest import publish_adverts_until

pytestmark = pytest.mark.integration

IDEAL_NODES = [
    NodeSpec("ideal-ibm", "ideal", ["--native-gates", "cx,rz,sx,x", "--qubits", "4"]),
    NodeSpec("ideal-ion", "ideal", ["--native-gates", "rx,ry,rz,rzz", "--qubits", "4"]),
    NodeSpec("ideal-cz", "ideal", ["--native-gates", "cz,rx,ry,rz", "--qubits", "4"]),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cluster")
    env = {"QB2_COMPILER__LINK_FIDELITY": "1.0", "QB2_DISCOVERY__ADVERT_INTERVAL_S": "0.5"}
    with LocalCluster(root, IDEAL_NODES, env=env) as running:
        yield running


def test_registry_lists_every_node(cluster: LocalCluster) -> None:
    with Client(cluster.api_url) as client:
        nodes = client.nodes()
    assert nodes["available"] == 3
    assert {n["node_id"] for n in nodes["nodes"]} == set(cluster.node_peer_ids.values())
    assert {n["name"] for n in nodes["nodes"]} == {s.name for s in IDEAL_NODES}


@pytest.mark.parametrize(("name", "qubits", "fmt"), [("qft", 6, "qasm3"), ("ghz", 7, "qasm2")])
def test_submit_over_http_returns_centralized_counts(cluster: LocalCluster, name: str, qubits: int, fmt: str) -> None:
    circuit = benchmark_circuit(name, qubits, fmt)
    with Client(cluster.api_url) as client:
        job = client.submit(circuit.qasm, shots=1000, seed=5, name=circuit.label)
        assert job["state"] == "QUEUED"
        final = client.wait(job["job_id"], timeout_s=120)
        assert final["state"] == "COMPLETED", final
        result = client.result(job["job_id"])
        plan = client.plan(job["job_id"])
    ir = parse_qasm(circuit.qasm, fmt)
    sim = AerSimulator(method=plan["representation"], seed_simulator=5)
    expected = sim.run(transpile(to_quantum_circuit(ir), sim, optimization_level=0), shots=1000).result().get_counts()
    assert result["counts"] == expected
    executed_by = {f["node_id"] for f in result["fragments"] if f["status"] == "DONE"}
    assert len(executed_by) > 1, "more than one node must execute fragments"
    assert all(f["status"] == "DONE" and f["started_at"] <= f["ended_at"] for f in result["fragments"])
    assert result["measured_fidelity"] > 0.95  # ideal nodes: only shot noise separates counts from the ideal
    assert result["estimated_fidelity"] == 1.0


BAD_INPUTS = [
    ({"qasm": "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\nh q[0]\ncx q[0],q[1];\n"}, 422, "invalid_qasm"),
    ({"qasm": "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\nfoo q[0];\n"}, 422, "invalid_qasm"),
    ({"qasm": "OPENQASM 2.0;\nqreg q[2];\n", "shots": 0}, 422, "invalid_request"),
    ({"qasm": "OPENQASM 2.0;\nqreg q[2];\n", "shots": -5}, 422, "invalid_request"),
    ({}, 422, "invalid_request"),
    ({"qasm": ""}, 422, "invalid_request"),
    ({"qasm": "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[40];\nh q[0];\n"}, 422, "infeasible"),
    ({"qasm": "OPENQASM 2.0;\nqreg q[20000000];\n"}, 422, "too_wide"),  # refused before parsing
]


def test_bad_input_is_rejected_and_nothing_is_queued(cluster: LocalCluster) -> None:
    with httpx.Client(base_url=cluster.api_url, timeout=30) as http:
        before = http.get("/api/v1/jobs").json()["total"]
        for body, status, code in BAD_INPUTS:
            response = http.post("/api/v1/circuits/submit", json=body)
            assert response.status_code == status, (body, response.text)
            error = response.json()["error"]
            assert error["code"] == code and error["message"], (body, error)
        syntax = http.post("/api/v1/circuits/submit", json=BAD_INPUTS[0][0]).json()["error"]
        assert syntax["details"]["line"] == 5
        not_json = http.post("/api/v1/circuits/submit", content=b"{not json", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        assert http.get("/api/v1/jobs").json()["total"] == before
        assert http.get("/api/v1/jobs/does-not-exist").status_code == 404
        assert http.get("/api/v1/health").status_code == 200


def test_status_survives_after_completion(cluster: LocalCluster) -> None:
    circuit = benchmark_circuit("wstate", 3, "qasm2")
    with Client(cluster.api_url) as client:
        job_id = client.submit(circuit.qasm, shots=100, seed=1)["job_id"]
        client.wait(job_id, timeout_s=120)
        listed = client.jobs(state="COMPLETED", limit=500)
    assert job_id in {j["job_id"] for j in listed["jobs"]}
    db = cluster.data_dir / "coordinator.db"
    assert db.exists() and db.stat().st_size > 0


async def test_forged_advertisement_is_rejected_and_logged(cluster: LocalCluster, tmp_path: Path) -> None:
    """A peer that advertises another node's id is rejected with the reason in the log (FR-001)."""
    victim = cluster.node_peer_ids["ideal-ibm"]
    host = make_host(load_or_create_identity(None))
    pubsub, router = make_pubsub(host)
    forged = ServiceAdvertisement(
        node_id=victim, native_gates=("cx", "rz", "sx", "x"), fidelity={"gate_1q": 1, "gate_2q": 1, "readout": 1},
        qubit_range={"max": 20}, timestamp=time.time(), sequence=10**9, name="forged",
    )
    log_file = cluster.log_dir / "coordinator.log"
    await publish_adverts_until(host, pubsub, router, cluster.coordinator_multiaddr, forged.model_dump_json().encode(),
                                lambda: "is not the signing peer" in log_file.read_text(), timeout_s=20)
    rejected = [json.loads(line) for line in log_file.read_text().splitlines() if "advertisement rejected" in line]
    assert rejected and rejected[-1]["reason"].startswith(f"node_id {victim} is not the signing peer")
    with Client(cluster.api_url) as client:
        names = {n["name"] for n in client.nodes()["nodes"]}
    assert "forged" not in names


def test_cli_submit_wait_status_and_nodes(cluster: LocalCluster, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    qasm = tmp_path / "ghz4.qasm"
    qasm.write_text(benchmark_circuit("ghz", 4, "qasm2").qasm)
    env = {**os.environ, "QB2_URL": cluster.api_url}
    qb2 = [sys.executable, "-m", "qb2.client.cli"]
    done = subprocess.run([*qb2, "submit", str(qasm), "--shots", "300", "--seed", "2", "--wait"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["state"] == "COMPLETED" and sum(result["counts"].values()) == 300
    assert set(result["counts"]) == {"0000", "1111"}  # ideal GHZ
    status = subprocess.run([*qb2, "status", result["job_id"]], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["state"] == "COMPLETED"
    nodes = subprocess.run([*qb2, "nodes"], env=env, capture_output=True, text=True, timeout=60)
    assert "3 available of 3" in nodes.stdout and "ideal-ion" in nodes.stdout
    bad = tmp_path / "bad.qasm"
    bad.write_text("OPENQASM 2.0;\nqreg q[1];\nbogus q[0];\n")
    rejected = subprocess.run([*qb2, "submit", str(bad)], env=env, capture_output=True, text=True, timeout=60)
    assert rejected.returncode == 1 and "line" in rejected.stderr and "Traceback" not in rejected.stderr


async def test_websocket_streams_every_state_change(cluster: LocalCluster) -> None:
    from trio_websocket import ConnectionClosed, open_websocket_url

    with Client(cluster.api_url) as client:
        job_id = client.submit(benchmark_circuit("ghz", 5).qasm, shots=100, seed=4)["job_id"]
    url = cluster.api_url.replace("http://", "ws://") + f"/api/v1/jobs/{job_id}/stream"
    states = []
    async with open_websocket_url(url) as ws:
        with trio.fail_after(60):
            while True:
                try:
                    event = json.loads(await ws.get_message())
                except ConnectionClosed:
                    break
                assert event["job_id"] == job_id
                states.append(event["state"])
    assert states == ["QUEUED", "COMPILING", "RESERVING", "EXECUTING", "COMPLETED"]


def test_dry_run_plan_and_per_job_weights(cluster: LocalCluster, tmp_path: Path) -> None:
    """`qb2 plan` / POST /api/v1/circuits/plan: the plan without a job; per-job weights reach the planner (FR-004)."""
    import os
    import subprocess
    import sys

    qasm = benchmark_circuit("qft", 6).qasm
    with Client(cluster.api_url) as client:
        before = client.jobs()["total"]
        plan = client.dry_run(qasm)
        heavy = client.dry_run(qasm, weights={"entanglement": 50.0, "latency": 0.0})
        floor = client._http.post("/api/v1/circuits/plan", json={"qasm": qasm, "min_fidelity": 1.0})
        assert client.jobs()["total"] == before  # nothing queued
    assert plan["fragments"] and plan["weights"]["entanglement"] == 1.0
    assert heavy["weights"] == {**plan["weights"], "entanglement": 50.0, "latency": 0.0}
    assert heavy["cost"] != plan["cost"]  # the per-job weights reached the planner
    assert floor.status_code in (200, 422)  # ideal nodes reach 1.0 only without teleport noise
    path = tmp_path / "qft6.qasm"
    path.write_text(qasm)
    out = subprocess.run([sys.executable, "-m", "qb2.client.cli", "plan", str(path), "--weight", "entanglement=50",
                          "--weight", "latency=0"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "QB2_URL": cluster.api_url})
    assert out.returncode == 0, out.stderr

    def decisions(fragments: list[dict]) -> list[dict]:
        # the latency term holds the live round-trip measurements, which move between two calls;
        # with latency weighed 0 they decide nothing, so everything else must match (NFR-001)
        return [{k: v for k, v in f.items() if k != "cost"} for f in fragments]

    assert decisions(json.loads(out.stdout)["fragments"]) == decisions(heavy["fragments"])
