"""Run a plan's fragments in dependency order (FR-006).

The runtime owns the job's :class:`~qb2.coordinator.handoff.QuantumState`. A
fragment starts when all the fragments it depends on are done and no running
fragment holds any of its state subsystems; it is sent with its subsystem's
state to its node, and the returned state replaces the subsystem. Fragments on
subsystems that have not yet interacted run concurrently. The readout fragment
runs last and yields the counts.

Segments (issue 13, :attr:`qb2.compiler.plan.Plan.segments`): consecutive
same-node gate fragments are scheduled as one unit (union of dependencies and
qubits) and sent as one request whose ``members`` the node applies in order;
each fragment keeps its own record, and retries apply to the whole segment.

The transport is a parameter (:data:`Invoker`): the daemon passes libp2p
invocation, and a test may pass the node's own handler to run the same code
path without a network.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import numpy as np
import trio

from qb2.compiler.ir import CircuitIR
from qb2.compiler.plan import FragmentPlan, Plan
from qb2.coordinator.errors import CoordinatorError
from qb2.coordinator.handoff import QuantumState, Subsystem
from qb2.protocol.execute import ClbitRegister, ExecuteRequest, ExecuteResponse, GateOp, MemberResult, SegmentMember
from qb2.protocol.jobs import FragmentRecord, FragmentStatus
from qb2.protocol.state import pack_state, unpack_state

log = logging.getLogger("qb2.coordinator.runtime")

E = TypeVar("E", bound=BaseException)

#: ``invoke(node_id, request, payload) -> (response, payload)``; raises on transport failure.
Invoker = Callable[[str, ExecuteRequest, bytes], Awaitable[tuple[ExecuteResponse, bytes]]]
#: A segment: consecutive same-node gate fragments run as one invocation (or the readout alone).
Unit = tuple[FragmentPlan, ...]
#: Called with a fragment's record at each status change, before the runtime acts on it.
RecordSink = Callable[[FragmentRecord], Awaitable[None]]


class FragmentFailed(CoordinatorError):
    """A fragment could not be run after its attempts; names the fragment, the node and why.

    Every field is given when the exception is built: the runtime raises a copy
    carrying the plan's progress (:meth:`with_progress`), the job service one
    saying why no fallback plan follows (:meth:`without_fallback`).

    Attributes:
        attempts / errors: how many invocations were tried and what each said.
        state: the simulated state when the plan stopped (every DONE fragment
            applied, nothing else), for a fallback plan to continue from.
        done_operations: IR operation indices already applied to ``state``.
        records: the plan's fragment records at that moment.
        no_fallback: why no fallback plan follows (None while one may).
    """

    def __init__(self, fragment_id: str, node_id: str, reason: str, *, attempts: int = 1,
                 errors: list[str] | None = None, state: QuantumState | None = None,
                 done_operations: frozenset[int] = frozenset(), records: list[FragmentRecord] | None = None,
                 no_fallback: str | None = None) -> None:
        super().__init__(f"fragment {fragment_id} on node {node_id} failed after {attempts} attempt(s): {reason}")
        self.fragment_id = fragment_id
        self.node_id = node_id
        self.reason = reason
        self.attempts = attempts
        self.errors = errors or [reason]
        self.state = state
        self.done_operations = done_operations
        self.records = records or []
        self.no_fallback = no_fallback

    def _copy(self, **changes: object) -> FragmentFailed:
        fields = {"attempts": self.attempts, "errors": self.errors, "state": self.state,
                  "done_operations": self.done_operations, "records": self.records, "no_fallback": self.no_fallback}
        return FragmentFailed(self.fragment_id, self.node_id, self.reason, **{**fields, **changes})  # type: ignore[arg-type]

    def with_progress(self, state: QuantumState, done_operations: frozenset[int],
                      records: list[FragmentRecord]) -> FragmentFailed:
        """This failure, with where the plan stopped (for a fallback plan to continue from)."""
        return self._copy(state=state, done_operations=done_operations, records=records)

    def without_fallback(self, why: str) -> FragmentFailed:
        """This failure, final: no fallback plan follows, for the reason ``why``."""
        return self._copy(no_fallback=why)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with seeded jitter (FR-007).

    Attempt ``k`` (1-based) that failed waits ``min(max_delay_s, base_delay_s * 2**(k-1))``
    times a jitter factor drawn uniformly from [0.5, 1.0] ("equal jitter", as in
    AWS's architecture blog on backoff), all in seconds.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.05
    max_delay_s: float = 1.0

    def delay_s(self, failed_attempt: int, rng: random.Random) -> float:
        """Seconds to wait after ``failed_attempt`` failed."""
        return min(self.max_delay_s, self.base_delay_s * 2 ** (failed_attempt - 1)) * rng.uniform(0.5, 1.0)


@dataclass
class Execution:
    """What running a plan produced.

    Attributes:
        counts: readout outcomes (empty when the circuit measures nothing).
        records: one per fragment, in plan order.
        final_state: the state before readout, over circuit qubits ``0..n-1``
            (only when requested: it can be large).
        execution_s: seconds from the first dispatch to the last response.
    """

    counts: dict[str, int]
    records: list[FragmentRecord]
    final_state: np.ndarray | None
    execution_s: float


async def _noop(_: FragmentRecord) -> None:
    return None


async def execute_plan(
    plan: Plan,
    ir: CircuitIR,
    invoke: Invoker,
    *,
    job_id: str,
    shots: int,
    seed: int | None,
    on_record: RecordSink = _noop,
    keep_final_state: bool = False,
    state: QuantumState | None = None,
    retry: RetryPolicy | None = None,
    fragment_prefix: str = "",
    on_retry: Callable[[FragmentRecord], None] | None = None,
    reservations: Mapping[str, str] | None = None,
) -> Execution:
    """Execute ``plan`` for circuit ``ir`` and return counts and fragment records.

    Args:
        state: the simulated state to continue from (a fallback plan resumes the
            state the failed plan left); a fresh |0...0> when None.
        retry: attempts and backoff per fragment (FR-007); one attempt when None.
        fragment_prefix: prepended to fragment ids in records (``fb1-`` for the
            first fallback plan), so records of successive plans never collide.
        on_retry: called (synchronously) with a fragment's record before each retry.
        reservations: reservation id per fragment id (FR-005), consumed by the node.

    Raises:
        FragmentFailed: a node was unreachable, reported an error or returned
            a malformed state; the other running fragments are cancelled and
            recorded as CANCELLED. (Raised bare, not inside an exception group.)
    """
    state = state if state is not None else QuantumState(ir.num_qubits, plan.representation)
    retry = retry or RetryPolicy(max_attempts=1)
    records = {
        f.fragment_id: FragmentRecord(
            fragment_id=fragment_prefix + f.fragment_id, kind=f.kind, node_id=f.node_id, qubits=f.qubits,
            ebits=f.ebits, operation_indices=f.operation_indices, planned_routing_swaps=f.routing_swaps,
        )
        for f in plan.fragments
    }
    by_id = {f.fragment_id: f for f in plan.fragments}
    # Segments (issue 13): consecutive same-node gate fragments run as one invocation.
    units = [tuple(by_id[i] for i in seg) for seg in plan.segments]
    done_operations: set[int] = set()  # IR operation indices applied to ``state`` so far
    readout = next((f for f in plan.fragments if f.kind == "readout"), None)
    started = time.perf_counter()

    async def attempt(unit: Unit, subsystem: Subsystem, request: ExecuteRequest) -> tuple[ExecuteResponse, bytes]:
        payload = await trio.to_thread.run_sync(pack_state, subsystem.state)
        response, out = await invoke(unit[0].node_id, request, payload)
        if response.node_id != unit[0].node_id:
            raise NodeAnswerError(f"answered by {response.node_id}, not the assigned node")
        if not response.ok:
            code = response.error.code if response.error else "internal"
            message = f"{code}: {response.error.message}" if response.error else "unknown error"
            raise NodeAnswerError(message, retryable=code == "internal")
        if request.members and [m.fragment_id for m in response.members or ()] != [m.fragment_id for m in request.members]:
            raise NodeAnswerError("segment answer does not list its members", retryable=False)
        return response, out

    async def fail(unit: Unit, reason: str, exc: BaseException, errors: list[str] | None = None) -> NoReturn:
        for fragment in unit:  # the invocation carried every member: each failed with it
            record = records[fragment.fragment_id]
            if errors is None:
                record.errors.append(reason)
            await _finish(record, "FAILED", reason, on_record)
        first = records[unit[0].fragment_id]
        raise FragmentFailed(first.fragment_id, unit[0].node_id, reason, attempts=first.attempts,
                             errors=list(errors if errors is not None else first.errors)) from exc

    async def run(unit: Unit, subsystem: Subsystem, request: ExecuteRequest) -> ExecuteResponse:
        unit_records = [records[f.fragment_id] for f in unit]
        for record in unit_records:
            record.status, record.started_at = "RUNNING", time.time()
            await on_record(record)
        lead = unit_records[0]
        jitter = random.Random(f"{job_id}/{lead.fragment_id}")  # seeded: reruns back off identically
        try:
            while True:
                for record in unit_records:
                    record.attempts += 1
                sent = time.perf_counter()
                try:
                    response, payload = await attempt(unit, subsystem, request)
                    break
                except Exception as exc:  # transport failure or node error
                    reason = str(exc) or type(exc).__name__
                    retryable = exc.retryable if isinstance(exc, NodeAnswerError) else True
                    if not retryable or lead.attempts >= retry.max_attempts:
                        await fail(unit, reason, exc)
                    for record in unit_records:
                        record.errors.append(reason)
                        if on_retry is not None:
                            on_retry(record)
                        await on_record(record)
                    await trio.sleep(retry.delay_s(lead.attempts, jitter))
            round_trip_s = time.perf_counter() - sent
            if unit[0].kind == "gates":
                width = len(subsystem.qubits)
                try:
                    returned = await trio.to_thread.run_sync(unpack_state, payload, plan.representation, width)
                    state.update(subsystem, returned)
                except ValueError as exc:
                    await fail(unit, str(exc), exc, errors=[str(exc)])
        except trio.Cancelled:
            with trio.CancelScope(shield=True):
                for record in unit_records:
                    if record.status == "RUNNING":
                        await _finish(record, "CANCELLED", "cancelled after another fragment failed", on_record)
            raise
        results = response.members or (MemberResult(
            fragment_id=unit[0].fragment_id, native_op_counts=response.native_op_counts,
            simulation_s=response.simulation_s, routing_swaps=response.routing_swaps),)
        total_s = sum(r.simulation_s for r in results)
        for fragment, record, result in zip(unit, unit_records, results, strict=True):
            # one round trip for the segment, split by each member's share of the simulation time
            share = result.simulation_s / total_s if total_s > 0 else 1 / len(unit)
            record.round_trip_s = round_trip_s * share
            record.native_op_counts = dict(result.native_op_counts)
            record.simulation_s = result.simulation_s
            record.routing_swaps = result.routing_swaps
            if result.routing_swaps is not None and result.routing_swaps != fragment.routing_swaps:
                # Plan and node run the same routine (compiler/routing.py); a difference means they run
                # different qb2 or Qiskit versions, and the plan's estimate is off by the difference.
                log.warning("routing SWAPs differ from the plan", extra={
                    "fragment_id": record.fragment_id, "node_id": fragment.node_id,
                    "planned_swaps": fragment.routing_swaps, "executed_swaps": result.routing_swaps})
        for fragment, record in zip(unit, unit_records, strict=True):
            await _finish(record, "DONE", None, on_record)
            done_operations.update(fragment.operation_indices)
        return response

    done: set[str] = set()
    pending = list(units)
    holding: dict[str, Subsystem] = {}  # running unit (its first fragment id) -> the subsystem it holds
    finished_send, finished_recv = trio.open_memory_channel[Unit](len(units) or 1)

    async def run_and_report(unit: Unit, subsystem: Subsystem, request: ExecuteRequest) -> None:
        await run(unit, subsystem, request)
        await finished_send.send(unit)

    async def schedule(nursery: trio.Nursery) -> None:
        while pending or holding:
            busy = {q for comp in holding.values() for q in comp.qubits}
            for unit in list(pending):
                members = {f.fragment_id for f in unit}
                if not all(d in done for f in unit for d in f.depends_on if d not in members):
                    continue
                qubits = tuple(sorted({q for f in unit for q in f.qubits}))
                if any(q in busy for c in state.subsystems_of(qubits) for q in c.qubits):
                    continue
                subsystem = await trio.to_thread.run_sync(state.gather, qubits)
                busy.update(subsystem.qubits)
                holding[unit[0].fragment_id] = subsystem
                pending.remove(unit)
                request = _unit_request(job_id, plan, ir, unit, subsystem, reservations or {})
                nursery.start_soon(run_and_report, unit, subsystem, request)
            if not holding:
                raise RuntimeError(f"plan deadlocked with {len(pending)} segments pending")  # a planner bug
            finished = await finished_recv.receive()
            del holding[finished[0].fragment_id]
            done.update(f.fragment_id for f in finished)

    try:
        async with trio.open_nursery() as nursery:
            await schedule(nursery)
    except BaseExceptionGroup as group:  # trio wraps child errors; surface the fragment's own
        failed = _first(group, FragmentFailed)
        if failed is None:
            raise
        raise failed.with_progress(state, frozenset(done_operations),
                                   [records[f.fragment_id] for f in plan.fragments]) from None

    final_state = state.full().copy() if keep_final_state else None
    counts: dict[str, int] = {}
    if readout is not None:
        subsystem = await trio.to_thread.run_sync(state.gather, readout.qubits)
        request = ExecuteRequest(
            job_id=job_id,
            fragment_id=readout.fragment_id,
            kind="readout",
            representation=plan.representation,
            num_qubits=len(subsystem.qubits),
            measurements=tuple((subsystem.local(m.qubit), m.clbit) for m in ir.measurements),
            clbit_registers=_clbit_registers(ir),
            shots=shots,
            seed=seed,
            reservation_id=(reservations or {}).get(readout.fragment_id),
        )
        try:
            counts = dict((await run((readout,), subsystem, request)).counts)
        except FragmentFailed as failed:
            raise failed.with_progress(state, frozenset(done_operations),
                                       [records[f.fragment_id] for f in plan.fragments]) from None
    return Execution(
        counts=counts,
        records=[records[f.fragment_id] for f in plan.fragments],
        final_state=final_state,
        execution_s=time.perf_counter() - started,
    )


def _unit_request(job_id: str, plan: Plan, ir: CircuitIR, unit: Unit, subsystem: Subsystem,
                  reservations: Mapping[str, str]) -> ExecuteRequest:
    """The request for a segment: the pre-1.4 single-fragment form for one member, else ``members``."""
    if len(unit) == 1:
        request = _gate_request(job_id, plan, ir, unit[0], subsystem)
        request.reservation_id = reservations.get(unit[0].fragment_id)
        return request
    members = tuple(
        SegmentMember(
            fragment_id=f.fragment_id,
            ops=_local_ops(ir, f, subsystem),
            teleported_qubits=tuple(subsystem.local(q) for q in f.teleported_qubits),
            reservation_id=reservations.get(f.fragment_id),
        )
        for f in unit
    )
    return ExecuteRequest(
        job_id=job_id,
        fragment_id=unit[0].fragment_id,
        kind="gates",
        representation=plan.representation,
        num_qubits=len(subsystem.qubits),
        link_fidelity=plan.link_fidelity,
        reservation_id=reservations.get(unit[0].fragment_id),
        members=members,
    )


def _local_ops(ir: CircuitIR, fragment: FragmentPlan, subsystem: Subsystem) -> tuple[GateOp, ...]:
    return tuple(
        GateOp(name=op.name, qubits=tuple(subsystem.local(q) for q in op.qubits), params=op.params)
        for op in (ir.operations[i] for i in fragment.operation_indices)
    )


def _gate_request(job_id: str, plan: Plan, ir: CircuitIR, fragment: FragmentPlan, subsystem: Subsystem) -> ExecuteRequest:
    ops = _local_ops(ir, fragment, subsystem)
    return ExecuteRequest(
        job_id=job_id,
        fragment_id=fragment.fragment_id,
        kind="gates",
        representation=plan.representation,
        num_qubits=len(subsystem.qubits),
        ops=ops,
        teleported_qubits=tuple(subsystem.local(q) for q in fragment.teleported_qubits),
        link_fidelity=plan.link_fidelity,
    )


def _clbit_registers(ir: CircuitIR) -> tuple[ClbitRegister, ...]:
    if ir.cregs:
        return tuple(ClbitRegister(name=r.name, size=r.size) for r in ir.cregs)
    return (ClbitRegister(name="c", size=ir.num_clbits),) if ir.num_clbits else ()


class NodeAnswerError(CoordinatorError):
    """The node answered, but not with a usable result; ``retryable`` if another attempt may succeed."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


async def _finish(record: FragmentRecord, status: FragmentStatus, error: str | None, on_record: RecordSink) -> None:
    record.status, record.ended_at, record.error = status, time.time(), error
    await on_record(record)


def _first(group: BaseExceptionGroup, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in a (possibly nested) exception group."""
    for exc in group.exceptions:
        if isinstance(exc, kind):
            return exc
        if isinstance(exc, BaseExceptionGroup) and (found := _first(exc, kind)) is not None:
            return found
    return None
