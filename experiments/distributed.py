"""One distributed run of the harness (FR-013): a circuit submitted to a running cluster over the HTTP API.

:func:`run_distributed` times the dry-run plan (``compile_s``) and the job
(``latency_s``), then reads the stored plan (its fingerprint, the nodes it
uses) and the result (fidelities, fragments, retries, fallbacks, counts) into a
:class:`qb2.experiments.records.RunRecord`. A failure of the run is a record
with ``success=False``, never an exception (:data:`RUN_ERRORS`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import trio

from qb2.client.http import ApiError, Client
from qb2.compiler import parse_qasm
from qb2.experiments.circuits import BenchmarkCircuit
from qb2.experiments.records import RunRecord
from qb2.experiments.reproducibility import plan_fingerprint

__all__ = ["RUN_ERRORS", "run_distributed"]

#: Errors of one distributed run that become a failed :class:`qb2.experiments.records.RunRecord` instead of
#: ending the experiment: waiting too long, the coordinator rejecting a request (a job whose fragments failed
#: is reported by the coordinator through ``ApiError`` or a FAILED state), and the HTTP connection failing.
RUN_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, ApiError, httpx.HTTPError, trio.TooSlowError)


def run_distributed(client: Client, circuit: BenchmarkCircuit, *, scenario: str, shots: int, seed: int,
                    repeat: int, min_nodes: int, timeout_s: float = 120.0,
                    on_executing: Callable[[str], None] | None = None,
                    names: Mapping[str, str] | None = None) -> RunRecord:
    """Submit ``circuit`` to a running cluster and wait for it; never raises for a failure of this run.

    ``compile_s`` is the wall time of ``POST /api/v1/circuits/plan`` (a dry-run:
    parse + plan on the coordinator, plus one loopback HTTP round trip);
    ``latency_s`` is submit request sent -> COMPLETED/FAILED observed (polls
    every 10-20 ms; every 5 ms while ``on_executing`` waits for EXECUTING), seconds;
    ``fragment_overheads_s`` lists ``round_trip_s - simulation_s`` of each DONE
    fragment record and ``overhead_per_fragment_s`` is their mean, seconds.
    ``operations`` is the harness's own ``parse_qasm(...).num_operations``
    (gates plus measurements), as in :func:`qb2.experiments.centralized.run_centralized`.
    ``on_executing(job_id)`` is called once when the job is first seen EXECUTING
    (the ``drop_node`` scenario strikes there). ``names`` maps peer ID -> node
    name for the plan fingerprint and node lists (peer IDs are kept when absent).

    An error of :data:`RUN_ERRORS` (the job not final within ``timeout_s``
    seconds, a request the coordinator rejected, a lost HTTP connection)
    gives a record with ``success=False`` and ``error`` naming it.
    """
    operations = parse_qasm(circuit.qasm, circuit.format, circuit.label).num_operations
    try:
        return _run_distributed(client, circuit, operations, scenario=scenario, shots=shots, seed=seed,
                                repeat=repeat, min_nodes=min_nodes, timeout_s=timeout_s,
                                on_executing=on_executing, names=names or {})
    except RUN_ERRORS as exc:
        return RunRecord("distributed", scenario, circuit.label, circuit.qubits, operations, repeat, seed,
                         success=False, error=f"{type(exc).__name__}: {exc}")


def _run_distributed(client: Client, circuit: BenchmarkCircuit, operations: int, *, scenario: str, shots: int,
                     seed: int, repeat: int, min_nodes: int, timeout_s: float,
                     on_executing: Callable[[str], None] | None, names: Mapping[str, str]) -> RunRecord:
    t0 = time.perf_counter()
    plan = client.dry_run(circuit.qasm, fmt=circuit.format, min_nodes=min_nodes)
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    job_id = client.submit(circuit.qasm, shots=shots, seed=seed, fmt=circuit.format, name=circuit.label,
                           min_nodes=min_nodes)["job_id"]
    if on_executing is None:
        final = client.wait(job_id, timeout_s=timeout_s, poll_s=0.01, max_poll_s=0.02)
    else:
        deadline = time.monotonic() + timeout_s
        while (final := client.status(job_id))["state"] not in ("COMPLETED", "FAILED", "CANCELLED"):
            if final["state"] == "EXECUTING" and on_executing is not None:
                on_executing(job_id)
                on_executing = None
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {final['state']} after {timeout_s} s")
            time.sleep(0.005)  # polling interval of the status endpoint, not synchronisation
    latency = time.perf_counter() - t1
    del plan  # the dry run is timed only; the stored plan of the job is read below
    rec = RunRecord("distributed", scenario, circuit.label, circuit.qubits, operations, repeat, seed,
                    success=final["state"] == "COMPLETED", compile_s=compile_s, latency_s=latency)
    try:
        stored: dict[str, Any] | None = client.plan(job_id)
    except ApiError:  # a job that failed before it was planned has no plan (409)
        stored = None
    if stored is not None:
        rec.plan_fingerprint = plan_fingerprint(stored, names)
        rec.plan_nodes = sorted({names.get(f["node_id"], f["node_id"]) for f in stored["fragments"]})
        rec.representation = stored.get("representation")
    if not rec.success:
        err = final.get("error") or {}
        rec.error = f"{err.get('code')}: {err.get('message')}"
        return rec
    res = client.result(job_id)
    done = [f for f in res["fragments"] if f.get("status") == "DONE"]
    overheads = [f["round_trip_s"] - f["simulation_s"] for f in done
                 if f.get("round_trip_s") is not None and f.get("simulation_s") is not None]
    rec.fragment_overheads_s = overheads
    rec.overhead_per_fragment_s = statistics.fmean(overheads) if overheads else None
    rec.representation = res.get("representation", rec.representation)
    rec.estimated_fidelity = res["estimated_fidelity"]
    rec.measured_fidelity = res["measured_fidelity"]
    rec.ebits = res["total_ebits"]
    rec.fragments = len(done)
    rec.retries = res.get("retries", 0)
    rec.fallbacks = res.get("fallbacks", 0)
    rec.nodes_used = len(res["nodes_used"])
    rec.ran_on = sorted(names.get(n, n) for n in res["nodes_used"])
    rec.counts = dict(res["counts"])
    return rec
