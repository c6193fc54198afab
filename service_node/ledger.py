"""The node's event-sourced reservation ledger (FR-005).

A node grants execution windows ``[start, end)`` (Unix seconds) to
coordinators over :data:`qb2.protocol.ids.RESERVE_PROTOCOL_ID` (wire contract:
:mod:`qb2.protocol.reservation`). The ledger is event-sourced: every command
appends :class:`qb2.protocol.reservation.LedgerEvent` entries and the state is
derived **only** by folding those events (:meth:`ReservationLedger._apply`), so
``ReservationLedger.replay(ledger.events, capacity).state() == ledger.state()``
always holds.

Commands and the events they append:

=================  =========================================================
``reserve``        ``requested``, then ``granted`` or ``rejected`` (preceded
                   by ``expired`` for every stale window it first frees)
``release``        ``released`` (nothing if the id is not active)
``consume``        ``consumed`` (nothing if the id is not active)
``expire``         ``expired`` for every active window with ``end <= now``,
                   or (with a ``grace_s``) ``start + grace_s <= now``
=================  =========================================================

Expiry (FR-005, "expired or cancelled reservations are released
automatically"): a granted window nobody consumed or released holds its slot
only until its ``end`` or, when the ledger has a consumption grace
``grace_s``, until ``start + grace_s``, whichever comes first. The
``expired`` event's ``reason`` says which. A coordinator that crashed, or was
cancelled before it could release, therefore leaks a slot for at most
``min(end, start + grace_s) - now`` seconds.

Decision rules of ``reserve`` (checked in this order):

1. stale windows (see Expiry) expire first, so a window left behind by a
   crashed coordinator frees its slot by itself;
2. a ``reservation_id`` seen before (whatever became of it) is rejected with
   reason ``"duplicate reservation id"``: ids are single-use;
3. a window that already ended (``end <= now``), or whose consumption grace
   already passed (``start + grace_s <= now``), is rejected (it would expire
   at once) with the next window of the same length from ``now``;
4. with ``min_fidelity`` set and an estimator given, a node whose estimated
   success probability for the operation is below it rejects with reason
   ``"fidelity: ..."`` (and no next window: waiting does not help);
5. the window is granted iff fewer than ``capacity`` active (granted, not yet
   consumed, released or expired) windows overlap ``[start, end)``; otherwise
   the rejection's reason is ``"capacity: N windows overlap [start, end)"`` and
   ``next_start`` / ``next_end`` name the earliest window of the same length,
   starting at or after ``max(start, now)``, that would be granted now.

The earliest fitting start is always ``max(start, now)`` or the end of an
active window: the number of active windows overlapping ``[t, t + L)`` only
falls where a window ends and only grows with ``t`` elsewhere.

Memory: the event log and the per-id status map keep every event and id for
the life of the process (about 1 KiB per reservation: three events and one
record). A node serving 10 reservations per second grows by about 36 MiB per
hour; restart it (the ledger is in memory only) or add snapshot compaction
before running it for days under load.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from qb2.compiler.estimate import estimated_success
from qb2.protocol.advert import Fidelities
from qb2.protocol.reservation import LedgerEvent, OperationSummary, ReserveRequest, ReserveResponse
from qb2.service_node.errors import NodeError

__all__ = [
    "LedgerError",
    "LedgerState",
    "ReservationLedger",
    "ReservationStatus",
    "Window",
    "estimate_success",
]

ReservationStatus = Literal["requested", "granted", "rejected", "consumed", "released", "expired"]

#: Statuses after which a reservation holds no slot.
_ENDED = frozenset({"rejected", "consumed", "released", "expired"})


class LedgerError(NodeError, ValueError):
    """An event does not apply to the state folded so far (e.g. ``granted`` for an unknown id)."""


@dataclass(frozen=True, order=True)
class Window:
    """One reservation as the ledger sees it. Times are Unix seconds; the window is ``[start, end)``."""

    start: float
    end: float
    reservation_id: str
    job_id: str = ""
    fragment_id: str = ""


@dataclass(frozen=True)
class LedgerState:
    """A comparable snapshot of the ledger.

    Attributes:
        active: granted windows not yet consumed, released or expired, sorted
            by ``(start, end, reservation_id)``.
        closed: ``(reservation_id, status)`` of every other id ever requested,
            sorted by id; status is ``rejected``, ``consumed``, ``released`` or
            ``expired``.
    """

    active: tuple[Window, ...]
    closed: tuple[tuple[str, str], ...]


@dataclass
class _Record:
    window: Window
    status: ReservationStatus


def estimate_success(gates: dict[str, int], fidelity: Fidelities) -> float:
    """Estimated success probability of running ``gates`` on a node with ``fidelity``.

    :func:`qb2.compiler.estimate.estimated_success`, the one estimate the
    planner and the coordinator also use: the product over gates of their
    class fidelity. Qiskit standard 1-qubit gates count ``fidelity.gate_1q``,
    2-qubit gates ``fidelity.gate_2q``, gates on ``k >= 3`` qubits ``2k - 3``
    times ``fidelity.gate_2q``, names Qiskit does not know once
    ``fidelity.gate_2q``; ``measure`` counts ``fidelity.readout``;
    ``barrier``, ``delay`` and ``global_phase`` count 1.

    Args:
        gates: gate counts by name, e.g. ``{"cx": 3, "rz": 10}``; counts >= 0.
        fidelity: the node's current per-class fidelities.

    Returns:
        A probability in [0, 1].

    Raises:
        ValueError: a negative count.
    """
    return estimated_success(gates, fidelity)


class ReservationLedger:
    """Reservations of one node's execution windows, event-sourced (FR-005).

    Not thread-safe: the daemon calls it from its trio thread only.

    Args:
        capacity: how many windows may overlap at once (the node's
            ``max_concurrent_fragments``); >= 1.
        clock: current Unix time in seconds (tests pass a fake clock).
        estimator: estimated success probability in [0, 1] of an operation on
            this node now (see :func:`estimate_success`); None disables the
            ``min_fidelity`` check.
        grace_s: seconds after a window's start within which it must be
            consumed or released, else it expires (see Expiry in the module
            docstring); None: only the window's end expires it.
        on_event: called with every event appended (after it is applied), e.g.
            to log expirations; not called by :meth:`replay`'s folding unless passed.

    Raises:
        ValueError: ``capacity`` < 1, or ``grace_s`` not a finite positive number.
    """

    def __init__(
        self,
        capacity: int,
        clock: Callable[[], float] = time.time,
        estimator: Callable[[OperationSummary], float] | None = None,
        grace_s: float | None = None,
        on_event: Callable[[LedgerEvent], None] | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if grace_s is not None and not (math.isfinite(grace_s) and grace_s > 0):
            raise ValueError(f"grace_s must be a finite number of seconds > 0, got {grace_s}")
        self.capacity = capacity
        self.clock = clock
        self.estimator = estimator
        self.grace_s = grace_s
        self.on_event = on_event
        self.events: list[LedgerEvent] = []
        self._records: dict[str, _Record] = {}
        self._active: dict[str, Window] = {}

    # ---- event sourcing ---------------------------------------------------------------

    @classmethod
    def replay(
        cls,
        events: Iterable[LedgerEvent],
        capacity: int,
        clock: Callable[[], float] = time.time,
        estimator: Callable[[OperationSummary], float] | None = None,
        grace_s: float | None = None,
    ) -> ReservationLedger:
        """Rebuild a ledger by folding ``events`` in order.

        The state depends on the events only; ``grace_s`` and ``estimator``
        matter for the commands issued to the rebuilt ledger afterwards.

        Raises:
            LedgerError: an event does not apply to the state before it.
            ValueError: ``capacity`` < 1 or an invalid ``grace_s``.
        """
        ledger = cls(capacity, clock, estimator, grace_s)
        for event in events:
            ledger._append(event)
        return ledger

    def _append(self, event: LedgerEvent) -> None:
        self._apply(event)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _apply(self, event: LedgerEvent) -> None:
        """Fold one event into the state: the only place the state changes."""
        rid = event.reservation_id
        record = self._records.get(rid)
        if event.kind == "requested":
            if record is None:  # a duplicate request leaves the first one's record alone
                window = Window(event.start, event.end, rid, event.job_id, event.fragment_id)
                self._records[rid] = _Record(window, "requested")
            return
        if record is None:
            raise LedgerError(f"{event.kind} event for reservation {rid!r}, which was never requested")
        if event.kind == "rejected":
            if record.status == "requested":  # else: the rejection of a duplicate request
                record.status = "rejected"
            return
        if event.kind == "granted":
            if record.status != "requested":
                raise LedgerError(f"granted event for reservation {rid!r} in status {record.status}")
            record.status = "granted"
            self._active[rid] = record.window
            return
        if record.status != "granted":  # consumed, released, expired
            raise LedgerError(f"{event.kind} event for reservation {rid!r} in status {record.status}")
        record.status = event.kind
        del self._active[rid]

    def state(self) -> LedgerState:
        """The current snapshot (equal for a live ledger and its replay)."""
        active = tuple(sorted(self._active.values()))
        closed = tuple(sorted((rid, r.status) for rid, r in self._records.items() if r.status in _ENDED))
        return LedgerState(active, closed)

    def status(self, reservation_id: str) -> ReservationStatus | None:
        """The status of ``reservation_id``, or None if it was never requested."""
        record = self._records.get(reservation_id)
        return record.status if record else None

    @property
    def active(self) -> list[Window]:
        """Active windows sorted by start."""
        return sorted(self._active.values())

    # ---- commands ---------------------------------------------------------------------

    def deadline(self, window: Window | ReserveRequest) -> float:
        """Unix time at which ``window`` (granted, or requested), if active, expires: its ``end``, or
        ``start + grace_s`` if earlier."""
        return window.end if self.grace_s is None else min(window.end, window.start + self.grace_s)

    def expire(self, now: float | None = None) -> list[str]:
        """Expire every active window whose :meth:`deadline` is ``<= now`` (default: the clock).

        Each gets an ``expired`` event whose reason says whether the window
        ended or was not consumed within ``grace_s`` of its start.

        Returns:
            The ids expired, sorted by deadline.
        """
        now = self.clock() if now is None else now
        stale = sorted((w for w in self._active.values() if self.deadline(w) <= now),
                       key=lambda w: (self.deadline(w), w.reservation_id))
        for window in stale:
            reason = ("window ended" if window.end <= now
                      else f"not consumed within {self.grace_s:g} s of its start")
            self._append(LedgerEvent(kind="expired", reservation_id=window.reservation_id, at=now,
                                     start=window.start, end=window.end,
                                     job_id=window.job_id, fragment_id=window.fragment_id, reason=reason))
        return [w.reservation_id for w in stale]

    def release(self, reservation_id: str) -> bool:
        """Give back an active window.

        Returns:
            True if it was active and is now released; False if unknown or
            already consumed, released, expired or rejected (nothing is appended).
        """
        return self._close(reservation_id, "released")

    def consume(self, reservation_id: str) -> bool:
        """Mark an active window as used by an execution carrying its id; frees its slot.

        Returns:
            True if it was active; False if unknown or no longer active (nothing is appended).
        """
        return self._close(reservation_id, "consumed")

    def _close(self, reservation_id: str, kind: Literal["consumed", "released"]) -> bool:
        window = self._active.get(reservation_id)
        if window is None:
            return False
        self._append(LedgerEvent(kind=kind, reservation_id=reservation_id, at=self.clock(), start=window.start,
                                 end=window.end, job_id=window.job_id, fragment_id=window.fragment_id))
        return True

    def overlapping(self, start: float, end: float) -> int:
        """How many active windows overlap ``[start, end)``."""
        return sum(1 for w in self._active.values() if w.start < end and w.end > start)

    def next_window(self, start: float, length: float) -> tuple[float, float] | None:
        """The earliest ``[t, t + length)`` with ``t >= start`` that fewer than ``capacity`` active windows overlap.

        Returns:
            ``(t, t + length)``; never None for a positive capacity (after the
            last active end every window fits), None only if ``length`` is not finite.
        """
        if not math.isfinite(length):
            return None
        candidates = sorted({start} | {w.end for w in self._active.values() if w.end > start})
        for t in candidates:
            if self.overlapping(t, t + length) < self.capacity:
                return t, t + length
        return None  # unreachable: the last candidate is past every active window

    def reserve(self, req: ReserveRequest, node_id: str) -> ReserveResponse:
        """Decide a ``reserve`` request (rules in the module docstring) and record it.

        Args:
            req: the request; ``req.action`` must be ``"reserve"``.
            node_id: this node's peer ID, echoed in the response.

        Returns:
            The response: granted, or rejected with ``reason`` and (for a
            capacity or ended-window rejection) ``next_start`` / ``next_end``.

        Raises:
            ValueError: ``req.action`` is not ``"reserve"``.
        """
        if req.action != "reserve":
            raise ValueError(f"reserve() needs action 'reserve', got {req.action!r}")
        now = self.clock()
        self.expire(now)
        rid = req.reservation_id
        duplicate = rid in self._records
        self._append(LedgerEvent(kind="requested", reservation_id=rid, at=now, start=req.start, end=req.end,
                                 job_id=req.job_id, fragment_id=req.fragment_id))
        reason: str | None = None
        next_window: tuple[float, float] | None = None
        if duplicate:
            reason = "duplicate reservation id"
        elif self.deadline(req) <= now:  # it would expire at once
            reason = (f"window [{req.start}, {req.end}) ended before node time {now}" if req.end <= now else
                      f"window [{req.start}, {req.end}) started more than the {self.grace_s:g} s grace "
                      f"before node time {now}")
            next_window = self.next_window(now, req.end - req.start)
        elif req.min_fidelity is not None and self.estimator is not None and req.operation is not None:
            estimate = self.estimator(req.operation)
            if estimate < req.min_fidelity:
                reason = f"fidelity: estimated {estimate:.6g} is below the required {req.min_fidelity:.6g}"
        if reason is None:
            overlap = self.overlapping(req.start, req.end)
            if overlap >= self.capacity:
                reason = f"capacity: {overlap} windows overlap [{req.start}, {req.end})"
                next_window = self.next_window(max(req.start, now), req.end - req.start)
        if reason is None:
            self._append(LedgerEvent(kind="granted", reservation_id=rid, at=now, start=req.start, end=req.end,
                                     job_id=req.job_id, fragment_id=req.fragment_id))
            return ReserveResponse(node_id=node_id, reservation_id=rid, granted=True)
        self._append(LedgerEvent(kind="rejected", reservation_id=rid, at=now, start=req.start, end=req.end,
                                 job_id=req.job_id, fragment_id=req.fragment_id, reason=reason))
        return ReserveResponse(
            node_id=node_id, reservation_id=rid, granted=False, reason=reason,
            next_start=next_window[0] if next_window else None, next_end=next_window[1] if next_window else None,
        )
