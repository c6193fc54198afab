"""Quality monitoring with real processes (FR-008): link probes reach /api/v1/nodes, and a node
below a fidelity threshold is marked degraded and left out of plans."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.experiments.circuits import benchmark_circuit

pytestmark = pytest.mark.integration


def test_degraded_node_is_reported_and_avoided(tmp_path: Path) -> None:
    nodes = [NodeSpec("good", "ion-like"), NodeSpec("fine", "ibm-like"), NodeSpec("weak", "cz-native")]
    env = {"QB2_QUALITY__MIN_GATE_2Q": "0.989", "QB2_QUALITY__PROBE_INTERVAL_S": "0.2"}
    with LocalCluster(tmp_path, nodes, env=env) as cluster, Client(cluster.api_url) as client:
        deadline = time.monotonic() + 30
        while any(n["rtt_ms"] is None for n in client.nodes()["nodes"]):
            assert time.monotonic() < deadline, "no link probe result reached the registry"
            time.sleep(0.05)
        listed = {n["name"]: n for n in client.nodes()["nodes"]}
        job_id = client.submit(benchmark_circuit("ghz", 8).qasm, shots=200, seed=1)["job_id"]
        assert client.wait(job_id, timeout_s=120)["state"] == "COMPLETED"
        used = set(client.result(job_id)["nodes_used"])
    assert listed["weak"]["degraded"] == ["2q gate fidelity 0.985 < 0.989"]
    assert listed["good"]["degraded"] == [] and listed["fine"]["degraded"] == []
    assert all(0 < n["rtt_ms"] < 1000 and n["loss"] == 0.0 for n in listed.values())
    assert cluster.node_peer_ids["weak"] not in used and used
    db = tmp_path / "coordinator.db"
    import sqlite3

    snapshots = sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(rtt_s) FROM quality_snapshots").fetchone()
    assert snapshots[0] >= 3 and snapshots[1] >= 3  # persisted with timestamps
