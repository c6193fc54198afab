"""HTTP hygiene of the job API in-process (FR-009, FR-012, FR-014; issue 11): every response carries
``X-Request-ID`` and the JSON error shape, oversized bodies (sized or chunked) get 413 with
``Connection: close``, 405 carries ``Allow``, strings that are not valid Unicode and unknown fields are
422s naming the field, stored text that is not valid Unicode never breaks a read, and the websocket of
an unknown job is accepted and closed with 4404."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():  # starlette warns that its TestClient will move to httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from qb2.coordinator.api import create_app
from qb2.coordinator.config import load_settings
from qb2.coordinator.registry import Registry
from qb2.coordinator.service import CoordinatorService, Submission
from qb2.coordinator.store import JobStore
from qb2.experiments.circuits import benchmark_circuit
from qb2.protocol.jobs import Priority
from tests.conftest import InProcessCluster
from tests.test_api import api, make_client  # noqa: F401 - the `api` fixture

GHZ = benchmark_circuit("ghz", 4).qasm


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """``status``, an ``X-Request-ID`` and the ``{"error": {"code", "message", "details"}}`` shape."""
    assert response.status_code == status, response.text
    assert response.headers.get("X-Request-ID"), dict(response.headers)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
async def small(tmp_path: Path, ideal_cluster: InProcessCluster) -> AsyncIterator[tuple[CoordinatorService, httpx.AsyncClient]]:
    service, client = await make_client(tmp_path, ideal_cluster, limits={"max_request_bytes": 4096})
    async with client:
        yield service, client


async def test_sized_oversized_body_is_413_with_close_and_request_id(small) -> None:  # type: ignore[no-untyped-def]
    _, client = small
    response = await client.post("/api/v1/circuits/submit", json={"qasm": "x" * 10_000},
                                 headers={"X-Request-ID": "big-1"})
    error = assert_error(response, 413, "too_large")
    assert response.headers["X-Request-ID"] == "big-1" and response.headers["connection"] == "close"
    assert error["details"] == {"max_bytes": 4096}
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_chunked_oversized_body_is_413_not_400(small) -> None:  # type: ignore[no-untyped-def]
    _, client = small

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"qasm": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    response = await client.post("/api/v1/circuits/submit", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers  # really streamed
    assert_error(response, 413, "too_large")
    assert response.headers["connection"] == "close"
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_chunked_body_within_the_limit_is_served(small) -> None:  # type: ignore[no-untyped-def]
    _, client = small
    body = json.dumps({"qasm": GHZ, "tags": ["chunked"]}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 50):
            yield body[i:i + 50]

    response = await client.post("/api/v1/circuits/submit", content=chunks(),
                                 headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"]


async def test_route_errors_are_json_with_request_id(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    assert_error(await client.get("/api/v1/nope"), 404, "http_error")
    assert_error(await client.post("/nope", json={"a": 1}), 404, "http_error")
    wrong = await client.delete("/api/v1/jobs")
    assert_error(wrong, 405, "http_error")
    assert wrong.headers["Allow"] == "GET"
    submit_get = await client.get("/api/v1/circuits/submit")
    assert_error(submit_get, 405) and submit_get.headers["Allow"] == "POST"
    assert_error(await client.get("/api/v1/jobs/nope"), 404, "not_found")
    assert_error(await client.post("/api/v1/circuits/submit", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422, "invalid_request")


async def test_unexpected_exception_is_a_json_500_with_request_id(api, caplog) -> None:  # type: ignore[no-untyped-def]
    service, client = api

    async def broken(**_: object) -> None:
        raise RuntimeError("disk on fire")

    service.store.list_jobs = broken
    response = await client.get("/api/v1/jobs", headers={"X-Request-ID": "boom-1"})
    error = assert_error(response, 500, "internal")
    assert response.headers["X-Request-ID"] == "boom-1" and error["details"] == {"request_id": "boom-1"}
    assert "disk on fire" not in response.text  # the cause is logged, not shown
    logged = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert logged and "disk on fire" in str(logged[-1].exc_info[1])
    assert (await client.get("/api/v1/health")).status_code in (200, 503)  # still serving


async def test_401_and_429_carry_request_id(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    _, client = await make_client(tmp_path, ideal_cluster, api={"api_keys": ["k"], "rate_limit": "2/minute"})
    async with client:
        assert_error(await client.post("/api/v1/circuits/submit", json={"qasm": GHZ}), 401, "unauthorized")
        statuses = [(await client.get("/api/v1/jobs", headers={"X-API-Key": "k"})) for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 200, 429]
        assert_error(statuses[-1], 429, "rate_limited")
        assert all(r.headers["X-Request-ID"] for r in statuses)


@pytest.mark.parametrize(("raw", "field"), [
    ('{"qasm": "GHZ", "tags": ["ok", "\\ud800"]}', "tags.1"),
    ('{"qasm": "GHZ", "name": "a\\udfffb"}', "name"),
    ('{"qasm": "OPENQASM 2.0;\\n// \\ud83d\\n"}', "qasm"),
])
async def test_lone_surrogates_are_422_naming_the_field(api, raw: str, field: str) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    raw = raw.replace('"GHZ"', json.dumps(GHZ))
    response = await client.post("/api/v1/circuits/submit", content=raw.encode(),
                                 headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["errors"][0]["field"] == field, error
    assert "surrogate" in error["message"] or "unicode" in error["message"], error
    plan = await client.post("/api/v1/circuits/plan", content=raw.encode(), headers={"content-type": "application/json"})
    assert_error(plan, 422, "invalid_request")
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_a_valid_surrogate_pair_is_accepted(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    raw = json.dumps({"qasm": GHZ, "tags": ["\U0001F600"]}, ensure_ascii=True).encode()  # "\ud83d\ude00"
    response = await client.post("/api/v1/circuits/submit", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    job = (await client.get(f"/api/v1/jobs/{response.json()['job_id']}")).json()
    assert job["tags"] == ["\U0001F600"]


async def test_surrogate_key_of_an_unknown_field_does_not_break_the_error(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    raw = ('{"qasm": %s, "\\ud800": 1}' % json.dumps(GHZ)).encode()
    response = await client.post("/api/v1/circuits/submit", content=raw, headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_request")  # a key that is not text cannot be named
    assert error["message"].startswith("body: ") and "unicode" in error["message"]


async def test_stored_text_that_is_not_unicode_never_breaks_reads(api) -> None:  # type: ignore[no-untyped-def]
    """A job stored before strings were checked at the door (or by another path) reads back escaped."""
    service, client = api
    job = await service.submit(Submission(GHZ, None, 100, 1, "named", Priority.NORMAL, ("\ud800", "fine")))
    listed = await client.get("/api/v1/jobs")
    assert listed.status_code == 200, listed.text
    assert listed.json()["jobs"][0]["tags"] == ["\\ud800", "fine"]
    one = await client.get(f"/api/v1/jobs/{job.job_id}")
    assert one.status_code == 200 and one.json()["tags"] == ["\\ud800", "fine"]
    assert (await client.get("/api/v1/jobs", params={"tag": "fine"})).json()["total"] == 1
    for path in ("events", "fragments", "reservations"):
        assert (await client.get(f"/api/v1/jobs/{job.job_id}/{path}")).status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"qasm": GHZ, "shot": 5}, "shot"),
    ({"qasm": GHZ, "memory": True}, "memory"),
    ({"qasm": GHZ, "orchestration": {"x": 1}}, "orchestration"),
    ({"qasm": GHZ, "weights": {"latncy": 1.0}}, "weights.latncy"),
])
async def test_unknown_fields_are_422_naming_the_field(api, body: dict, field: str) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    for path in ("/api/v1/circuits/submit", "/api/v1/circuits/plan"):
        error = assert_error(await client.post(path, json=body), 422, "invalid_request")
        assert [e["field"] for e in error["details"]["errors"]] == [field], error
        assert error["message"].startswith(f"{field}: ")
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


def _sync_app(tmp_path: Path, **settings):  # type: ignore[no-untyped-def]
    cluster = InProcessCluster(ideal=True)
    config = load_settings(data_dir=tmp_path, **settings)
    registry = Registry(config.discovery.registry_ttl_s)
    for advert in cluster.adverts:
        registry.observe(advert.model_copy(update={"timestamp": time.time()}))
    service = CoordinatorService(config, registry, JobStore(tmp_path / "c.db"), cluster.invoke)
    return create_app(service, "12D3KooWtest")


def test_websocket_of_an_unknown_job_is_accepted_then_closed_4404(tmp_path: Path) -> None:
    with TestClient(_sync_app(tmp_path), backend="trio") as client:
        with client.websocket_connect("/api/v1/jobs/nope/stream") as ws:  # accepted: no HTTP 403
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
    assert closed.value.code == 4404


def test_websocket_without_a_key_is_closed_4401(tmp_path: Path) -> None:
    with TestClient(_sync_app(tmp_path, api={"api_keys": ["k"]}), backend="trio") as client:
        with client.websocket_connect("/api/v1/jobs/nope/stream") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 4401
        with client.websocket_connect("/api/v1/jobs/nope/stream?api_key=k") as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 4404


async def test_openapi_documents_500_and_forbids_extra_fields(api) -> None:  # type: ignore[no-untyped-def]
    _, client = api
    schema = (await client.get("/openapi.json")).json()
    submit = schema["paths"]["/api/v1/circuits/submit"]["post"]
    assert "500" in submit["responses"]
    assert schema["components"]["schemas"]["SubmitRequest"]["additionalProperties"] is False
