"""A qb2 coordinator as a Qiskit ``SamplerV2`` primitive (FR-015): :class:`QB2Sampler` and :class:`QB2SamplerJob`.

``sampler.run(pubs)`` binds every parameter set client-side and submits one qb2
job per bound circuit at once; ``job.result()`` returns one
``SamplerPubResult`` per pub, laid out as ``StatevectorSampler``'s.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.primitives import BaseSamplerV2
from qiskit.primitives.base.base_primitive_job import BasePrimitiveJob
from qiskit.primitives.containers import BitArray, DataBin, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike
from qiskit.providers import JobStatus

from qb2.client.qiskit.backend import QB2Backend
from qb2.client.qiskit.convert import check_registers, register_bits
from qb2.client.qiskit.submission import Submitter, combined_status, experiment_seed

__all__ = ["QB2Sampler", "QB2SamplerJob"]


class QB2SamplerJob(BasePrimitiveJob[PrimitiveResult[SamplerPubResult], JobStatus]):
    """Job handle of :meth:`QB2Sampler.run`: one qb2 job per (pub, parameter set), already submitted.

    ``status()`` returns a Qiskit :class:`JobStatus` combined over the qb2 jobs;
    ``result()`` blocks until all are final.
    """

    def __init__(self, submitter: Submitter, pubs: Sequence[SamplerPub],
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
        return combined_status(self._submitter.states(self._all_ids()))

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
                for name, packed in register_bits(body["counts"], circuit, pub.shots).items():
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
        self._submitter = Submitter(self._backend.client, timeout_s)

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
            check_registers(pub.circuit)
            bound = pub.parameter_values.bind_all(pub.circuit)
            ids = []
            for flat in range(int(np.prod(pub.shape, dtype=int))):
                index = np.unravel_index(flat, pub.shape) if pub.shape else ()
                ids.append(self._submitter.submit(bound[index], pub.shots, experiment_seed(self._seed, k)))
                k += 1
            job_ids.append(ids)
            circuits.append(pub.circuit)
        return QB2SamplerJob(self._submitter, coerced, job_ids, circuits)
