"""The node's event-sourced reservation ledger (FR-005): rules, next window, replay."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from qb2.protocol.advert import Fidelities
from qb2.protocol.reservation import LedgerEvent, OperationSummary, ReserveRequest
from qb2.service_node.ledger import LedgerError, ReservationLedger, Window, estimate_success

NODE = "12D3KooW" + "N" * 44
OP = OperationSummary(gates={"cx": 2, "rz": 3, "measure": 1}, qubits=2, estimated_duration_s=0.01)


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def req(rid: str, start: float, end: float, *, min_fidelity: float | None = None, job: str = "job") -> ReserveRequest:
    return ReserveRequest(action="reserve", reservation_id=rid, job_id=job, fragment_id="f0", operation=OP,
                          start=start, end=end, min_fidelity=min_fidelity)


def reference_next(active: list[tuple[float, float]], capacity: int, start: float, length: float) -> tuple[float, float]:
    """Brute force over integer starts (every time in these tests is an integer)."""
    t = math.ceil(start)
    while sum(1 for s, e in active if s < t + length and e > t) >= capacity:
        t += 1
    return t, t + length


# --------------------------------------------------------------------------- unit tests


def test_conflict_rejects_with_reason_and_next_window() -> None:
    clock = FakeClock(1000.0)
    ledger = ReservationLedger(1, clock)
    assert ledger.reserve(req("a", 1010, 1020), NODE).granted
    rejected = ledger.reserve(req("b", 1015, 1025), NODE)
    assert not rejected.granted
    assert rejected.reason == "capacity: 1 windows overlap [1015.0, 1025.0)"
    assert (rejected.next_start, rejected.next_end) == (1020.0, 1030.0)
    assert rejected.node_id == NODE and rejected.reservation_id == "b"
    # the suggested window is granted when asked for
    assert ledger.reserve(req("c", rejected.next_start, rejected.next_end), NODE).granted
    assert [e.kind for e in ledger.events] == ["requested", "granted", "requested", "rejected", "requested", "granted"]
    assert ledger.events[3].reason == rejected.reason


def test_next_window_skips_windows_that_still_overlap() -> None:
    ledger = ReservationLedger(2, FakeClock(0.0))
    for rid, (s, e) in {"a": (0, 10), "b": (5, 15), "c": (12, 30), "d": (14, 16)}.items():
        ledger.reserve(req(rid, s, e), NODE)
    assert {w.reservation_id for w in ledger.active} == {"a", "b", "c"}  # d overlapped b and c
    rejected = ledger.reserve(req("x", 6, 11), NODE)
    # at 10 a has ended but [10, 15) still overlaps b and c; at 15 only c overlaps [15, 20)
    assert rejected.reason == "capacity: 2 windows overlap [6.0, 11.0)"
    assert (rejected.next_start, rejected.next_end) == (15.0, 20.0)


def test_duplicate_id_is_rejected_and_changes_nothing() -> None:
    ledger = ReservationLedger(3, FakeClock(0.0))
    assert ledger.reserve(req("a", 10, 20), NODE).granted
    before = ledger.state()
    again = ledger.reserve(req("a", 50, 60), NODE)
    assert not again.granted and again.reason == "duplicate reservation id"
    assert again.next_start is None
    assert ledger.state() == before
    assert ledger.active == [Window(10, 20, "a", "job", "f0")]
    assert ReservationLedger.replay(ledger.events, 3).state() == before
    # an id stays used after it ended
    assert ledger.release("a")
    assert ledger.reserve(req("a", 10, 20), NODE).reason == "duplicate reservation id"


def test_min_fidelity_uses_the_node_estimate() -> None:
    fidelity = Fidelities(gate_1q=0.99, gate_2q=0.9, readout=0.95)
    expected = 0.9**2 * 0.99**3 * 0.95
    assert estimate_success(OP.gates, fidelity) == pytest.approx(expected, rel=1e-12)
    ledger = ReservationLedger(1, FakeClock(0.0), estimator=lambda op: estimate_success(op.gates, fidelity))
    low = ledger.reserve(req("a", 10, 20, min_fidelity=0.8), NODE)
    assert not low.granted
    assert low.reason.startswith("fidelity: estimated 0.7") and "0.8" in low.reason
    assert low.next_start is None and low.next_end is None
    assert ledger.reserve(req("b", 10, 20, min_fidelity=0.7), NODE).granted
    assert ledger.reserve(req("c", 30, 40), NODE).granted  # no requirement: no check


def test_estimate_success_classes() -> None:
    f = Fidelities(gate_1q=0.5, gate_2q=0.25, readout=0.8)
    assert estimate_success({}, f) == 1.0
    assert estimate_success({"sx": 2}, f) == pytest.approx(0.25)
    assert estimate_success({"rzz": 1}, f) == pytest.approx(0.25)  # 2q: gate_2q
    # a k-qubit gate counts as 2k - 3 two-qubit gates (compiler/cost.py): ccx 3, c3sx 5
    assert estimate_success({"ccx": 1}, f) == pytest.approx(0.25**3)
    assert estimate_success({"c3sx": 1}, f) == pytest.approx(0.25**5)
    assert estimate_success({"my_custom": 2, "reset": 1}, f) == pytest.approx(0.25**3)  # unknown: one 2q gate
    assert estimate_success({"measure": 2, "barrier": 5, "delay": 1, "global_phase": 1}, f) == pytest.approx(0.64)
    with pytest.raises(ValueError, match="negative"):
        estimate_success({"x": -1}, f)


def test_consumed_released_and_expired_windows_free_their_slot() -> None:
    clock = FakeClock(0.0)
    ledger = ReservationLedger(1, clock)
    assert ledger.reserve(req("a", 10, 20), NODE).granted
    assert ledger.consume("a") and not ledger.consume("a") and not ledger.release("a")
    assert ledger.reserve(req("b", 10, 20), NODE).granted
    assert ledger.release("b") and not ledger.release("b")
    assert ledger.reserve(req("c", 10, 20), NODE).granted
    assert not ledger.release("nope") and not ledger.consume("nope")
    clock.now = 20.0
    # an unconfirmed window of a crashed coordinator expires by itself on the next reserve
    assert ledger.reserve(req("d", 20, 30), NODE).granted
    assert ledger.status("c") == "expired" and ledger.status("a") == "consumed" and ledger.status("b") == "released"
    assert [e.kind for e in ledger.events][-3:] == ["expired", "requested", "granted"]
    assert not ledger.consume("c")
    assert ledger.expire(29.9) == [] and ledger.expire() == [] and ledger.expire(30.0) == ["d"]


def test_a_window_that_already_ended_is_rejected() -> None:
    ledger = ReservationLedger(1, FakeClock(100.0))
    late = ledger.reserve(req("a", 50, 60), NODE)
    assert not late.granted and "ended" in late.reason
    assert (late.next_start, late.next_end) == (100.0, 110.0)


def test_replay_refuses_events_that_do_not_apply() -> None:
    granted = LedgerEvent(kind="granted", reservation_id="x", at=1.0, start=1, end=2)
    with pytest.raises(LedgerError, match="never requested"):
        ReservationLedger.replay([granted], 1)
    requested = LedgerEvent(kind="requested", reservation_id="x", at=1.0, start=1, end=2)
    consumed = LedgerEvent(kind="consumed", reservation_id="x", at=1.0)
    with pytest.raises(LedgerError, match="status requested"):
        ReservationLedger.replay([requested, consumed], 1)
    with pytest.raises(ValueError, match="capacity"):
        ReservationLedger(0)
    with pytest.raises(ValueError, match="action"):
        ReservationLedger(1).reserve(ReserveRequest(action="release", reservation_id="x"), NODE)


def test_unconsumed_windows_expire_after_the_grace_with_an_event() -> None:
    """FR-005: a granted window nobody consumed frees its slot ``grace_s`` after its start (or at its end)."""
    clock = FakeClock(1000.0)
    seen: list[LedgerEvent] = []
    ledger = ReservationLedger(1, clock, grace_s=5.0, on_event=seen.append)
    assert ledger.reserve(req("long", 1000, 1600), NODE).granted  # 10 minutes, never consumed
    assert ledger.reserve(req("later", 1700, 1701), NODE).granted
    assert not ledger.reserve(req("x", 1001, 1002), NODE).granted
    assert ledger.deadline(ledger.active[0]) == 1005.0
    clock.now = 1004.9
    assert ledger.expire() == []
    clock.now = 1005.0
    assert ledger.expire() == ["long"]
    expired = ledger.events[-1]
    assert expired.kind == "expired" and expired.reason == "not consumed within 5 s of its start"
    assert seen == ledger.events  # every event reaches the hook, in order
    assert ledger.status("long") == "expired" and not ledger.consume("long")
    # the slot is free again at once, long before the window's end
    assert ledger.reserve(req("y", 1006, 1007), NODE).granted
    clock.now = 1701.0  # "later" ends (1 s long) before its grace would
    assert ledger.expire() == ["y", "later"]  # by deadline: y at 1007 (its end), later at 1701 (its end)
    assert {e.reason for e in ledger.events if e.kind == "expired" and e.reservation_id in ("y", "later")} == {"window ended"}
    assert ReservationLedger.replay(ledger.events, 1).state() == ledger.state()


def test_a_window_past_its_grace_is_not_granted() -> None:
    ledger = ReservationLedger(1, FakeClock(100.0), grace_s=10.0)
    stale = ledger.reserve(req("a", 85, 200), NODE)  # would expire at once
    assert not stale.granted and "grace" in stale.reason
    assert (stale.next_start, stale.next_end) == (100.0, 215.0)
    assert ledger.reserve(req("b", 95, 200), NODE).granted
    with pytest.raises(ValueError, match="grace_s"):
        ReservationLedger(1, grace_s=0.0)
    with pytest.raises(ValueError, match="grace_s"):
        ReservationLedger(1, grace_s=math.inf)


# --------------------------------------------------------------------------- state machine


class LedgerMachine(RuleBasedStateMachine):
    """Random reserve / release / consume / clock / expire sequences against a reference model."""

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1000.0)
        self.counter = 0
        self.model: dict[str, tuple[float, float]] = {}  # active windows per the reference model
        self.granted: set[str] = set()

    @initialize(capacity=st.integers(1, 3), grace=st.sampled_from([None, 2.0, 6.0]))
    def setup(self, capacity: int, grace: float | None) -> None:
        self.capacity = capacity
        self.grace = grace
        self.ledger = ReservationLedger(capacity, self.clock, estimator=lambda op: 0.9, grace_s=grace)

    def _deadline(self, start: float, end: float) -> float:
        return end if self.grace is None else min(end, start + self.grace)

    def _model_expire(self, now: float) -> set[str]:
        stale = {rid for rid, (s, e) in self.model.items() if self._deadline(s, e) <= now}
        for rid in stale:
            del self.model[rid]
        return stale

    @rule(target=ids, offset=st.integers(-5, 30), length=st.integers(1, 10),
          min_fidelity=st.sampled_from([None, None, 0.5, 0.95]))
    def reserve(self, offset: int, length: int, min_fidelity: float | None) -> str:
        self.counter += 1
        rid = f"r{self.counter}"
        now = self.clock.now
        start, end = now + offset, now + offset + length
        self._model_expire(now)
        response = self.ledger.reserve(req(rid, start, end, min_fidelity=min_fidelity), NODE)
        overlap = sum(1 for s, e in self.model.values() if s < end and e > start)
        if end <= now:
            assert not response.granted and "ended" in response.reason
        elif self.grace is not None and start + self.grace <= now:
            assert not response.granted and "grace" in response.reason
        elif min_fidelity is not None and min_fidelity > 0.9:
            assert not response.granted and response.reason.startswith("fidelity")
        elif overlap >= self.capacity:
            assert not response.granted
            assert response.reason == f"capacity: {overlap} windows overlap [{start!r}, {end!r})"
            expected = reference_next(list(self.model.values()), self.capacity, max(start, now), length)
            assert (response.next_start, response.next_end) == expected
        else:
            assert response.granted, response
            self.model[rid] = (start, end)
            self.granted.add(rid)
        return rid

    @rule(rid=ids)
    def reserve_duplicate(self, rid: str) -> None:
        self._model_expire(self.clock.now)
        response = self.ledger.reserve(req(rid, self.clock.now + 1, self.clock.now + 2), NODE)
        assert not response.granted and response.reason == "duplicate reservation id"

    @rule(rid=ids)
    def release(self, rid: str) -> None:
        assert self.ledger.release(rid) == (rid in self.model)
        self.model.pop(rid, None)

    @rule(rid=consumes(ids))
    def consume(self, rid: str) -> None:
        assert self.ledger.consume(rid) == (rid in self.model)
        self.model.pop(rid, None)

    @rule(dt=st.integers(0, 8))
    def advance(self, dt: int) -> None:
        self.clock.now += dt

    @rule()
    def expire(self) -> None:
        expected = self._model_expire(self.clock.now)
        assert set(self.ledger.expire()) == expected

    @rule()
    def drain(self) -> None:
        """Once the clock passes every end, expire() leaves nothing active and every grant ended:
        no window is ever left holding a slot (FR-005)."""
        self.clock.now = max([self.clock.now, *(e for _, e in self.model.values())])
        self.expire()
        assert self.ledger.active == []
        for event in self.ledger.events:
            if event.kind == "expired":  # an expiry never comes early
                assert self._deadline(event.start, event.end) <= event.at
        for rid in self.granted:
            assert self.ledger.status(rid) in {"consumed", "released", "expired"}

    @invariant()
    def active_matches_model(self) -> None:
        if hasattr(self, "ledger"):
            assert {w.reservation_id: (w.start, w.end) for w in self.ledger.active} == self.model

    @invariant()
    def never_over_capacity_at_any_instant(self) -> None:
        if hasattr(self, "ledger"):
            windows = self.ledger.active
            for w in windows:  # concurrency peaks at some window's start
                assert sum(1 for o in windows if o.start <= w.start < o.end) <= self.capacity

    @invariant()
    def replay_equals_live(self) -> None:
        if hasattr(self, "ledger"):
            assert ReservationLedger.replay(self.ledger.events, self.capacity).state() == self.ledger.state()


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestLedgerMachine = LedgerMachine.TestCase
