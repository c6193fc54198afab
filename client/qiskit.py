"""Qiskit interface to a qb2 coordinator (FR-015): a ``BackendV2`` and a ``SamplerV2``.

Qiskit code runs on qb2 unchanged::

    from qb2.client.qiskit import QB2Backend, QB2Sampler

    backend = QB2Backend("http://127.0.0.1:8700")
    counts = backend.run(qc, shots=2000, seed_simulator=7).result().get_counts()

    sampler = QB2Sampler(backend)
    bits = sampler.run([(qc,)]).result()[0].data.meas.get_counts()

Each circuit becomes one qb2 job: it is serialised with ``qiskit.qasm2.dumps``
(``qiskit.qasm3.dumps`` when OpenQASM 2 cannot express it) and submitted
through :class:`qb2.client.http.Client` (``POST /api/v1/circuits/submit``).
Submission happens in ``run()``, so a circuit the coordinator rejects (invalid,
infeasible, no node) raises :class:`qb2.client.http.ApiError` at once;
``result()`` polls until every job is final.

Seeds: with ``seed_simulator=s`` the ``i``-th circuit of a ``run()`` call is
submitted with seed ``s + 2113 * i``, the per-experiment seeds AerSimulator
derives from ``seed_simulator`` (measured on qiskit-aer 0.18), so with ideal
nodes a batch gives the same counts as ``AerSimulator(seed_simulator=s)``
with the representation qb2's plan reports (density matrix up to its limit).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.circuit import Gate
from qiskit.circuit.library import Measure, get_standard_gate_name_mapping
from qiskit.primitives import BaseSamplerV2
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.primitives.containers import BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike
from qiskit.providers import BackendV2, JobError, JobStatus, JobV1, Options
from qiskit.result import Result
from qiskit.transpiler import Target

from qb2.client.http import FINAL_STATES, ApiError, Client
from qb2.protocol.ids import PROTOCOL_VERSION

__all__ = ["QB2Backend", "QB2Job", "QB2JobError", "QB2Sampler", "QB2SamplerJob", "job_status"]

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
_MAX_SEED = 2**63 - 1
_STANDARD = get_standard_gate_name_mapping()


class QB2JobError(JobError):
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


def _combined_status(states: Sequence[str]) -> JobStatus:
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


def _experiment_seed(seed: int | None, index: int) -> int | None:
    if seed is None:
        return None
    return (int(seed) + AER_SEED_STRIDE * index) % (_MAX_SEED + 1)


def _check_registers(circuit: QuantumCircuit) -> None:
    """qb2 numbers classical bits by position over the registers in order; the circuit must agree."""
    in_registers = [bit for reg in circuit.cregs for bit in reg]
    if in_registers != list(circuit.clbits):
        raise ValueError(
            f"circuit {circuit.name!r}: every classical bit must belong to exactly one register, "
            "registers in circuit order (add bits through ClassicalRegister)"
        )


def circuit_to_qasm(circuit: QuantumCircuit) -> tuple[str, str]:
    """Serialise a circuit for ``POST /api/v1/circuits/submit``.

    Returns:
        ``(text, format)``: ``qiskit.qasm2.dumps`` output and ``"qasm2"``, or,
        when OpenQASM 2 cannot express the circuit, ``qiskit.qasm3.dumps``
        output and ``"qasm3"``.

    Raises:
        ValueError: unbound parameters, or bits outside registers.
        qiskit.qasm3.QASM3ExporterError: neither exporter can write it.
    """
    if circuit.parameters:
        names = ", ".join(sorted(p.name for p in circuit.parameters))
        raise ValueError(f"circuit {circuit.name!r} has unbound parameters ({names}); assign_parameters first")
    _check_registers(circuit)
    try:
        return qasm2.dumps(circuit), "qasm2"
    except Exception:  # noqa: BLE001 - QASM2ExportError and friends: try OpenQASM 3
        return qasm3.dumps(circuit), "qasm3"


def _hex_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """qb2 bitstring counts (space-separated registers) -> Qiskit's raw hex counts."""
    out: dict[str, int] = {}
    for key, value in counts.items():
        bits = key.replace(" ", "")
        hexkey = hex(int(bits, 2)) if bits else "0x0"
        out[hexkey] = out.get(hexkey, 0) + int(value)
    return out


def _register_bits(counts: Mapping[str, int], circuit: QuantumCircuit, shots: int) -> dict[str, np.ndarray]:
    """Per classical register, packed shots ``(shots, ceil(size / 8))`` uint8, shot-aligned across registers.

    A count key's bits (spaces removed) are the flat clbits, highest first;
    register ``i`` holds bits ``[offset_i, offset_i + size_i)`` counted from
    the right. Every register expands the outcomes in the same order, so
    shot ``k`` of every register comes from the same measurement.
    """
    ordered = sorted(counts.items())
    total = sum(int(v) for _, v in ordered)
    if total != shots:
        raise ValueError(f"counts hold {total} shots, expected {shots}")
    width = circuit.num_clbits
    joint = [int(k.replace(" ", "") or "0", 2) for k, _ in ordered]
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for creg in circuit.cregs:
        mask = (1 << creg.size) - 1
        values = [(j >> offset) & mask for j in joint]
        samples = (v for v, (_, n) in zip(values, ordered, strict=True) for _ in range(int(n)))
        if creg.size == 0 or shots == 0:
            arrays[creg.name] = np.zeros((shots, 0 if creg.size == 0 else (creg.size + 7) // 8), dtype=np.uint8)
        else:
            arrays[creg.name] = BitArray.from_samples(samples, num_bits=creg.size).array
        offset += creg.size
    if offset != width:  # pragma: no cover - guarded by _check_registers
        raise ValueError("classical registers do not cover the circuit's bits")
    return arrays


class _Submitter:
    """Shared by the backend and the sampler: one HTTP client, submit/poll helpers."""

    def __init__(self, client: Client, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s

    def submit(self, circuit: QuantumCircuit, shots: int, seed: int | None) -> str:
        text, fmt = circuit_to_qasm(circuit)
        body = self.client.submit(text, shots=int(shots), seed=seed, fmt=fmt, name=circuit.name[:128] or None)
        return str(body["job_id"])

    def states(self, job_ids: Sequence[str]) -> list[str]:
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


# --------------------------------------------------------------------------- BackendV2


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
            self.qb2_job_ids.append(submitter.submit(circuit, self._shots, _experiment_seed(self._seed, index)))

    def status(self) -> JobStatus:
        """Combined status: ERROR / CANCELLED / DONE when all are final, else RUNNING, VALIDATING or QUEUED."""
        if not self.qb2_job_ids:
            return JobStatus.INITIALIZING
        return _combined_status(self._backend._submitter.states(self.qb2_job_ids))  # noqa: SLF001

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
                "data": {"counts": _hex_counts(body["counts"])},
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
        self._submitter = _Submitter(self._client, 300.0)
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
                                 or not 0 <= seed <= _MAX_SEED):
            raise ValueError(f"seed_simulator must be an integer in [0, 2**63), got {seed!r}")
        job = QB2Job(self, circuits, int(shots), None if seed is None else int(seed), timeout_s)
        job.submit()
        return job


# --------------------------------------------------------------------------- SamplerV2


class QB2SamplerJob(BasePrimitiveJob[PrimitiveResult[SamplerPubResult], JobStatus]):
    """Job handle of :meth:`QB2Sampler.run`: one qb2 job per (pub, parameter set), already submitted.

    ``status()`` returns a Qiskit :class:`JobStatus` combined over the qb2 jobs;
    ``result()`` blocks until all are final.
    """

    def __init__(self, submitter: _Submitter, pubs: Sequence[SamplerPub],
                 job_ids: Sequence[Sequence[str]], circuits: Sequence[QuantumCircuit]) -> None:
        super().__init__(job_id=str(uuid.uuid4()))
        self._submitter = submitter
        self._pubs = list(pubs)
        self.qb2_job_ids: list[list[str]] = [list(ids) for ids in job_ids]
        self._circuits = list(circuits)
        self._result: PrimitiveResult[SamplerPubResult] | None = None

    def _all_ids(self) -> list[str]:
        return [j for ids in self.qb2_job_ids for j in ids]

    def status(self) -> JobStatus:
        """Combined Qiskit status of the qb2 jobs."""
        if self._result is not None:
            return JobStatus.DONE
        return _combined_status(self._submitter.states(self._all_ids()))

    def done(self) -> bool:
        """Whether every qb2 job completed."""
        return self.status() == JobStatus.DONE

    def running(self) -> bool:
        """Whether the job is executing (some qb2 job running or finished, others not)."""
        return self.status() == JobStatus.RUNNING

    def cancelled(self) -> bool:
        """Whether the job ended cancelled."""
        return self.status() == JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        """Whether every qb2 job is final (DONE, ERROR or CANCELLED)."""
        return self.status() in (JobStatus.DONE, JobStatus.ERROR, JobStatus.CANCELLED)

    def cancel(self) -> bool:
        """Cancel the qb2 jobs; False when one was final or the server lacks the cancel endpoint."""
        return self._submitter.cancel(self._all_ids())

    def result(self, timeout: float | None = None) -> PrimitiveResult[SamplerPubResult]:
        """Wait and return one :class:`SamplerPubResult` per pub.

        Each result's ``data`` is a ``DataBin`` of the pub's shape with one
        :class:`BitArray` per classical register (named like the register),
        shots aligned across registers; ``metadata`` has ``shots``,
        ``circuit_metadata`` and ``qb2_job_ids``.

        Raises:
            QB2JobError: a job FAILED or was CANCELLED.
            TimeoutError: not final within ``timeout`` seconds per job.
        """
        if self._result is not None:
            return self._result
        pub_results = []
        for pub, ids, circuit in zip(self._pubs, self.qb2_job_ids, self._circuits, strict=True):
            bodies = self._submitter.wait_all(ids, timeout)
            shape = pub.shape
            arrays = {
                creg.name: np.zeros(shape + (pub.shots, (creg.size + 7) // 8), dtype=np.uint8)
                for creg in circuit.cregs
            }
            for flat, body in enumerate(bodies):
                index = np.unravel_index(flat, shape) if shape else ()
                for name, packed in _register_bits(body["counts"], circuit, pub.shots).items():
                    arrays[name][index] = packed
            data = DataBin(**{c.name: BitArray(arrays[c.name], c.size) for c in circuit.cregs}, shape=shape)
            pub_results.append(SamplerPubResult(data, metadata={
                "shots": pub.shots,
                "circuit_metadata": pub.circuit.metadata,
                "qb2_job_ids": list(ids),
            }))
        self._result = PrimitiveResult(pub_results, metadata={"version": 2})
        return self._result


class QB2Sampler(BaseSamplerV2):
    """A SamplerV2 primitive backed by a qb2 coordinator (FR-015).

    Parameters are bound client-side (``BindingsArray.bind_all``, i.e.
    ``assign_parameters`` per parameter set); each bound circuit is one qb2
    job, submitted in pub order, parameter sets in C order. Results follow
    ``StatevectorSampler``'s layout, so
    ``sampler.run([(qc,)]).result()[0].data.meas.get_counts()`` works for a
    circuit with ``measure_all()``.

    Args:
        backend: a :class:`QB2Backend`, or a coordinator URL to build one.
        default_shots: shots when neither ``run(shots=)`` nor the pub sets them.
        seed: simulator seed; the ``k``-th bound circuit of a ``run()`` call
            gets ``seed + 2113 * k`` (AerSimulator's per-experiment seeds). None: random.
        timeout_s: seconds ``result()`` waits per qb2 job by default.
    """

    def __init__(self, backend: QB2Backend | str, *, default_shots: int = 1024, seed: int | None = None,
                 timeout_s: float = 300.0) -> None:
        self._backend = backend if isinstance(backend, QB2Backend) else QB2Backend(backend)
        if default_shots < 1:
            raise ValueError(f"default_shots must be >= 1, got {default_shots}")
        self._default_shots = int(default_shots)
        self._seed = seed
        self._submitter = _Submitter(self._backend.client, timeout_s)

    @property
    def backend(self) -> QB2Backend:
        """The backend the sampler submits through."""
        return self._backend

    @property
    def default_shots(self) -> int:
        """Shots used when neither the pub nor ``run`` sets them."""
        return self._default_shots

    def run(self, pubs: Iterable[SamplerPubLike], *, shots: int | None = None) -> QB2SamplerJob:
        """Bind, submit and return a job handle at once.

        Args:
            pubs: ``circuit``, ``(circuit,)``, ``(circuit, parameter_values)`` or
                ``(circuit, parameter_values, shots)``.
            shots: shots for pubs that do not set their own (default ``default_shots``).

        Raises:
            qb2.client.http.ApiError: the coordinator rejected a circuit.
            ValueError: invalid pub (Qiskit's coercion), bits outside registers.
        """
        coerced = [SamplerPub.coerce(pub, self._default_shots if shots is None else shots) for pub in pubs]
        if any(len(pub.circuit.cregs) == 0 for pub in coerced):
            warnings.warn(
                "One of your circuits has no output classical registers and so the result will be empty. "
                "Did you mean to add measurement instructions?", UserWarning, stacklevel=2,
            )
        job_ids: list[list[str]] = []
        circuits: list[QuantumCircuit] = []
        k = 0
        for pub in coerced:
            _check_registers(pub.circuit)
            bound = pub.parameter_values.bind_all(pub.circuit)
            ids = []
            for flat in range(int(np.prod(pub.shape, dtype=int))):
                index = np.unravel_index(flat, pub.shape) if pub.shape else ()
                ids.append(self._submitter.submit(bound[index], pub.shots, _experiment_seed(self._seed, k)))
                k += 1
            job_ids.append(ids)
            circuits.append(pub.circuit)
        return QB2SamplerJob(self._submitter, coerced, job_ids, circuits)
