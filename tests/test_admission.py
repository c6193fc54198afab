"""A job is parsed and planned once, at admission, and re-planned only when the nodes changed (issue 12).

The planner is counted where the job service calls it (a counting wrapper around
the real ``plan_circuit``) and by the ``qb2_plans_total{reason}`` metric; the
event log says whether the worker used the admission plan or why it re-planned.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

import qb2.coordinator.service as service_module
from qb2.coordinator.registry import QualityThresholds
from qb2.coordinator.service import CoordinatorService, Submission, SubmissionRejected
from qb2.coordinator.store import JobStore
from qb2.protocol.jobs import JobRecord, JobState
from tests.conftest import InProcessCluster
from tests.test_release import QFT, Nodes, make_service


def count_planner_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The circuit name of every planner run the job service makes, in order (the real planner runs)."""
    calls: list[str] = []
    real = service_module.plan_circuit

    def counting(ir, nodes, options=None):  # type: ignore[no-untyped-def]
        calls.append(ir.name)
        return real(ir, nodes, options) if options is not None else real(ir, nodes)

    monkeypatch.setattr(service_module, "plan_circuit", counting)
    return calls


async def run_until_final(service: CoordinatorService, store: JobStore, *job_ids: str) -> JobRecord:
    """Run the workers until every job in ``job_ids`` is final; returns the first one's record."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        with trio.fail_after(60):
            for job_id in job_ids:
                while not (await store.get_job(job_id)).state.final:
                    await service.wait_changed()
        nursery.cancel_scope.cancel()
    return await store.get_job(job_ids[0])


def plans(service: CoordinatorService, reason: str) -> float:
    return service.metrics.registry.get_sample_value("qb2_plans_total", {"reason": reason}) or 0.0


async def test_an_admitted_job_is_planned_once_when_the_nodes_are_unchanged(
        tmp_path: Path, ideal_cluster: InProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_planner_calls(monkeypatch)
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    assert calls == ["qft"]
    assert await store.get_plan(job.job_id) is not None  # stored with the job at admission
    final = await run_until_final(service, store, job.job_id)
    assert final.state is JobState.COMPLETED, final.error
    assert calls == ["qft"]  # the worker reused the admission plan
    assert (plans(service, "admission"), plans(service, "replan")) == (1.0, 0.0)
    compiling = [e for e in await store.events(job.job_id) if e.state is JobState.COMPILING]
    assert [e.detail for e in compiling] == [{"plan": "admitted"}]


async def test_a_job_is_replanned_when_a_node_changed_since_admission_and_the_event_says_why(
        tmp_path: Path, ideal_cluster: InProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_planner_calls(monkeypatch)
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    job = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    changed = ideal_cluster.adverts[0]
    assert service.registry.observe(changed.model_copy(update={  # a newer advert with another fidelity
        "sequence": changed.sequence + 1, "fidelity": changed.fidelity.model_copy(update={"gate_2q": 0.999})}))
    final = await run_until_final(service, store, job.job_id)
    assert final.state is JobState.COMPLETED, final.error
    assert calls == ["qft", "qft"]
    assert (plans(service, "admission"), plans(service, "replan")) == (1.0, 1.0)
    compiling = [e for e in await store.events(job.job_id) if e.state is JobState.COMPILING]
    assert compiling[0].detail["plan"] == "replanned" and "nodes changed" in compiling[0].detail["why"]


async def test_every_node_degraded_is_the_planners_answer_not_no_nodes(
        tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    """Degraded nodes used to be filtered before the planner, so a cluster whose nodes were all
    degraded was told "no service node is available"; the planner's own reason now reaches the user."""
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    service.registry.thresholds = QualityThresholds(max_rtt_s=0.010)
    for advert in ideal_cluster.adverts:
        service.registry.record_link(advert.node_id, rtt_s=0.5, loss=0.0)
    with pytest.raises(SubmissionRejected) as refused:
        await service.submit(Submission(QFT, None, 100, 1, "qft"))
    assert refused.value.status == 503 and refused.value.error.code == "nodes_degraded"
    assert refused.value.error.message.startswith("every available node is marked degraded")
    assert (await store.list_jobs())[1] == 0  # nothing stored


async def test_admission_plans_kept_in_memory_are_bounded_and_an_unkept_job_is_replanned(
        tmp_path: Path, ideal_cluster: InProcessCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued jobs' circuits and plans stay in memory only up to a bound in operations; beyond it the
    worker re-plans from the stored source, and the event says why."""
    calls = count_planner_calls(monkeypatch)
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    first = await service.submit(Submission(QFT, None, 100, 1, "qft"))
    monkeypatch.setattr(service_module, "_ADMITTED_MAX_OPERATIONS", service._admitted_operations)  # full now
    second = await service.submit(Submission(QFT, None, 100, 2, "qft"))
    await run_until_final(service, store, first.job_id, second.job_id)
    for job in (first, second):
        assert (await store.get_job(job.job_id)).state is JobState.COMPLETED
    assert len(calls) == 3  # two admissions, one re-plan for the job that was not kept
    compiling = {job.job_id: [e.detail for e in await store.events(job.job_id) if e.state is JobState.COMPILING]
                 for job in (first, second)}
    assert compiling[first.job_id] == [{"plan": "admitted"}]
    assert compiling[second.job_id][0]["plan"] == "replanned" and "no admission plan kept" in compiling[second.job_id][0]["why"]
    assert service._admitted == {} and service._admitted_operations == 0
