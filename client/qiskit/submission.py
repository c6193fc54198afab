"""One qb2 job per circuit, seen from Qiskit (FR-015): submission, seeds, states, waiting.

Shared by :mod:`qb2.client.qiskit.backend` and :mod:`qb2.client.qiskit.sampler`:

- :class:`Submitter`: submits circuits through :class:`qb2.client.http.Client`
  (``POST /api/v1/circuits/submit``), reads their states, waits for their
  results, cancels them;
- :func:`job_status`, :func:`combined_status`: qb2 job states (FR-009) as a
  Qiskit ``JobStatus``, for one job and for several seen as one;
- :func:`experiment_seed`: the seed of the ``i``-th circuit of one ``run()``
  call, ``seed + 2113 * i`` (:data:`AER_SEED_STRIDE`), the per-experiment seeds
  AerSimulator derives from ``seed_simulator`` (measured on qiskit-aer 0.18);
- :class:`QB2JobError`: a job that ended FAILED or CANCELLED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qiskit import QuantumCircuit
from qiskit.providers import JobError, JobStatus

from qb2.client.errors import ClientError
from qb2.client.http import FINAL_STATES, ApiError, Client
from qb2.client.qiskit.convert import circuit_to_qasm

__all__ = ["AER_SEED_STRIDE", "MAX_SEED", "QB2JobError", "Submitter", "combined_status", "experiment_seed",
           "job_status"]

#: qb2 job state -> Qiskit JobStatus (FR-009 states; RESERVING once reservations exist).
_STATUS = {
    "QUEUED": JobStatus.QUEUED,
    "COMPILING": JobStatus.VALIDATING,
    "RESERVING": JobStatus.VALIDATING,
    "EXECUTING": JobStatus.RUNNING,
    "COMPLETED": JobStatus.DONE,
    "FAILED": JobStatus.ERROR,
    "CANCELLED": JobStatus.CANCELLED,
}
#: Offset between the seeds AerSimulator gives consecutive experiments of one run (qiskit-aer 0.18).
AER_SEED_STRIDE = 2113
#: Largest seed qb2 accepts (a signed 64-bit integer).
MAX_SEED = 2**63 - 1


class QB2JobError(ClientError, JobError):
    """A qb2 job ended FAILED or CANCELLED; ``job_id``, ``state`` and ``error`` (the server's ``{code, message}``) say which."""

    def __init__(self, job_id: str, state: str, error: Mapping[str, Any] | None) -> None:
        self.job_id = job_id
        self.state = state
        self.error = dict(error or {})
        reason = f"{self.error.get('code', '?')}: {self.error.get('message', '')}" if error else "no reason given"
        super().__init__(f"qb2 job {job_id} ended {state} ({reason})")


def job_status(state: str) -> JobStatus:
    """Qiskit :class:`JobStatus` of one qb2 job state.

    QUEUED -> QUEUED, COMPILING / RESERVING -> VALIDATING, EXECUTING -> RUNNING,
    COMPLETED -> DONE, FAILED -> ERROR, CANCELLED -> CANCELLED.

    Raises:
        ValueError: a state qb2 does not define.
    """
    try:
        return _STATUS[state]
    except KeyError:
        raise ValueError(f"unknown qb2 job state {state!r}; expected one of {sorted(_STATUS)}") from None


def combined_status(states: Sequence[str]) -> JobStatus:
    """Status of several qb2 jobs seen as one Qiskit job.

    All final: ERROR if any failed, else CANCELLED if any was cancelled, else
    DONE. Otherwise RUNNING once any is executing or finished, VALIDATING once
    any is compiling, else QUEUED.
    """
    statuses = [job_status(s) for s in states]
    if all(s in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED) for s in statuses):
        for final in (JobStatus.ERROR, JobStatus.CANCELLED):
            if final in statuses:
                return final
        return JobStatus.DONE
    if any(s in (JobStatus.RUNNING, JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED) for s in statuses):
        return JobStatus.RUNNING
    if JobStatus.VALIDATING in statuses:
        return JobStatus.VALIDATING
    return JobStatus.QUEUED


def experiment_seed(seed: int | None, index: int) -> int | None:
    """Seed of the ``index``-th circuit of one ``run()`` call: ``(seed + 2113 * index) mod 2**63``; None stays None."""
    if seed is None:
        return None
    return (int(seed) + AER_SEED_STRIDE * index) % (MAX_SEED + 1)


class Submitter:
    """Shared by the backend and the sampler: one HTTP client, submit/poll helpers.

    Args:
        client: the coordinator's HTTP client.
        timeout_s: default seconds :meth:`wait_all` waits per job.
    """

    def __init__(self, client: Client, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s

    def submit(self, circuit: QuantumCircuit, shots: int, seed: int | None) -> str:
        """Submit ``circuit`` as one qb2 job (name: the circuit's, at most 128 characters); returns its job id.

        Raises:
            qb2.client.http.ApiError: the coordinator rejected it.
            ValueError: unbound parameters or bits outside registers (:func:`circuit_to_qasm`).
        """
        text, fmt = circuit_to_qasm(circuit)
        body = self.client.submit(text, shots=int(shots), seed=seed, fmt=fmt, name=circuit.name[:128] or None)
        return str(body["job_id"])

    def states(self, job_ids: Sequence[str]) -> list[str]:
        """The current qb2 state of each job, in order (one ``GET`` per job)."""
        return [self.client.status(j)["state"] for j in job_ids]

    def wait_all(self, job_ids: Sequence[str], timeout_s: float | None) -> list[dict[str, Any]]:
        """Poll every job to a final state, then return their results.

        Raises:
            QB2JobError: a job ended FAILED or CANCELLED.
            TimeoutError: a job is not final within ``timeout_s`` seconds.
        """
        limit = self.timeout_s if timeout_s is None else timeout_s
        results = []
        for job_id in job_ids:
            final = self.client.wait(job_id, timeout_s=limit)
            if final["state"] != "COMPLETED":
                raise QB2JobError(job_id, final["state"], final.get("error"))
            results.append(self.client.result(job_id))
        return results

    def cancel(self, job_ids: Sequence[str]) -> bool:
        """Cancel every job that is not final. False when the server refuses or lacks the endpoint."""
        ok = True
        for job_id in job_ids:
            try:
                if self.client.status(job_id)["state"] in FINAL_STATES:
                    ok = False
                    continue
                self.client.cancel(job_id)
            except ApiError as exc:
                if exc.status in (404, 405, 409, 501):
                    ok = False
                    continue
                raise
        return ok
