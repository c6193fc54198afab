"""A qb2 coordinator as a Qiskit ``BackendV2`` (FR-015): :class:`QB2Backend` and its job, :class:`QB2Job`.

``backend.run(circuits, shots=, seed_simulator=)`` submits one qb2 job per
circuit at once (:class:`qb2.client.qiskit.submission.Submitter`);
``job.result()`` waits for them and returns a Qiskit ``Result`` whose
``get_counts()`` equals what qb2 returned.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Gate
from qiskit.circuit.library import Measure, get_standard_gate_name_mapping
from qiskit.providers import BackendV2, JobError, JobStatus, JobV1, Options
from qiskit.result import Result
from qiskit.transpiler import Target

from qb2.client.http import Client
from qb2.client.qiskit.convert import hex_counts
from qb2.client.qiskit.submission import MAX_SEED, Submitter, combined_status, experiment_seed
from qb2.protocol.ids import PROTOCOL_VERSION

__all__ = ["QB2Backend", "QB2Job"]

_STANDARD = get_standard_gate_name_mapping()


class QB2Job(JobV1):
    """A Qiskit job over one qb2 job per circuit (returned by :meth:`QB2Backend.run`).

    ``job_id()`` is the qb2 job id for one circuit, the ids joined by commas for
    several; ``qb2_job_ids`` lists them in circuit order.
    """

    def __init__(self, backend: QB2Backend, circuits: Sequence[QuantumCircuit], shots: int,
                 seed: int | None, timeout_s: float | None = None) -> None:
        super().__init__(backend, "")
        self._circuits = list(circuits)
        self._shots = int(shots)
        self._seed = seed
        self._timeout_s = timeout_s
        self.qb2_job_ids: list[str] = []
        self._result: Result | None = None

    def job_id(self) -> str:
        """The qb2 job id (comma-joined for several circuits); empty before submit."""
        return ",".join(self.qb2_job_ids)

    def submit(self) -> None:
        """Submit every circuit (``run()`` does this).

        Raises:
            JobError: already submitted.
            qb2.client.http.ApiError: the coordinator rejected a circuit
                (circuits before it stay submitted; their ids are in ``qb2_job_ids``).
            ValueError: a circuit has unbound parameters or bits outside registers.
        """
        if self.qb2_job_ids:
            raise JobError("job already submitted")
        submitter = self._backend._submitter  # noqa: SLF001 - same module
        for index, circuit in enumerate(self._circuits):
            self.qb2_job_ids.append(submitter.submit(circuit, self._shots, experiment_seed(self._seed, index)))

    def status(self) -> JobStatus:
        """Combined status: ERROR / CANCELLED / DONE when all are final, else RUNNING, VALIDATING or QUEUED."""
        if not self.qb2_job_ids:
            return JobStatus.INITIALIZING
        return combined_status(self._backend._submitter.states(self.qb2_job_ids))  # noqa: SLF001

    def cancel(self) -> bool:
        """Cancel the qb2 jobs (``POST /api/v1/jobs/{id}/cancel``).

        Returns:
            True when every job was cancelled; False when one was already
            final or the coordinator has no cancel endpoint (404).
        """
        return self._backend._submitter.cancel(self.qb2_job_ids)  # noqa: SLF001

    def result(self, timeout: float | None = None) -> Result:
        """Wait for every circuit and return a Qiskit :class:`Result` (``get_counts()`` works).

        Each experiment carries ``header`` (``name``, ``creg_sizes``,
        ``memory_slots``, ``n_qubits``, ``metadata``) so Qiskit formats the
        counts exactly as qb2 returns them, and ``qb2`` (job id, estimated and
        measured fidelity, representation, nodes used, ebits, execution time).

        Args:
            timeout: seconds to wait per job; default the backend's ``timeout_s`` option.

        Raises:
            QB2JobError: a job FAILED or was CANCELLED.
            TimeoutError: not final in time.
        """
        if self._result is not None:
            return self._result
        if not self.qb2_job_ids:
            raise JobError("job not submitted")
        limit = timeout if timeout is not None else self._timeout_s
        bodies = self._backend._submitter.wait_all(self.qb2_job_ids, limit)  # noqa: SLF001
        experiments = []
        for job_id, circuit, body in zip(self.qb2_job_ids, self._circuits, bodies, strict=True):
            header = {
                "name": circuit.name,
                "creg_sizes": [[reg.name, reg.size] for reg in circuit.cregs],
                "memory_slots": circuit.num_clbits,
                "n_qubits": circuit.num_qubits,
                "metadata": dict(circuit.metadata or {}),
            }
            experiments.append({
                "shots": body["shots"],
                "success": True,
                "data": {"counts": hex_counts(body["counts"])},
                "header": header,
                "seed_simulator": body.get("seed"),
                "status": "DONE",
                "qb2": {
                    "job_id": job_id,
                    "estimated_fidelity": body.get("estimated_fidelity"),
                    "measured_fidelity": body.get("measured_fidelity"),
                    "representation": body.get("representation"),
                    "nodes_used": body.get("nodes_used"),
                    "total_ebits": body.get("total_ebits"),
                    "execution_s": body.get("execution_s"),
                },
            })
        self._result = Result.from_dict({
            "backend_name": self._backend.name,
            "backend_version": self._backend.backend_version,
            "job_id": self.job_id(),
            "success": True,
            "results": experiments,
        })
        return self._result


class QB2Backend(BackendV2):
    """A qb2 coordinator as a Qiskit ``BackendV2`` (FR-015).

    ``target`` is fetched lazily from ``GET /api/v1/nodes`` (and cached; see
    :meth:`refresh`): the union of the available nodes' native gates that are
    Qiskit standard gates, plus ``measure``, on ``num_qubits`` = the sum of the
    available nodes' widths, all-to-all (qb2 routes and teleports itself). The
    coordinator accepts any OpenQASM standard gate, so transpiling against the
    target is optional.

    Args:
        url: coordinator base URL, e.g. ``http://127.0.0.1:8700``.
        timeout_s: per-HTTP-request timeout in seconds (httpx).
        name: backend name shown by Qiskit.

    Options (``run(..., **options)`` or ``set_options``): ``shots`` (1024),
    ``seed_simulator`` (None: random), ``timeout_s`` (seconds ``result()``
    waits per job, 300).
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0, name: str = "qb2") -> None:
        super().__init__(name=name, description=f"qb2 coordinator at {url}", backend_version=PROTOCOL_VERSION)
        self.url = url
        self._client = Client(url, timeout_s=timeout_s)
        self._submitter = Submitter(self._client, 300.0)
        self._target: Target | None = None

    @classmethod
    def _default_options(cls) -> Options:
        return Options(shots=1024, seed_simulator=None, timeout_s=300.0)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> QB2Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Client:
        """The underlying :class:`qb2.client.http.Client`."""
        return self._client

    def refresh(self) -> Target:
        """Re-read the registry and rebuild :attr:`target`.

        Raises:
            RuntimeError: no node is available.
            qb2.client.http.ApiError / httpx.HTTPError: the coordinator did not answer.
        """
        nodes = [n for n in self._client.nodes()["nodes"] if n.get("status") == "available"]
        if not nodes:
            raise RuntimeError(f"no qb2 node is available at {self.url}; start nodes first")
        width = sum(int(n["qubits"]) for n in nodes)
        names = sorted({g for n in nodes for g in n["native_gates"]
                        if isinstance(_STANDARD.get(g), Gate) and _STANDARD[g].num_qubits >= 1})
        target = Target(num_qubits=width, description=f"qb2: {len(nodes)} node(s) at {self.url}")
        for gate in names:
            target.add_instruction(_STANDARD[gate], properties=None, name=gate)
        target.add_instruction(Measure(), properties=None)
        self._target = target
        return target

    @property
    def target(self) -> Target:
        """Gates and width qb2 accepts (see the class docstring); fetched once, :meth:`refresh` to update."""
        return self._target if self._target is not None else self.refresh()

    @property
    def max_circuits(self) -> None:
        """No limit: each circuit is its own qb2 job."""
        return None

    def run(self, run_input: QuantumCircuit | Sequence[QuantumCircuit], **options: Any) -> QB2Job:
        """Submit circuits; returns a :class:`QB2Job` at once (already submitted).

        Args:
            run_input: one circuit or a list. Measurements must be terminal
                (qb2 rejects mid-circuit measurement and classical control).
            shots: repetitions per circuit (default 1024).
            seed_simulator: simulator seed; circuit ``i`` gets ``seed + 2113 * i``
                as AerSimulator does (module docstring).
            timeout_s: default wait of ``result()`` per job, seconds.

        Raises:
            qb2.client.http.ApiError: the coordinator rejected a circuit
                (422 invalid / infeasible, 503 no node available).
            ValueError: unbound parameters, bits outside registers, unknown option.
        """
        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else list(run_input)
        if not circuits or not all(isinstance(c, QuantumCircuit) for c in circuits):
            raise ValueError("run() takes a QuantumCircuit or a non-empty list of them")
        unknown = sorted(set(options) - set(self.options.keys()))
        if unknown:
            warnings.warn(f"QB2Backend ignores option(s) {unknown}", UserWarning, stacklevel=2)
        shots = options.get("shots", self.options.shots)
        seed = options.get("seed_simulator", self.options.seed_simulator)
        timeout_s = options.get("timeout_s", self.options.timeout_s)
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed <= MAX_SEED):
            raise ValueError(f"seed_simulator must be an integer in [0, 2**63), got {seed!r}")
        job = QB2Job(self, circuits, int(shots), None if seed is None else int(seed), timeout_s)
        job.submit()
        return job
