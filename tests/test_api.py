"""The job API in-process (FR-009, FR-012, FR-014): auth, rate limits, size limits, filters,
priority, cancel, events, metrics. The app and service are the real ones; nodes are the
real node handler called in-process (see conftest.InProcessCluster)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from qb2.coordinator.api import create_app
from qb2.coordinator.config import load_settings
from qb2.coordinator.queue import JobQueue, QueueFull
from qb2.coordinator.registry import Registry
from qb2.coordinator.service import CoordinatorService
from qb2.coordinator.store import JobStore
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.jobs import Priority
from tests.conftest import InProcessCluster

GHZ = benchmark_circuit("ghz", 4).qasm


async def make_client(tmp_path: Path, cluster: InProcessCluster, invoke=None, **settings):  # type: ignore[no-untyped-def]
    config = load_settings(data_dir=tmp_path, **settings)
    registry = Registry(config.discovery.registry_ttl_s)
    for advert in cluster.adverts:
        registry.observe(advert.model_copy(update={"timestamp": time.time()}))
    service = CoordinatorService(config, registry, JobStore(tmp_path / "c.db"), invoke or cluster.invoke)
    app = create_app(service, "12D3KooWtest")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://qb2")
    return service, client


@pytest.fixture
async def api(tmp_path: Path, ideal_cluster: InProcessCluster) -> AsyncIterator[tuple[CoordinatorService, httpx.AsyncClient]]:
    service, client = await make_client(tmp_path, ideal_cluster)
    async with client:
        yield service, client


async def test_api_keys_are_required_when_configured(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    _, client = await make_client(tmp_path, ideal_cluster, api={"api_keys": ["old-key", "new-key"]})
    async with client:
        missing = await client.get("/api/v1/jobs")
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert (await client.get("/api/v1/jobs", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await client.get("/api/v1/jobs", headers={"X-API-Key": "old-key"})).status_code == 200
        assert (await client.get("/api/v1/jobs", headers={"Authorization": "Bearer new-key"})).status_code == 200
        assert (await client.get("/api/v1/health")).status_code in (200, 503)  # open for load balancers
        assert (await client.get("/metrics")).status_code == 200


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    _, client = await make_client(tmp_path, ideal_cluster, api={"rate_limit": "5/minute"})
    async with client:
        statuses = [(await client.get("/api/v1/jobs")).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        limited = await client.get("/api/v1/jobs")
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 61


async def test_oversized_body_is_413_before_parsing(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    _, client = await make_client(tmp_path, ideal_cluster, limits={"max_request_bytes": 2048})
    async with client:
        response = await client.post("/api/v1/circuits/submit", json={"qasm": "x" * 5000})
        assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
        assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_request_id_is_echoed_or_generated(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    assert (await client.get("/api/v1/jobs", headers={"X-Request-ID": "abc"})).headers["X-Request-ID"] == "abc"
    assert len((await client.get("/api/v1/jobs")).headers["X-Request-ID"]) == 32


async def test_filters_by_state_tag_and_creation_time(api) -> None:  # type: ignore[no-untyped-def]
    service, client = api
    first = (await client.post("/api/v1/circuits/submit", json={"qasm": GHZ, "tags": ["exp-a"]})).json()
    middle = time.time()
    second = (await client.post("/api/v1/circuits/submit", json={"qasm": GHZ, "tags": ["exp-b", "x"]})).json()
    tagged = (await client.get("/api/v1/jobs", params={"tag": "exp-b"})).json()
    assert [j["job_id"] for j in tagged["jobs"]] == [second["job_id"]] and tagged["jobs"][0]["tags"] == ["exp-b", "x"]
    before = (await client.get("/api/v1/jobs", params={"created_before": middle})).json()
    assert [j["job_id"] for j in before["jobs"]] == [first["job_id"]]
    queued = (await client.get("/api/v1/jobs", params={"state": "QUEUED", "limit": 1})).json()
    assert queued["total"] == 2 and len(queued["jobs"]) == 1
    assert (await client.get("/api/v1/jobs", params={"state": "NOPE"})).status_code == 422


def test_queue_orders_by_priority_then_age() -> None:
    async def main() -> list[str]:
        queue = JobQueue(capacity=4)
        for job_id, priority in [("a", Priority.LOW), ("b", Priority.NORMAL), ("c", Priority.URGENT),
                                 ("d", Priority.HIGH)]:
            queue.put_nowait(job_id, priority)
        with pytest.raises(QueueFull):
            queue.put_nowait("e", Priority.URGENT)
        assert queue.remove("b") and not queue.remove("b")
        return [await queue.get() for _ in range(3)]

    assert trio.run(main) == ["c", "d", "a"]


async def test_cancel_queued_and_running_jobs(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    release = trio.Event()
    started = trio.Event()

    async def slow(node_id, request, payload):  # type: ignore[no-untyped-def]
        started.set()
        await release.wait()
        return await ideal_cluster.invoke(node_id, request, payload)

    service, client = await make_client(tmp_path, ideal_cluster, invoke=slow, runtime={"max_concurrent_jobs": 1})
    async with client, trio.open_nursery() as nursery:
        running = (await client.post("/api/v1/circuits/submit", json={"qasm": GHZ})).json()["job_id"]
        queued = (await client.post("/api/v1/circuits/submit", json={"qasm": GHZ})).json()["job_id"]
        nursery.start_soon(service.run_workers)
        await started.wait()
        assert (await client.get(f"/api/v1/jobs/{running}")).json()["state"] == "EXECUTING"
        cancelled = (await client.post(f"/api/v1/jobs/{queued}/cancel")).json()
        assert cancelled["state"] == "CANCELLED" and queued not in service.queue
        assert (await client.post(f"/api/v1/jobs/{running}/cancel")).json()["state"] == "CANCELLED"
        fragments = (await client.get(f"/api/v1/jobs/{running}/fragments")).json()
        assert fragments and all(f["status"] in ("CANCELLED", "PENDING", "DONE") for f in fragments)
        states = [e["state"] for e in (await client.get(f"/api/v1/jobs/{running}/events")).json()]
        assert states == ["QUEUED", "COMPILING", "RESERVING", "EXECUTING", "CANCELLED"]
        again = await client.post(f"/api/v1/jobs/{running}/cancel")
        assert again.json()["state"] == "CANCELLED"  # idempotent on final jobs
        assert (await client.post("/api/v1/jobs/nope/cancel")).status_code == 404
        release.set()
        nursery.cancel_scope.cancel()


async def test_metrics_count_jobs_and_fragments(api) -> None:  # type: ignore[no-untyped-def]
    service, client = api
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run_workers)
        job_id = (await client.post("/api/v1/circuits/submit", json={"qasm": GHZ})).json()["job_id"]
        with trio.fail_after(30):
            while (await client.get(f"/api/v1/jobs/{job_id}")).json()["state"] != "COMPLETED":
                with trio.move_on_after(0.2):  # a change may land between the GET and the wait
                    await service.wait_changed()
        nursery.cancel_scope.cancel()
    text = (await client.get("/metrics")).text
    assert 'qb2_jobs_finished_total{state="COMPLETED"} 1.0' in text
    assert "qb2_job_success_rate 1.0" in text
    assert "qb2_fragment_invocations_total{" in text and "qb2_queue_depth 0.0" in text
    assert 'qb2_registry_nodes{status="available"} 4.0' in text
