"""Node failures with real processes (FR-007, NFR-002): a node killed before it runs its fragments
makes the job fall back to other nodes; with every node gone the job fails fast with a
fragment-level error."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordinator.client import Client
from coordinator.cluster import LocalCluster, NodeSpec
from experiments.circuits import benchmark_circuit

pytestmark = pytest.mark.integration

NODES = [NodeSpec(f"n{i}", "ideal", ["--qubits", "4"]) for i in range(4)]
ENV = {"QB2_DISCOVERY__REGISTRY_TTL_S": "30", "QB2_RUNTIME__BACKOFF_BASE_S": "0.05",
       "QB2_COMPILER__LINK_FIDELITY": "1.0"}


def test_killed_node_is_replaced_by_a_fallback_plan(tmp_path: Path) -> None:
    circuit = benchmark_circuit("qft", 7)
    with LocalCluster(tmp_path, NODES, env=ENV) as cluster, Client(cluster.api_url) as client:
        first = client.submit(circuit.qasm, shots=400, seed=2)["job_id"]
        assert client.wait(first, timeout_s=120)["state"] == "COMPLETED"
        planned = client.plan(first)
        by_peer = {peer: name for name, peer in cluster.node_peer_ids.items()}
        used = [f["node_id"] for f in planned["fragments"] if f["kind"] == "gates"]
        victim = by_peer[used[-1]]  # a node the (deterministic) plan needs late in the job

        cluster.kill(f"node-{victim}")  # SIGKILL; the registry still lists it (TTL 30 s)
        died = time.monotonic()
        second = client.submit(circuit.qasm, shots=400, seed=2)["job_id"]
        final = client.wait(second, timeout_s=120, poll_s=0.01, max_poll_s=0.05)
        recovered_s = time.monotonic() - died
        result = client.result(second)
        reference = client.result(first)
    assert final["state"] == "COMPLETED"
    dead_peer = cluster.node_peer_ids[victim]
    assert result["fallbacks"] >= 1
    failed = [f for f in result["fragments"] if f["status"] == "FAILED"]
    assert failed and all(f["node_id"] == dead_peer and f["attempts"] == 3 for f in failed)
    assert all(f["node_id"] != dead_peer for f in result["fragments"] if f["fallback"] >= 1)
    assert result["counts"] == reference["counts"]  # ideal nodes: same state, same seed, same counts
    print(f"\nnode death -> job COMPLETED through fallback: {recovered_s * 1000:.0f} ms")


def test_every_node_dead_fails_fast_with_a_fragment_level_error(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, NODES[:2], env=ENV) as cluster, Client(cluster.api_url) as client:
        for spec in NODES[:2]:
            cluster.kill(f"node-{spec.name}")
        started = time.monotonic()
        job_id = client.submit(benchmark_circuit("ghz", 6).qasm, shots=100, seed=1)["job_id"]
        final = client.wait(job_id, timeout_s=60, poll_s=0.01, max_poll_s=0.05)
        elapsed = time.monotonic() - started
    assert final["state"] == "FAILED" and final["error"]["code"] == "fragment_failed"
    details = final["error"]["details"]
    assert details["node_id"] in cluster.node_peer_ids.values() and details["attempts"] == 3
    assert "no feasible plan" in details["fallback"] or "fallback plans used" in details["fallback"]
    assert elapsed < 10, f"failing took {elapsed:.1f} s"
