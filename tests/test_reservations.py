"""Reservations end to end (FR-005): every fragment gets a window before EXECUTING, windows are
consumed by the execution or released, and concurrent jobs on one-slot nodes are offered later
windows instead of failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.client import Client
from coordinator.cluster import LocalCluster, NodeSpec
from experiments.circuits import benchmark_circuit

pytestmark = pytest.mark.integration


def test_windows_are_granted_consumed_and_offered_later_when_busy(tmp_path: Path) -> None:
    nodes = [NodeSpec("a", "ideal", ["--qubits", "4"]), NodeSpec("b", "ideal", ["--qubits", "4"])]
    with LocalCluster(tmp_path, nodes) as cluster, Client(cluster.api_url) as client:
        ids = [client.submit(benchmark_circuit("qft", 6).qasm, shots=100, seed=i)["job_id"] for i in range(4)]
        finals = [client.wait(j, timeout_s=120) for j in ids]
        events = {j: client._call("GET", f"/api/v1/jobs/{j}/reservations") for j in ids}
        plans = {j: client.plan(j) for j in ids}
        states = [e["state"] for e in client._call("GET", f"/api/v1/jobs/{ids[0]}/events")]
    assert all(f["state"] == "COMPLETED" for f in finals)
    assert states == ["QUEUED", "COMPILING", "RESERVING", "EXECUTING", "COMPLETED"]
    for job_id, evs in events.items():
        granted = {e["fragment_id"] for e in evs if e["kind"] == "granted"}
        assert granted == {f["fragment_id"] for f in plans[job_id]["fragments"]}
        closed = {e["fragment_id"] for e in evs if e["kind"] in ("consumed", "released")}
        assert closed == granted  # nothing left open
    offered_later = [e for evs in events.values() for e in evs if e["kind"] == "rejected" and "capacity" in (e["reason"] or "")]
    assert offered_later, "four concurrent jobs on one-slot nodes should meet a capacity rejection"
