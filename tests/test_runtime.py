"""Runtime and job pipeline failure paths (FR-006, FR-010): fragment-level errors, recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio

from qb2.compiler import PlannerOptions, parse_qasm, plan_circuit
from qb2.coordinator.config import load_settings
from qb2.coordinator.registry import Registry
from qb2.coordinator.runtime import FragmentFailed, execute_plan
from qb2.coordinator.service import CoordinatorService, Submission
from qb2.coordinator.store import JobStore
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.execute import ExecuteError, ExecuteResponse
from qb2.protocol.jobs import JobOptions, JobState
from tests.conftest import InProcessCluster


def qft_plan(cluster: InProcessCluster):  # type: ignore[no-untyped-def]
    ir = parse_qasm(benchmark_circuit("qft", 5, "qasm2").qasm)
    return ir, plan_circuit(ir, cluster.adverts, PlannerOptions(link_fidelity=1.0))


async def test_unreachable_node_fails_the_plan_with_a_fragment_level_error(ideal_cluster: InProcessCluster) -> None:
    ir, plan = qft_plan(ideal_cluster)
    victim = plan.fragments[1].node_id
    records = {}

    async def invoke(node_id, request, payload):  # type: ignore[no-untyped-def]
        if node_id == victim:
            raise ConnectionError("connection refused")
        return await ideal_cluster.invoke(node_id, request, payload)

    async def on_record(record) -> None:  # type: ignore[no-untyped-def]
        records[record.fragment_id] = record.model_copy()

    with pytest.raises(FragmentFailed) as info:  # bare, not an exception group
        await execute_plan(plan, ir, invoke, job_id="j", shots=10, seed=1, on_record=on_record)
    failed = info.value
    assert failed.node_id == victim and "connection refused" in failed.reason
    assert records[failed.fragment_id].status == "FAILED"
    assert all(r.status != "RUNNING" for r in records.values())


async def test_node_error_response_and_wrong_responder_are_fragment_failures(ideal_cluster: InProcessCluster) -> None:
    ir, plan = qft_plan(ideal_cluster)

    async def refusing(node_id, request, payload):  # type: ignore[no-untyped-def]
        error = ExecuteError(code="unsupported_gate", message="cp cannot be translated")
        return ExecuteResponse(node_id=node_id, ok=False, error=error), b""

    with pytest.raises(FragmentFailed, match="unsupported_gate: cp cannot be translated"):
        await execute_plan(plan, ir, refusing, job_id="j", shots=10, seed=1)

    async def impostor(node_id, request, payload):  # type: ignore[no-untyped-def]
        response, out = await ideal_cluster.invoke(node_id, request, payload)
        return response.model_copy(update={"node_id": "someone-else"}), out

    with pytest.raises(FragmentFailed, match="not the assigned node"):
        await execute_plan(plan, ir, impostor, job_id="j", shots=10, seed=1)


def make_service(tmp_path: Path, cluster: InProcessCluster, invoke=None, ttl_s: float = 10.0):  # type: ignore[no-untyped-def]
    settings = load_settings(data_dir=tmp_path, discovery={"registry_ttl_s": ttl_s})
    registry = Registry(ttl_s)
    store = JobStore(tmp_path / "c.db")
    return CoordinatorService(settings, registry, store, invoke or cluster.invoke), registry, store


async def test_fallback_replans_without_the_failed_node_and_continues_the_state(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    """A node that dies mid-job: retries, then a fallback plan on the others, resuming the
    state the first plan left. With ideal nodes the counts still equal Aer's (FR-007, NFR-002)."""
    from qiskit import transpile
    from qiskit_aer import AerSimulator

    from qb2.compiler.export import to_quantum_circuit

    circuit = benchmark_circuit("qft", 6)
    calls: list[str] = []
    dead: set[str] = set()

    async def invoke(node_id, request, payload):  # type: ignore[no-untyped-def]
        calls.append(node_id)
        if node_id in dead:
            raise ConnectionError("connection refused")
        if len(calls) == 2:  # the node running the second invocation (a later segment) dies right then
            dead.add(node_id)
            raise ConnectionError("connection reset")
        return await ideal_cluster.invoke(node_id, request, payload)

    service, registry, store = make_service(tmp_path, ideal_cluster, invoke)
    service.settings.compiler.link_fidelity = 1.0
    service.settings.runtime.backoff_base_s = 0.0
    for advert in ideal_cluster.adverts:
        registry.observe(advert)
    # spread over three nodes, so the plan has several segments and the second one runs on a state
    # the first one changed: the fallback must continue from it
    job = await service.submit(Submission(circuit.qasm, None, 500, 9, "qft", options=JobOptions(min_nodes=3)))
    await service.process(job.job_id)
    stored = await store.get_job(job.job_id)
    assert stored.state is JobState.COMPLETED, stored.error
    result = await store.get_result(job.job_id)
    (victim,) = dead
    failed = [r for r in result.fragments if r.status == "FAILED"]
    assert failed and all(r.node_id == victim and r.attempts == 3 for r in failed)  # the segment's members
    assert all(r.errors == ["connection reset", "connection refused", "connection refused"] for r in failed)
    assert any(r.status == "DONE" and r.fallback == 0 for r in result.fragments)  # the first segment ran
    fallback = [r for r in result.fragments if r.fallback == 1]
    assert fallback and all(r.node_id != victim and r.original_node_id == victim for r in fallback)
    assert result.fallbacks == 1 and result.retries == 2
    ir = parse_qasm(circuit.qasm)
    sim = AerSimulator(method="density_matrix", seed_simulator=9)
    expected = sim.run(transpile(to_quantum_circuit(ir), sim, optimization_level=0), shots=500).result().get_counts()
    assert result.counts == expected


async def test_no_node_left_fails_fast_with_a_fragment_level_error(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    async def invoke(node_id, request, payload):  # type: ignore[no-untyped-def]
        raise ConnectionError(f"{node_id[-4:]} is down")

    service, registry, store = make_service(tmp_path, ideal_cluster, invoke)
    service.settings.runtime.backoff_base_s = 0.0
    for advert in ideal_cluster.adverts:
        registry.observe(advert)
    job = await service.submit(Submission(benchmark_circuit("ghz", 8).qasm, None, 100, 1, "ghz"))
    started = time.monotonic()
    with trio.fail_after(10):
        await service.process(job.job_id)
    assert time.monotonic() - started < 5
    stored = await store.get_job(job.job_id)
    assert stored.state is JobState.FAILED and stored.error.code == "fragment_failed"
    details = stored.error.details
    assert details["fragment_id"] and details["node_id"] and details["attempts"] == 3
    assert details["fallback"]  # why no further fallback was possible
    fragments = await store.list_fragments(job.job_id)
    assert {f.status for f in fragments} >= {"FAILED"}


async def test_recovered_job_waits_for_nodes_to_readvertise(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    """After a restart the registry is empty; a requeued job waits for adverts instead of failing (FR-010)."""
    service, registry, store = make_service(tmp_path, ideal_cluster)
    for advert in ideal_cluster.adverts:
        registry.observe(advert)
    job = await service.submit(Submission(benchmark_circuit("wstate", 4).qasm, None, 100, 3, "w"))
    store.close()

    restarted, fresh_registry, store = make_service(tmp_path, ideal_cluster)  # same database, empty registry
    async with trio.open_nursery() as nursery:
        nursery.start_soon(restarted.run_workers)
        assert await restarted.recover() == 1
        with trio.fail_after(30):  # the worker compiles, finds no node, and waits for an advertisement
            while fresh_registry.waiters() == 0:
                await trio.sleep(0.01)
        assert (await store.get_job(job.job_id)).state is JobState.COMPILING  # waiting, not failed
        for advert in ideal_cluster.adverts:
            fresh_registry.observe(advert.model_copy(update={"timestamp": time.time()}))
        with trio.fail_after(30):
            while not (await store.get_job(job.job_id)).state.final:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert (await store.get_job(job.job_id)).state is JobState.COMPLETED
    assert sum((await store.get_result(job.job_id)).counts.values()) == 100


async def test_recovered_job_fails_after_the_grace_period_without_nodes(
    tmp_path: Path, ideal_cluster: InProcessCluster
) -> None:
    service, registry, store = make_service(tmp_path, ideal_cluster, ttl_s=0.2)
    for advert in ideal_cluster.adverts:
        registry.observe(advert)
    job = await service.submit(Submission(benchmark_circuit("ghz", 3).qasm, None, 10, 3, "g"))
    restarted, _, store = make_service(tmp_path, ideal_cluster, ttl_s=0.2)
    await restarted.process(job.job_id)
    failed = await store.get_job(job.job_id)
    assert failed.state is JobState.FAILED and failed.error.code == "no_nodes"
