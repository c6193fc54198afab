"""``qb2 up`` (issue 2): prints the coordinator URL once healthy, and leaves no orphan on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.client import Client

pytestmark = pytest.mark.integration


def children(pid: int) -> set[int]:
    tasks = Path(f"/proc/{pid}/task")
    out: set[int] = set()
    for task in tasks.iterdir():
        text = (task / "children").read_text().split()
        out.update(int(c) for c in text)
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_up_starts_a_cluster_and_stops_it_without_orphans(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator.cli", "up", "--nodes", "2", "--api-port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        url = proc.stdout.readline().strip()  # printed once the registry lists every node
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        with Client(url) as client:
            assert client.nodes()["available"] == 2
            assert client.health()["status"] == "ok"
        daemons = children(proc.pid)
        assert len(daemons) == 3  # coordinator + 2 nodes
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not [pid for pid in daemons if Path(f"/proc/{pid}").exists()], "daemons outlived qb2 up"
