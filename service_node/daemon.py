"""The service-node daemon: a simulated QPU on libp2p (FR-001, FR-006).

One trio process holds the libp2p host, publishes the node's advertisement on
the GossipSub topic every ``advert_interval_s`` (and at once on change), keeps
a connection to each bootstrap peer, and serves fragment executions on
:data:`protocol.ids.EXECUTE_PROTOCOL_ID`. Simulation runs in worker threads so
the host keeps answering while a fragment computes.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import AsyncExitStack
from pathlib import Path

import multiaddr
import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from protocol.advert import ServiceAdvertisement
from protocol.execute import ExecuteError, ExecuteRequest, ExecuteResponse
from protocol.framing import FrameError, read_frame, write_frame
from protocol.ids import ADVERT_TOPIC, EXECUTE_PROTOCOL_ID
from protocol.transport import load_or_create_identity, make_host, make_pubsub
from service_node.config import NodeSettings
from service_node.handler import SimulatedQPU, handle_execute

log = logging.getLogger("qb2.node")


class ServiceNode:
    """A running node. Create with :meth:`run`; fields are for introspection."""

    def __init__(self, settings: NodeSettings, host: IHost, pubsub: Pubsub) -> None:
        self.settings = settings
        self.host = host
        self.pubsub = pubsub
        self.peer_id = host.get_id().to_base58()
        self.qpu = SimulatedQPU.from_profile(self.peer_id, settings.node)
        self._limiter = trio.CapacityLimiter(settings.node.max_concurrent_fragments)
        self._sequence = 0
        self.executed = 0

    def advertisement(self) -> ServiceAdvertisement:
        """The node's current advertisement (a new sequence number each call)."""
        self._sequence += 1
        profile = self.settings.node
        return ServiceAdvertisement(
            node_id=self.peer_id,
            name=profile.name,
            native_gates=tuple(profile.native_gates),
            fidelity=profile.fidelity,
            qubit_range={"min": 1, "max": profile.qubits},
            availability="available",
            timestamp=time.time(),
            sequence=self._sequence,
            addrs=tuple(str(a) for a in self.host.get_addrs()),
            gate_times=profile.gate_times,
            executor=profile.executor,
        )

    async def handle_stream(self, stream: INetStream) -> None:
        """Serve one execution request on ``stream`` and close it."""
        max_payload = self.settings.p2p.max_frame_mib * 1024 * 1024
        allowed = self.settings.p2p.allowed_peers
        remote = stream.muxed_conn.peer_id.to_base58()
        if allowed and remote not in allowed:  # FR-014: serve only the configured coordinators
            log.warning("refused execute request", extra={"peer_id": remote, "reason": "not in p2p.allowed_peers"})
            error = ExecuteError(code="bad_request", message=f"peer {remote} is not allowed to run fragments here")
            await _reply(stream, ExecuteResponse(node_id=self.peer_id, ok=False, error=error), b"")
            return
        try:
            with trio.fail_after(self.settings.p2p.frame_timeout_s):
                request, payload = await read_frame(stream, ExecuteRequest, max_payload=max_payload)
        except (FrameError, trio.TooSlowError) as exc:
            reason = str(exc) or "no complete request frame in time"
            log.warning("rejected execute frame", extra={"reason": reason})
            error = ExecuteError(code="bad_request", message=reason)
            await _reply(stream, ExecuteResponse(node_id=self.peer_id, ok=False, error=error), b"")
            return
        ids = {"job_id": request.job_id, "fragment_id": request.fragment_id}
        log.info("executing fragment", extra={**ids, "kind": request.kind, "ops": len(request.ops)})
        started = time.perf_counter()
        header, out = await trio.to_thread.run_sync(
            handle_execute, self.qpu, request, payload, limiter=self._limiter, abandon_on_cancel=True
        )
        self.executed += 1
        log.info(
            "fragment done",
            extra={**ids, "ok": header.ok, "elapsed_s": round(time.perf_counter() - started, 6),
                   "error": header.error.message if header.error else None},
        )
        await _reply(stream, header, out)

    async def advertise_forever(self) -> None:
        """Publish the advertisement every ``advert_interval_s`` seconds."""
        while True:
            try:
                await self.pubsub.publish(ADVERT_TOPIC, self.advertisement().model_dump_json().encode())
            except Exception as exc:  # no peers yet: try again next round
                log.debug("advertisement not published", extra={"reason": repr(exc)})
            await trio.sleep(self.settings.discovery.advert_interval_s)

    async def keep_bootstrap_connections(self) -> None:
        """Dial every bootstrap multiaddr; redial whenever the connection is gone."""
        peers = [info_from_p2p_addr(multiaddr.Multiaddr(a)) for a in self.settings.p2p.bootstrap]
        while True:
            for info in peers:
                if info.peer_id in self.host.get_connected_peers():
                    continue
                try:
                    # py-libp2p blocks a peer for 60 s after a failed dial; a restarting
                    # coordinator must be redialled as soon as it is back (FR-010).
                    self.host.get_network().unblock_peer(info.peer_id)
                    with trio.fail_after(10):
                        await self.host.connect(info)
                    log.info("connected to bootstrap peer", extra={"peer_id": info.peer_id.to_base58()})
                    with trio.move_on_after(5):
                        await self.pubsub.wait_for_subscription(info.peer_id, ADVERT_TOPIC, timeout=5.0)
                    await self.pubsub.publish(ADVERT_TOPIC, self.advertisement().model_dump_json().encode())
                except Exception as exc:
                    log.warning("bootstrap dial failed", extra={"peer_id": info.peer_id.to_base58(), "reason": repr(exc)})
            await trio.sleep(min(1.0, self.settings.discovery.advert_interval_s))


async def _reply(stream: INetStream, header: ExecuteResponse, payload: bytes) -> None:
    try:
        with trio.fail_after(60):
            await write_frame(stream, header, payload)
            await stream.close()
    except Exception as exc:  # the requester went away; free the stream
        log.warning("could not send execute response", extra={"reason": repr(exc)})
        with trio.move_on_after(1):
            try:
                await stream.reset()
            except Exception:  # already closed
                pass


async def run_node(
    settings: NodeSettings,
    *,
    ready_file: Path | None = None,
    task_status: trio.TaskStatus[ServiceNode] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a service node until cancelled.

    Args:
        ready_file: if given, ``{"peer_id", "addrs"}`` JSON is written there once
            the node listens (how ``qb2 up`` and the tests learn ephemeral ports).
        task_status: for ``nursery.start``; receives the :class:`ServiceNode`.
    """
    key_pair = load_or_create_identity(settings.state_dir / "identity.key")
    host = make_host(key_pair)
    pubsub, router = make_pubsub(host, settings.discovery.gossip_heartbeat_s)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(host.run(listen_addrs=[multiaddr.Multiaddr(settings.p2p.listen)]))
        for service in (pubsub, router):
            await stack.enter_async_context(background_trio_service(service))
        await pubsub.wait_until_ready()
        node = ServiceNode(settings, host, pubsub)
        host.set_stream_handler(TProtocol(EXECUTE_PROTOCOL_ID), node.handle_stream)
        addrs = [str(a) for a in host.get_addrs()]
        log.info("node listening", extra={"peer_id": node.peer_id, "addrs": addrs, "node_name": settings.node.name})
        if ready_file is not None:
            _write_atomically(ready_file, json.dumps({"peer_id": node.peer_id, "addrs": addrs}))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.advertise_forever)
            nursery.start_soon(node.keep_bootstrap_connections)
            task_status.started(node)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
