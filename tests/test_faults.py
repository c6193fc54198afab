"""Fault injection (FR-013 support): syntax, the injector, and real node processes over libp2p.

The process tests start a real coordinator and real ``qb2 node`` processes
(one with ``--fault latency:...`` on its command line), talk to the nodes from
the test over libp2p (execute, reserve and control protocols), and watch the
coordinator's job API for the re-advertised fidelities.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.daemon.host import load_or_create_identity, make_host
from qb2.protocol.control import FaultSpec
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.framing import FrameError
from qb2.protocol.ids import EXECUTE_PROTOCOL_ID, RESERVE_PROTOCOL_ID
from qb2.protocol.reservation import OperationSummary, ReserveRequest, ReserveResponse
from qb2.protocol.state import pack_state, zero_state
from qb2.service_node.config import NodeConfigError, load_node_settings
from qb2.service_node.faults import (
    CRASH_EXIT_CODE,
    DropRequest,
    FaultInjector,
    FaultSyntaxError,
    format_fault,
    parse_fault,
    request_response,
    send_fault,
)

LATENCY_S = 0.6

# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(("text", "expected"), [
    ("latency:0.5", FaultSpec(kind="latency", latency_s=0.5)),
    ("latency:0.2@10+30", FaultSpec(kind="latency", latency_s=0.2, after_s=10, duration_s=30)),
    ("drop:1", FaultSpec(kind="drop", probability=1.0)),
    ("drop:0.25@5", FaultSpec(kind="drop", probability=0.25, after_s=5)),
    ("crash", FaultSpec(kind="crash")),
    ("crash@20", FaultSpec(kind="crash", after_s=20)),
    ("degrade:0.9@10", FaultSpec(kind="degrade", factor=0.9, after_s=10)),
    (" degrade:0.5+3 ", FaultSpec(kind="degrade", factor=0.5, duration_s=3)),
])
def test_parse_valid_fault_syntax(text: str, expected: FaultSpec) -> None:
    spec = parse_fault(text)
    assert spec == expected
    assert parse_fault(format_fault(spec)) == spec


@pytest.mark.parametrize(("text", "message"), [
    ("latency", "latency needs a value"),
    ("latency:", "latency needs a value"),
    ("latency:fast", "'fast' is not a number"),
    ("latency:inf", "must be finite"),
    ("latency:-1", "latency_s = -1.0"),
    ("drop:1.5", "probability = 1.5"),
    ("degrade:0", "factor = 0.0"),
    ("crash:1", "crash takes no value"),
    ("crash@5+10", "crash takes no duration"),
    ("latency:0.5@soon", "after_s 'soon' is not a number"),
    ("latency:0.5+0", "duration_s = 0.0"),
    ("clear", "only accepted over the control protocol"),
    ("jitter:1", "unknown kind 'jitter'"),
    ("Latency:1", "does not match"),
    ("", "does not match"),
])
def test_parse_invalid_fault_syntax(text: str, message: str) -> None:
    with pytest.raises(FaultSyntaxError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_fault(text)


def test_config_faults_and_clear_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "qb2.toml"
    config.write_text('[node]\nfaults = [{kind = "latency", latency_s = 0.5, after_s = 10}]\n')
    monkeypatch.setenv("QB2_CONFIG", str(config))
    assert load_node_settings("ideal").node.faults == [FaultSpec(kind="latency", latency_s=0.5, after_s=10)]
    config.write_text('[node]\nfaults = [{kind = "clear"}]\n')
    with pytest.raises(NodeConfigError, match="node.faults"):
        load_node_settings("ideal")


def test_cli_rejects_bad_fault_without_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "qb2.service_node", "--fault", "latency:soon"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "fault 'latency:soon'" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- injector (trio's mock clock)


async def test_injector_schedules_latency_drop_and_degrade(autojump_clock: trio.abc.Clock) -> None:
    faults = FaultInjector(rng=random.Random(1))
    start = trio.current_time()
    faults.add(FaultSpec(kind="latency", latency_s=2.0, after_s=5, duration_s=10))
    faults.add(FaultSpec(kind="degrade", factor=0.5, after_s=1))
    faults.add(FaultSpec(kind="degrade", factor=0.8, duration_s=3))
    assert faults.fidelity_factor() == pytest.approx(0.8)
    assert faults.latency_s() == 0
    await faults.wait_transition()  # degrade 0.5 begins at +1
    assert trio.current_time() - start == pytest.approx(1.0)
    assert faults.fidelity_factor() == pytest.approx(0.4)
    await faults.wait_transition()  # degrade 0.8 ends at +3
    assert faults.fidelity_factor() == pytest.approx(0.5)
    await trio.sleep(5 - (trio.current_time() - start))
    before = trio.current_time()
    await faults.before_execute()  # latency active from +5 to +15: a real trio.sleep
    assert trio.current_time() - before == pytest.approx(2.0)
    await trio.sleep(10)
    assert faults.latency_s() == 0 and [s.kind for s in faults.configured()] == ["degrade"]
    faults.add(FaultSpec(kind="drop", probability=1.0))
    with pytest.raises(DropRequest):
        await faults.before_execute()
    faults.add(FaultSpec(kind="clear"))
    assert faults.configured() == [] and faults.fidelity_factor() == 1.0
    await faults.before_execute()  # nothing left to inject


async def test_drop_probability_is_honoured() -> None:
    faults = FaultInjector(rng=random.Random(7))
    faults.add(FaultSpec(kind="drop", probability=0.3))
    dropped = 0
    for _ in range(2000):
        try:
            await faults.before_execute()
        except DropRequest:
            dropped += 1
    assert 500 < dropped < 700


async def test_crash_fires_when_it_becomes_active(autojump_clock: trio.abc.Clock) -> None:
    exits: list[tuple[float, int]] = []
    faults = FaultInjector(exit=lambda code: exits.append((trio.current_time(), code)))  # type: ignore[arg-type,return-value]
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(faults.run)
        faults.add(FaultSpec(kind="crash", after_s=4))
        await trio.sleep(3.9)
        assert exits == []
        await trio.sleep(0.2)
        assert [(round(t - start, 6), code) for t, code in exits] == [(4.0, CRASH_EXIT_CODE)]
        faults.add(FaultSpec(kind="crash"))  # after_s 0: inside add()
        assert len(exits) == 2
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- real processes


NODES = [
    NodeSpec("slow", "ideal", ["--fault", f"latency:{LATENCY_S}"]),
    NodeSpec("plain", "ideal", ["--accept-control"]),
    NodeSpec("victim", "ideal", ["--accept-control"]),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("faults")
    env = {"QB2_DISCOVERY__ADVERT_INTERVAL_S": "30"}  # only a fault change re-advertises within the tests
    with LocalCluster(root, NODES, env=env) as running:
        yield running


def node_addr(cluster: LocalCluster, name: str) -> str:
    info = json.loads((cluster.data_dir / "run" / f"node-{name}.json").read_text())
    addr = info["addrs"][0]
    return addr if "/p2p/" in addr else f"{addr}/p2p/{info['peer_id']}"


class Peers:
    """A libp2p host inside the test, connected to some cluster nodes."""

    def __init__(self, host, cluster: LocalCluster) -> None:  # noqa: ANN001
        self.host = host
        self.cluster = cluster

    async def connect(self, name: str) -> str:
        info = info_from_p2p_addr(multiaddr.Multiaddr(node_addr(self.cluster, name)))
        await self.host.connect(info)
        return info.peer_id.to_base58()

    async def readout(self, peer: str, reservation_id: str | None = None, shots: int = 10) -> tuple[ExecuteResponse, float]:
        """One real execute round trip (a 1-qubit readout) and its duration in seconds."""
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        from qb2.protocol.framing import read_frame, write_frame

        request = ExecuteRequest(job_id="j", fragment_id="f", kind="readout", representation="statevector",
                                 num_qubits=1, measurements=((0, 0),), clbit_registers=({"name": "c", "size": 1},),
                                 shots=shots, seed=1, reservation_id=reservation_id)
        started = time.perf_counter()
        with trio.fail_after(30):
            stream = await self.host.new_stream(ID.from_base58(peer), [TProtocol(EXECUTE_PROTOCOL_ID)])
            await write_frame(stream, request, pack_state(zero_state("statevector", 1)))
            header, _ = await read_frame(stream, ExecuteResponse)
        return header, time.perf_counter() - started


@pytest.fixture
async def peers(cluster: LocalCluster):
    host = make_host(load_or_create_identity(cluster.operator_identity))  # nodes serve the operator (FR-019)
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        yield Peers(host, cluster)


def node_log(cluster: LocalCluster, name: str) -> list[dict]:
    return [json.loads(line) for line in (cluster.log_dir / f"node-{name}.log").read_text().splitlines()
            if line.startswith("{")]


@pytest.mark.integration
async def test_cli_latency_fault_slows_only_that_node(peers: Peers) -> None:
    slow, plain = await peers.connect("slow"), await peers.connect("plain")
    plain_times, slow_times = [], []
    for _ in range(2):
        header, elapsed = await peers.readout(plain)
        assert header.ok and sum(header.counts.values()) == 10
        plain_times.append(elapsed)
        header, elapsed = await peers.readout(slow)
        assert header.ok and header.counts == {"0": 10}
        slow_times.append(elapsed)
    assert min(slow_times) >= LATENCY_S
    assert max(plain_times) < LATENCY_S / 2, plain_times


@pytest.mark.integration
async def test_reserve_protocol_and_execute_consumes_the_window(peers: Peers, cluster: LocalCluster) -> None:
    plain = await peers.connect("plain")
    op = OperationSummary(gates={"measure": 1}, qubits=1, estimated_duration_s=0.01)
    now = time.time()

    async def ask(action: str, rid: str, start: float = 0.0, end: float = 0.0, **extra: object) -> ReserveResponse:
        request = ReserveRequest(action=action, reservation_id=rid, job_id="job-r", fragment_id="f1",
                                 operation=op if action == "reserve" else None, start=start, end=end, **extra)
        return await request_response(peers.host, plain, RESERVE_PROTOCOL_ID, request, ReserveResponse)

    first = await ask("reserve", "w1", now + 100, now + 110)
    assert first.granted and first.node_id == plain
    clash = await ask("reserve", "w2", now + 105, now + 115)  # capacity = max_concurrent_fragments = 1
    assert not clash.granted and clash.reason.startswith("capacity: 1 windows overlap")
    assert clash.next_start == pytest.approx(now + 110) and clash.next_end == pytest.approx(now + 120)
    assert (await ask("reserve", "w1", now + 200, now + 210)).reason == "duplicate reservation id"
    assert (await ask("release", "w1")).granted
    released_again = await ask("release", "w1")
    assert not released_again.granted and "released" in released_again.reason
    exact = await ask("reserve", "w3", now, now + 60, min_fidelity=1.0)
    assert exact.granted, exact  # an ideal node estimates 1.0: it meets min_fidelity 1.0
    header, _ = await peers.readout(plain, reservation_id="w3")
    assert header.ok
    header, _ = await peers.readout(plain, reservation_id="never-reserved")
    assert header.ok  # an unknown reservation is logged, the job still runs
    with trio.fail_after(10):
        while True:
            lines = node_log(cluster, "plain")
            consumed = [r for r in lines if r["message"] == "reservation consumed"]
            unknown = [r for r in lines if r["message"].startswith("execute without a valid reservation")]
            if consumed and unknown:
                break
            await trio.sleep(0.1)
    assert consumed[-1]["reservation_id"] == "w3"
    assert unknown[-1]["reservation_id"] == "never-reserved" and unknown[-1]["reservation_status"] == "unknown"
    # w3's slot is free again: the same window can be reserved under a new id
    assert (await ask("reserve", "w4", now, now + 60)).granted


def fidelity_of(cluster: LocalCluster, name: str) -> dict[str, float]:
    with Client(cluster.api_url) as client:
        return next(n["fidelity"] for n in client.nodes()["nodes"] if n["name"] == name)


@pytest.mark.integration
async def test_control_drop_then_degrade_is_readvertised(peers: Peers, cluster: LocalCluster) -> None:
    plain = await peers.connect("plain")
    answer = await send_fault(peers.host, plain, FaultSpec(kind="drop", probability=1.0))
    assert answer.accepted and answer.node_id == plain and [s.kind for s in answer.active] == ["drop"]
    with pytest.raises(FrameError):
        await peers.readout(plain)  # reset without an answer
    cleared = await send_fault(peers.host, plain, FaultSpec(kind="clear"))
    assert cleared.accepted and cleared.active == []
    assert (await peers.readout(plain))[0].ok

    assert fidelity_of(cluster, "plain") == {"gate_1q": 1.0, "gate_2q": 1.0, "readout": 1.0}
    sent = time.monotonic()
    await send_fault(peers.host, plain, FaultSpec(kind="degrade", factor=0.5))
    with trio.fail_after(5):  # adverts are 30 s apart here: only the immediate re-advertisement can make it
        while (seen := await trio.to_thread.run_sync(fidelity_of, cluster, "plain"))["gate_2q"] != 0.5:
            await trio.sleep(0.05)
    assert seen == {"gate_1q": 0.5, "gate_2q": 0.5, "readout": 0.5}
    assert time.monotonic() - sent < 5
    noisy, _ = await peers.readout(plain, shots=400)  # the rebuilt QPU flips half the readouts of |0>
    assert noisy.ok and 120 < noisy.counts.get("1", 0) < 280, noisy.counts
    await send_fault(peers.host, plain, FaultSpec(kind="clear"))
    with trio.fail_after(5):
        while (await trio.to_thread.run_sync(fidelity_of, cluster, "plain"))["gate_2q"] != 1.0:
            await trio.sleep(0.05)
    assert fidelity_of(cluster, "slow")["gate_2q"] == 1.0  # the others were never degraded
    assert (await peers.readout(plain, shots=400))[0].counts == {"0": 400}


@pytest.mark.integration
async def test_control_crash_exits_with_137(peers: Peers, cluster: LocalCluster) -> None:
    victim = await peers.connect("victim")
    proc = cluster.procs["node-victim"]
    try:
        answer = await send_fault(peers.host, victim, FaultSpec(kind="crash"))
        assert answer.accepted
    except FrameError:
        pass  # the process may be gone before its answer is read
    code = await trio.to_thread.run_sync(lambda: proc.wait(timeout=10))
    assert code == CRASH_EXIT_CODE


@pytest.mark.integration
def test_cli_crash_fault_exits_with_137_after_the_delay(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "qb2.service_node", "--profile", "ideal", "--name", "doomed",
         "--data-dir", str(tmp_path), "--ready-file", str(ready), "--fault", "crash@0.5"],
        env={**os.environ, "QB2_CONFIG": ""}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == CRASH_EXIT_CODE, proc.stderr[-2000:]
    assert json.loads(ready.read_text())["peer_id"]  # it was up before the crash
    assert time.monotonic() - started >= 0.5
    assert "crash fault: exiting" in proc.stderr
