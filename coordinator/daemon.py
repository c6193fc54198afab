"""The coordinator daemon: one trio process holding the libp2p host, the job
workers and the HTTP API (FR-002, FR-006, FR-009).

Task tree (all in one nursery owned by :func:`run_coordinator`)::

    run_coordinator
    ├── libp2p host + Pubsub + GossipSub services
    ├── CoordinatorNetwork.ingest_advertisements   (advert topic -> registry)
    ├── CoordinatorService.run_workers              (queue -> compile -> execute)
    └── hypercorn.trio.serve                        (FastAPI job API)
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import multiaddr
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from libp2p.tools.anyio_service import background_trio_service
from pydantic import ValidationError

from qb2.compiler.translation import warm_up
from qb2.coordinator.api import RequestIdFilter, create_app
from qb2.coordinator.config import Settings
from qb2.coordinator.p2p import CoordinatorNetwork
from qb2.coordinator.quality import monitor_quality
from qb2.coordinator.registry import QualityThresholds, Registry
from qb2.coordinator.service import CoordinatorService
from qb2.coordinator.store import JobStore
from qb2.daemon.host import load_or_create_identity, make_host, make_pubsub
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.ids import RESERVE_PROTOCOL_ID
from qb2.protocol.reservation import ReserveRequest, ReserveResponse

log = logging.getLogger("qb2.coordinator")


@dataclass(frozen=True)
class CoordinatorInfo:
    """Where a started coordinator can be reached."""

    api_url: str
    peer_id: str
    multiaddrs: list[str]


async def run_coordinator(
    settings: Settings,
    *,
    ready_file: Path | None = None,
    task_status: trio.TaskStatus[CoordinatorInfo] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the coordinator until cancelled.

    Args:
        ready_file: if given, :class:`CoordinatorInfo` is written there as JSON
            once the API and the libp2p host listen (ports may be ephemeral).
    """
    store = JobStore(settings.data_dir / "coordinator.db")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
    key_pair = load_or_create_identity(settings.data_dir / "coordinator" / "identity.key")
    host = make_host(key_pair)
    # unsigned adverts are counted and logged by the network (FR-019); it exists before any message arrives
    pubsub, router = make_pubsub(host, settings.discovery.gossip_heartbeat_s,
                                 on_unverified=lambda *args: network.note_unverified(*args))
    q = settings.quality
    registry = Registry(settings.discovery.registry_ttl_s, thresholds=QualityThresholds(
        q.min_gate_1q, q.min_gate_2q, q.min_readout, q.max_rtt_s, q.max_loss))
    for advert_json, _ in await store.load_nodes():  # stale until each node re-advertises (FR-010)
        try:
            registry.restore(ServiceAdvertisement.model_validate_json(advert_json))
        except ValidationError as exc:  # e.g. written by a newer version: the node re-advertises anyway
            log.warning("stored advertisement skipped", extra={"reason": str(exc).splitlines()[0]})

    async def persist(advert: ServiceAdvertisement) -> None:
        await store.save_node(advert.model_dump_json(exclude_none=True), advert.node_id, time.time())
        # Build the gate-translation table for a new native set now, not in a job's compile.
        await trio.to_thread.run_sync(warm_up, [advert.native_gates])

    network = CoordinatorNetwork(host, pubsub, registry, settings.p2p.max_frame_mib * 1024 * 1024,
                                 allowed_peers=frozenset(settings.p2p.allowed_peers), on_advert=persist,
                                 membership=settings.p2p.membership)
    if settings.p2p.membership == "open":
        log.warning("open mesh: any peer that signs a valid advertisement is registered and receives job state "
                    "(p2p.membership = \"open\"; FR-019)", extra={"peer_id": network.peer_id})
    else:
        log.info("membership closed: registering only p2p.allowed_peers and nodes with a join token of this "
                 "coordinator", extra={"peer_id": network.peer_id, "allowed_peers": len(settings.p2p.allowed_peers)})

    async def invoke(node_id: str, request: ExecuteRequest, payload: bytes) -> tuple[ExecuteResponse, bytes]:
        # Execute-by-size (FR-007): a base timeout plus time to move and simulate the state.
        timeout_s = settings.runtime.execute_timeout_s + settings.runtime.execute_timeout_per_mib_s * len(payload) / 2**20
        header, out, _ = await network.invoke(node_id, request, payload, timeout_s)
        return header, out

    async def reserve(node_id: str, request: ReserveRequest) -> ReserveResponse:
        return await network.request(node_id, RESERVE_PROTOCOL_ID, request, ReserveResponse,
                                     settings.runtime.reserve_timeout_s)

    service = CoordinatorService(settings, registry, store, invoke, reserve)
    network.on_reject = lambda code: service.metrics.advertisements_rejected.labels(reason=code).inc()

    def health_probe() -> dict[str, tuple[bool, str]]:
        addrs = host.get_addrs()
        pubsub_peers = len(pubsub.peers)
        return {
            "libp2p_host": (bool(addrs), f"listening on {len(addrs)} multiaddrs, {len(host.get_connected_peers())} peers"),
            "pubsub": (pubsub_peers > 0, f"{pubsub_peers} peers speak GossipSub with us"),
        }

    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(host.run(listen_addrs=[multiaddr.Multiaddr(settings.p2p.listen)]))
            for svc in (pubsub, router):
                await stack.enter_async_context(background_trio_service(svc))
            await pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(network.ingest_advertisements)
                nursery.start_soon(service.run_workers)
                nursery.start_soon(service.persist_metrics, settings.runtime.metrics_snapshot_s)
                nursery.start_soon(monitor_quality, host, registry, store, settings.quality)
                await service.recover()
                config = HypercornConfig()
                config.bind = [f"{settings.api.host}:{settings.api.port}"]
                config.accesslog = None
                config.errorlog = logging.getLogger("hypercorn.error")
                app = create_app(service, network.peer_id, health_probe)
                binds = await nursery.start(serve, app, config)
                info = CoordinatorInfo(
                    api_url=binds[0], peer_id=network.peer_id, multiaddrs=[str(a) for a in host.get_addrs()]
                )
                log.info("coordinator ready", extra={"api_url": info.api_url, "peer_id": info.peer_id,
                                                     "multiaddrs": info.multiaddrs})
                if ready_file is not None:
                    ready_file.parent.mkdir(parents=True, exist_ok=True)
                    tmp = ready_file.with_suffix(".tmp")
                    tmp.write_text(json.dumps(info.__dict__))
                    tmp.replace(ready_file)
                task_status.started(info)
    finally:
        store.close()
