"""Experiment harness (FR-013): distributed vs centralized runs of benchmark circuits under faults.

Distributed mode starts a real :class:`coordinator.cluster.LocalCluster` (one
coordinator and N service-node processes on loopback) per scenario and submits
every circuit over the HTTP API. The centralized baseline runs the same parsed
circuit in-process as ONE monolithic simulated QPU (the same node handler code,
:func:`service_node.handler.handle_execute`): one ``gates`` request with every
operation on the full density matrix, then one ``readout`` request. No network.

Scenarios (each on a fresh cluster with its own data dir under ``out``):

- ``none``: no faults.
- ``latency``: the preferred nodes (every node of the profile with the highest
  ``gate_2q``) answer each execute request after ``LATENCY_SPIKE_S``, above the
  coordinator's execute timeout (``QB2_RUNTIME__EXECUTE_TIMEOUT_S`` =
  ``EXECUTE_TIMEOUT_S``): fragments sent there time out, are retried, then
  re-planned elsewhere (fallback).
- ``drop_node``: every node answers each execute request ``DROP_SLOWDOWN_S``
  later (so a job lasts long enough to strike it), and while the scenario's
  first recorded job is EXECUTING, the node its plan puts the last gate
  fragment on is SIGKILLed (``cluster.kill``): that job's fragment fails its
  retries and the remaining operations fall back to other nodes; later jobs
  meet a refused reservation and are planned without the dead node.
- ``degrade``: nodes start with ``--accept-control``; before the first job,
  the node the dry-run plan puts the first gate fragment on gets a
  ``degrade:DEGRADE_FACTOR`` fault over the libp2p control protocol
  (:func:`service_node.faults.send_fault`, the runtime equivalent of
  ``--fault degrade:F``), and the harness waits until the registry shows its
  lowered fidelities: it then advertises and simulates with lower fidelities,
  so plans get worse or move to the next-best node. (Degrading a node chosen
  at start-up is not enough: the planner routes around it to an identical
  twin, and nothing changes.)

Centralized runs do not depend on the scenario (faults are network/node
faults); they run once per circuit and repeat and are reported under scenario
``none`` only.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from compiler import parse_qasm
from coordinator.client import Client
from coordinator.cluster import LocalCluster, NodeSpec
from coordinator.fidelity import (
    estimated_fidelity,
    ideal_distribution,
    measured_fidelity,
)
from coordinator.jobs import FragmentRecord
from experiments.circuits import BenchmarkCircuit, benchmark_circuit
from experiments.suites import ALL_SCENARIOS, Suite
from protocol.execute import ClbitRegister, ExecuteRequest, GateOp
from protocol.state import pack_state, zero_state
from service_node.config import PROFILES, NodeProfile
from service_node.handler import SimulatedQPU, handle_execute

#: Profiles the distributed nodes cycle through.
NODE_PROFILES: tuple[str, ...] = ("ibm-like", "ion-like", "cz-native", "single-qubit")
NODE_NAMES: tuple[str, ...] = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                               "india", "juliet")
#: Native gate set of the centralized QPU: broad enough that no translation is needed for mqt-bench circuits.
UNIVERSAL_GATES: list[str] = ["cx", "cz", "rz", "rx", "ry", "sx", "x", "h", "p", "u"]
#: Coordinator execute timeout in the latency scenario, seconds.
EXECUTE_TIMEOUT_S = 0.4
#: Per-request latency injected on the slowed nodes in the latency scenario, seconds (> EXECUTE_TIMEOUT_S).
LATENCY_SPIKE_S = 1.0
#: Fidelity multiplier in the degrade scenario.
DEGRADE_FACTOR = 0.9
#: ``drop_node``: injected delay per execute request (seconds), so jobs are still running when struck.
DROP_SLOWDOWN_S = 0.05
#: Environment for every scenario's daemons (fast backoff; fewer attempts keep the latency scenario short).
BASE_ENV = {"QB2_RUNTIME__BACKOFF_BASE_S": "0.05", "QB2_DISCOVERY__REGISTRY_TTL_S": "30"}

Progress = Callable[[str], None]


@dataclass
class RunRecord:
    """One run of one circuit in one mode and scenario; times in seconds, fidelities in [0, 1]."""

    mode: str
    scenario: str
    circuit: str
    qubits: int
    operations: int
    repeat: int
    seed: int
    success: bool
    compile_s: float | None = None
    latency_s: float | None = None
    overhead_per_fragment_s: float | None = None
    estimated_fidelity: float | None = None
    measured_fidelity: float | None = None
    ebits: int = 0
    fragments: int = 0
    retries: int = 0
    fallbacks: int = 0
    nodes_used: int = 0
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
    """

    suite: Suite
    seed: int = 7
    scenarios: tuple[str, ...] = ("none",)
    nodes: int = 6
    ideal: bool = False
    min_nodes: int = 2
    centralized: bool = True


def node_specs(count: int, ideal: bool = False) -> list[NodeSpec]:
    """``count`` node specs cycling over :data:`NODE_PROFILES` (all ``ideal`` when ``ideal``)."""
    return [NodeSpec(NODE_NAMES[i % len(NODE_NAMES)] + ("" if i < len(NODE_NAMES) else str(i)),
                     "ideal" if ideal else NODE_PROFILES[i % len(NODE_PROFILES)]) for i in range(count)]


def _best_profile(specs: Iterable[NodeSpec]) -> str:
    return max({s.profile or "ibm-like" for s in specs},
               key=lambda p: (PROFILES[p]["fidelity"]["gate_2q"], p))


def central_profile(specs: list[NodeSpec]) -> NodeProfile:
    """The monolithic QPU: the best node's fidelities (highest ``gate_2q``), universal gates, enough qubits."""
    best = PROFILES[_best_profile(specs)]
    return NodeProfile(name="central", native_gates=UNIVERSAL_GATES, qubits=24, fidelity=best["fidelity"])


def scenario_cluster(scenario: str, specs: list[NodeSpec], ideal: bool) -> tuple[list[NodeSpec], dict[str, str]]:
    """Node specs and daemon environment for ``scenario`` (see the module docstring).

    Raises:
        ValueError: unknown scenario.
    """
    if scenario not in ALL_SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {ALL_SCENARIOS}")
    env = dict(BASE_ENV)
    if ideal:
        env["QB2_COMPILER__LINK_FIDELITY"] = "1.0"
    best = _best_profile(specs)
    out = []
    for s in specs:
        extra = list(s.extra_args)
        if scenario == "latency" and s.profile == best:
            extra += ["--fault", f"latency:{LATENCY_SPIKE_S}"]
        if scenario == "degrade":
            extra += ["--accept-control"]
        if scenario == "drop_node":
            extra += ["--fault", f"latency:{DROP_SLOWDOWN_S}"]
        out.append(NodeSpec(s.name, s.profile, extra, s.device))
    if scenario == "latency":
        env.update({"QB2_RUNTIME__EXECUTE_TIMEOUT_S": str(EXECUTE_TIMEOUT_S),
                    "QB2_RUNTIME__EXECUTE_TIMEOUT_PER_MIB_S": "0", "QB2_RUNTIME__MAX_ATTEMPTS": "2"})
    return out, env


def _clbit_registers(ir: Any) -> tuple[ClbitRegister, ...]:
    if ir.cregs:
        return tuple(ClbitRegister(name=r.name, size=r.size) for r in ir.cregs)
    return (ClbitRegister(name="c", size=ir.num_clbits),) if ir.num_clbits else ()


def run_centralized(circuit: BenchmarkCircuit, qpu: SimulatedQPU, *, shots: int, seed: int,
                    repeat: int = 0) -> RunRecord:
    """Run ``circuit`` in-process on one monolithic QPU (density matrix, same handler code as a node).

    ``compile_s`` is parsing plus request building (no partitioning or
    placement is needed); ``latency_s`` is the wall time of the two
    ``handle_execute`` calls (gates on the full state, then readout), seconds.
    """
    t0 = time.perf_counter()
    ir = parse_qasm(circuit.qasm, circuit.format, circuit.label)
    n = ir.num_qubits
    gates = ExecuteRequest(job_id="central", fragment_id="f0", kind="gates", representation="density_matrix",
                           num_qubits=n, ops=tuple(GateOp(name=o.name, qubits=o.qubits, params=o.params)
                                                   for o in ir.operations))
    readout = ExecuteRequest(job_id="central", fragment_id="readout", kind="readout",
                             representation="density_matrix", num_qubits=n,
                             measurements=tuple((m.qubit, m.clbit) for m in ir.measurements),
                             clbit_registers=_clbit_registers(ir), shots=shots, seed=seed)
    payload = pack_state(zero_state("density_matrix", n))
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    g_resp, state = handle_execute(qpu, gates, payload)
    r_resp, _ = handle_execute(qpu, readout, state) if g_resp.ok else (g_resp, b"")
    latency = time.perf_counter() - t1
    rec = RunRecord("centralized", "none", circuit.label, n, len(ir.operations), repeat, seed,
                    success=bool(g_resp.ok and r_resp.ok), compile_s=compile_s, latency_s=latency,
                    fragments=1, nodes_used=1)
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


def run_distributed(client: Client, circuit: BenchmarkCircuit, *, scenario: str, shots: int, seed: int,
                    repeat: int, min_nodes: int, timeout_s: float = 120.0,
                    on_executing: Callable[[str], None] | None = None) -> RunRecord:
    """Submit ``circuit`` to a running cluster and wait for it.

    ``compile_s`` is the wall time of ``POST /api/v1/circuits/plan`` (a dry-run:
    parse + plan on the coordinator, plus one loopback HTTP round trip);
    ``latency_s`` is submit request sent -> COMPLETED/FAILED observed (10 ms
    polls); ``overhead_per_fragment_s`` is the mean of ``round_trip_s -
    simulation_s`` over fragment records that have both, seconds.
    ``on_executing(job_id)`` is called once when the job is first seen EXECUTING
    (the ``drop_node`` scenario strikes there).
    """
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
            time.sleep(0.005)
    latency = time.perf_counter() - t1
    ops = final.get("num_operations") or len(plan.get("fragments", []))
    rec = RunRecord("distributed", scenario, circuit.label, circuit.qubits, int(ops), repeat, seed,
                    success=final["state"] == "COMPLETED", compile_s=compile_s, latency_s=latency)
    if not rec.success:
        err = final.get("error") or {}
        rec.error = f"{err.get('code')}: {err.get('message')}"
        return rec
    res = client.result(job_id)
    overheads = [f["round_trip_s"] - f["simulation_s"] for f in res["fragments"]
                 if f.get("round_trip_s") is not None and f.get("simulation_s") is not None
                 and f.get("status") == "DONE"]
    rec.overhead_per_fragment_s = statistics.fmean(overheads) if overheads else None
    rec.estimated_fidelity = res["estimated_fidelity"]
    rec.measured_fidelity = res["measured_fidelity"]
    rec.ebits = res["total_ebits"]
    rec.fragments = len(res["fragments"])
    rec.retries = res.get("retries", 0)
    rec.fallbacks = res.get("fallbacks", 0)
    rec.nodes_used = len(res["nodes_used"])
    rec.counts = dict(res["counts"])
    return rec


def degrade_node(cluster: LocalCluster, client: Client, name: str, factor: float = DEGRADE_FACTOR,
                 timeout_s: float = 30.0) -> None:
    """Send ``degrade:factor`` to node ``name`` (started with ``--accept-control``) and wait, up to
    ``timeout_s`` seconds, until the coordinator's registry lists its lowered ``gate_2q``.

    Raises:
        RuntimeError: the node refused the fault.
        TimeoutError: the registry did not show the change in time.
    """
    import multiaddr
    import trio
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from protocol.control import FaultSpec
    from protocol.transport import load_or_create_identity, make_host
    from service_node.faults import send_fault

    peer = cluster.node_peer_ids[name]
    before = next(n["fidelity"]["gate_2q"] for n in client.nodes()["nodes"] if n["node_id"] == peer)
    addr = json.loads((cluster.data_dir / "run" / f"node-{name}.json").read_text())["addrs"][0]

    async def send() -> bool:
        host = make_host(load_or_create_identity(None))
        async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
            answer = await send_fault(host, peer, FaultSpec(kind="degrade", factor=factor))
            return bool(answer.accepted)

    if not trio.run(send):
        raise RuntimeError(f"node {name} refused the degrade fault")
    deadline = time.monotonic() + timeout_s
    while next(n["fidelity"]["gate_2q"] for n in client.nodes()["nodes"] if n["node_id"] == peer) >= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"registry still shows node {name} undegraded after {timeout_s} s")
        time.sleep(0.05)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_experiment(config: HarnessConfig, out: Path, progress: Progress = _stderr) -> list[RunRecord]:
    """Run every circuit of ``config.suite`` in both modes and every scenario; returns one record per run.

    Writes nothing itself except cluster data under ``out/clusters/<scenario>``
    (see :func:`experiments.report.write_outputs` for the result files).
    """
    suite = config.suite
    circuits = [benchmark_circuit(name, q) for name, q in suite.circuits]
    specs = node_specs(config.nodes, config.ideal)
    seeds = [config.seed + r for r in range(suite.repeats)]
    total = len(circuits) * len(seeds) * (len(config.scenarios) + (1 if config.centralized else 0))
    records: list[RunRecord] = []
    k = 0
    if config.centralized:
        profile = central_profile(specs)
        qpu = SimulatedQPU.from_profile("central", profile)
        for circuit in circuits:
            for r, seed in enumerate(seeds):
                k += 1
                progress(f"[{k}/{total}] {circuit.label} none centralized (repeat {r})")
                records.append(run_centralized(circuit, qpu, shots=suite.shots, seed=seed, repeat=r))
    for scenario in config.scenarios:
        nodes, env = scenario_cluster(scenario, specs, config.ideal)
        data = out / "clusters" / scenario
        data.mkdir(parents=True, exist_ok=True)
        progress(f"starting cluster for scenario {scenario}: coordinator + {len(nodes)} nodes")
        with LocalCluster(data, nodes, env=env) as cluster, Client(cluster.api_url) as client:
            # Warm-up (not recorded): the first job pays for libp2p connection setup to each node.
            # Skipped under ``latency``: it would already trip (and route around) the slowed nodes.
            if scenario != "latency":
                warm = client.submit(circuits[0].qasm, shots=10, seed=0, fmt=circuits[0].format,
                                     min_nodes=config.min_nodes)["job_id"]
                client.wait(warm, timeout_s=120, poll_s=0.01, max_poll_s=0.05)
            strike: Callable[[str], None] | None = None
            if scenario == "drop_node":
                def strike(job_id: str, cluster: LocalCluster = cluster, client: Client = client) -> None:
                    gate_nodes = [f["node_id"] for f in client.plan(job_id)["fragments"] if f["kind"] == "gates"]
                    victim = {p: n for n, p in cluster.node_peer_ids.items()}[gate_nodes[-1]]
                    progress(f"drop_node: SIGKILL node {victim} while job {job_id} is EXECUTING")
                    cluster.kill(f"node-{victim}")
            if scenario == "degrade":
                plan = client.dry_run(circuits[0].qasm, fmt=circuits[0].format, min_nodes=config.min_nodes)
                first = next(f["node_id"] for f in plan["fragments"] if f["kind"] == "gates")
                victim = {p: n for n, p in cluster.node_peer_ids.items()}[first]
                progress(f"degrade: node {victim} degraded by {DEGRADE_FACTOR} over the control protocol")
                degrade_node(cluster, client, victim)
            for circuit in circuits:
                for r, seed in enumerate(seeds):
                    k += 1
                    progress(f"[{k}/{total}] {circuit.label} {scenario} distributed (repeat {r})")
                    records.append(run_distributed(client, circuit, scenario=scenario, shots=suite.shots,
                                                   seed=seed, repeat=r, min_nodes=config.min_nodes,
                                                   on_executing=strike))
                    strike = None  # only the first recorded job is struck
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
    """``git rev-parse HEAD`` of the repository, or ``"unknown"``."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_config(config: HarnessConfig) -> dict[str, Any]:
    """The ``run_config.json`` document: suite, seeds, scenarios, nodes, fault parameters, versions, commit."""
    return {
        "suite": asdict(config.suite),
        "base_seed": config.seed,
        "seeds": [config.seed + r for r in range(config.suite.repeats)],
        "scenarios": list(config.scenarios),
        "nodes": [asdict(s) for s in node_specs(config.nodes, config.ideal)],
        "ideal": config.ideal,
        "min_nodes": config.min_nodes,
        "fault_parameters": {"execute_timeout_s": EXECUTE_TIMEOUT_S, "latency_spike_s": LATENCY_SPIKE_S,
                             "degrade_factor": DEGRADE_FACTOR, "degrade": "runtime control fault on the planned first node", "drop_node": f"SIGKILL of the first job's last gate node while it is EXECUTING; every node slowed by {DROP_SLOWDOWN_S} s per fragment"},
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "git_commit": git_commit(),
        "started_unix_s": time.time(),
    }


def to_json_line(record: RunRecord) -> str:
    """One ``results.jsonl`` line."""
    return json.dumps(asdict(record), sort_keys=True)
