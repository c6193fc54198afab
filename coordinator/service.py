"""The coordinator's job pipeline: admit, queue, compile, execute, persist (FR-006, FR-009, FR-010).

:class:`CoordinatorService` is what the HTTP API talks to. Admission
(:meth:`CoordinatorService.submit`) parses and plans the circuit against the
current registry *before* anything is stored, so bad input changes nothing and
returns a structured error. An admitted job is persisted as QUEUED before its
id is returned, so it is never lost: a restarted coordinator requeues every
unfinished job (:meth:`CoordinatorService.recover`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import trio

from qb2.compiler import (
    CircuitIR,
    CostWeights,
    InfeasiblePlanError,
    IngestLimits,
    LimitExceededError,
    Plan,
    PlannerOptions,
    QasmValidationError,
    parse_qasm,
    plan_circuit,
)
from qb2.coordinator.config import Settings
from qb2.coordinator.errors import CoordinatorError
from qb2.coordinator.fidelity import estimated_fidelity, ideal_distribution, measured_fidelity
from qb2.coordinator.load import CommittedWork
from qb2.coordinator.metrics import Metrics
from qb2.coordinator.queue import JobQueue, QueueFull
from qb2.coordinator.registry import Registry
from qb2.coordinator.reservations import EventSink, Reservations, ReserveCall, Reserver, open_windows
from qb2.coordinator.runtime import Execution, FragmentFailed, Invoker, RetryPolicy, execute_plan
from qb2.coordinator.store import JobStore
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.jobs import ErrorInfo, FragmentRecord, JobOptions, JobRecord, JobResult, JobState, Priority
from qb2.protocol.reservation import ReserveRequest, ReserveResponse

log = logging.getLogger("qb2.coordinator.jobs")

T = TypeVar("T")

#: API error code per exceeded ingestion limit (qb2.compiler.limits.LimitExceededError.limit).
_LIMIT_CODES = {
    "max_qubits": "too_wide",
    "max_clbits": "too_many_clbits",
    "max_operations": "too_many_operations",
    "max_expansion_steps": "too_many_operations",
    "max_modifier_operations": "too_many_operations",
    "max_gate_definitions": "too_many_operations",
    "max_gate_nesting": "too_deep",
    "max_bracket_depth": "too_deep",
}


#: Most IR operations kept in memory for queued jobs' admission plans (issue 12); at the default
#: ``limits.max_operations`` (100,000) that is at least ten large jobs, or thousands of small ones.
_ADMITTED_MAX_OPERATIONS = 1_000_000


class SubmissionRejected(CoordinatorError):
    """The submission was refused; ``status`` is the HTTP status, ``error`` the structured reason."""

    def __init__(self, status: int, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


@dataclass(frozen=True)
class Submission:
    """A validated job request (the API's body, after schema validation)."""

    qasm: str
    format: Literal["qasm2", "qasm3"] | None
    shots: int
    seed: int | None
    name: str | None
    priority: Priority = Priority.NORMAL
    tags: tuple[str, ...] = ()
    options: JobOptions = dataclasses.field(default_factory=lambda: JobOptions())


@dataclass(frozen=True)
class Admission:
    """What admission compiled, kept for the worker (issue 12: a job is parsed and planned once).

    Attributes:
        ir: the parsed circuit.
        plan: the plan made at submit (also stored with the job).
        nodes_fingerprint: :meth:`CoordinatorService.nodes_fingerprint` of the nodes it was planned on; the
            worker reuses the plan only while the registry still gives the same fingerprint.
        queue_wait_s: the committed work per node (seconds) the plan was made against
            (``PlannerOptions.queue_wait_s``, issue 13).
    """

    ir: CircuitIR
    plan: Plan
    nodes_fingerprint: str
    queue_wait_s: Mapping[str, float] = dataclasses.field(default_factory=dict)


def detect_format(text: str) -> Literal["qasm2", "qasm3"]:
    """``qasm3`` if the version header says 3, else ``qasm2`` (the parser reports a missing header)."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        return "qasm3" if stripped.replace(" ", "").upper().startswith("OPENQASM3") else "qasm2"
    return "qasm2"


class CoordinatorService:
    """Admission, queue and workers of one coordinator.

    Args:
        settings: coordinator settings.
        registry: live node registry (FR-002).
        store: job persistence.
        invoke: transport used to run fragments on nodes.
        reserve: transport for reservation requests (FR-005); None skips reserving.
    """

    def __init__(self, settings: Settings, registry: Registry, store: JobStore, invoke: Invoker,
                 reserve: ReserveCall | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.invoke = invoke
        self.reserve = reserve
        self.queue = JobQueue(settings.runtime.queue_capacity)
        self.metrics = Metrics()
        #: issue 13: seconds of unfinished fragments of admitted jobs per node, the planner's queue waits
        self.load = CommittedWork(on_change=self.metrics.set_committed_work)
        self._running: dict[str, trio.CancelScope] = {}  # job id -> scope of the worker running it
        self._admitted: dict[str, Admission] = {}  # queued job id -> what submit compiled (issue 12)
        self._admitted_operations = 0  # IR operations held in _admitted (bounded: _ADMITTED_MAX_OPERATIONS)
        #: where transport calls run while workers run, outside every job's cancel scope (see _uninterrupted)
        self._calls: trio.Nursery | None = None
        self._changed = trio.Event()  # set (and replaced) on every job state change

    @property
    def ingest_limits(self) -> IngestLimits:
        """The ``[limits]`` settings as the compiler's ingestion bounds (FR-014)."""
        limits = self.settings.limits
        return IngestLimits(max_qubits=limits.max_qubits, max_clbits=limits.max_clbits,
                            max_operations=limits.max_operations, max_gate_nesting=limits.max_gate_nesting)

    def planner_options(self, options: JobOptions | None = None,
                        degraded: frozenset[str] = frozenset(),
                        queue_wait_s: Mapping[str, float] | None = None) -> PlannerOptions:
        """Planner options: ``[compiler]`` settings, the job's overrides, the latest
        measured link round trips from the registry, the ``degraded`` node ids (FR-004, FR-008)
        and, as ``queue_wait_s``, the seconds of work committed to each node by admitted,
        unfinished jobs (issue 13; ``self.load.per_node()`` when not given)."""
        c = self.settings.compiler
        waits = self.load.per_node() if queue_wait_s is None else queue_wait_s
        options = options or JobOptions()
        weights = {**c.weights.model_dump(), **options.weights.model_dump(exclude_none=True)}
        rtts = {e.advert.node_id: e.rtt_s for e in self.registry.entries() if e.rtt_s is not None}
        return PlannerOptions(
            max_fragment_qubits=c.max_fragment_qubits,
            max_fragment_ops=c.max_fragment_ops,
            link_fidelity=c.link_fidelity,
            density_matrix_max_qubits=c.density_matrix_max_qubits,
            statevector_max_qubits=c.statevector_max_qubits,
            weights=CostWeights(**weights),
            ebit_generation_s=c.ebit_generation_s,
            link_rtt_s=rtts,
            queue_wait_s=dict(waits),
            min_fidelity=options.min_fidelity,
            min_nodes=options.min_nodes,
            degraded=degraded,
        )

    def compile(self, text: str, fmt: Literal["qasm2", "qasm3"], name: str,
                options: JobOptions | None = None, *, reason: str = "dry_run") -> tuple[CircuitIR, Plan]:
        """Parse and plan against the registry's available nodes (the dry-run plan, FR-004).

        Raises:
            SubmissionRejected: see :meth:`admit`.
        """
        admission = self.admit(text, fmt, name, options, reason=reason)
        return admission.ir, admission.plan

    def admit(self, text: str, fmt: Literal["qasm2", "qasm3"], name: str,
              options: JobOptions | None = None, *, reason: str = "admission") -> Admission:
        """Parse and plan once; ``reason`` labels the planner run in ``qb2_plans_total``.

        Raises:
            SubmissionRejected: 413 over the QASM size limit; 422 for invalid QASM
                or an infeasible circuit; 503 when no node is available, or every
                available node is degraded (FR-008).
        """
        limits = self.settings.limits
        if len(text.encode("utf-8", "surrogatepass")) > limits.max_qasm_bytes:
            raise SubmissionRejected(413, ErrorInfo(
                code="too_large", message=f"qasm is larger than the {limits.max_qasm_bytes}-byte limit",
                details={"max_qasm_bytes": limits.max_qasm_bytes}))
        try:
            ir = parse_qasm(text, fmt, name=name, limits=self.ingest_limits)
        except LimitExceededError as exc:
            raise SubmissionRejected(422, ErrorInfo(code=_LIMIT_CODES.get(exc.limit, "limit_exceeded"), message=exc.message,
                                                    details=exc.to_dict())) from None
        except QasmValidationError as exc:
            raise SubmissionRejected(422, ErrorInfo(code="invalid_qasm", message=exc.message,
                                                    details=exc.to_dict())) from None
        try:
            plan, nodes, waits = self._plan(ir, frozenset(), options, reason)
        except InfeasiblePlanError as exc:
            if exc.constraint == "degraded":  # temporary, like no node at all: retry later
                raise SubmissionRejected(503, ErrorInfo(code="nodes_degraded", message=exc.message,
                                                        details=exc.to_dict())) from None
            raise SubmissionRejected(422, ErrorInfo(code="infeasible", message=exc.message,
                                                    details=exc.to_dict())) from None
        return Admission(ir, plan, nodes, waits)

    def planning_nodes(self, exclude: frozenset[str] = frozenset()) -> tuple[list[ServiceAdvertisement], frozenset[str]]:
        """The available nodes minus ``exclude``, and the ids of those that are degraded (FR-008).

        Degraded nodes are passed to the planner with their ids in
        ``PlannerOptions.degraded``, which leaves them out and says so when
        every available node is degraded; the registry does not filter them first.
        """
        nodes = [n for n in self.registry.query() if n.node_id not in exclude]
        return nodes, frozenset(n.node_id for n in nodes if self.registry.degraded(n.node_id))

    @staticmethod
    def nodes_fingerprint(nodes: Sequence[ServiceAdvertisement], degraded: frozenset[str]) -> str:
        """A digest of what the planner is told about ``nodes``: each advertisement without the
        fields that change with every advert (``timestamp``, ``sequence``), and the degraded set.

        Measured round trips are left out on purpose: they move on every probe, and a plan
        admitted a few seconds earlier on the same nodes is still the job's plan.
        """
        digest = hashlib.sha256()
        for node in sorted(nodes, key=lambda n: n.node_id):
            digest.update(node.model_dump_json(exclude={"timestamp", "sequence"}).encode())
        digest.update(",".join(sorted(degraded)).encode())
        return digest.hexdigest()

    def _plan(self, ir: CircuitIR, exclude: frozenset[str], options: JobOptions | None,
              reason: str) -> tuple[Plan, str, dict[str, float]]:
        """The plan, the nodes' fingerprint, and the queue waits (committed work) it was made against.

        The fingerprint leaves the queue waits out: a busy cluster must not force re-plans.
        ``exclude``: failed or refusing nodes of a fallback; ``reason`` labels ``qb2_plans_total``.

        Raises:
            SubmissionRejected: 503 when no node is available at all (and none is excluded).
            InfeasiblePlanError: no feasible plan on the remaining nodes.
        """
        nodes, degraded = self.planning_nodes(exclude)
        if not nodes and not exclude:
            raise SubmissionRejected(503, ErrorInfo(
                code="no_nodes",
                message="no service node is available; start one with `qb2 node --bootstrap <coordinator multiaddr> --join-token <token from qb2 join-token --peer-id <node peer id>>` (docs/runbooks.md)",
            ))
        self.metrics.plans.labels(reason=reason).inc()
        waits = self.load.per_node()
        plan = plan_circuit(ir, nodes, self.planner_options(options, degraded, waits))
        return plan, self.nodes_fingerprint(nodes, degraded), waits

    def _keep_admission(self, job_id: str, admission: Admission) -> None:
        """Keep what admission compiled for the worker, unless that would hold more than
        :data:`_ADMITTED_MAX_OPERATIONS` IR operations over all queued jobs: a job not kept
        is re-planned by its worker (the COMPILING event says so), which costs time, not memory."""
        size = admission.ir.num_operations
        if self._admitted_operations + size <= _ADMITTED_MAX_OPERATIONS:
            self._admitted[job_id] = admission
            self._admitted_operations += size

    def _take_admission(self, job_id: str) -> Admission | None:
        """Remove and return what admission kept for ``job_id`` (None if nothing was kept)."""
        admission = self._admitted.pop(job_id, None)
        if admission is not None:
            self._admitted_operations -= admission.ir.num_operations
        return admission

    async def submit(self, submission: Submission) -> JobRecord:
        """Validate, persist as QUEUED and enqueue a job; returns its record at once.

        Raises:
            SubmissionRejected: 413 over the QASM size limit, 422 invalid or
                infeasible, 503 no nodes or queue full.
        """
        fmt = submission.format or detect_format(submission.qasm)
        name = submission.name or "circuit"
        admission = await trio.to_thread.run_sync(self.admit, submission.qasm, fmt, name, submission.options)
        ir = admission.ir
        now = time.time()
        job = JobRecord(
            job_id=uuid.uuid4().hex, state=JobState.QUEUED, created_at=now, updated_at=now, name=name,
            format=fmt, shots=submission.shots, seed=submission.seed, num_qubits=ir.num_qubits,
            num_operations=ir.num_operations, priority=submission.priority, tags=list(submission.tags),
            options=submission.options,
        )
        if len(self.queue) >= self.queue.capacity:
            raise SubmissionRejected(503, ErrorInfo(code="queue_full", message="job queue is full; retry later"))
        # issue 13: committed at once, so the next admission already sees these nodes as busier
        self.load.commit(job.job_id, admission.plan, admission.queue_wait_s)
        # shielded: a client that disconnects now must not leave a stored job that is never queued
        with trio.CancelScope(shield=True):
            try:
                await self.store.insert_job(job, submission.qasm)  # persisted before it is acted on (FR-010)
                await self.store.set_plan(job.job_id, admission.plan.to_json())  # the plan is stored with the job
                self._keep_admission(job.job_id, admission)
                try:
                    self.queue.put_nowait(job.job_id, job.priority)
                except QueueFull:  # filled by concurrent submits since the check above
                    self._take_admission(job.job_id)
                    await self.store.delete_job(job.job_id)
                    raise SubmissionRejected(503, ErrorInfo(code="queue_full",
                                                            message="job queue is full; retry later")) from None
            except BaseException:
                self.load.drop(job.job_id)
                raise
        self.metrics.jobs_submitted.inc()
        self.metrics.queue_depth.set(len(self.queue))
        self._notify()
        log.info("job queued", extra={"job_id": job.job_id, "job_name": name, "qubits": ir.num_qubits})
        return job

    async def recover(self) -> int:
        """Requeue every job that was not finished when the coordinator stopped; returns how many.

        Jobs beyond the queue capacity wait until workers make room.
        """
        jobs = await self.store.unfinished_jobs()
        for job in jobs:
            if job.state is not JobState.QUEUED:
                await self.store.set_state(job.job_id, JobState.QUEUED, time.time(), )
            while True:
                try:
                    self.queue.put_nowait(job.job_id, job.priority)
                    break
                except QueueFull:
                    await self.wait_changed()
        self.metrics.queue_depth.set(len(self.queue))
        if jobs:
            log.info("requeued unfinished jobs", extra={"count": len(jobs)})
        return len(jobs)

    async def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a job (FR-009): a queued job leaves the queue, a running one is stopped.

        Returns:
            The job record after the request (already-final jobs are returned
            unchanged), or None for an unknown job.
        """
        job = await self.store.get_job(job_id)
        if job is None or job.state.final:
            return job
        if self.queue.remove(job_id):
            self._take_admission(job_id)
            self.metrics.queue_depth.set(len(self.queue))
            await self._finish(job_id, JobState.CANCELLED, job.created_at)
        elif job_id in self._running:
            self._running[job_id].cancel()
            while not (await self.store.get_job(job_id)).state.final:
                await self.wait_changed()
        return await self.store.get_job(job_id)

    async def persist_metrics(self, interval_s: float) -> None:
        """Write a snapshot of every metric to SQLite every ``interval_s`` seconds (FR-010, FR-012)."""
        while True:
            await trio.sleep(interval_s)
            self.metrics.queue_depth.set(len(self.queue))
            await self.store.save_metrics(time.time(), self.metrics.samples())

    async def wait_changed(self) -> None:
        """Wait until the next job state change (used by the job stream)."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def run_workers(self) -> None:
        """Run ``runtime.max_concurrent_jobs`` workers until cancelled.

        The nodes' transport calls of every job run in a nursery of their own
        around the workers' (see :meth:`_uninterrupted`), cancelled only once the
        workers are gone.
        """
        async with trio.open_nursery() as calls:
            self._calls = calls
            try:
                async with trio.open_nursery() as nursery:
                    for _ in range(self.settings.runtime.max_concurrent_jobs):
                        nursery.start_soon(self._worker)
            finally:
                self._calls = None
                calls.cancel_scope.cancel()

    async def _uninterrupted(self, wait_s: float, call: Callable[..., Awaitable[T]], *args: object) -> T:
        """``await call(*args)``, a request to a node, run so that cancelling the job never interrupts it.

        Why: a libp2p request is not cancel-safe (:mod:`qb2.daemon.streams`).
        All streams to a node share one Noise-encrypted yamux connection, and
        Noise advances its nonce when it encrypts a frame, before the write; a
        job cancelled while one of its requests writes (opening the stream,
        negotiating the protocol, sending the request) drops or cuts an
        encrypted frame, the node can no longer decrypt the connection, and it
        is closed. Every other request on it then fails ("failed to open a
        stream", "No valid connections available"): a concurrent job's
        reservation fails and it is re-planned without the node, or FAILED; the
        cancelled job's own releases are not delivered and its windows stay
        active on the node (FR-005, FR-009).

        So, while the workers run, the call runs in their ``_calls`` nursery,
        outside the job's cancel scope. A cancelled caller stops waiting for it
        after ``wait_s`` more seconds (shielded) and is cancelled; the call itself
        finishes on its own, bounded by the transport's timeout, and its outcome
        is dropped. A job processed outside :meth:`run_workers` calls directly.
        """
        calls = self._calls
        if calls is None:
            return await call(*args)
        done = trio.Event()
        outcome: list[tuple[bool, Any]] = []  # (ok, value or exception)

        async def run() -> None:
            try:
                outcome.append((True, await call(*args)))
            except Exception as exc:  # handed to the caller; BaseException (shutdown) propagates
                outcome.append((False, exc))
            finally:
                done.set()

        calls.start_soon(run)
        try:
            await done.wait()
        except trio.Cancelled:
            if wait_s > 0:
                with trio.CancelScope(shield=True), trio.move_on_after(wait_s):
                    await done.wait()
            raise
        if not outcome:
            raise RuntimeError("the request was cancelled by the coordinator's shutdown")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    async def _invoke(self, node_id: str, request: ExecuteRequest, payload: bytes) -> tuple[ExecuteResponse, bytes]:
        """The ``invoke`` transport, uninterrupted (:meth:`_uninterrupted`).

        A cancelled job does not wait for its running fragments: a late
        execution finds its window released (the node runs it anyway) or
        consumes it first, and the release then records ``consumed`` (FR-005).
        """
        return await self._uninterrupted(0.0, self.invoke, node_id, request, payload)

    async def _reserve_call(self, node_id: str, request: ReserveRequest) -> ReserveResponse:
        """The ``reserve`` transport, uninterrupted (:meth:`_uninterrupted`).

        A job cancelled while a ``reserve`` request is in flight waits for its
        answer (at most ``runtime.reserve_timeout_s``, the transport's own bound)
        before it releases its windows: a release sent meanwhile on another
        stream could reach the node before the request, be refused as unknown,
        and leave the window the node then grants active (FR-005). A release
        cut short by its caller's time bound is not waited for.
        """
        assert self.reserve is not None
        wait_s = self.settings.runtime.reserve_timeout_s if request.action == "reserve" else 0.0
        return await self._uninterrupted(wait_s, self.reserve, node_id, request)

    async def _worker(self) -> None:
        while True:
            job_id = await self.queue.get()
            self.metrics.queue_depth.set(len(self.queue))
            with trio.CancelScope() as scope:
                self._running[job_id] = scope
                try:
                    await self.process(job_id)
                except Exception:  # a bug in one job must not stop the worker
                    log.exception("job crashed", extra={"job_id": job_id})
                    await self._fail(job_id, ErrorInfo(code="internal", message="internal error; see coordinator log"))
                finally:
                    del self._running[job_id]
                    self.load.drop(job_id)  # however the job ended, it commits no more work (issue 13)
            if scope.cancelled_caught:
                job = await self.store.get_job(job_id)
                if job is not None and not job.state.final:
                    await self._finish(job_id, JobState.CANCELLED, job.created_at)

    async def process(self, job_id: str) -> None:
        """Compile, execute and record one queued job."""
        admitted, why = self._take_admission(job_id), None
        job = await self.store.get_job(job_id)
        source = await self.store.get_source(job_id)
        if job is None or source is None or job.state.final:
            self.load.drop(job_id)
            return
        fmt, text = source
        # a job recovered after a restart may still hold windows from its previous run (FR-005, FR-010)
        await self._release_open_windows(job_id, "recovered")
        # issue 12: the plan made at admission is the job's plan unless the nodes changed since
        if admitted is None:
            why = "no admission plan kept for this job (the coordinator restarted since it was admitted)"
        elif self.nodes_fingerprint(*self.planning_nodes()) != admitted.nodes_fingerprint:
            why = "the nodes changed since admission (one joined, left, changed its advertisement or degraded)"
        await self._transition(job_id, JobState.COMPILING,
                               {"plan": "admitted"} if why is None else {"plan": "replanned", "why": why})
        await self.store.delete_fragments(job_id)  # a recovered job starts its fragments afresh
        if admitted is not None and why is None:
            ir, plan = admitted.ir, admitted.plan
        else:
            self.load.drop(job_id)  # its admission placement is void; it must not weigh on its own re-plan
            try:
                admission = await self._compile_when_nodes_allow(text, fmt, job.name, job.options)
            except SubmissionRejected as exc:
                await self._fail(job_id, exc.error)
                return
            ir, plan = admission.ir, admission.plan
            self.load.commit(job_id, plan, admission.queue_wait_s)
        await self._transition(job_id, JobState.RESERVING)
        try:
            plan, reservations = await self._reserve(job_id, ir, plan, job.options)
        except InfeasiblePlanError as exc:
            await self._fail(job_id, ErrorInfo(code="reservation_failed", message=exc.message, details=exc.to_dict()))
            return
        await self.store.set_plan(job_id, plan.to_json())
        fidelities = {n.node_id: n.fidelity for n in self.registry.query(include_unavailable=True)}
        await self._transition(job_id, JobState.EXECUTING)
        try:
            execution, records = await self._execute_with_fallback(job_id, job, ir, plan, reservations)
        except FragmentFailed as exc:
            await self._release(job_id, reservations, exc.records)
            await self._fail(job_id, ErrorInfo(
                code="fragment_failed", message=str(exc),
                details={"fragment_id": exc.fragment_id, "node_id": exc.node_id, "reason": exc.reason,
                         "attempts": exc.attempts, "errors": exc.errors,
                         "fallback": exc.no_fallback}))
            return
        await self._release(job_id, reservations, records)
        done = [r for r in records if r.status == "DONE"]
        ideal = await trio.to_thread.run_sync(ideal_distribution, ir)
        result = JobResult(
            counts=execution.counts,
            shots=job.shots,
            seed=job.seed,
            representation=plan.representation,
            estimated_fidelity=estimated_fidelity(done, fidelities, plan.link_fidelity),
            measured_fidelity=measured_fidelity(execution.counts, ideal),
            nodes_used=sorted({r.node_id for r in done}),
            total_ebits=sum(r.ebits for r in done),
            execution_s=execution.execution_s,
            fragments=records,
            fallbacks=max((r.fallback for r in records), default=0),
            retries=sum(max(0, r.attempts - 1) for r in records),
        )
        await self._finish(job_id, JobState.COMPLETED, job.created_at, result=result)
        log.info("job completed", extra={"job_id": job_id, "execution_s": round(execution.execution_s, 4),
                                         "fragments": len(records), "nodes": len(result.nodes_used),
                                         "fallbacks": result.fallbacks})

    async def _reserve(self, job_id: str, ir: CircuitIR, plan: Plan,
                       options: JobOptions | None = None) -> tuple[Plan, Reservations]:
        """Reserve windows for ``plan``; re-plan without nodes that refuse (at most ``max_fallbacks`` times).

        Raises:
            InfeasiblePlanError: no feasible plan on the nodes that grant windows.
        """
        if self.reserve is None:
            return plan, Reservations()

        reserver = Reserver(self._reserve_call, self._reservation_sink(job_id),
                            max_offers=self.settings.runtime.max_reservation_offers)
        refused: set[str] = set()
        for _ in range(self.settings.runtime.max_fallbacks + 1):
            adverts = {n.node_id: n for n in self.registry.query(include_unavailable=True)}
            reservations = await reserver.reserve_plan(job_id, plan, ir, adverts)
            if not reservations.refused:
                return plan, reservations
            log.warning("reservation refused; re-planning without those nodes",
                        extra={"job_id": job_id, "refused": reservations.refused})
            await reserver.release(job_id, reservations, keep=set())
            refused.update(reservations.refused)
            self.load.drop(job_id)  # moved to the new plan's nodes (issue 13)
            plan, _, waits = await trio.to_thread.run_sync(self._plan, ir, frozenset(refused), options, "fallback")
            self.load.commit(job_id, plan, waits)
        raise InfeasiblePlanError("no_nodes", f"nodes kept refusing reservations: {sorted(refused)}")

    def _reservation_sink(self, job_id: str) -> EventSink:
        """Persists the reservation events of ``job_id`` (FR-005)."""

        async def record(kind: str, fragment_id: str, node_id: str, reservation_id: str, start: float, end: float,
                         reason: str | None) -> None:
            await self.store.record_reservation(job_id, kind, fragment_id, node_id, reservation_id, start, end, reason)

        return record

    async def _release(self, job_id: str, reservations: Reservations, records: list[FragmentRecord]) -> None:
        """Mark consumed windows and release the unused ones (FR-005)."""
        if self.reserve is None or not reservations.granted:
            return

        consumed = {r.fragment_id for r in records if r.status == "DONE" and r.fallback == 0}
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await Reserver(self._reserve_call, self._reservation_sink(job_id)).release(job_id, reservations,
                                                                                     keep=consumed)

    async def _execute_with_fallback(
        self, job_id: str, job: JobRecord, ir: CircuitIR, plan: Plan, reservations: Reservations | None = None,
    ) -> tuple[Execution, list[FragmentRecord]]:
        """Run ``plan``; when a fragment fails after its retries, re-plan the remaining
        operations without the failed node and continue from the last good state (FR-007, NFR-002).

        Returns:
            The final plan's execution and the records of every plan tried.

        Raises:
            FragmentFailed: out of fallbacks, or no feasible plan without the failed
                nodes (its ``no_fallback`` says why).
        """
        runtime = self.settings.runtime
        policy = RetryPolicy(runtime.max_attempts, runtime.backoff_base_s, runtime.backoff_max_s)
        excluded: set[str] = set()
        history: list[FragmentRecord] = []
        state = None
        index_map = tuple(range(len(ir.operations)))  # current plan's operation index -> original index
        applied: set[int] = set()  # original operation indices already applied to the state
        current_ir, current_plan, fallback, failed_node = ir, plan, 0, None

        def on_retry(record: FragmentRecord) -> None:
            self.metrics.retries.inc()
            log.warning("retrying fragment", extra={"job_id": job_id, "fragment_id": record.fragment_id,
                                                    "attempt": record.attempts + 1, "reason": record.errors[-1]})

        async def on_record(record: FragmentRecord) -> None:
            record.fallback, record.original_node_id = fallback, failed_node
            await self.store.save_fragment(job_id, record)
            if record.status in ("DONE", "FAILED", "CANCELLED"):
                self.load.finish(job_id, record.fragment_id)  # its node no longer waits for it (issue 13)
            if record.status in ("DONE", "FAILED"):
                self.metrics.fragment_invocations.labels(node_id=record.node_id, outcome=record.status).inc()
                if record.round_trip_s is not None:
                    self.metrics.fragment_latency.observe(record.round_trip_s)

        while True:
            try:
                execution = await execute_plan(
                    current_plan, current_ir, self._invoke, job_id=job_id, shots=job.shots, seed=job.seed,
                    on_record=on_record, state=state, retry=policy,
                    fragment_prefix=f"fb{fallback}-" if fallback else "", on_retry=on_retry,
                    reservations={f: r for f, (_, r) in reservations.granted.items()}
                    if reservations is not None and not fallback else None,
                )
                return execution, history + execution.records
            except FragmentFailed as exc:
                history += exc.records
                applied.update(index_map[i] for i in exc.done_operations)
                if fallback >= runtime.max_fallbacks:
                    raise exc.without_fallback(f"all {runtime.max_fallbacks} fallback plans used") from None
                excluded.add(exc.node_id)
                remaining = tuple(i for i in range(len(ir.operations)) if i not in applied)
                current_ir = dataclasses.replace(ir, operations=tuple(ir.operations[i] for i in remaining))
                self.load.drop(job_id)  # the failed plan's unstarted fragments will not run (issue 13)
                try:
                    current_plan, _, waits = await trio.to_thread.run_sync(
                        self._plan, current_ir, frozenset(excluded), job.options, "fallback")
                except InfeasiblePlanError as infeasible:
                    raise exc.without_fallback(
                        f"no feasible plan without {sorted(excluded)}: {infeasible.message}") from None
                state, index_map, fallback, failed_node = exc.state, remaining, fallback + 1, exc.node_id
                self.load.commit(job_id, current_plan, waits, prefix=f"fb{fallback}-")
                log.warning("falling back to a new plan", extra={
                    "job_id": job_id, "fallback": fallback, "failed_node": exc.node_id,
                    "remaining_operations": len(remaining), "nodes": list(current_plan.nodes)})

    async def _compile_when_nodes_allow(self, text: str, fmt: Literal["qasm2", "qasm3"], name: str,
                                        options: JobOptions | None = None) -> Admission:
        """Compile; if no node (or no suitable node) is registered, wait up to one registry TTL for one.

        An admitted job was feasible when it was submitted, so infeasibility now
        means nodes went stale or the coordinator restarted with an empty
        registry (FR-010): nodes re-advertise within their advert interval.

        Raises:
            SubmissionRejected: still infeasible after the grace period.
        """
        deadline = trio.current_time() + self.settings.discovery.registry_ttl_s
        while True:
            try:
                return await trio.to_thread.run_sync(
                    functools.partial(self.admit, text, fmt, name, options, reason="replan"))
            except SubmissionRejected as exc:
                if exc.error.code not in ("no_nodes", "nodes_degraded", "infeasible") or trio.current_time() >= deadline:
                    raise
            with trio.move_on_at(deadline):
                await self.registry.wait_changed()

    async def _transition(self, job_id: str, state: JobState, detail: dict[str, str] | None = None) -> None:
        await self.store.set_state(job_id, state, time.time(), detail=detail)
        self._notify()
        log.info("job state", extra={"job_id": job_id, "state": state.value})

    async def _release_open_windows(self, job_id: str, why: str) -> None:
        """Release every window the job's persisted reservation events leave open (FR-005).

        Covers every way a job ends: cancelled while RESERVING (a reserve call
        may have been in flight) or EXECUTING, failed, crashed, or left
        unfinished by a coordinator that died (``why`` goes to the log).
        Shielded from cancellation, since it runs while a cancelled worker
        unwinds, and bounded by ``runtime.release_timeout_s`` seconds: windows
        not released by then expire on their nodes. Never raises for node failures.
        """
        if self.reserve is None:
            return
        with trio.CancelScope(shield=True):
            windows = open_windows(await self.store.reservation_events(job_id))
            if not windows:
                return
            reserver = Reserver(self._reserve_call, self._reservation_sink(job_id))
            counts: dict[str, int] = {}
            with trio.move_on_after(self.settings.runtime.release_timeout_s) as bound:
                counts = await reserver.release_open(windows)
            if bound.cancelled_caught:
                log.warning("windows not all released in time; the nodes expire the rest",
                            extra={"job_id": job_id, "open": len(windows),
                                   "release_timeout_s": self.settings.runtime.release_timeout_s})
            else:
                log.info("released open reservation windows", extra={"job_id": job_id, "why": why, **counts})

    async def _finish(self, job_id: str, state: JobState, created_at: float, *, result: JobResult | None = None,
                      error: ErrorInfo | None = None) -> None:
        """Record ``job_id``'s final ``state``, after releasing any windows it still holds (FR-005, FR-009).

        Shielded: a cancelled worker still records the job as CANCELLED and
        frees its windows before :meth:`cancel` returns.
        """
        self.load.drop(job_id)  # issue 13: a final job commits no work, whatever its fragments did
        now = time.time()
        await self._release_open_windows(job_id, state.value)
        with trio.CancelScope(shield=True):  # a cancelled job must still be recorded as such
            await self.store.set_state(job_id, state, now, result=result, error=error)
        self.metrics.job_finished(state.value, now - created_at, error.code if error else None)
        self._notify()
        log.info("job state", extra={"job_id": job_id, "state": state.value})

    async def _fail(self, job_id: str, error: ErrorInfo) -> None:
        job = await self.store.get_job(job_id)
        await self._finish(job_id, JobState.FAILED, job.created_at if job else time.time(), error=error)
        log.warning("job failed", extra={"job_id": job_id, "code": error.code, "reason": error.message})
