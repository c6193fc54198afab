"""Crash recovery with real processes (FR-010): kill -9 the coordinator mid-run, restart it,
and every job reaches COMPLETED exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.experiments.circuits import benchmark_circuit

pytestmark = pytest.mark.integration

NODES = [NodeSpec("alpha", "ibm-like"), NodeSpec("bravo", "ion-like"), NodeSpec("charlie", "cz-native")]


def test_kill_9_mid_run_then_restart_finishes_every_job_once(tmp_path: Path) -> None:
    circuits = [benchmark_circuit("qft", 8), benchmark_circuit("wstate", 7), benchmark_circuit("grover", 5)] * 2
    env = {"QB2_RUNTIME__MAX_CONCURRENT_JOBS": "2", "QB2_DISCOVERY__ADVERT_INTERVAL_S": "0.5"}
    with LocalCluster(tmp_path, NODES, env=env) as cluster:
        with Client(cluster.api_url) as client:
            ids = [client.submit(c.qasm, shots=500, seed=i, name=c.label)["job_id"] for i, c in enumerate(circuits)]
            deadline = time.monotonic() + 60
            while not any(client.status(j)["state"] == "EXECUTING" for j in ids):
                assert time.monotonic() < deadline, "no job reached EXECUTING"
        cluster.kill("coordinator")  # SIGKILL: no shutdown code runs

        cluster.start_coordinator(same_address=True)
        with Client(cluster.api_url) as client:
            finals = {job_id: client.wait(job_id, timeout_s=180) for job_id in ids}
            listing = client.jobs(limit=500)
            results = {job_id: client.result(job_id) for job_id in ids}
            events = {job_id: client._call("GET", f"/api/v1/jobs/{job_id}/events") for job_id in ids}
    assert {f["state"] for f in finals.values()} == {"COMPLETED"}
    assert listing["total"] == len(ids) and sorted(j["job_id"] for j in listing["jobs"]) == sorted(ids)
    assert all(sum(r["counts"].values()) == 500 for r in results.values())
    interrupted = [j for j, evs in events.items() if [e["state"] for e in evs].count("QUEUED") > 1]
    assert interrupted, "at least one job was requeued by the restarted coordinator"
    assert all([e["state"] for e in evs].count("COMPLETED") == 1 for evs in events.values())
