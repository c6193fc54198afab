"""The HTTP job API (FR-009), served by hypercorn's trio worker in the coordinator process.

Every error is ``{"error": {"code", "message", "details"}}`` with a 4xx/5xx
status; schema errors are 422 with the offending field in ``details``.
OpenAPI docs are at ``/docs`` and ``/openapi.json``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from coordinator.jobs import ErrorInfo, FragmentRecord, JobRecord, JobResult, JobState
from coordinator.service import CoordinatorService, Submission, SubmissionRejected
from protocol.advert import ServiceAdvertisement
from protocol.ids import PROTOCOL_VERSION


class SubmitRequest(BaseModel):
    """Body of ``POST /api/v1/circuits/submit``."""

    qasm: str = Field(min_length=1, description="OpenQASM 2 or 3 program text")
    format: Literal["qasm2", "qasm3"] | None = Field(default=None, description="detected from the header when omitted")
    shots: int | None = Field(default=None, ge=1, description="measurement repetitions; default from config")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="simulator seed for reproducible counts")
    name: str | None = Field(default=None, max_length=128, description="label shown in job lists")


class SubmitResponse(BaseModel):
    """Returned at once (202) by submit: poll ``status_url`` or read ``result_url`` when final."""

    job_id: str
    state: JobState
    status_url: str
    result_url: str


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobRecord]
    total: int
    limit: int
    offset: int


class ResultResponse(JobResult):
    """Result of a COMPLETED job."""

    job_id: str
    state: JobState


class NodeView(BaseModel):
    """A registry entry: the latest advertisement, its age and derived status (FR-002)."""

    node_id: str
    name: str
    status: str
    native_gates: list[str]
    qubits: int
    fidelity: dict[str, float]
    advert_age_s: float
    addrs: list[str]
    executor: str


class NodeList(BaseModel):
    """All known nodes, stale ones included."""

    nodes: list[NodeView]
    available: int


class Health(BaseModel):
    """Coordinator health and its dependencies."""

    status: Literal["ok", "degraded"]
    peer_id: str
    protocol_version: str
    nodes_available: int
    jobs: dict[str, int]
    uptime_s: float


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> JSONResponse:
    body = {"error": ErrorInfo(code=code, message=message, details=details or {}).model_dump()}
    return JSONResponse(status_code=status, content=body)


def create_app(service: CoordinatorService, peer_id: str) -> FastAPI:
    """Build the FastAPI application bound to ``service``."""
    app = FastAPI(
        title="qb2 coordinator",
        version=PROTOCOL_VERSION,
        description="Submit OpenQASM circuits for distributed execution on qb2 service nodes.",
    )
    started = time.time()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return _error(422, "invalid_request", f"{first['field'] or 'body'}: {first['message']}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail))

    @app.post("/api/v1/circuits/submit", status_code=202, response_model=SubmitResponse,
              responses={413: {"model": dict}, 422: {"model": dict}, 503: {"model": dict}})
    async def submit(body: SubmitRequest) -> Any:
        """Validate and queue a circuit; returns ``job_id`` at once."""
        shots = body.shots or service.settings.limits.default_shots
        if shots > service.settings.limits.max_shots:
            return _error(422, "invalid_request", f"shots: at most {service.settings.limits.max_shots} allowed",
                          {"errors": [{"field": "shots", "message": "too many shots"}]})
        try:
            job = await service.submit(Submission(body.qasm, body.format, shots, body.seed, body.name))
        except SubmissionRejected as exc:
            return JSONResponse(status_code=exc.status, content={"error": exc.error.model_dump()})
        return SubmitResponse(job_id=job.job_id, state=job.state, status_url=f"/api/v1/jobs/{job.job_id}",
                              result_url=f"/api/v1/jobs/{job.job_id}/result")

    @app.get("/api/v1/jobs", response_model=JobPage)
    async def list_jobs(
        state: JobState | None = None,
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=2**62),
    ) -> JobPage:
        """Jobs newest first, optionally filtered by ``state``."""
        jobs, total = await service.store.list_jobs(state=state, limit=limit, offset=offset)
        return JobPage(jobs=jobs, total=total, limit=limit, offset=offset)

    @app.get("/api/v1/jobs/{job_id}", response_model=JobRecord, responses={404: {"model": dict}})
    async def get_job(job_id: str) -> Any:
        """The job's state and metadata."""
        job = await service.store.get_job(job_id)
        return job if job else _error(404, "not_found", f"no job {job_id}")

    @app.get("/api/v1/jobs/{job_id}/fragments", response_model=list[FragmentRecord])
    async def get_fragments(job_id: str) -> Any:
        """Per-fragment execution records so far (FR-006)."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        return await service.store.list_fragments(job_id)

    @app.get("/api/v1/jobs/{job_id}/plan", responses={404: {"model": dict}, 409: {"model": dict}})
    async def get_plan(job_id: str) -> Any:
        """The job's execution plan: fragments, dependencies, nodes, ebits, estimated fidelity."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        plan = await service.store.get_plan(job_id)
        return json.loads(plan) if plan else _error(409, "not_ready", "the job has not been compiled yet")

    @app.get("/api/v1/jobs/{job_id}/result", response_model=ResultResponse,
             responses={404: {"model": dict}, 409: {"model": dict}})
    async def get_result(job_id: str) -> Any:
        """Counts, fidelities and fragment records of a COMPLETED job; 409 while it is not."""
        job = await service.store.get_job(job_id)
        if job is None:
            return _error(404, "not_found", f"no job {job_id}")
        result = await service.store.get_result(job_id)
        if result is None:
            details = {"state": job.state.value}
            if job.error:
                details["error"] = job.error.model_dump()
            return _error(409, "not_completed", f"job {job_id} is {job.state.value}", details)
        return ResultResponse(job_id=job_id, state=job.state, **result.model_dump())

    @app.get("/api/v1/nodes", response_model=NodeList)
    async def nodes() -> NodeList:
        """Every node in the registry with its status (``stale`` after the TTL)."""
        now = time.time()
        views = [_node_view(e.advert, service.registry.status(e.advert.node_id), now - e.received_at)
                 for e in service.registry.entries()]
        return NodeList(nodes=views, available=sum(v.status == "available" for v in views))

    @app.get("/api/v1/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        """200 when the database answers and at least one node is available, else 503."""
        jobs = await service.store.count_by_state()
        available = len(service.registry.query())
        body = Health(status="ok" if available else "degraded", peer_id=peer_id, protocol_version=PROTOCOL_VERSION,
                      nodes_available=available, jobs=jobs, uptime_s=time.time() - started)
        return JSONResponse(status_code=200 if available else 503, content=body.model_dump())

    return app


def _node_view(advert: ServiceAdvertisement, status: str, age_s: float) -> NodeView:
    return NodeView(
        node_id=advert.node_id, name=advert.name, status=status, native_gates=list(advert.native_gates),
        qubits=advert.qubit_range.max, fidelity=advert.fidelity.model_dump(), advert_age_s=round(age_s, 3),
        addrs=list(advert.addrs), executor=advert.executor,
    )
