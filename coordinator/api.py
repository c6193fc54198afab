"""The HTTP job API (FR-009, FR-012, FR-014), served by hypercorn's trio worker in the coordinator process.

Every error is ``{"error": {"code", "message", "details"}}`` with a 4xx/5xx
status; schema errors are 422 with the offending field in ``details``.
OpenAPI docs are at ``/docs`` and ``/openapi.json``. Every response carries
``X-Request-ID`` (the client's, or a new one), which also tags the log lines.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from contextvars import ContextVar
from typing import Any

import anyio
import trio
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from limits import parse as parse_rate
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qb2.compiler.plan import Plan
from qb2.coordinator.service import CoordinatorService, Submission, SubmissionRejected, detect_format
from qb2.protocol.advert import ServiceAdvertisement
from qb2.protocol.http import (
    DependencyHealth,
    ErrorBody,
    Health,
    JobPage,
    NodeList,
    NodeView,
    ResultResponse,
    SubmitRequest,
    SubmitResponse,
)
from qb2.protocol.ids import PROTOCOL_VERSION
from qb2.protocol.jobs import CostWeightOverrides, ErrorInfo, FragmentRecord, JobEvent, JobOptions, JobRecord, JobState

log = logging.getLogger("qb2.coordinator.api")

#: The request id of the HTTP request being served (for log correlation).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to log records emitted while serving an HTTP request (FR-012)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


_OPEN_PATHS = frozenset({"/api/v1/health", "/metrics"})  # load balancers and scrapers carry no key


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 429, 500, 503)
}


def _printable(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8 (a lone surrogate becomes the text ``\\ud800``)."""
    if isinstance(value, str):  # "backslashreplace" changes only what cannot be encoded
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


class SafeJSONResponse(JSONResponse):
    """The app's JSON response: text stored before strings were checked at the door (or any other text
    that is not valid Unicode) is escaped instead of failing the request (FR-014)."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return super().render(_printable(content))


def _error(status: int, code: str, message: str, details: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": ErrorInfo(code=code, message=message, details=details or {}).model_dump()}
    return SafeJSONResponse(status_code=status, content=body, headers=headers)


class HttpDoor:
    """The outermost ASGI layer of the app (FR-012, FR-014); it wraps even Starlette's error middleware.

    * Request id: takes the client's ``X-Request-ID`` or makes one, sets :data:`request_id` for the
      log lines, and adds the header to every HTTP response (errors, 413 and 500 included).
    * Body limit: reads the whole body first, counting it as it arrives (``Content-Length`` or
      chunked), and hands it to the app only when it is at most ``max_bytes``. So no handler ever
      answers before the body is read, and the connection stays usable after any 4xx.
    * Over the limit: 413 ``too_large`` with ``Connection: close``. The rest of the body is first read
      and thrown away (up to ``drain_bytes`` more and ``drain_s`` seconds) so that the client, which
      writes its whole body before it reads, gets the 413 rather than a reset; then the server closes.
    * An exception nothing else answered: a JSON 500 ``internal`` (the traceback is logged).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int | None = None, drain_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else max(16 * 1024 * 1024, 8 * max_bytes)
        self.drain_s = drain_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw_rid = next((v for k, v in scope.get("headers", []) if k.lower() == b"x-request-id" and v), None)
        rid = raw_rid.decode("latin-1") if raw_rid else uuid.uuid4().hex
        token = request_id.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, rid)
        finally:
            request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("X-Request-ID", rid)
            await send(message)

        declared = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send_with_id, int(declared) - self.max_bytes, finished=False)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before its body was complete
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send_with_id, None, finished=not message.get("more_body"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_id)
        except Exception:
            if started:  # the 500 went out already (the error handler logged the traceback)
                return
            log.exception("unhandled error serving %s %s", scope.get("method"), scope.get("path"))
            await _error(500, "internal", "internal server error; the coordinator logged the cause",
                         {"request_id": rid})(scope, replay, send_with_id)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, remaining: int | None,
                         finished: bool) -> None:
        response = _error(413, "too_large", f"request body exceeds {self.max_bytes} bytes",
                          {"max_bytes": self.max_bytes}, headers={"Connection": "close"})
        drained = anyio.Event()

        async def drain() -> None:
            nonlocal finished
            budget = self.drain_bytes
            if remaining is None or remaining <= budget:
                with anyio.move_on_after(self.drain_s):
                    while not finished and budget >= 0:
                        message = await receive()
                        budget -= len(message.get("body", b""))
                        finished = message["type"] != "http.request" or not message.get("more_body", False)
            drained.set()
            while not finished:  # keep the server's body queue moving while the 413 goes out
                message = await receive()
                finished = message["type"] != "http.request" or not message.get("more_body", False)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drain)
            await drained.wait()
            await response(scope, receive, send)
            tasks.cancel_scope.cancel()


class _App(FastAPI):
    """FastAPI with :class:`HttpDoor` outside Starlette's whole middleware stack."""

    max_request_bytes: int = 1024 * 1024

    def build_middleware_stack(self) -> ASGIApp:
        return HttpDoor(super().build_middleware_stack(), self.max_request_bytes)


def create_app(service: CoordinatorService, peer_id: str, health_probe: Any = None) -> FastAPI:
    """Build the FastAPI application bound to ``service``.

    Args:
        peer_id: the coordinator's libp2p peer ID (shown by health).
        health_probe: optional callable returning ``{dependency: (ok, detail)}``
            for the libp2p host and pubsub mesh.
    """
    settings = service.settings
    app = _App(
        default_response_class=SafeJSONResponse,
        title="qb2 coordinator",
        version=PROTOCOL_VERSION,
        description="Submit OpenQASM circuits for distributed execution on qb2 service nodes. "
        "Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`.",
    )
    app.max_request_bytes = settings.limits.max_request_bytes
    started = time.time()
    keys = [k.get_secret_value().encode() for k in settings.api.api_keys]
    limiter = MovingWindowRateLimiter(MemoryStorage()) if settings.api.rate_limit else None
    rate = parse_rate(settings.api.rate_limit) if settings.api.rate_limit else None

    def presented_key(headers: Any) -> str | None:
        key = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        return key

    def key_ok(key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode()
        matches = [hmac.compare_digest(given, k) for k in keys]  # constant time per key, no early exit
        return any(matches)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        path = request.url.path
        key = presented_key(request.headers)
        if keys and path not in _OPEN_PATHS and not key_ok(key):
            return _error(401, "unauthorized", "missing or invalid API key; send X-API-Key",
                          headers={"WWW-Authenticate": "Bearer"})
        if limiter is not None and rate is not None and path not in _OPEN_PATHS and not limiter.hit(
            rate, client_id := (key if keys else None) or (request.client.host if request.client else "unknown")
        ):  # per valid API key when keys are on; per IP otherwise (an invented key is no new identity)
            stats = limiter.get_window_stats(rate, client_id)
            retry = max(1, int(stats.reset_time - time.time()) + 1)
            return _error(429, "rate_limited", f"rate limit {settings.api.rate_limit} exceeded; retry later",
                          {"retry_after_s": retry}, headers={"Retry-After": str(retry)})
        response: Response = await call_next(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return _error(422, "invalid_request", f"{first['field'] or 'body'}: {first['message']}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)  # 405 keeps Allow

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal", "internal server error; the coordinator logged the cause",
                      {"request_id": request_id.get()})

    @app.post("/api/v1/circuits/submit", status_code=202, response_model=SubmitResponse, responses=_ERRORS)
    async def submit(body: SubmitRequest) -> Any:
        """Validate and queue a circuit; returns ``job_id`` at once. Nothing is queued on error."""
        shots = body.shots or settings.limits.default_shots
        if shots > settings.limits.max_shots:
            return _error(422, "invalid_request", f"shots: at most {settings.limits.max_shots} allowed",
                          {"errors": [{"field": "shots", "message": "too many shots"}]})
        try:
            options = JobOptions(weights=body.weights or CostWeightOverrides(), min_fidelity=body.min_fidelity,
                                 min_nodes=body.min_nodes)
            job = await service.submit(Submission(body.qasm, body.format, shots, body.seed, body.name,
                                                  body.priority, tuple(body.tags), options))
        except SubmissionRejected as exc:
            return SafeJSONResponse(status_code=exc.status, content={"error": exc.error.model_dump()})
        base = f"/api/v1/jobs/{job.job_id}"
        return SubmitResponse(job_id=job.job_id, state=job.state, status_url=base, result_url=f"{base}/result",
                              stream_url=f"{base}/stream")

    @app.post("/api/v1/circuits/plan", responses=_ERRORS)
    async def dry_run_plan(body: SubmitRequest) -> Any:
        """Compile against the current registry and return the plan without queuing anything (FR-004)."""
        options = JobOptions(weights=body.weights or CostWeightOverrides(), min_fidelity=body.min_fidelity,
                             min_nodes=body.min_nodes)
        fmt = body.format or detect_format(body.qasm)
        try:
            _, plan = await trio.to_thread.run_sync(service.compile, body.qasm, fmt, body.name or "circuit", options)
        except SubmissionRejected as exc:
            return SafeJSONResponse(status_code=exc.status, content={"error": exc.error.model_dump()})
        return _plan_body(plan)

    @app.get("/api/v1/jobs", response_model=JobPage, responses=_ERRORS)
    async def list_jobs(
        state: JobState | None = None,
        tag: str | None = Query(default=None, max_length=128),
        created_after: float | None = Query(default=None, ge=0, le=1e11, description="Unix seconds, inclusive"),
        created_before: float | None = Query(default=None, ge=0, le=1e11, description="Unix seconds, exclusive"),
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=2**62),
    ) -> JobPage:
        """Jobs newest first, filtered by ``state``, ``tag`` and creation time."""
        jobs, total = await service.store.list_jobs(state=state, tag=tag, created_after=created_after,
                                                    created_before=created_before, limit=limit, offset=offset)
        return JobPage(jobs=jobs, total=total, limit=limit, offset=offset)

    @app.get("/api/v1/jobs/{job_id}", response_model=JobRecord, responses=_ERRORS)
    async def get_job(job_id: str) -> Any:
        """The job's state and metadata."""
        job = await service.store.get_job(job_id)
        return job if job else _error(404, "not_found", f"no job {job_id}")

    @app.post("/api/v1/jobs/{job_id}/cancel", response_model=JobRecord, responses=_ERRORS)
    async def cancel(job_id: str) -> Any:
        """Cancel a queued or running job (final state CANCELLED); a finished job is returned unchanged."""
        job = await service.cancel(job_id)
        return job if job else _error(404, "not_found", f"no job {job_id}")

    @app.get("/api/v1/jobs/{job_id}/events", response_model=list[JobEvent], responses=_ERRORS)
    async def events(job_id: str) -> Any:
        """Every state change of the job, oldest first."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        return await service.store.events(job_id)

    @app.websocket("/api/v1/jobs/{job_id}/stream")
    async def stream(websocket: WebSocket, job_id: str) -> None:
        """Push each state change of the job as a JSON :class:`JobEvent`; closes after the final one.

        Close code 4404: unknown job; 4401: API key required (pass ``?api_key=`` or the header).
        """
        key = presented_key(websocket.headers) or websocket.query_params.get("api_key")
        await websocket.accept()  # then close with a code: a close before accepting would be an HTTP 403
        if keys and not key_ok(key):
            await websocket.close(code=4401, reason="API key required")
            return
        if await service.store.get_job(job_id) is None:
            await websocket.close(code=4404, reason=f"no job {job_id}"[:120])
            return
        last = 0
        try:
            while True:
                for event in await service.store.events(job_id, last):
                    await websocket.send_text(json.dumps(_printable(event.model_dump(mode="json"))))
                    last = event.event_id
                    if event.state.final:
                        await websocket.close()
                        return
                with trio.move_on_after(5):  # also re-read periodically: changes by other workers
                    await service.wait_changed()
        except WebSocketDisconnect:
            return

    @app.get("/api/v1/jobs/{job_id}/reservations", responses=_ERRORS)
    async def reservations(job_id: str) -> Any:
        """The job's reservation events (requested, granted, rejected, consumed, released), oldest first."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        return await service.store.reservation_events(job_id)

    @app.get("/api/v1/jobs/{job_id}/fragments", response_model=list[FragmentRecord], responses=_ERRORS)
    async def get_fragments(job_id: str) -> Any:
        """Per-fragment execution records so far (FR-006)."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        return await service.store.list_fragments(job_id)

    @app.get("/api/v1/jobs/{job_id}/plan", responses=_ERRORS)
    async def get_plan(job_id: str) -> Any:
        """The job's execution plan: fragments, dependencies, nodes, ebits, estimated fidelity."""
        if await service.store.get_job(job_id) is None:
            return _error(404, "not_found", f"no job {job_id}")
        plan = await service.store.get_plan(job_id)
        return _plan_body(Plan.model_validate_json(plan)) if plan else _error(409, "not_ready",
                                                                              "the job has not been compiled yet")

    @app.get("/api/v1/jobs/{job_id}/result", response_model=ResultResponse, responses=_ERRORS)
    async def get_result(job_id: str) -> Any:
        """Counts, fidelities and fragment records of a COMPLETED job; 409 while it is not."""
        job = await service.store.get_job(job_id)
        if job is None:
            return _error(404, "not_found", f"no job {job_id}")
        result = await service.store.get_result(job_id)
        if result is None:
            details: dict[str, Any] = {"state": job.state.value}
            if job.error:
                details["error"] = job.error.model_dump()
            return _error(409, "not_completed", f"job {job_id} is {job.state.value}", details)
        return ResultResponse(job_id=job_id, state=job.state, **result.model_dump())

    @app.get("/api/v1/nodes", response_model=NodeList, responses=_ERRORS)
    async def nodes() -> NodeList:
        """Every node in the registry with its status (``stale`` after the TTL)."""
        now = time.time()
        views = [
            _node_view(e.advert, service.registry.status(e.advert.node_id), now - e.received_at).model_copy(update={
                "degraded": service.registry.degraded(e.advert.node_id),
                "rtt_ms": None if e.rtt_s is None else round(e.rtt_s * 1000, 3), "loss": e.loss})
            for e in service.registry.entries()
        ]
        return NodeList(nodes=views, available=sum(v.status == "available" for v in views))

    @app.get("/api/v1/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> Any:
        """200 when the database, libp2p host, pubsub mesh and registry are all healthy, else 503."""
        deps: dict[str, DependencyHealth] = {}
        db_ok = await service.store.ping()
        deps["database"] = DependencyHealth(status="ok" if db_ok else "failing", detail=str(service.store.db_path))
        for name, (ok, detail) in (health_probe() if health_probe else {}).items():
            deps[name] = DependencyHealth(status="ok" if ok else "failing", detail=detail)
        available = len(service.registry.query())
        deps["registry"] = DependencyHealth(
            status="ok" if available else "failing",
            detail=f"{available} of {len(service.registry)} nodes advertised within {service.registry.ttl_s} s",
        )
        healthy = all(d.status == "ok" for d in deps.values())
        jobs = await service.store.count_by_state() if db_ok else {}
        body = Health(status="ok" if healthy else "degraded", peer_id=peer_id, protocol_version=PROTOCOL_VERSION,
                      dependencies=deps, nodes_available=available, queue_depth=len(service.queue), jobs=jobs,
                      uptime_s=time.time() - started)
        return SafeJSONResponse(status_code=200 if healthy else 503, content=body.model_dump())

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: queue depth, latencies, retries, failures, success rate, registry size."""
        m = service.metrics
        m.queue_depth.set(len(service.queue))
        m.adverts_rejected.set(service.registry.rejected)
        counts: dict[str, int] = {"available": 0, "busy": 0, "draining": 0, "stale": 0}
        for entry in service.registry.entries():
            counts[service.registry.status(entry.advert.node_id)] += 1
        for status, n in counts.items():
            m.registry_size.labels(status=status).set(n)
        return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _plan_body(plan: Plan) -> dict[str, Any]:
    """A plan as the API shows it: its canonical JSON (``Plan.to_json``) plus ``segments``, the
    gate fragment ids that run as one invocation each (issue 13; derived from the plan, not stored)."""
    body = json.loads(plan.to_json())
    body["segments"] = [list(segment) for segment in plan.segments]
    return body


def _node_view(advert: ServiceAdvertisement, status: str, age_s: float) -> NodeView:
    return NodeView(
        node_id=advert.node_id, name=advert.name, status=status, native_gates=list(advert.native_gates),
        qubits=advert.qubit_range.max, fidelity=advert.fidelity.model_dump(), advert_age_s=round(age_s, 3),
        addrs=list(advert.addrs), executor=advert.executor,
        coupling_map=None if advert.coupling_map is None else list(advert.coupling_map),
    )
