"""libp2p allowlist (FR-014, FR-019): listed peers register without a join token; others are refused.

The nodes are started by hand, without the join tokens ``LocalCluster`` would
give them, so only ``p2p.allowed_peers`` admits them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qb2.client.cluster import LocalCluster, NodeSpec, _die_with_parent, _wait_for_file
from qb2.client.http import Client
from qb2.daemon.host import load_or_create_identity
from qb2.experiments.circuits import benchmark_circuit

pytestmark = pytest.mark.integration


def peer_of(path: Path) -> str:
    from libp2p.peer.id import ID

    return ID.from_pubkey(load_or_create_identity(path).public_key).to_base58()


def test_only_allowed_nodes_register_and_jobs_still_run(tmp_path: Path) -> None:
    coordinator = peer_of(tmp_path / "coordinator" / "identity.key")  # identities made ahead of start
    allowed = [peer_of(tmp_path / "nodes" / name / "identity.key") for name in ("ok1", "ok2")]
    intruder = peer_of(tmp_path / "nodes" / "intruder" / "identity.key")
    env = {"QB2_P2P__ALLOWED_PEERS": json.dumps([coordinator, *allowed])}
    specs = [NodeSpec("ok1", "ideal"), NodeSpec("ok2", "ion-like"), NodeSpec("intruder", "ideal")]
    cluster = LocalCluster(tmp_path, specs, env=env)
    try:
        cluster.start_coordinator()
        for spec in specs:  # no --join-token: admission by the allowlist alone
            ready = tmp_path / "run" / f"node-{spec.name}.json"
            with open(cluster.log_dir / f"node-{spec.name}.log", "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "qb2.service_node", *spec.args(),
                     "--bootstrap", cluster.coordinator_multiaddr, "--ready-file", str(ready)],
                    env=cluster.env, stdout=out, stderr=out, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            cluster.procs[f"node-{spec.name}"] = proc
            _wait_for_file(ready, proc, 60)
        log = cluster.log_dir / "coordinator.log"
        with Client(cluster.api_url) as client:
            client.wait_for_nodes(2)
            job_id = client.submit(benchmark_circuit("ghz", 6).qasm, shots=100, seed=1)["job_id"]
            assert client.wait(job_id, timeout_s=120)["state"] == "COMPLETED"
            import time

            deadline = time.monotonic() + 30
            while f"peer {intruder} is not admitted: not in p2p.allowed_peers" not in log.read_text():
                assert time.monotonic() < deadline, "the intruder's advertisement was not rejected"
                time.sleep(0.1)
            registered = {n["node_id"] for n in client.nodes()["nodes"]}
    finally:
        cluster.stop()
    assert registered == set(allowed)
