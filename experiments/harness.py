"""Experiment harness (FR-013): distributed vs centralized runs of benchmark circuits under faults.

Distributed mode starts a real :class:`qb2.client.cluster.LocalCluster` (one
coordinator and N service-node processes on loopback) per scenario and submits
every circuit over the HTTP API. The centralized baseline runs the same parsed
circuit in-process as ONE monolithic simulated QPU (the same node handler code,
:func:`qb2.service_node.handler.handle_execute`): one ``gates`` request with every
operation on the full density matrix, then one ``readout`` request. No network.

Scenarios (each on a fresh cluster with its own data dir under ``out``; every
cluster first runs one unrecorded warm-up job spread over all its nodes, so
that each node has paid its first-simulation cost before faults and timings
start):

- ``none``: no faults.
- ``latency``: after the warm-up, the preferred nodes (every node of the
  entangling profile with the highest ``gate_2q``, see :func:`best_profile`)
  get a ``latency:LATENCY_SPIKE_S`` fault over the control protocol: each
  execute request they serve is answered ``LATENCY_SPIKE_S`` later, above the
  coordinator's execute timeout (``EXECUTE_TIMEOUT_S`` plus
  ``LATENCY_TIMEOUT_PER_MIB_S`` per MiB of state sent): fragments sent there
  time out, are retried (``MAX_ATTEMPTS`` invocations), then the rest of the
  job is re-planned without that node (fallback). The coordinator keeps no
  memory between jobs, so every job meets the slowed nodes again.
- ``drop_node``: after the warm-up every node answers each execute request
  ``DROP_SLOWDOWN_S`` later (so a job lasts long enough to strike it); while
  the scenario's first recorded job is EXECUTING, the node its plan puts the
  last gate fragment on is SIGKILLed (``cluster.kill``): that job's fragment
  fails its retries and the remaining operations fall back to other nodes.
  Once that job is final the slowdown is cleared on the surviving nodes; later
  jobs meet a refused reservation and are planned without the dead node.
- ``degrade``: before the first job, the preferred nodes (the same ones
  ``latency`` slows) get a ``degrade:DEGRADE_FACTOR`` fault over the libp2p
  control protocol (:func:`qb2.service_node.faults.send_fault`, the runtime
  equivalent of ``--fault degrade:F``), and the harness waits until the
  registry shows their lowered fidelities: they then advertise and simulate
  with lower fidelities, so plans move to the next-best nodes or keep the
  degraded ones, and both estimated and measured fidelity drop. (Degrading a
  single node is not enough: the planner routes around it to an identical
  twin or a nearly as good node, and the measured change is below shot noise.)

Centralized runs do not depend on the scenario (faults are network/node
faults); they run once per circuit and repeat and are reported under scenario
``none`` only.

Reproducibility (NFR-001). Rerunning with the same suite, seed and options
gives the same plans and the same counts; latencies differ. Two harness
settings make that hold across separate clusters:

- node identities are pinned (:func:`pin_identities`): each node's libp2p key
  is derived from its name, so a rerun has the same peer IDs, and the
  planner's tie-break between identical twin nodes (by peer ID) repeats;
- link probes are off (``QB2_QUALITY__PROBE_INTERVAL_S=0``): the planner then
  uses the nominal round trip (``qb2.compiler.cost.DEFAULT_LINK_RTT_S``, 3.1 ms)
  for every node instead of measured loopback pings, whose jitter would
  otherwise pick between twin nodes at random. RTT/loss degradation (FR-008)
  is therefore not exercised by the harness.

Each distributed record carries ``plan_fingerprint``: a hash of the job's
stored plan (the first plan; fallback plans are not stored) with peer IDs
mapped to node names (:func:`plan_fingerprint`). Counts are seeded end to end:
repeat ``r`` submits seed ``seed + r``, which the coordinator passes to the
readout fragment as Aer's ``seed_simulator``; gate fragments are deterministic
(density matrix or statevector evolution, no sampling).

Widths (:func:`width_limits`): the widest circuit a run uses is the smallest
of what the cluster can still place in every selected scenario (the nodes'
total ``qubits`` minus the nodes a scenario takes out: the slowed nodes under
``latency``, the largest node under ``drop_node``), the coordinator's
``compiler.statevector_max_qubits``, and what the machine's memory holds
(:data:`STATE_COPIES` statevectors). Up to ``compiler.density_matrix_max_qubits``
both modes simulate a density matrix (exact noise); above it a statevector
(gate and link noise only estimated; readout noise still sampled).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import trio

from qb2.compiler import parse_qasm
from qb2.compiler.capability import has_entangler
from qb2.compiler.cost import DEFAULT_LINK_RTT_S
from qb2.compiler.planner import PlannerOptions, choose_representation
from qb2.client.http import ApiError, Client
from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.coordinator.config import load_settings
from qb2.coordinator.fidelity import (
    IDEAL_MAX_QUBITS,
    estimated_fidelity,
    ideal_distribution,
    measured_fidelity,
)
from qb2.protocol.jobs import FragmentRecord
from qb2.experiments.circuits import BenchmarkCircuit, benchmark_circuit
from qb2.experiments.suites import ALL_SCENARIOS, Suite
from qb2.protocol.control import FaultSpec
from qb2.protocol.execute import ClbitRegister, ExecuteRequest, GateOp
from qb2.protocol.state import pack_state, zero_state
from qb2.service_node.config import PROFILES, NodeProfile
from qb2.service_node.handler import SimulatedQPU, handle_execute

#: Profiles the distributed nodes cycle through.
NODE_PROFILES: tuple[str, ...] = ("ibm-like", "ion-like", "cz-native", "single-qubit")
NODE_NAMES: tuple[str, ...] = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                               "india", "juliet")
#: Coordinator execute timeout in the latency scenario, seconds (plus LATENCY_TIMEOUT_PER_MIB_S per MiB sent).
EXECUTE_TIMEOUT_S = 0.4
#: Execute-timeout allowance per MiB of state sent in the latency scenario, seconds: a 12-qubit statevector
#: (64 KiB) adds 3 ms, a 17-qubit one (2 MiB) 0.1 s, so wide fragments on healthy nodes do not time out.
LATENCY_TIMEOUT_PER_MIB_S = 0.05
#: Invocations per fragment in the latency scenario before the runtime falls back.
MAX_ATTEMPTS = 2
#: Per-request latency injected on the slowed nodes in the latency scenario, seconds (> EXECUTE_TIMEOUT_S).
LATENCY_SPIKE_S = 1.0
#: Fidelity multiplier in the degrade scenario.
DEGRADE_FACTOR = 0.9
#: ``drop_node``: injected delay per execute request (seconds) until the struck job is final.
DROP_SLOWDOWN_S = 0.05
#: Environment for every scenario's daemons: fast backoff, a registry TTL longer than any job, and link
#: probes off so that the planner uses the nominal RTT for every node (see the module docstring).
BASE_ENV = {"QB2_RUNTIME__BACKOFF_BASE_S": "0.05", "QB2_DISCOVERY__REGISTRY_TTL_S": "30",
            "QB2_QUALITY__PROBE_INTERVAL_S": "0"}
#: Scenarios whose nodes serve the control protocol (faults sent at run time).
CONTROL_SCENARIOS = frozenset({"latency", "drop_node", "degrade"})
#: Unrecorded warm-up job of every cluster, spread over all its nodes (``min_nodes`` = node count).
WARMUP_CIRCUIT: tuple[str, int] = ("vqe_real_amp", 4)
#: Statevectors the memory limit budgets for (coordinator state + packed/unpacked copies on both ends,
#: Aer's working copy, the centralized run in the harness process).
STATE_COPIES = 8

Progress = Callable[[str], None]


@dataclass
class RunRecord:
    """One run of one circuit in one mode and scenario; times in seconds, fidelities in [0, 1].

    ``representation`` is ``density_matrix`` or ``statevector`` (noise only
    estimated). ``plan_fingerprint`` (distributed only) identifies the job's
    stored plan independently of peer IDs (:func:`plan_fingerprint`);
    ``plan_nodes`` names the nodes that plan uses and ``ran_on`` the nodes
    that completed fragments (they differ after a fallback).

    Counted the same way in both modes: ``operations`` is
    ``qb2.compiler.ir.CircuitIR.num_operations`` of the harness's own parse of the
    circuit (gates plus measurements; barriers are not operations);
    ``fragments`` is the number of fragment records with status DONE in
    distributed mode (failed or timed-out attempts not counted) and 2 in
    centralized mode (one ``gates`` request, one ``readout`` request).
    ``fragment_overheads_s`` (distributed only) lists ``round_trip_s -
    simulation_s`` of each DONE fragment record, seconds;
    ``overhead_per_fragment_s`` is their mean.
    """

    mode: str
    scenario: str
    circuit: str
    qubits: int
    operations: int
    repeat: int
    seed: int
    success: bool
    representation: str | None = None
    compile_s: float | None = None
    latency_s: float | None = None
    overhead_per_fragment_s: float | None = None
    fragment_overheads_s: list[float] = field(default_factory=list)
    estimated_fidelity: float | None = None
    measured_fidelity: float | None = None
    ebits: int = 0
    fragments: int = 0
    retries: int = 0
    fallbacks: int = 0
    nodes_used: int = 0
    plan_fingerprint: str | None = None
    plan_nodes: list[str] = field(default_factory=list)
    ran_on: list[str] = field(default_factory=list)
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class HarnessConfig:
    """What to run.

    Attributes:
        suite: circuits, repeats and shots.
        seed: base seed; repeat ``r`` runs with ``seed + r``.
        scenarios: fault scenarios for distributed mode (subset of :data:`ALL_SCENARIOS`).
        nodes: service nodes per cluster.
        ideal: every node (and the centralized QPU) uses the noiseless ``ideal``
            profile and link fidelity 1.0 (for count-equality checks).
        min_nodes: ask the planner to spread gate fragments over at least this
            many nodes (1: let the cost model decide; small circuits then stay on one node).
        centralized: also run the centralized baseline.
        max_qubits: widest circuit to run (qubits); None: :func:`width_limits`'s default.
    """

    suite: Suite
    seed: int = 7
    scenarios: tuple[str, ...] = ("none",)
    nodes: int = 6
    ideal: bool = False
    min_nodes: int = 2
    centralized: bool = True
    max_qubits: int | None = None


def node_specs(count: int, ideal: bool = False) -> list[NodeSpec]:
    """``count`` node specs cycling over :data:`NODE_PROFILES` (all ``ideal`` when ``ideal``)."""
    return [NodeSpec(NODE_NAMES[i % len(NODE_NAMES)] + ("" if i < len(NODE_NAMES) else str(i)),
                     "ideal" if ideal else NODE_PROFILES[i % len(NODE_PROFILES)]) for i in range(count)]


def best_profile(specs: Iterable[NodeSpec]) -> str:
    """The profile with the highest ``gate_2q`` among those with an entangling native gate.

    A profile without entangling gates (``single-qubit``) advertises
    ``gate_2q = 1.0`` as a placeholder and is never the best; it is chosen only
    when no profile has an entangling gate.
    """
    profiles = {s.profile or "ibm-like" for s in specs}
    entangling = {p for p in profiles if has_entangler(PROFILES[p]["native_gates"])} or profiles
    return max(entangling, key=lambda p: (PROFILES[p]["fidelity"]["gate_2q"], p))


def central_profile(specs: list[NodeSpec]) -> NodeProfile:
    """The monolithic QPU: the best node (:func:`best_profile`) grown to 24 qubits.

    Same native gate set and fidelities as that node, so the baseline pays the
    same gate translation per operation as a fragment placed there (e.g. ``cp``
    becomes one ``rzz`` on the ion-like profile); only the network, the
    teleportations and the capacity limit are gone.
    """
    best = PROFILES[best_profile(specs)]
    return NodeProfile(name="central", native_gates=best["native_gates"], qubits=24, fidelity=best["fidelity"])


def _capacity(specs: Iterable[NodeSpec]) -> int:
    return sum(PROFILES[s.profile or "ibm-like"]["qubits"] for s in specs)


def width_limits(specs: list[NodeSpec], scenarios: Iterable[str],
                 memory_bytes: int | None = None) -> dict[str, Any]:
    """The width limits of a run, in qubits, and the default ``max_qubits`` (their minimum).

    Keys: ``cluster`` (total ``qubits`` of the nodes), ``scenarios`` (per
    scenario, what the cluster still holds once the scenario's fault takes
    nodes out: ``latency`` the slowed nodes, ``drop_node`` the largest node),
    ``statevector`` and ``density_matrix`` (the coordinator's
    ``compiler.statevector_max_qubits`` / ``density_matrix_max_qubits`` from
    the environment the daemons inherit), ``memory`` (widest statevector of
    which :data:`STATE_COPIES` fit in ``memory_bytes``, default the machine's
    physical memory), ``ideal_distribution`` (widest circuit with a measured
    fidelity), and ``default`` (min of the non-zero scenario figures, statevector and memory).

    Raises:
        qb2.coordinator.config.ConfigError: the ``QB2_`` environment or config file is invalid.
        ValueError: unknown scenario.
    """
    settings = load_settings().compiler
    specs = list(specs)
    best = best_profile(specs)
    total = _capacity(specs)
    left: dict[str, int] = {}
    for scenario in scenarios:
        if scenario not in ALL_SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {ALL_SCENARIOS}")
        if scenario == "latency":
            left[scenario] = _capacity(s for s in specs if (s.profile or "ibm-like") != best)
        elif scenario == "drop_node":
            left[scenario] = total - max((_capacity([s]) for s in specs), default=0)
        else:
            left[scenario] = total
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    memory = math.floor(math.log2(max(memory_bytes, 16 * STATE_COPIES) / (16 * STATE_COPIES)))
    # A scenario that takes every node out (latency on identical nodes) bounds nothing: its runs cannot fall back.
    default = min([*(v for v in left.values() if v > 0), settings.statevector_max_qubits, memory])
    return {"cluster": total, "scenarios": left, "statevector": settings.statevector_max_qubits,
            "density_matrix": settings.density_matrix_max_qubits, "memory": memory,
            "memory_bytes": memory_bytes, "ideal_distribution": IDEAL_MAX_QUBITS, "default": default}


def scenario_cluster(scenario: str, specs: list[NodeSpec], ideal: bool) -> tuple[list[NodeSpec], dict[str, str]]:
    """Node specs and daemon environment for ``scenario`` (see the module docstring).

    Faults themselves are sent at run time over the control protocol
    (:func:`send_faults`); nodes of :data:`CONTROL_SCENARIOS` start with
    ``--accept-control``.

    Raises:
        ValueError: unknown scenario.
    """
    if scenario not in ALL_SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {ALL_SCENARIOS}")
    env = dict(BASE_ENV)
    if ideal:
        env["QB2_COMPILER__LINK_FIDELITY"] = "1.0"
    extra = ["--accept-control"] if scenario in CONTROL_SCENARIOS else []
    out = [NodeSpec(s.name, s.profile, [*s.extra_args, *extra], s.device) for s in specs]
    if scenario == "latency":
        env.update({"QB2_RUNTIME__EXECUTE_TIMEOUT_S": str(EXECUTE_TIMEOUT_S),
                    "QB2_RUNTIME__EXECUTE_TIMEOUT_PER_MIB_S": str(LATENCY_TIMEOUT_PER_MIB_S),
                    "QB2_RUNTIME__MAX_ATTEMPTS": str(MAX_ATTEMPTS)})
    return out, env


def slowed_nodes(specs: list[NodeSpec]) -> list[str]:
    """Names of the nodes ``latency`` slows and ``degrade`` degrades: every node of :func:`best_profile`."""
    best = best_profile(specs)
    return [s.name for s in specs if (s.profile or "ibm-like") == best]


def identity_seed(name: str) -> bytes:
    """The 32-byte Ed25519 seed the harness gives daemon ``name`` (derived from the name only).

    Experiment clusters on loopback only: anyone can derive these keys.
    """
    return hashlib.blake2b(f"qb2-harness-identity/{name}".encode(), digest_size=32).digest()


def pin_identities(data_dir: Path, specs: Iterable[NodeSpec]) -> None:
    """Write fixed identity keys for the coordinator and each node under ``data_dir`` (NFR-001).

    The daemons load ``coordinator/identity.key`` and ``nodes/<name>/identity.key``
    (see :func:`qb2.daemon.host.load_or_create_identity`), so every cluster
    started on these specs has the same peer IDs.

    Raises:
        OSError: the files cannot be written.
    """
    targets = {"coordinator": data_dir / "coordinator" / "identity.key"}
    targets.update({s.name: data_dir / "nodes" / s.name / "identity.key" for s in specs})
    for name, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(identity_seed(name))
        path.chmod(0o600)


def plan_fingerprint(plan: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """SHA-256 (first 16 hex digits) of the canonical plan JSON with every peer ID replaced by its node name.

    Equal for equal plans on clusters whose peer IDs differ but whose node
    names agree; ``names`` maps peer ID -> node name.
    """
    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list | tuple):
            return [rename(v) for v in value]
        if isinstance(value, Mapping):
            return {names.get(k, k): rename(v) for k, v in value.items()}
        return value

    text = json.dumps(rename(plan), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _clbit_registers(ir: Any) -> tuple[ClbitRegister, ...]:
    if ir.cregs:
        return tuple(ClbitRegister(name=r.name, size=r.size) for r in ir.cregs)
    return (ClbitRegister(name="c", size=ir.num_clbits),) if ir.num_clbits else ()


def run_centralized(circuit: BenchmarkCircuit, qpu: SimulatedQPU, *, shots: int, seed: int,
                    repeat: int = 0, density_matrix_max_qubits: int = 8,
                    statevector_max_qubits: int = 24) -> RunRecord:
    """Run ``circuit`` in-process on one monolithic QPU (same handler code as a node).

    The representation is chosen as the planner chooses it
    (:func:`qb2.compiler.planner.choose_representation`): a density matrix (exact
    noise) up to ``density_matrix_max_qubits``, else a statevector (no gate
    noise; readout noise only). ``compile_s`` is parsing plus request building
    (no partitioning or placement is needed); ``latency_s`` is the wall time
    of the two ``handle_execute`` calls (gates on the full state, then
    readout), seconds.

    Raises:
        qb2.compiler.errors.InfeasiblePlanError: wider than ``statevector_max_qubits``.
    """
    t0 = time.perf_counter()
    ir = parse_qasm(circuit.qasm, circuit.format, circuit.label)
    n = ir.num_qubits
    representation = choose_representation(n, PlannerOptions(density_matrix_max_qubits=density_matrix_max_qubits,
                                                             statevector_max_qubits=statevector_max_qubits))
    gates = ExecuteRequest(job_id="central", fragment_id="f0", kind="gates", representation=representation,
                           num_qubits=n, ops=tuple(GateOp(name=o.name, qubits=o.qubits, params=o.params)
                                                   for o in ir.operations))
    readout = ExecuteRequest(job_id="central", fragment_id="readout", kind="readout",
                             representation=representation, num_qubits=n,
                             measurements=tuple((m.qubit, m.clbit) for m in ir.measurements),
                             clbit_registers=_clbit_registers(ir), shots=shots, seed=seed)
    payload = pack_state(zero_state(representation, n))
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    g_resp, state = handle_execute(qpu, gates, payload)
    r_resp, _ = handle_execute(qpu, readout, state) if g_resp.ok else (g_resp, b"")
    latency = time.perf_counter() - t1
    rec = RunRecord("centralized", "none", circuit.label, n, ir.num_operations, repeat, seed,
                    success=bool(g_resp.ok and r_resp.ok), representation=representation, compile_s=compile_s,
                    latency_s=latency, fragments=2, nodes_used=1, ran_on=["central"])
    if not rec.success:
        rec.error = (r_resp.error or g_resp.error).message if (r_resp.error or g_resp.error) else "failed"
        return rec
    records = [FragmentRecord(fragment_id="f0", kind="gates", node_id="central", native_op_counts=g_resp.native_op_counts),
               FragmentRecord(fragment_id="readout", kind="readout", node_id="central",
                              native_op_counts=r_resp.native_op_counts)]
    rec.estimated_fidelity = estimated_fidelity(records, {"central": qpu.profile.fidelity}, 1.0)
    rec.measured_fidelity = measured_fidelity(r_resp.counts, ideal_distribution(ir))
    rec.counts = dict(r_resp.counts)
    return rec


#: Errors of one distributed run that become a failed :class:`RunRecord` instead of ending the experiment:
#: waiting too long, the coordinator rejecting a request (a job whose fragments failed is reported by the
#: coordinator through ``ApiError`` or a FAILED state), and the HTTP connection failing.
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
    (gates plus measurements), as in :func:`run_centralized`.
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


def send_faults(cluster: LocalCluster, faults: Mapping[str, FaultSpec], timeout_s: float = 30.0) -> None:
    """Send each node (by name) its fault over the control protocol, concurrently, and wait for the answers.

    The nodes must run with ``--accept-control``. A fault is in force on the
    node when its answer arrives (degrade also needs the re-advertisement to
    reach the registry: see :func:`degrade_nodes`).

    Raises:
        RuntimeError: a node refused its fault (the message names the nodes and why).
        trio.TooSlowError: not every answer arrived within ``timeout_s`` seconds.
        KeyError: an unknown node name.
    """
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from qb2.daemon.host import load_or_create_identity, make_host
    from qb2.service_node.faults import send_fault

    targets = {name: (cluster.node_peer_ids[name],
                      json.loads((cluster.data_dir / "run" / f"node-{name}.json").read_text())["addrs"][0])
               for name in faults}
    refused: dict[str, str] = {}

    async def one(host: Any, name: str) -> None:
        peer, addr = targets[name]
        await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
        answer = await send_fault(host, peer, faults[name], timeout_s=timeout_s)
        if not answer.accepted:
            refused[name] = answer.reason or "refused"

    async def send_all() -> None:
        host = make_host(load_or_create_identity(cluster.operator_identity))  # nodes serve the operator (FR-019)
        async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with trio.fail_after(timeout_s):
                async with trio.open_nursery() as nursery:
                    for name in faults:
                        nursery.start_soon(one, host, name)

    trio.run(send_all)
    if refused:
        raise RuntimeError("nodes refused the fault: " + "; ".join(f"{n}: {r}" for n, r in sorted(refused.items())))


def degrade_nodes(cluster: LocalCluster, client: Client, names: Iterable[str], factor: float = DEGRADE_FACTOR,
                  timeout_s: float = 30.0) -> None:
    """Send ``degrade:factor`` to the nodes ``names`` (started with ``--accept-control``) and wait, up to
    ``timeout_s`` seconds, until the coordinator's registry lists the lowered ``gate_2q`` of each.

    Raises:
        RuntimeError: a node refused the fault.
        TimeoutError: the registry did not show every change in time.
    """
    names = list(names)
    peers = {cluster.node_peer_ids[n]: n for n in names}

    def gate_2q() -> dict[str, float]:
        return {n["node_id"]: n["fidelity"]["gate_2q"] for n in client.nodes()["nodes"] if n["node_id"] in peers}

    before = gate_2q()
    send_faults(cluster, {n: FaultSpec(kind="degrade", factor=factor) for n in names}, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while pending := sorted(peers[p] for p, f in gate_2q().items() if f >= before[p]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"registry still shows nodes {pending} undegraded after {timeout_s} s")
        time.sleep(0.05)  # polling interval of the registry endpoint


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def resolved_max_qubits(config: HarnessConfig) -> int:
    """``config.max_qubits``, or the default of :func:`width_limits` for its nodes and scenarios."""
    if config.max_qubits is not None:
        return config.max_qubits
    return int(width_limits(node_specs(config.nodes, config.ideal), config.scenarios)["default"])


def suite_circuits(config: HarnessConfig) -> list[BenchmarkCircuit]:
    """Generate every circuit ``config`` runs (its suite's instances up to :func:`resolved_max_qubits`).

    Raises:
        ValueError: unknown benchmark or a width mqt-bench cannot build.
        qiskit.exceptions.QiskitError: mqt-bench failed to build a circuit.
        qb2.coordinator.config.ConfigError: the ``QB2_`` environment or config file is invalid.
    """
    return [benchmark_circuit(name, q) for name, q in config.suite.instances(resolved_max_qubits(config))]


def run_experiment(config: HarnessConfig, out: Path, progress: Progress = _stderr, *,
                   circuits: list[BenchmarkCircuit] | None = None, records: list[RunRecord] | None = None,
                   events: dict[str, Any] | None = None) -> list[RunRecord]:
    """Run every circuit of ``config.suite`` in both modes and every scenario; returns one record per run.

    Writes nothing itself except cluster data under ``out/clusters/<scenario>``
    (replaced on each run; see :func:`qb2.experiments.report.write_outputs` for the
    result files). ``circuits``: the generated suite circuits (default
    :func:`suite_circuits`). ``records``: a list each record is appended to as
    soon as its run finishes (and returned), so that a caller keeps what finished
    when the experiment is interrupted. ``events``: a dict the harness fills
    with what its faults did: ``drop_node_killed`` (names of the nodes
    SIGKILLed, empty when the first job was never seen EXECUTING).

    A failure of one distributed run is a record with ``success=False`` (see
    :func:`run_distributed`), not an exception.

    Raises:
        ValueError: unknown scenario or benchmark, or a width mqt-bench cannot build.
        RuntimeError, TimeoutError: a cluster did not start or a fault could not be injected.
    """
    suite = config.suite
    compiler_settings = load_settings().compiler
    if circuits is None:
        circuits = suite_circuits(config)
    specs = node_specs(config.nodes, config.ideal)
    seeds = [config.seed + r for r in range(suite.repeats)]
    total = len(circuits) * len(seeds) * (len(config.scenarios) + (1 if config.centralized else 0))
    records = [] if records is None else records
    events = {} if events is None else events
    k = 0
    if config.centralized:
        profile = central_profile(specs)
        qpu = SimulatedQPU.from_profile("central", profile)
        for circuit in circuits:
            for r, seed in enumerate(seeds):
                k += 1
                progress(f"[{k}/{total}] {circuit.label} none centralized (repeat {r})")
                records.append(run_centralized(
                    circuit, qpu, shots=suite.shots, seed=seed, repeat=r,
                    density_matrix_max_qubits=compiler_settings.density_matrix_max_qubits,
                    statevector_max_qubits=compiler_settings.statevector_max_qubits))
    warm_name, warm_width = WARMUP_CIRCUIT
    warmup = benchmark_circuit(warm_name, warm_width)
    for scenario in config.scenarios:
        nodes, env = scenario_cluster(scenario, specs, config.ideal)
        data = out / "clusters" / scenario
        shutil.rmtree(data, ignore_errors=True)  # a fresh coordinator database: no jobs of an earlier run
        pin_identities(data, nodes)
        progress(f"starting cluster for scenario {scenario}: coordinator + {len(nodes)} nodes")
        with LocalCluster(data, nodes, env=env) as cluster, Client(cluster.api_url) as client:
            names = {p: n for n, p in cluster.node_peer_ids.items()}
            # Warm-up (not recorded): libp2p connections and every node's first simulation.
            warm = client.submit(warmup.qasm, shots=10, seed=0, fmt=warmup.format, name="warmup",
                                 min_nodes=len(nodes))["job_id"]
            client.wait(warm, timeout_s=120, poll_s=0.01, max_poll_s=0.05)
            strike: Callable[[str], None] | None = None
            struck: list[str] = []
            if scenario == "latency":
                slow = slowed_nodes(nodes)
                progress(f"latency: nodes {', '.join(slow)} answer {LATENCY_SPIKE_S} s late "
                         f"(execute timeout {EXECUTE_TIMEOUT_S} s)")
                send_faults(cluster, {n: FaultSpec(kind="latency", latency_s=LATENCY_SPIKE_S) for n in slow})
            if scenario == "drop_node":
                send_faults(cluster, {s.name: FaultSpec(kind="latency", latency_s=DROP_SLOWDOWN_S) for s in nodes})

                def strike(job_id: str, cluster: LocalCluster = cluster, client: Client = client,
                           struck: list[str] = struck) -> None:
                    gate_nodes = [f["node_id"] for f in client.plan(job_id)["fragments"] if f["kind"] == "gates"]
                    if not gate_nodes:
                        return
                    victim = {p: n for n, p in cluster.node_peer_ids.items()}[gate_nodes[-1]]
                    progress(f"drop_node: SIGKILL node {victim} while job {job_id} is EXECUTING")
                    cluster.kill(f"node-{victim}")
                    struck.append(victim)
            if scenario == "degrade":
                victims = slowed_nodes(nodes)
                progress(f"degrade: nodes {', '.join(victims)} degraded by {DEGRADE_FACTOR} over the control protocol")
                degrade_nodes(cluster, client, victims)
            for circuit in circuits:
                for r, seed in enumerate(seeds):
                    k += 1
                    progress(f"[{k}/{total}] {circuit.label} {scenario} distributed (repeat {r})")
                    records.append(run_distributed(client, circuit, scenario=scenario, shots=suite.shots,
                                                   seed=seed, repeat=r, min_nodes=config.min_nodes,
                                                   on_executing=strike, names=names))
                    if strike is not None:  # only the first recorded job is struck; then the slowdown ends
                        strike = None
                        events["drop_node_killed"] = list(struck)
                        if not struck:
                            progress("WARNING: drop_node killed no node (the first job was never seen EXECUTING, "
                                     "or its plan had no gate fragment): this scenario's runs saw no node drop")
                        survivors = [s.name for s in nodes if s.name not in struck]
                        send_faults(cluster, {n: FaultSpec(kind="clear") for n in survivors})
    return records


def package_versions() -> dict[str, str]:
    """Installed versions of the packages results depend on ("missing" when not installed)."""
    out = {}
    for name in ("qiskit", "qiskit-aer", "libp2p", "trio", "fastapi", "mqt.bench", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit() -> str:
    """``git rev-parse HEAD`` of the repository, with ``-dirty`` when tracked files differ from it, or ``"unknown"``."""
    where = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=where, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], capture_output=True, cwd=where, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("-dirty" if dirty.returncode == 1 else "")) if head else "unknown"


def run_config(config: HarnessConfig) -> dict[str, Any]:
    """The ``run_config.json`` document: suite, seeds, scenarios, nodes, widths, fault parameters,
    reproducibility settings, versions, commit.

    Raises:
        qb2.coordinator.config.ConfigError: the ``QB2_`` environment or config file is invalid.
    """
    specs = node_specs(config.nodes, config.ideal)
    limits = width_limits(specs, config.scenarios)
    max_qubits = resolved_max_qubits(config)
    return {
        "suite": asdict(config.suite),
        "circuits": [f"{n}-{q}" for n, q in config.suite.instances(max_qubits)],
        "planned_runs": (len(config.suite.instances(max_qubits)) * config.suite.repeats
                         * (len(config.scenarios) + (1 if config.centralized else 0))),
        "base_seed": config.seed,
        "seeds": [config.seed + r for r in range(config.suite.repeats)],
        "scenarios": list(config.scenarios),
        "nodes": [asdict(s) for s in specs],
        "ideal": config.ideal,
        "min_nodes": config.min_nodes,
        "centralized": config.centralized,
        "max_qubits": max_qubits,
        "max_qubits_source": "set with --max-qubits" if config.max_qubits is not None else "the default",
        "width_limits": limits,
        "fault_parameters": {
            "execute_timeout_s": EXECUTE_TIMEOUT_S, "execute_timeout_per_mib_s": LATENCY_TIMEOUT_PER_MIB_S,
            "max_attempts": MAX_ATTEMPTS, "latency_spike_s": LATENCY_SPIKE_S,
            "latency_nodes": slowed_nodes(specs), "degrade_factor": DEGRADE_FACTOR,
            "degrade": "runtime control fault on every node of the best entangling profile (latency_nodes)",
            "drop_node": (f"SIGKILL of the first job's last gate node while it is EXECUTING; every node slowed by "
                          f"{DROP_SLOWDOWN_S} s per fragment until that job is final")},
        "reproducibility": {
            "identities": "pinned: each daemon's libp2p key derives from its name (pin_identities)",
            "link_probes": "off (QB2_QUALITY__PROBE_INTERVAL_S=0): the planner uses the nominal RTT "
                           f"{DEFAULT_LINK_RTT_S} s for every node",
            "counts": "seeded: repeat r submits seed base_seed + r, the readout's Aer seed_simulator",
            "not_reproducible": "latencies, compile and overhead times (machine load, timing faults)"},
        "daemon_env": dict(BASE_ENV),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "git_commit": git_commit(),
        "started_unix_s": time.time(),
    }


def to_json_line(record: RunRecord) -> str:
    """One ``results.jsonl`` line."""
    return json.dumps(asdict(record), sort_keys=True)
