"""Membership by default (FR-019, FR-014): join tokens, coordinator admission, node admission, open mesh.

Unit tests cover :mod:`qb2.protocol.membership` and the node's admission function;
the integration tests start real daemons on 127.0.0.1 (``LocalCluster`` plus
nodes started by hand the way an operator on another machine would) and
talk real libp2p to them. Every wait polls observable state with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import multiaddr
import pytest
import trio
from libp2p.peer.peerinfo import info_from_p2p_addr

from qb2.client.cluster import LocalCluster, NodeSpec, _die_with_parent, _wait_for_file
from qb2.client.http import Client
from qb2.daemon.host import load_or_create_identity, make_host
from qb2.daemon.logfmt import RateLimitedLog
from qb2.daemon.settings import P2PSettings
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.ids import EXECUTE_PROTOCOL_ID, RESERVE_PROTOCOL_ID
from qb2.protocol.membership import (
    JoinTokenError,
    bootstrap_peer_ids,
    check_own_join_token,
    decode_join_token,
    issue_join_token,
    peer_id_of,
    verify_join_token,
)
from qb2.protocol.reservation import OperationSummary, ReserveRequest, ReserveResponse
from qb2.service_node.config import NodeSettings
from qb2.service_node.daemon import admitted_peers
from tests.conftest import publish_adverts_until

QB2 = [sys.executable, "-m", "qb2.client.cli"]


# --------------------------------------------------------------------------- join tokens (unit)


@pytest.fixture
def keys():
    coordinator, node, other = (load_or_create_identity(None) for _ in range(3))
    return coordinator, node, other


def test_token_round_trip_binds_coordinator_peer_and_expiry(keys) -> None:
    coordinator, node, _ = keys
    token = issue_join_token(coordinator, peer_id_of(node), ttl_s=60, now=1_000_000)
    assert token.startswith("qb2jt1.") and len(token) < 400 and re.fullmatch(r"[A-Za-z0-9_.-]+", token)
    statement = verify_join_token(token, coordinator.public_key, peer_id_of(node), now=1_000_059)
    assert (statement.coordinator, statement.peer_id) == (peer_id_of(coordinator), peer_id_of(node))
    assert (statement.issued_at, statement.expires_at) == (1_000_000, 1_000_060)
    assert check_own_join_token(token, peer_id_of(node), now=1_000_000).coordinator == peer_id_of(coordinator)


def test_token_for_another_peer_is_rejected(keys) -> None:
    coordinator, node, other = keys
    token = issue_join_token(coordinator, peer_id_of(node), ttl_s=60)
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(token, coordinator.public_key, peer_id_of(other))
    assert err.value.code == "other_peer" and peer_id_of(node) in err.value.reason


def test_expired_token_is_rejected(keys) -> None:
    coordinator, node, _ = keys
    token = issue_join_token(coordinator, peer_id_of(node), ttl_s=60, now=1_000_000)
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(token, coordinator.public_key, peer_id_of(node), now=1_000_060)
    assert err.value.code == "expired"
    with pytest.raises(JoinTokenError):
        check_own_join_token(token, peer_id_of(node))  # a node refuses to start with it, too


def test_token_of_another_coordinator_is_rejected(keys) -> None:
    coordinator, node, other = keys
    token = issue_join_token(other, peer_id_of(node), ttl_s=60)
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(token, coordinator.public_key, peer_id_of(node))
    assert err.value.code == "other_coordinator"


def test_token_naming_this_coordinator_but_signed_by_another_key_is_rejected(keys) -> None:
    """A forger writes our coordinator's peer ID into a statement and signs it with its own key."""
    coordinator, node, other = keys
    forged = issue_join_token(other, peer_id_of(node), ttl_s=60)
    statement, _, signature = decode_join_token(forged)
    lie = statement.model_copy(update={"coordinator": peer_id_of(coordinator)})
    import base64

    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    token = f"qb2jt1.{b64(lie.payload())}.{b64(signature)}"
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(token, coordinator.public_key, peer_id_of(node))
    assert err.value.code == "bad_signature"
    with pytest.raises(JoinTokenError) as err:
        check_own_join_token(token, peer_id_of(node))
    assert err.value.code == "bad_signature"
    # re-signing with the forger's key does not help either: the key is not the coordinator's
    from qb2.protocol.membership import SIGNING_DOMAIN

    resigned = f"qb2jt1.{b64(lie.payload())}.{b64(other.private_key.sign(SIGNING_DOMAIN + lie.payload()))}"
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(resigned, coordinator.public_key, peer_id_of(node))
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("token", [
    "", "qb2jt1", "qb2jt1.a.b", "qb2jt2.eyJ9.AAAA", "qb2jt1.!!!.AAAA", "qb2jt1.e30.AAAA", "x" * 2000,
    "qb2jt1.eyJjb29yZGluYXRvciI6MX0.AAAA",
])
def test_malformed_tokens_are_rejected(keys, token: str) -> None:
    coordinator, node, _ = keys
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(token, coordinator.public_key, peer_id_of(node))
    assert err.value.code == "malformed"


def test_tampered_token_fails_signature(keys) -> None:
    coordinator, node, _ = keys
    token = issue_join_token(coordinator, peer_id_of(node), ttl_s=60, now=1_000_000)
    statement, _, signature = decode_join_token(token)
    import base64

    longer = statement.model_copy(update={"expires_at": 2_000_000_000})
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    with pytest.raises(JoinTokenError) as err:
        verify_join_token(f"qb2jt1.{b64(longer.payload())}.{b64(signature)}", coordinator.public_key,
                          peer_id_of(node), now=1_000_000)
    assert err.value.code == "bad_signature"


def test_issue_validates_its_arguments(keys) -> None:
    coordinator, node, _ = keys
    with pytest.raises(ValueError):
        issue_join_token(coordinator, "not-a-peer-id")
    with pytest.raises(ValueError):
        issue_join_token(coordinator, peer_id_of(node), ttl_s=0)


def test_rate_limited_log_writes_first_then_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    limiter = RateLimitedLog(logging.getLogger("qb2.test.membership"), interval_s=3600, max_keys=2)
    with caplog.at_level(logging.WARNING, logger="qb2.test.membership"):
        assert limiter.warning(("p1", "x"), "refused", {"peer_id": "p1"})
        assert not any(limiter.warning(("p1", "x"), "refused", {"peer_id": "p1"}) for _ in range(100))
        assert limiter.warning(("p2", "x"), "refused", {"peer_id": "p2"})
        assert limiter.warning(("p3", "x"), "refused", {"peer_id": "p3"})  # evicts p1
        assert limiter.warning(("p1", "x"), "refused", {"peer_id": "p1"})
    assert [r.peer_id for r in caplog.records] == ["p1", "p2", "p3", "p1"]


# --------------------------------------------------------------------------- node admission (unit)


def _node_settings(**p2p: object) -> NodeSettings:
    return NodeSettings().model_copy(update={"p2p": P2PSettings(**p2p)})


def test_node_admits_only_its_coordinators(keys) -> None:
    coordinator, node, other = keys
    me = peer_id_of(node)
    boot = f"/ip4/10.0.0.1/tcp/4001/p2p/{peer_id_of(other)}"
    assert admitted_peers(_node_settings(), me) == frozenset()  # closed by default: nobody
    assert admitted_peers(_node_settings(bootstrap=[boot, "/ip4/10.0.0.2/tcp/1"]), me) == {peer_id_of(other)}
    token = issue_join_token(coordinator, me, ttl_s=60)
    assert admitted_peers(_node_settings(join_token=token, allowed_peers=["12D3KooW" + "A" * 44]), me) == {
        peer_id_of(coordinator), "12D3KooW" + "A" * 44}
    assert admitted_peers(_node_settings(membership="open"), me) is None
    with pytest.raises(JoinTokenError):  # the token of another node
        admitted_peers(_node_settings(join_token=token), peer_id_of(other))
    assert bootstrap_peer_ids([boot, f"/dns4/x/tcp/1/ipfs/{me}/", "/ip4/1.2.3.4/tcp/5"]) == {peer_id_of(other), me}


def test_node_cli_refuses_a_token_for_another_peer_and_prints_its_peer_id(tmp_path: Path, keys) -> None:
    coordinator, _, other = keys
    env = {**os.environ, "QB2_CONFIG": ""}
    printed = subprocess.run([*QB2, "node", "--name", "n1", "--data-dir", str(tmp_path), "--print-peer-id"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    me = printed.stdout.strip()
    assert me == peer_id_of(load_or_create_identity(tmp_path / "nodes" / "n1" / "identity.key"))
    refused = subprocess.run(
        [*QB2, "node", "--name", "n1", "--data-dir", str(tmp_path),
         "--join-token", issue_join_token(coordinator, peer_id_of(other), ttl_s=60)],
        env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert f"join token admits peer {peer_id_of(other)}, not {me}" in refused.stderr


# --------------------------------------------------------------------------- real processes


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def wait_for(predicate: Callable[[], object], what: str, timeout_s: float = 60.0) -> object:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def rejected_count(cluster: LocalCluster, reason: str) -> float:
    text = httpx.get(f"{cluster.api_url}/metrics", timeout=10).text
    found = re.search(rf'^qb2_advertisements_rejected_total\{{reason="{reason}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def start_by_hand(cluster: LocalCluster, name: str, *extra: str) -> str:
    """Start ``qb2 node`` the way an operator on another machine would: bootstrap address only, plus ``extra``.

    Returns the node's peer ID once it listens; ``cluster.stop()`` stops it.
    """
    ready = cluster.data_dir / "run" / f"node-{name}.json"
    ready.unlink(missing_ok=True)
    cluster.log_dir.mkdir(parents=True, exist_ok=True)
    with open(cluster.log_dir / f"node-{name}.log", "ab") as log:
        proc = subprocess.Popen(
            [*QB2, "node", "--name", name, "--profile", "ideal", "--qubits", "4",
             "--bootstrap", cluster.coordinator_multiaddr, "--ready-file", str(ready), *extra],
            env=cluster.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
    cluster.procs[f"node-{name}"] = proc
    return _wait_for_file(ready, proc, 60)["peer_id"]


ENV = {"QB2_DISCOVERY__ADVERT_INTERVAL_S": "0.5", "QB2_COMPILER__LINK_FIDELITY": "1.0"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """``qb2 up``'s launcher with one node, ``home``; closed membership (the default)."""
    root = tmp_path_factory.mktemp("membership")
    with LocalCluster(root, [NodeSpec("home", "ideal", ["--qubits", "4"])], env=ENV) as running:
        yield running


@pytest.mark.integration
def test_unadmitted_node_is_never_registered_until_it_has_a_join_token(cluster: LocalCluster) -> None:
    home = cluster.node_peer_ids["home"]
    coordinator_log = cluster.log_dir / "coordinator.log"
    stranger = start_by_hand(cluster, "stranger")  # a fresh identity, no token, not on any allowlist

    def refused() -> list[dict]:
        return [e for e in log_lines(coordinator_log) if e.get("message") == "advertisement rejected"
                and e.get("peer_id") == stranger and e.get("code") == "not_admitted"]

    lines = wait_for(refused, "the coordinator to reject the stranger's advertisement")
    assert lines[0]["level"] == "WARNING" and "no join token" in lines[0]["reason"]
    assert rejected_count(cluster, "not_admitted") >= 1
    # it keeps advertising every 0.5 s: rate limiting keeps the log to one line, the metric counts them all
    wait_for(lambda: rejected_count(cluster, "not_admitted") >= 4, "more rejected advertisements")
    assert len(refused()) == 1

    with Client(cluster.api_url) as client:
        assert stranger not in {n["node_id"] for n in client.nodes()["nodes"]}
        job_id = client.submit(benchmark_circuit("ghz", 4).qasm, shots=50, seed=1)["job_id"]
        assert client.wait(job_id, timeout_s=120)["state"] == "COMPLETED"
        assert {f["node_id"] for f in client.result(job_id)["fragments"]} == {home}
        assert stranger not in {n["node_id"] for n in client.nodes()["nodes"]}

        # The operator adds it: print its peer ID on its machine, issue a token on the coordinator's, restart it.
        cluster.kill("node-stranger")
        printed = subprocess.run([*QB2, "node", "--name", "stranger", "--print-peer-id"], env=cluster.env,
                                 capture_output=True, text=True, timeout=120)
        assert printed.stdout.strip() == stranger, printed.stderr
        issued = subprocess.run([*QB2, "join-token", "--peer-id", stranger, "--ttl-s", "3600",
                                 "--data-dir", str(cluster.data_dir)],
                                env=cluster.env, capture_output=True, text=True, timeout=120)
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip()
        assert start_by_hand(cluster, "stranger", "--join-token", token) == stranger
        listed = client.wait_for_nodes(2, timeout_s=60)
        assert {n["node_id"] for n in listed["nodes"] if n["status"] == "available"} == {home, stranger}
        job_id = client.submit(benchmark_circuit("ghz", 4).qasm, shots=50, seed=2, min_nodes=2)["job_id"]
        assert client.wait(job_id, timeout_s=120)["state"] == "COMPLETED"
        assert {f["node_id"] for f in client.result(job_id)["fragments"]} == {home, stranger}


@pytest.mark.integration
async def test_node_refuses_execute_and_reserve_from_a_peer_that_is_not_its_coordinator(
        cluster: LocalCluster) -> None:
    from qb2.protocol.framing import read_frame, write_frame
    from qb2.protocol.state import pack_state, zero_state
    from qb2.service_node.faults import request_response

    info = json.loads((cluster.data_dir / "run" / "node-home.json").read_text())
    addr = info["addrs"][0]
    target = info_from_p2p_addr(multiaddr.Multiaddr(addr if "/p2p/" in addr else f"{addr}/p2p/{info['peer_id']}"))
    op = OperationSummary(gates={"measure": 1}, qubits=1, estimated_duration_s=0.01)
    now = time.time()

    def reserve(rid: str) -> ReserveRequest:
        return ReserveRequest(action="reserve", reservation_id=rid, job_id="j", fragment_id="f", operation=op,
                              start=now + 100, end=now + 110)

    intruder_key = load_or_create_identity(None)
    intruder = make_host(intruder_key)
    async with intruder.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await intruder.connect(target)
        answer = await request_response(intruder, info["peer_id"], RESERVE_PROTOCOL_ID, reserve("evil"), ReserveResponse)
        assert not answer.granted and "not allowed to send reserve requests" in answer.reason
        from libp2p.custom_types import TProtocol
        from libp2p.peer.id import ID

        request = ExecuteRequest(job_id="j", fragment_id="f", kind="readout", representation="statevector",
                                 num_qubits=1, measurements=((0, 0),), clbit_registers=({"name": "c", "size": 1},),
                                 shots=10, seed=1)
        with trio.fail_after(30):
            stream = await intruder.new_stream(ID.from_base58(info["peer_id"]), [TProtocol(EXECUTE_PROTOCOL_ID)])
            await write_frame(stream, request, pack_state(zero_state("statevector", 1)))
            header, _ = await read_frame(stream, ExecuteResponse)
        assert not header.ok and not header.counts
        assert "not allowed to send execute requests" in header.error.message

    # the operator tool of the cluster (its peer ID passed with --allow-peer) is served
    operator = make_host(load_or_create_identity(cluster.operator_identity))
    async with operator.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        await operator.connect(target)
        answer = await request_response(operator, info["peer_id"], RESERVE_PROTOCOL_ID, reserve("ok"), ReserveResponse)
        assert answer.granted, answer
        release = ReserveRequest(action="release", reservation_id="ok", job_id="j", fragment_id="f")
        assert (await request_response(operator, info["peer_id"], RESERVE_PROTOCOL_ID, release, ReserveResponse)).granted

    refusals = [e for e in log_lines(cluster.log_dir / "node-home.log")
                if e.get("peer_id") == peer_id_of(intruder_key) and e["message"].startswith("refused ")]
    assert {e["message"] for e in refusals} == {"refused reserve request", "refused execute request"}
    assert all(e["level"] == "WARNING" and "not an admitted coordinator" in e["reason"] for e in refusals)


@pytest.mark.integration
async def test_unsigned_advertisement_is_counted_and_logged(cluster: LocalCluster) -> None:
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pubsub import Pubsub
    key = load_or_create_identity(None)
    host = make_host(key)
    router = GossipSub(protocols=[PROTOCOL_ID_V11], degree=6, degree_low=4, degree_high=12,
                       heartbeat_interval=1, heartbeat_initial_delay=0.1)
    pubsub = Pubsub(host, router, strict_signing=False)  # publishes without a signature
    advert = ServiceAdvertisement(node_id=peer_id_of(key), native_gates=("cx", "rz", "sx", "x"),
                                  fidelity={"gate_1q": 1, "gate_2q": 1, "readout": 1}, qubit_range={"max": 20},
                                  timestamp=time.time(), name="unsigned")
    coordinator_log = cluster.log_dir / "coordinator.log"

    def logged() -> list[dict]:
        return [e for e in log_lines(coordinator_log)
                if e.get("message") == "advertisement rejected" and e.get("code") == "unsigned"
                and e.get("peer_id") == peer_id_of(key)]

    await publish_adverts_until(host, pubsub, router, cluster.coordinator_multiaddr, advert.model_dump_json().encode(),
                                lambda: bool(logged()), timeout_s=30)
    line = logged()[0]
    assert line["level"] == "WARNING" and line["author"] == peer_id_of(key)
    assert await trio.to_thread.run_sync(rejected_count, cluster, "unsigned") >= 1
    with Client(cluster.api_url) as client:
        assert "unsigned" not in {n["name"] for n in client.nodes()["nodes"]}


@pytest.mark.integration
def test_open_membership_warns_and_admits_an_unknown_peer(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, [], env={**ENV, "QB2_P2P__MEMBERSHIP": "open"})
    try:
        cluster.start_coordinator()
        warned = [e for e in log_lines(cluster.log_dir / "coordinator.log") if e["message"].startswith("open mesh")]
        assert warned and warned[0]["level"] == "WARNING"
        stranger = start_by_hand(cluster, "stranger")  # no token, no allowlist
        with Client(cluster.api_url) as client:
            listed = client.wait_for_nodes(1, timeout_s=60)
        assert [n["node_id"] for n in listed["nodes"]] == [stranger]
        node_warned = [e for e in log_lines(cluster.log_dir / "node-stranger.log")
                       if e["message"].startswith("open mesh")]
        assert node_warned and node_warned[0]["level"] == "WARNING"
    finally:
        cluster.stop()
