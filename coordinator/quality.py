"""Link and node quality monitoring (FR-008).

Every ``quality.probe_interval_s`` the coordinator pings each registered node
over libp2p (``/ipfs/ping/1.0.0``, on the long-lived connection), records the
median round trip (seconds) and the fraction of probes lost, and persists a
snapshot with the node's advertised fidelities. The registry then reports a
node *degraded* when a figure crosses a threshold; the planner sees only
non-degraded nodes, and it reads the registry again before each (re)plan.
"""

from __future__ import annotations

import logging
import statistics
import time

import trio
from libp2p.abc import IHost
from libp2p.host.ping import PingService
from libp2p.peer.id import ID

from qb2.coordinator.config import QualitySettings
from qb2.coordinator.registry import Registry
from qb2.coordinator.store import JobStore

log = logging.getLogger("qb2.coordinator.quality")


async def probe(ping: PingService, peer: ID, probes: int, timeout_s: float) -> tuple[float | None, float]:
    """Ping ``peer`` ``probes`` times; returns (median RTT in seconds or None, loss in [0, 1])."""
    rtts: list[float] = []
    for _ in range(probes):
        started = time.perf_counter()
        try:
            with trio.fail_after(timeout_s):
                await ping.ping(peer, 1)
            rtts.append(time.perf_counter() - started)
        except Exception:  # timeout, reset, unreachable: a lost probe
            pass
    return (statistics.median(rtts) if rtts else None), 1 - len(rtts) / probes


async def monitor_quality(host: IHost, registry: Registry, store: JobStore, settings: QualitySettings) -> None:
    """Probe every non-stale node forever, every ``settings.probe_interval_s`` seconds."""
    if settings.probe_interval_s <= 0:
        return
    ping = PingService(host)
    was_degraded: dict[str, bool] = {}
    while True:
        for entry in registry.entries():
            node_id = entry.advert.node_id
            if registry.status(node_id) == "stale":
                continue
            rtt_s, loss = await probe(ping, ID.from_base58(node_id), settings.probes, settings.probe_timeout_s)
            registry.record_link(node_id, rtt_s, loss)
            reasons = registry.degraded(node_id)
            f = entry.advert.fidelity
            await store.save_quality(node_id, time.time(), rtt_s, loss, f.gate_1q, f.gate_2q, f.readout, reasons)
            if bool(reasons) != was_degraded.get(node_id, False):
                log.warning("node degraded" if reasons else "node recovered",
                            extra={"peer_id": node_id, "reasons": reasons})
                was_degraded[node_id] = bool(reasons)
        await trio.sleep(settings.probe_interval_s)
