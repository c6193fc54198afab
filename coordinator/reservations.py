"""Reserving execution windows for a plan's fragments (FR-005): the coordinator's side.

Before EXECUTING, a job is RESERVING: each fragment asks its node for a window
``[start, end)`` (Unix seconds). Windows on one node follow the plan's order
back to back, each as long as the fragment's estimated duration times a
safety factor. A rejection that proposes a later window takes it (up to
``max_offers`` times per fragment, ``runtime.max_reservation_offers``, as
concurrent jobs compete for the same slots; a node still busy after that runs
the fragment without a window); a node
that rejects outright or cannot be reached is reported back so the job can be
re-planned without it. Every request, grant, rejection, consumption and
release is persisted as a reservation event of the job.

Whatever way a job ends (completed, failed, cancelled mid-RESERVING or
mid-EXECUTING, crashed, or left unfinished by a coordinator that died), the
windows it still holds are found from those persisted events
(:func:`open_windows`) and released (:meth:`Reserver.release_open`); a
window whose release cannot be delivered expires on its node (see
:mod:`qb2.service_node.ledger`).

Estimated duration of a fragment (seconds): the node's advertised native
operation times (``gate_times``, microseconds) summed over the fragment's
gates, plus a fixed per-fragment allowance for simulation and transfer
(``Reserver.overhead_s``), since nodes here are simulators.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import trio

from qb2.compiler.ir import CircuitIR
from qb2.compiler.capability import gate_arity
from qb2.compiler.plan import FragmentPlan, Plan
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.reservation import OperationSummary, ReserveRequest, ReserveResponse

#: ``request(node_id, ReserveRequest) -> ReserveResponse``; raises when the node is unreachable.
ReserveCall = Callable[[str, ReserveRequest], Awaitable[ReserveResponse]]
#: ``record(kind, fragment_id, node_id, reservation_id, start, end, reason)`` persists one event.
EventSink = Callable[[str, str, str, str, float, float, str | None], Awaitable[None]]


@dataclass(frozen=True)
class OpenWindow:
    """A reservation of a job that its persisted events leave open.

    ``granted`` is False for a request that was sent but never answered (a
    cancelled or crashed reserve call): the node may have granted it.
    """

    fragment_id: str
    node_id: str
    reservation_id: str
    start: float
    end: float
    granted: bool


def open_windows(events: Iterable[Mapping[str, object]]) -> list[OpenWindow]:
    """The reservations that ``events`` (a job's reservation events, oldest first, as
    :meth:`qb2.coordinator.store.JobStore.reservation_events` returns them) leave open:
    last event ``granted`` or ``requested``. Sorted by first appearance."""
    last: dict[str, Mapping[str, object]] = {}
    for event in events:
        rid = str(event["reservation_id"])
        last[rid] = event
    out = []
    for rid, event in last.items():
        if event["kind"] in ("requested", "granted"):
            out.append(OpenWindow(str(event["fragment_id"]), str(event["node_id"]), rid,
                                  float(event["start"] or 0.0), float(event["end"] or 0.0),  # type: ignore[arg-type]
                                  event["kind"] == "granted"))
    return out


@dataclass
class Reservations:
    """Outcome of reserving a plan: granted ids per fragment, and nodes that refused."""

    granted: dict[str, tuple[str, str]] = field(default_factory=dict)  # fragment id -> (node id, reservation id)
    refused: dict[str, str] = field(default_factory=dict)  # node id -> reason


def summarize(fragment: FragmentPlan, ir: CircuitIR) -> OperationSummary:
    """Gate counts and width of ``fragment`` (duration filled by the caller)."""
    ops = [ir.operations[i] for i in fragment.operation_indices]
    gates = Counter(op.name for op in ops) if fragment.kind == "gates" else Counter({"measure": len(ir.measurements)})
    return OperationSummary(gates=dict(sorted(gates.items())), qubits=len(fragment.qubits), estimated_duration_s=0.0)


def estimate_duration_s(summary: OperationSummary, advert: ServiceAdvertisement, overhead_s: float) -> float:
    """Seconds a fragment should take on ``advert``'s node (see module docstring)."""
    t = advert.gate_times
    micro = 0.0
    for gate, count in summary.gates.items():
        per = t.readout_us if gate == "measure" else t.gate_1q_us if gate_arity(gate) == 1 else t.gate_2q_us
        micro += count * per
    return overhead_s + micro * 1e-6


@dataclass
class Reserver:
    """Reserves windows for plans.

    Args:
        call: transport for :class:`~qb2.protocol.reservation.ReserveRequest`.
        record: persists reservation events.
        overhead_s: per-fragment allowance in seconds added to gate time.
        safety: window length = estimated duration x ``safety``.
        max_offers: later windows accepted from a busy node per fragment before
            the fragment runs without a window (``runtime.max_reservation_offers``);
            a fragment records at most ``max_offers + 1`` ``requested`` events.
        release_concurrency: release requests in flight at once in :meth:`release_open`.
    """

    call: ReserveCall
    record: EventSink
    overhead_s: float = 0.25
    safety: float = 2.0
    max_offers: int = 8
    release_concurrency: int = 16

    async def reserve_plan(self, job_id: str, plan: Plan, ir: CircuitIR,
                           adverts: Mapping[str, ServiceAdvertisement]) -> Reservations:
        """Reserve a window per fragment; never raises for node failures (see ``refused``)."""
        out = Reservations()
        cursor: dict[str, float] = {}
        now = time.time()
        for fragment in plan.fragments:
            node = fragment.node_id
            if node in out.refused or node not in adverts:
                continue
            summary = summarize(fragment, ir)
            duration = estimate_duration_s(summary, adverts[node], self.overhead_s) * self.safety
            start = cursor.get(node, now)
            request = ReserveRequest(
                action="reserve", reservation_id=f"{job_id}/{fragment.fragment_id}/{uuid.uuid4().hex[:8]}",
                job_id=job_id, fragment_id=fragment.fragment_id,
                operation=summary.model_copy(update={"estimated_duration_s": duration}),
                start=start, end=start + duration,
            )
            await self.record("requested", fragment.fragment_id, node, request.reservation_id, request.start,
                              request.end, None)
            try:
                response = await self.call(node, request)
                for offer in range(self.max_offers):  # busy node: take the later window it offers
                    if response.granted or response.next_start is None or response.next_end is None:
                        break
                    await self.record("rejected", fragment.fragment_id, node, request.reservation_id, request.start,
                                      request.end, response.reason)
                    request = request.model_copy(update={
                        "reservation_id": f"{request.reservation_id.split('~')[0]}~{offer + 1}",
                        "start": response.next_start, "end": response.next_end})
                    await self.record("requested", fragment.fragment_id, node, request.reservation_id,
                                      request.start, request.end, "next window offered")
                    response = await self.call(node, request)
            except Exception as exc:  # unreachable node: the job re-plans without it
                out.refused[node] = f"reservation failed: {exc}"
                await self.record("rejected", fragment.fragment_id, node, request.reservation_id, request.start,
                                  request.end, out.refused[node])
                continue
            if not response.granted and response.next_start is not None:
                # Still busy after max_offers later windows (others keep taking them): the fragment runs
                # without a window rather than the job abandoning a healthy node.
                await self.record("rejected", fragment.fragment_id, node, request.reservation_id, request.start,
                                  request.end, f"{response.reason}; running without a window")
                continue
            if not response.granted:
                out.refused[node] = f"reservation rejected: {response.reason}"
                await self.record("rejected", fragment.fragment_id, node, request.reservation_id, request.start,
                                  request.end, response.reason)
                continue
            await self.record("granted", fragment.fragment_id, node, request.reservation_id, request.start,
                              request.end, None)
            out.granted[fragment.fragment_id] = (node, request.reservation_id)
            cursor[node] = request.end
        return out

    async def release(self, job_id: str, reservations: Reservations, keep: set[str]) -> None:
        """Release every granted window whose fragment is not in ``keep`` (consumed ones)."""
        for fragment_id, (node, reservation_id) in reservations.granted.items():
            if fragment_id in keep:
                await self.record("consumed", fragment_id, node, reservation_id, 0.0, 0.0, None)
                continue
            try:
                await self.call(node, ReserveRequest(action="release", reservation_id=reservation_id))
                reason = None
            except Exception as exc:  # the node's ledger expires it at the window's end anyway
                reason = f"release not delivered ({exc}); expires at window end"
            await self.record("released", fragment_id, node, reservation_id, 0.0, 0.0, reason)

    async def release_open(self, windows: Iterable[OpenWindow]) -> dict[str, int]:
        """Release ``windows`` (see :func:`open_windows`) on their nodes and record the outcome (FR-005).

        Requests go out concurrently (at most ``release_concurrency`` at once).
        Each window gets one event: ``released`` (the node freed it, or the
        release could not be delivered: the node then expires it, reason says
        so), ``consumed`` (the node reports an execution already used it),
        ``expired`` (the node already expired it), or ``rejected`` for a
        request the node never granted. Never raises for node failures; the
        caller bounds the time (and shields it when it runs during cancellation).

        Returns:
            Count of events recorded per kind.
        """
        limiter = trio.CapacityLimiter(self.release_concurrency)
        counts: Counter[str] = Counter()

        async def one(window: OpenWindow) -> None:
            async with limiter:
                kind, reason = "released", None
                try:
                    response = await self.call(window.node_id, ReserveRequest(
                        action="release", reservation_id=window.reservation_id))
                except Exception as exc:
                    reason = f"release not delivered ({exc}); the node expires it"
                else:
                    if not response.granted:
                        status = response.reason or ""
                        if "consumed" in status:
                            kind = "consumed"
                        elif "expired" in status:
                            kind = "expired"
                        elif not window.granted:
                            kind, reason = "rejected", f"cancelled before the node answered; node: {status}"
                        else:
                            reason = f"node: {status}"
                await self.record(kind, window.fragment_id, window.node_id, window.reservation_id,
                                  window.start, window.end, reason)
                counts[kind] += 1

        async with trio.open_nursery() as nursery:
            for window in windows:
                nursery.start_soon(one, window)
        return dict(counts)
