"""A small typed HTTP client for the coordinator's job API (FR-009), built on httpx.

Used by the CLI, the demo and the tests::

    with Client("http://127.0.0.1:8700") as qb2:
        job = qb2.submit(qasm_text, shots=1000, seed=7)
        result = qb2.wait(job["job_id"])
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import ValidationError

from qb2.client.errors import ClientError
from qb2.protocol.http import ErrorBody
from qb2.protocol.jobs import FINAL_STATES

__all__ = ["FINAL_STATES", "ApiError", "Client"]


class ApiError(ClientError):
    """The coordinator answered with an error; ``status``, ``code``, ``message`` and ``details`` say which."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        try:  # the API's error contract (qb2.protocol.http.ErrorBody); a proxy in between may answer otherwise
            error = ErrorBody.model_validate(body).error
            self.code, self.message, self.details = error.code, error.message, dict(error.details)
        except ValidationError:
            self.code, self.message, self.details = "http_error", str(body), {}
        super().__init__(f"HTTP {status} {self.code}: {self.message}")


class Client:
    """Synchronous client for one coordinator.

    Args:
        base_url: e.g. ``http://127.0.0.1:8700``.
        timeout_s: per-request timeout in seconds.
    """

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        body = response.json() if response.content else None
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def submit(self, qasm: str, *, shots: int | None = None, seed: int | None = None,
               fmt: str | None = None, name: str | None = None, **options: Any) -> dict[str, Any]:
        """Submit a circuit; returns ``{"job_id", "state", ...}`` at once.

        ``options`` are further submit fields: ``priority``, ``tags``, ``weights``,
        ``min_fidelity``, ``min_nodes`` (see ``POST /api/v1/circuits/submit``).

        Raises:
            ApiError: 422 invalid QASM / infeasible, 503 no nodes, ...
        """
        body = {"qasm": qasm, "shots": shots, "seed": seed, "format": fmt, "name": name, **options}
        return self._call("POST", "/api/v1/circuits/submit", json={k: v for k, v in body.items() if v is not None})

    def dry_run(self, qasm: str, *, fmt: str | None = None, **options: Any) -> dict[str, Any]:
        """The plan the coordinator would use now, without queuing a job (``weights``, ``min_fidelity``, ...)."""
        body = {"qasm": qasm, "format": fmt, **options}
        return self._call("POST", "/api/v1/circuits/plan", json={k: v for k, v in body.items() if v is not None})

    def status(self, job_id: str) -> dict[str, Any]:
        """The job record (``state`` among QUEUED..COMPLETED/FAILED)."""
        return self._call("GET", f"/api/v1/jobs/{job_id}")

    def result(self, job_id: str) -> dict[str, Any]:
        """Result of a COMPLETED job. Raises ApiError 409 while it is not completed."""
        return self._call("GET", f"/api/v1/jobs/{job_id}/result")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the coordinator to cancel a job (``POST /api/v1/jobs/{id}/cancel``, FR-009).

        Returns:
            The response body (the job record as the server reports it).

        Raises:
            ApiError: 404 unknown job (or a coordinator without the cancel
                endpoint), 409 when the job is already final.
        """
        return self._call("POST", f"/api/v1/jobs/{job_id}/cancel")

    def plan(self, job_id: str) -> dict[str, Any]:
        """The job's plan."""
        return self._call("GET", f"/api/v1/jobs/{job_id}/plan")

    def jobs(self, *, state: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """A page of jobs, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return self._call("GET", "/api/v1/jobs", params=params)

    def nodes(self) -> dict[str, Any]:
        """Registry contents: ``{"nodes": [...], "available": n}``."""
        return self._call("GET", "/api/v1/nodes")

    def health(self) -> dict[str, Any]:
        """Health body (also when the coordinator reports 503 degraded)."""
        response = self._http.get("/api/v1/health")
        return response.json()

    def wait(self, job_id: str, *, timeout_s: float = 300.0, poll_s: float = 0.05, max_poll_s: float = 1.0) -> dict[str, Any]:
        """Poll until the job is final (backoff from ``poll_s`` to ``max_poll_s`` seconds).

        Returns:
            The final job record.

        Raises:
            TimeoutError: not final within ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        delay = poll_s
        while True:
            job = self.status(job_id)
            if job["state"] in FINAL_STATES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(delay)
            delay = min(max_poll_s, delay * 1.5)

    def wait_for_nodes(self, count: int, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll ``/api/v1/nodes`` until at least ``count`` nodes are available.

        Raises:
            TimeoutError: fewer than ``count`` within ``timeout_s`` seconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                nodes = self.nodes()
                if nodes["available"] >= count:
                    return nodes
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} nodes available after {timeout_s} s")
            time.sleep(0.1)
