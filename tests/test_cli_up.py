"""``qb2 up`` (issue 2): prints the coordinator URL once healthy, and leaves no orphan on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qb2.client.http import Client

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
        [sys.executable, "-m", "qb2.client.cli", "up", "--nodes", "2", "--api-port", "0", "--data-dir", str(tmp_path)],
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


def start_up(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qb2.client.cli", "up", "--nodes", "1", "--api-port", "0", "--data-dir", str(tmp_path),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise AssertionError(proc.communicate(timeout=60))
    return proc, url


def coordinator_child(pid: int) -> int:
    """The pid of ``qb2 up``'s coordinator daemon (argv: python -m qb2.coordinator ...)."""
    found = [c for c in children(pid) if Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0")[2:3] == [b"qb2.coordinator"]]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_up_says_which_daemon_died_and_stops_the_cluster_with_an_error(tmp_path: Path) -> None:
    """Issue 11: a dead coordinator must not leave `qb2 up` running with the API down and silent."""
    proc, url = start_up(tmp_path)
    try:
        daemons = children(proc.pid)
        os.kill(coordinator_child(proc.pid), signal.SIGKILL)
        _, err = proc.communicate(timeout=60)  # the deadline: supervision notices within its poll period
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "coordinator exited (signal SIGKILL)" in err
    assert "last log line: {" in err  # the coordinator's last JSON log line
    assert not [pid for pid in daemons if Path(f"/proc/{pid}").exists()], "daemons outlived qb2 up"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_up_with_restart_brings_the_coordinator_back_on_the_same_url(tmp_path: Path) -> None:
    import time

    import httpx

    proc, url = start_up(tmp_path, "--restart", "--max-restarts", "1")
    try:
        first = coordinator_child(proc.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while True:  # poll the observable state: a new coordinator child that answers /api/v1/health
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the API did not come back"
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200 and coordinator_child(proc.pid) != first:
                    break
            except (httpx.HTTPError, AssertionError):
                pass
            time.sleep(0.2)
        with Client(url) as client:
            client.wait_for_nodes(1, timeout_s=60)  # the node redials the restarted coordinator
        os.kill(coordinator_child(proc.pid), signal.SIGKILL)  # the one restart is used: now it gives up
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "coordinator exited (signal SIGKILL); last log line:" in err and "restarting it (1/1)" in err
    assert proc.returncode == 1 and "after 1 restarts" in err, err
