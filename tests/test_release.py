"""Reservation windows are given back however a job ends (FR-005, issue 11 defect 7).

The nodes here are real :class:`qb2.service_node.ledger.ReservationLedger` objects
behind a transport that mirrors ``ServiceNode.handle_reserve`` (reserve /
release) and ``handle_stream`` (an execution consumes its window), so "no
window left behind" is checked on the nodes' own ledgers, not on the
coordinator's bookkeeping.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from qb2.compiler import PlannerOptions, parse_qasm, plan_circuit
from qb2.compiler.plan import Plan
from qb2.coordinator.config import load_settings
from qb2.coordinator.registry import Registry
from qb2.coordinator.reservations import Reserver, open_windows
from qb2.coordinator.service import CoordinatorService, Submission
from qb2.coordinator.store import JobStore
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.jobs import JobState
from qb2.protocol.reservation import ReserveRequest, ReserveResponse
from qb2.service_node.ledger import ReservationLedger
from tests.conftest import InProcessCluster


class Nodes:
    """One ledger per node of ``cluster``; ``reserve`` and ``invoke`` are the coordinator's transports.

    Hooks (async callables, default None) let a test stop a call at a chosen point:
    ``after_grant(n, request)`` runs after the n-th reserve request (1-based) was decided
    on the node, before the answer returns; ``before_execute(n, request)`` before the
    n-th execution.
    """

    def __init__(self, cluster: InProcessCluster, capacity: int = 1) -> None:
        self.cluster = cluster
        self.ledgers = {a.node_id: ReservationLedger(capacity) for a in cluster.adverts}
        self.reserves = 0
        self.executions = 0
        self.after_grant = None
        self.before_execute = None

    def active(self) -> dict[str, list[str]]:
        """Active window ids per node (only nodes that have some)."""
        out = {node: [w.reservation_id for w in ledger.active] for node, ledger in self.ledgers.items()}
        return {node: ids for node, ids in out.items() if ids}

    async def reserve(self, node_id: str, request: ReserveRequest) -> ReserveResponse:
        ledger = self.ledgers[node_id]
        if request.action == "release":  # as ServiceNode.handle_reserve answers it
            released = ledger.release(request.reservation_id)
            status = ledger.status(request.reservation_id)
            return ReserveResponse(node_id=node_id, reservation_id=request.reservation_id, granted=released,
                                   reason=None if released else f"reservation is {status or 'unknown'}, not active")
        self.reserves += 1
        response = ledger.reserve(request, node_id)
        if self.after_grant is not None:
            await self.after_grant(self.reserves, request)
        return response

    async def invoke(self, node_id: str, request: ExecuteRequest, payload: bytes) -> tuple[ExecuteResponse, bytes]:
        self.executions += 1
        if self.before_execute is not None:
            await self.before_execute(self.executions, request)
        for reservation_id in request.reservation_ids:  # as ServiceNode.handle_stream consumes them
            self.ledgers[node_id].consume(reservation_id)
        return await self.cluster.invoke(node_id, request, payload)


def make_service(tmp_path: Path, nodes: Nodes, **runtime: object) -> tuple[CoordinatorService, JobStore]:
    settings = load_settings(data_dir=tmp_path, runtime={"backoff_base_s": 0.0, **runtime})
    registry = Registry(settings.discovery.registry_ttl_s)
    for advert in nodes.cluster.adverts:
        registry.observe(advert)
    store = JobStore(tmp_path / "c.db")
    service = CoordinatorService(settings, registry, store, nodes.invoke, nodes.reserve)
    service.settings.compiler.link_fidelity = 1.0
    return service, store


def last_kind(events: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    for event in events:
        out[event["reservation_id"]] = event["kind"]
    return out


QFT = benchmark_circuit("qft", 6).qasm  # about ten fragments over several nodes


def stall_at(call: int, reached: trio.Event):  # type: ignore[no-untyped-def]
    """A ``Nodes`` hook that, on its ``call``-th invocation (counting from 1), sets ``reached`` and blocks
    forever (until the job is cancelled)."""

    async def hook(n: int, request: object) -> None:
        if n == call:
            reached.set()
            await trio.sleep_forever()

    return hook


async def run_and_cancel_when(service: CoordinatorService, job_id: str, reached: trio.Event) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        with trio.fail_after(30):
            await reached.wait()
            await service.cancel(job_id)
        nursery.cancel_scope.cancel()


async def test_cancel_while_reserving_releases_every_window_even_one_granted_in_flight(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes)
    reached = trio.Event()

    nodes.after_grant = stall_at(3, reached)  # the node granted it; the answer never arrives before the cancel
    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    await run_and_cancel_when(service, job.job_id, reached)

    assert (await store.get_job(job.job_id)).state is JobState.CANCELLED
    assert nodes.reserves == 3 and sum(len(ledger.events) for ledger in nodes.ledgers.values()) > 0
    assert nodes.active() == {}, "windows left active on the nodes after the cancel"
    events = await store.reservation_events(job.job_id)
    kinds = last_kind(events)
    assert len(kinds) == 3 and set(kinds.values()) == {"released"}
    assert open_windows(events) == []


async def test_cancel_while_executing_releases_the_unconsumed_windows(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes)
    reached = trio.Event()

    nodes.before_execute = stall_at(2, reached)
    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    await run_and_cancel_when(service, job.job_id, reached)

    assert (await store.get_job(job.job_id)).state is JobState.CANCELLED
    assert nodes.active() == {}
    kinds = Counter(last_kind(await store.reservation_events(job.job_id)).values())
    plan = Plan.model_validate_json(await store.get_plan(job.job_id))
    ran = len(plan.segments[0])  # the first invocation ran one segment: each member consumed its window
    assert kinds["consumed"] == ran  # the node says so when asked to release them
    assert kinds["released"] == len(plan.fragments) - ran and set(kinds) == {"consumed", "released"}


async def test_a_crashed_job_fails_and_releases_its_windows(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes)

    async def broken_set_plan(job_id: str, plan: str) -> None:
        raise RuntimeError("disk on fire")

    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))  # stores the admission plan
    store.set_plan = broken_set_plan  # type: ignore[method-assign]  # the next save: right after RESERVING
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        with trio.fail_after(30):
            while not (await store.get_job(job.job_id)).state.final:
                await service.wait_changed()
        nursery.cancel_scope.cancel()
    failed = await store.get_job(job.job_id)
    assert failed.state is JobState.FAILED and failed.error.code == "internal"
    assert nodes.reserves >= 2 and nodes.active() == {}


async def test_a_recovered_job_releases_the_windows_of_its_previous_run_first(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes)
    reached = trio.Event()

    nodes.before_execute = stall_at(1, reached)
    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    with trio.move_on_after(30):  # the coordinator "dies" while EXECUTING: no cleanup runs
        async with trio.open_nursery() as nursery:
            nursery.start_soon(service.process, job.job_id)
            await reached.wait()
            nursery.cancel_scope.cancel()
    stale = {rid for ids in nodes.active().values() for rid in ids}
    assert len(stale) >= 3
    store.close()

    nodes.before_execute = None
    restarted, store = make_service(tmp_path, nodes)
    assert await restarted.recover() == 1
    with trio.fail_after(60):
        await restarted.process(job.job_id)
    assert (await store.get_job(job.job_id)).state is JobState.COMPLETED
    assert nodes.active() == {}
    events = await store.reservation_events(job.job_id)
    kinds = last_kind(events)
    assert {kinds[rid] for rid in stale} == {"released"}
    # released before the new run asked for anything, so it met no conflict with its own old windows
    first_new = min(i for i, e in enumerate(events) if e["kind"] == "requested" and e["reservation_id"] not in stale
                    and i > max(i for i, e in enumerate(events) if e["reservation_id"] in stale and e["kind"] == "granted"))
    released_at = [i for i, e in enumerate(events) if e["reservation_id"] in stale and e["kind"] == "released"]
    assert max(released_at) < first_new
    assert not [e for e in events[first_new:] if e["kind"] == "rejected"]


class Contended:
    """A one-slot node on which another coordinator takes every window this one is offered."""

    def __init__(self) -> None:
        self.ledger = ReservationLedger(1)
        self.rivals = 0

    async def call(self, node_id: str, request: ReserveRequest) -> ReserveResponse:
        response = self.ledger.reserve(request, node_id)
        if not response.granted and response.next_start is not None:
            self.rivals += 1
            rival = request.model_copy(update={"reservation_id": f"rival-{self.rivals}",
                                               "start": response.next_start, "end": response.next_end})
            assert self.ledger.reserve(rival, node_id).granted
        return response


@settings(max_examples=12, deadline=None)
@given(max_offers=st.integers(0, 10))
def test_offers_per_fragment_are_bounded(max_offers: int) -> None:
    """FR-005: a busy node offers later windows at most ``max_offers`` times per fragment; then the
    fragment runs without a window, and the events recorded stay proportional to the bound."""
    cluster = InProcessCluster(ideal=True)
    ir = parse_qasm(benchmark_circuit("ghz", 3).qasm)
    plan = plan_circuit(ir, cluster.adverts[:1], PlannerOptions(link_fidelity=1.0))
    node = plan.fragments[0].node_id
    events: list[tuple[str, str]] = []

    async def record(kind, fragment_id, node_id, reservation_id, start, end, reason):  # type: ignore[no-untyped-def]
        events.append((kind, fragment_id))

    async def main() -> None:
        nodes = Contended()
        blocker = ReserveRequest(action="reserve", reservation_id="blocker", operation=plan_op(), start=0.0,
                                 end=4e9)  # the node is taken until long after this test
        nodes.ledger.reserve(blocker, node)
        reserver = Reserver(nodes.call, record, max_offers=max_offers)
        out = await reserver.reserve_plan("job", plan, ir, {a.node_id: a for a in cluster.adverts})
        assert out.granted == {} and out.refused == {}

    def plan_op():  # type: ignore[no-untyped-def]
        from qb2.protocol.reservation import OperationSummary

        return OperationSummary(gates={}, qubits=1, estimated_duration_s=0.0)

    trio.run(main)
    requested = Counter(f for kind, f in events if kind == "requested")
    assert requested and set(requested.values()) == {max_offers + 1}
    assert len(events) == len(plan.fragments) * (2 * max_offers + 2)


def test_the_default_offer_bound_is_small() -> None:
    assert load_settings().runtime.max_reservation_offers == 8
    assert Reserver(None, None).max_offers == 8  # type: ignore[arg-type]
    with pytest.raises(Exception, match="max_reservation_offers"):
        load_settings(runtime={"max_reservation_offers": 1000})
