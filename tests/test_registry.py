"""The registry (FR-002): queries by gate, fidelity, width; TTL marks nodes stale."""

from __future__ import annotations

from qb2.coordinator.registry import Registry
from qb2.protocol.advert import ServiceAdvertisement
from tests.conftest import peer_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def advert(tag: str, gates: tuple[str, ...], f2q: float, qubits: int, seq: int = 1, ts: float = 1.0) -> ServiceAdvertisement:
    return ServiceAdvertisement(node_id=peer_id(tag), native_gates=gates, sequence=seq, timestamp=ts,
                                fidelity={"gate_1q": 0.999, "gate_2q": f2q, "readout": 0.99},
                                qubit_range={"max": qubits})


def test_query_filters_and_ttl() -> None:
    clock = Clock()
    registry = Registry(ttl_s=10, clock=clock)
    registry.observe(advert("A", ("cx", "rz", "sx"), 0.99, 5))
    registry.observe(advert("B", ("cz", "rx", "rz"), 0.95, 3))
    assert [a.node_id for a in registry.query(gate="cx")] == [peer_id("A")]
    assert [a.node_id for a in registry.query(min_fidelity=0.97)] == [peer_id("A")]
    assert [a.node_id for a in registry.query(min_qubits=4)] == [peer_id("A")]
    assert len(registry.query()) == 2

    clock.now += 8
    registry.observe(advert("B", ("cz", "rx", "rz"), 0.95, 3, seq=2, ts=2.0))
    clock.now += 5  # A is 13 s old, B 5 s
    assert registry.status(peer_id("A")) == "stale"
    assert [a.node_id for a in registry.query()] == [peer_id("B")]
    assert len(registry.query(include_unavailable=True)) == 2

    registry.observe(advert("A", ("cx", "rz", "sx"), 0.99, 5, seq=2, ts=3.0))
    assert registry.status(peer_id("A")) == "available"


def test_replayed_older_advertisement_is_ignored() -> None:
    clock = Clock()
    registry = Registry(ttl_s=10, clock=clock)
    assert registry.observe(advert("A", ("cx",), 0.99, 5, seq=5, ts=5.0))
    assert not registry.observe(advert("A", ("cx",), 0.50, 5, seq=4, ts=4.0))
    assert registry.get(peer_id("A")).advert.fidelity.gate_2q == 0.99
    assert registry.observe(advert("A", ("cx",), 0.90, 5, seq=6, ts=6.0))
    assert registry.get(peer_id("A")).advert.fidelity.gate_2q == 0.90


def test_degraded_nodes_are_named_and_filtered() -> None:
    from qb2.coordinator.registry import QualityThresholds

    clock = Clock()
    registry = Registry(ttl_s=10, clock=clock, thresholds=QualityThresholds(min_gate_2q=0.98, max_rtt_s=0.05,
                                                                             max_loss=0.2))
    registry.observe(advert("A", ("cx",), 0.99, 5))
    registry.observe(advert("B", ("cx",), 0.95, 5))
    assert registry.degraded(peer_id("A")) == []
    assert registry.degraded(peer_id("B")) == ["2q gate fidelity 0.95 < 0.98"]
    registry.record_link(peer_id("A"), 0.2, 0.5)
    assert registry.degraded(peer_id("A")) == ["link RTT 200.0 ms > 50.0 ms", "link loss 50% > 20%"]
    assert registry.query(include_degraded=False) == []
    registry.record_link(peer_id("A"), 0.001, 0.0)
    assert [a.node_id for a in registry.query(include_degraded=False)] == [peer_id("A")]
