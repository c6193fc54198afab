"""Load-aware placement (issue 13): committed work per node feeds the planner's queue-wait term.

In-process tests use the harness of tests/test_release.py (real node handlers and
ledgers behind in-process transports); the last test runs a real 4-node cluster.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import trio

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.compiler import PlannerOptions, parse_qasm, plan_circuit, unsupported_gates
from qb2.coordinator.load import CommittedWork, fragment_work_s
from qb2.coordinator.service import CoordinatorService, Submission
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.jobs import JobState
from tests.conftest import InProcessCluster
from tests.test_admission import run_until_final
from tests.test_release import Nodes, make_service, stall_at

GHZ = benchmark_circuit("ghz", 3).qasm  # one gate fragment and a readout, on one node


def gauge(service: CoordinatorService, node_id: str) -> float | None:
    return service.metrics.registry.get_sample_value("qb2_node_committed_work_seconds", {"node_id": node_id})


def planned_nodes(service: CoordinatorService, job_id: str) -> set[str]:
    return {f.node_id for f in service._admitted[job_id].plan.fragments}


def test_a_fragments_work_leaves_out_the_queue_wait_it_was_planned_with(ideal_cluster: InProcessCluster) -> None:
    """Committing a plan made against busy nodes does not count the earlier jobs' work again."""
    ir = parse_qasm(GHZ)
    node = ideal_cluster.adverts[0]
    waits = {node.node_id: 0.25}
    idle = plan_circuit(ir, [node], PlannerOptions(link_fidelity=1.0))
    busy = plan_circuit(ir, [node], PlannerOptions(link_fidelity=1.0, queue_wait_s=waits))
    assert busy.cost.latency_s > idle.cost.latency_s + 0.4  # the wait is paid per fragment
    expected = fragment_work_s(idle, {})
    got = fragment_work_s(busy, waits)
    assert set(got) == set(expected) == {"f0", "f1"}
    for fragment_id, (node_id, seconds) in got.items():
        assert node_id == expected[fragment_id][0] == node.node_id
        assert seconds == pytest.approx(expected[fragment_id][1], abs=1e-12) and seconds > 0
    assert set(fragment_work_s(idle, {}, prefix="fb1-")) == {"fb1-f0", "fb1-f1"}


def test_committed_work_is_per_job_and_dropped_as_a_whole() -> None:
    ir = parse_qasm(GHZ)
    nodes = InProcessCluster(ideal=True).adverts
    seen: list[dict[str, float]] = []
    load = CommittedWork(on_change=seen.append)
    plan = plan_circuit(ir, nodes, PlannerOptions(link_fidelity=1.0))
    load.commit("a", plan, {})
    load.commit("b", plan, {})
    node = plan.fragments[0].node_id
    one = sum(s for _, s in fragment_work_s(plan, {}).values())
    assert load.per_node() == {node: pytest.approx(2 * one)}
    assert load.per_node(exclude_job="a") == {node: pytest.approx(one)}
    load.finish("a", "f0")
    load.finish("a", "f0")  # twice: no effect
    load.finish("unknown", "f0")
    assert load.of_job("a") == {node: pytest.approx(one - fragment_work_s(plan, {})["f0"][1])}
    load.drop("a")
    load.drop("a")
    assert load.jobs() == {"b"} and load.per_node() == {node: pytest.approx(one)}
    load.drop("b")
    assert load.per_node() == {} and seen[-1] == {}


async def test_work_is_committed_at_admission_and_fully_removed_when_the_job_completes(
        tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    job = await service.submit(Submission(GHZ, None, 100, 1, "ghz"))
    plan = service._admitted[job.job_id].plan
    node = plan.fragments[0].node_id
    committed = service.load.of_job(job.job_id)
    assert committed == {node: pytest.approx(sum(f.cost.latency_s for f in plan.fragments))}
    assert committed[node] > 0
    # the next plan sees it, in seconds
    assert service.planner_options().queue_wait_s == pytest.approx(committed)
    assert gauge(service, node) == pytest.approx(committed[node])

    final = await run_until_final(service, store, job.job_id)
    assert final.state is JobState.COMPLETED, final.error
    assert service.load.jobs() == set() and service.load.per_node() == {}
    assert service.planner_options().queue_wait_s == {}
    assert gauge(service, node) == 0.0


async def test_concurrent_admissions_spread_over_capable_nodes_and_keep_their_admission_plans(
        tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    """Queued jobs make their nodes look busy to the next admission; the worker still reuses
    each admission plan (queue waits are not part of the nodes' fingerprint)."""
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    jobs = [await service.submit(Submission(GHZ, None, 50, i, "ghz")) for i in range(6)]
    used = Counter(n for j in jobs for n in planned_nodes(service, j.job_id))
    gates = {op.name for op in parse_qasm(GHZ).operations}
    capable = {a.node_id for a in ideal_cluster.adverts if not unsupported_gates(a, gates)}
    assert len(capable) == 3  # the single-qubit node cannot run cx
    assert len(used) >= 3 and set(used) <= capable, used
    assert max(used.values()) <= 2 * min(used.values())
    assert set(service.load.per_node()) == set(used)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        with trio.fail_after(60):
            while not all(s.final for s in [(await store.get_job(j.job_id)).state for j in jobs]):
                await service.wait_changed()
        nursery.cancel_scope.cancel()
    for j in jobs:
        assert (await store.get_job(j.job_id)).state is JobState.COMPLETED
        compiling = [e.detail for e in await store.events(j.job_id) if e.state is JobState.COMPILING]
        assert compiling == [{"plan": "admitted"}]
    assert service.load.per_node() == {}


async def test_cancelling_a_queued_job_drops_its_work(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    service, store = make_service(tmp_path, Nodes(ideal_cluster))
    keep = await service.submit(Submission(GHZ, None, 50, 1, "ghz"))
    gone = await service.submit(Submission(GHZ, None, 50, 2, "ghz"))
    kept = service.load.of_job(keep.job_id)
    assert service.load.jobs() == {keep.job_id, gone.job_id}
    assert (await service.cancel(gone.job_id)).state is JobState.CANCELLED
    assert service.load.jobs() == {keep.job_id}
    assert service.load.per_node() == pytest.approx(kept)
    assert (await service.cancel(keep.job_id)).state is JobState.CANCELLED
    assert service.load.per_node() == {}
    assert all(v == 0.0 for node in ideal_cluster.adverts if (v := gauge(service, node.node_id)) is not None)


async def test_cancelling_a_running_job_drops_its_work(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes)
    reached = trio.Event()
    nodes.before_execute = stall_at(1, reached)
    job = await service.submit(Submission(GHZ, None, 50, 1, "ghz"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        with trio.fail_after(30):
            await reached.wait()
            assert service.load.of_job(job.job_id)  # still committed while its fragment runs
            await service.cancel(job.job_id)
        nursery.cancel_scope.cancel()
    assert (await store.get_job(job.job_id)).state is JobState.CANCELLED
    assert service.load.per_node() == {}


async def test_a_fragment_is_removed_when_it_finishes_and_a_fallback_moves_the_rest(
        tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    nodes = Nodes(ideal_cluster)
    service, store = make_service(tmp_path, nodes, max_attempts=1)
    job = await service.submit(Submission(GHZ, None, 50, 1, "ghz"))
    first = planned_nodes(service, job.job_id)
    assert len(first) == 1
    failed_node = next(iter(first))
    snapshots: list[dict[str, tuple[str, float]]] = []

    async def fail_first_then_watch(n: int, request: object) -> None:
        snapshots.append(dict(service.load._jobs.get(job.job_id, {})))
        if n == 1:
            raise ConnectionError("node unreachable")

    nodes.before_execute = fail_first_then_watch
    final = await run_until_final(service, store, job.job_id)
    assert final.state is JobState.COMPLETED, final.error
    assert (await store.get_result(job.job_id)).fallbacks == 1
    assert set(snapshots[0]) == {"f0", "f1"}  # the original plan, before anything ran
    fallback = snapshots[1:]
    assert fallback and all(failed_node not in {node for node, _ in s.values()} for s in fallback)
    assert all(set(s) <= {"fb1-f0", "fb1-f1"} for s in fallback)
    assert "fb1-f0" not in fallback[-1]  # the readout runs after the gate fragment finished
    assert service.load.per_node() == {}


def _submit_and_wait(url: str, seeds: range, out: dict[int, str]) -> None:
    with Client(url) as client:
        for seed in seeds:
            out[seed] = client.submit(GHZ, shots=20, seed=seed)["job_id"]


@pytest.mark.integration
def test_fifty_concurrent_jobs_on_four_nodes_use_every_capable_node(tmp_path: Path) -> None:
    """Issue 13: 50 concurrent jobs on 4 identical nodes use every node (from the fragment records)."""
    specs = [NodeSpec(name, "ideal", ["--qubits", "4"]) for name in ("a", "b", "c", "d")]
    with LocalCluster(tmp_path, specs) as cluster:
        ids: dict[int, str] = {}
        threads = [threading.Thread(target=_submit_and_wait, args=(cluster.api_url, range(k, 50, 4), ids))
                   for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(ids) == 50
        with Client(cluster.api_url) as client:
            finals = [client.wait(job_id, timeout_s=120) for job_id in ids.values()]
            results = [client.result(job_id) for job_id in ids.values()]
            metrics = client._http.get("/metrics").text
    assert [f["state"] for f in finals] == ["COMPLETED"] * 50
    per_node = Counter(r["node_id"] for result in results for r in result["fragments"] if r["status"] == "DONE")
    assert set(per_node) == set(cluster.node_peer_ids.values()), per_node
    assert "qb2_node_committed_work_seconds" in metrics
