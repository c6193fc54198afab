"""Shared fixtures: node adverts and in-process simulated QPUs built from the real node code."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import trio

from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.service_node.config import load_node_settings
from qb2.service_node.handler import NodeSimulator, handle_execute

PROFILE_NAMES = ("ibm-like", "ion-like", "cz-native", "single-qubit")
IDEAL = {"gate_1q": 1.0, "gate_2q": 1.0, "readout": 1.0}


def peer_id(tag: str) -> str:
    """A syntactically valid base58 peer ID, distinct per ``tag`` character."""
    return "12D3KooW" + tag * 44


class InProcessCluster:
    """Nodes built with the service node's own handler; ``invoke`` runs it in a thread.

    This is the node's real execution path minus the libp2p hop, so the
    runtime's state hand-off is tested against real simulation.
    """

    def __init__(self, ideal: bool, qubits: int | None = None) -> None:
        self.qpus: dict[str, NodeSimulator] = {}
        self.adverts: list[ServiceAdvertisement] = []
        self.calls: list[str] = []
        for tag, profile in zip("ABCD", PROFILE_NAMES, strict=True):
            overrides: dict = {"fidelity": IDEAL} if ideal else {}
            if qubits is not None:
                overrides["qubits"] = qubits
            settings = load_node_settings(profile, name=profile, **overrides)
            node_id = peer_id(tag)
            self.qpus[node_id] = NodeSimulator.from_profile(node_id, settings.node)
            self.adverts.append(ServiceAdvertisement(
                node_id=node_id, name=profile, native_gates=tuple(settings.node.native_gates),
                fidelity=settings.node.fidelity, qubit_range={"min": 1, "max": settings.node.qubits},
                timestamp=time.time(),
            ))

    async def invoke(self, node_id: str, request: ExecuteRequest, payload: bytes) -> tuple[ExecuteResponse, bytes]:
        self.calls.append(node_id)
        return await trio.to_thread.run_sync(handle_execute, self.qpus[node_id], request, payload)


@pytest.fixture
def ideal_cluster() -> InProcessCluster:
    return InProcessCluster(ideal=True)


@pytest.fixture
def noisy_cluster() -> InProcessCluster:
    return InProcessCluster(ideal=False)


async def publish_adverts_until(host, pubsub, router, coordinator_multiaddr: str, data: bytes,  # type: ignore[no-untyped-def]
                                done: Callable[[], bool], timeout_s: float) -> None:
    """Run a rogue libp2p peer (``host`` with its ``pubsub`` and GossipSub ``router``), connect it to the
    coordinator at ``coordinator_multiaddr`` and publish ``data`` on the advert topic every 0.2 s until
    ``done()`` (an observable effect, e.g. a log line) holds; ``trio.TooSlowError`` after ``timeout_s`` seconds."""
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.tools.anyio_service import background_trio_service

    from qb2.protocol.ids import ADVERT_TOPIC

    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        async with background_trio_service(pubsub), background_trio_service(router):
            await pubsub.wait_until_ready()
            coordinator = info_from_p2p_addr(multiaddr.Multiaddr(coordinator_multiaddr))
            await host.connect(coordinator)
            await pubsub.wait_for_subscription(coordinator.peer_id, ADVERT_TOPIC, timeout=10)
            with trio.fail_after(timeout_s):
                while not done():
                    await pubsub.publish(ADVERT_TOPIC, data)
                    await trio.sleep(0.2)
