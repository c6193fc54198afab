"""The service registry (FR-002): the coordinator's view of live nodes.

Fed by validated advertisements; an entry whose latest advertisement is older
than the TTL reads as ``stale`` (unavailable) until the node advertises again.
Freshness is computed at read time from the clock, so no sweeper task exists
that could fall behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import trio

from qb2.protocol.advert import ServiceAdvertisement

NodeStatus = Literal["available", "busy", "draining", "stale"]


@dataclass
class RegistryEntry:
    """The newest advertisement of one node and when it arrived (``received_at``, Unix seconds),
    plus the latest measured link quality: ``rtt_s`` (seconds, None before the first
    probe or when every probe failed) and ``loss`` (fraction of probes lost, in [0, 1])."""

    advert: ServiceAdvertisement
    received_at: float
    rtt_s: float | None = None
    loss: float = 0.0
    measured_at: float | None = None


@dataclass(frozen=True)
class QualityThresholds:
    """FR-008 thresholds: a node below any is *degraded* and receives no new fragments.

    Fidelities are probabilities in [0, 1]; ``max_rtt_s`` in seconds; ``max_loss`` in [0, 1].
    """

    min_gate_1q: float = 0.0
    min_gate_2q: float = 0.0
    min_readout: float = 0.0
    max_rtt_s: float = float("inf")
    max_loss: float = 1.0


class Registry:
    """Latest advertisement per node, with TTL-based staleness.

    Args:
        ttl_s: seconds after which an entry without a new advertisement is stale.
        clock: returns Unix seconds; injectable for tests.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.time,
                 thresholds: QualityThresholds = QualityThresholds()) -> None:
        self.ttl_s = ttl_s
        self.thresholds = thresholds
        self._clock = clock
        self._entries: dict[str, RegistryEntry] = {}
        self._changed = trio.Event()
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, advert: ServiceAdvertisement) -> bool:
        """Record a validated advertisement.

        Returns:
            True if it changed the registry: a new node, or a newer sequence
            number for a known one. Replays of an older sequence are ignored,
            unless the node restarted (sequence went back to a low value with a
            newer timestamp).
        """
        now = self._clock()
        entry = self._entries.get(advert.node_id)
        if entry is None:
            self._entries[advert.node_id] = RegistryEntry(advert, now)
        elif advert.sequence > entry.advert.sequence or advert.timestamp > entry.advert.timestamp:
            entry.advert, entry.received_at = advert, now
        else:
            return False
        self._changed.set()
        self._changed = trio.Event()
        return True

    def waiters(self) -> int:
        """How many tasks are blocked in :meth:`wait_changed` (e.g. jobs waiting for nodes)."""
        return self._changed.statistics().tasks_waiting

    async def wait_changed(self) -> None:
        """Wait until the next advertisement that changes the registry."""
        await self._changed.wait()

    def record_link(self, node_id: str, rtt_s: float | None, loss: float) -> None:
        """Store the latest link measurement to ``node_id`` (ignored for unknown nodes)."""
        entry = self._entries.get(node_id)
        if entry is not None:
            entry.rtt_s, entry.loss, entry.measured_at = rtt_s, loss, self._clock()

    def degraded(self, node_id: str) -> list[str]:
        """Why ``node_id`` is degraded (FR-008): empty when it meets every threshold.

        Raises:
            KeyError: unknown node.
        """
        entry, t = self._entries[node_id], self.thresholds
        f = entry.advert.fidelity
        reasons = [
            f"{name} fidelity {value:.4g} < {floor:.4g}"
            for name, value, floor in (("1q gate", f.gate_1q, t.min_gate_1q), ("2q gate", f.gate_2q, t.min_gate_2q),
                                       ("readout", f.readout, t.min_readout))
            if value < floor
        ]
        if entry.rtt_s is not None and entry.rtt_s > t.max_rtt_s:
            reasons.append(f"link RTT {entry.rtt_s * 1000:.1f} ms > {t.max_rtt_s * 1000:.1f} ms")
        if entry.loss > t.max_loss:
            reasons.append(f"link loss {entry.loss:.0%} > {t.max_loss:.0%}")
        return reasons

    def restore(self, advert: ServiceAdvertisement) -> None:
        """Reload a persisted advertisement after a restart: stale until the node advertises again (FR-010)."""
        if advert.node_id not in self._entries:
            self._entries[advert.node_id] = RegistryEntry(advert, received_at=0.0)

    def status(self, node_id: str) -> NodeStatus:
        """``stale`` when the last advertisement is older than the TTL, else the advertised availability.

        Raises:
            KeyError: unknown node.
        """
        entry = self._entries[node_id]
        if self._clock() - entry.received_at > self.ttl_s:
            return "stale"
        return entry.advert.availability

    def entries(self) -> list[RegistryEntry]:
        """All entries, sorted by node id (stale ones included)."""
        return [self._entries[k] for k in sorted(self._entries)]

    def get(self, node_id: str) -> RegistryEntry | None:
        """The entry of ``node_id``, or None."""
        return self._entries.get(node_id)

    def query(
        self,
        *,
        gate: str | None = None,
        min_fidelity: float | None = None,
        min_qubits: int | None = None,
        include_unavailable: bool = False,
        include_degraded: bool = True,
    ) -> list[ServiceAdvertisement]:
        """Advertisements matching every given filter, sorted by node id.

        Args:
            gate: a native gate the node must have.
            min_fidelity: floor on the node's two-qubit gate fidelity, in [0, 1].
            min_qubits: the node must accept fragments at least this wide.
            include_unavailable: also return stale / busy / draining nodes.
            include_degraded: also return nodes below a quality threshold (FR-008).
        """
        out = []
        for entry in self.entries():
            advert = entry.advert
            if not include_unavailable and self.status(advert.node_id) != "available":
                continue
            if not include_degraded and self.degraded(advert.node_id):
                continue
            if gate is not None and gate not in advert.native_gates:
                continue
            if min_fidelity is not None and advert.fidelity.gate_2q < min_fidelity:
                continue
            if min_qubits is not None and advert.qubit_range.max < min_qubits:
                continue
            out.append(advert)
        return out
