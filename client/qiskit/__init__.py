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

The package's parts:

- :mod:`qb2.client.qiskit.convert`: circuits to OpenQASM, qb2 counts to
  Qiskit's hex counts and per-register bit arrays;
- :mod:`qb2.client.qiskit.submission`: one qb2 job per circuit (submit, poll,
  cancel), seeds, qb2 states as Qiskit ``JobStatus``, :class:`QB2JobError`;
- :mod:`qb2.client.qiskit.backend`: :class:`QB2Backend`, :class:`QB2Job`;
- :mod:`qb2.client.qiskit.sampler`: :class:`QB2Sampler`, :class:`QB2SamplerJob`.

The public names are re-exported here.
"""

from __future__ import annotations

from qb2.client.qiskit.backend import QB2Backend, QB2Job
from qb2.client.qiskit.convert import circuit_to_qasm
from qb2.client.qiskit.sampler import QB2Sampler, QB2SamplerJob
from qb2.client.qiskit.submission import AER_SEED_STRIDE, QB2JobError, job_status

__all__ = ["AER_SEED_STRIDE", "QB2Backend", "QB2Job", "QB2JobError", "QB2Sampler", "QB2SamplerJob",
           "circuit_to_qasm", "job_status"]
