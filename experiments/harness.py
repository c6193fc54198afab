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

Reproducibility (NFR-001): a rerun with the same suite, seed and options
repeats plans and counts (pinned node identities, link probes off, seeded
counts; :mod:`qb2.experiments.reproducibility`). Widths: the widest circuit a
run uses is bounded by the cluster under every selected scenario, the
coordinator's statevector limit and the machine's memory
(:mod:`qb2.experiments.widths`).

This module runs an experiment (:func:`run_experiment`: a cluster per
scenario, its warm-up, the faults at the right moments, every run); the parts
live in their own modules, and their public names are re-exported here:

- :mod:`qb2.experiments.records`: :class:`HarnessConfig`, :class:`RunRecord`, :func:`to_json_line`;
- :mod:`qb2.experiments.scenarios`: the nodes, the scenarios' daemon settings
  and fault parameters (:func:`node_specs`, :func:`best_profile`,
  :func:`slowed_nodes`, :func:`scenario_cluster`, :data:`EXECUTE_TIMEOUT_S` ...);
- :mod:`qb2.experiments.widths`: :func:`width_limits`,
  :func:`resolved_max_qubits`, :func:`suite_circuits`;
- :mod:`qb2.experiments.reproducibility`: :func:`pin_identities`,
  :func:`identity_seed`, :func:`plan_fingerprint`;
- :mod:`qb2.experiments.centralized`: :func:`central_profile`, :func:`run_centralized`;
- :mod:`qb2.experiments.distributed`: :func:`run_distributed`, :data:`RUN_ERRORS`;
- :mod:`qb2.experiments.fault_injection`: :func:`send_faults`, :func:`degrade_nodes`;
- :mod:`qb2.experiments.provenance`: :func:`run_config` (``run_config.json``),
  :func:`package_versions`, :func:`git_commit`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qb2.client.cluster import LocalCluster
from qb2.client.http import Client
from qb2.coordinator.config import load_settings
from qb2.experiments.centralized import central_profile, run_centralized
from qb2.experiments.circuits import BenchmarkCircuit, benchmark_circuit
from qb2.experiments.distributed import RUN_ERRORS, run_distributed
from qb2.experiments.fault_injection import degrade_nodes, send_faults
from qb2.experiments.provenance import git_commit, package_versions, run_config
from qb2.experiments.records import HarnessConfig, RunRecord, to_json_line
from qb2.experiments.reproducibility import identity_seed, pin_identities, plan_fingerprint
from qb2.experiments.scenarios import (
    BASE_ENV,
    CONTROL_SCENARIOS,
    DEGRADE_FACTOR,
    DROP_SLOWDOWN_S,
    EXECUTE_TIMEOUT_S,
    LATENCY_SPIKE_S,
    LATENCY_TIMEOUT_PER_MIB_S,
    MAX_ATTEMPTS,
    NODE_NAMES,
    NODE_PROFILES,
    best_profile,
    node_specs,
    scenario_cluster,
    slowed_nodes,
)
from qb2.experiments.suites import ALL_SCENARIOS
from qb2.experiments.widths import STATE_COPIES, resolved_max_qubits, suite_circuits, width_limits
from qb2.protocol.control import FaultSpec
from qb2.service_node.handler import NodeSimulator

__all__ = [
    # this module: running an experiment
    "WARMUP_CIRCUIT", "Progress", "run_experiment",
    # re-exported from the modules that hold them (see the module docstring)
    "ALL_SCENARIOS", "BASE_ENV", "CONTROL_SCENARIOS", "DEGRADE_FACTOR", "DROP_SLOWDOWN_S", "EXECUTE_TIMEOUT_S",
    "LATENCY_SPIKE_S", "LATENCY_TIMEOUT_PER_MIB_S", "MAX_ATTEMPTS", "NODE_NAMES", "NODE_PROFILES", "RUN_ERRORS",
    "STATE_COPIES", "HarnessConfig", "RunRecord", "best_profile", "central_profile", "degrade_nodes",
    "git_commit", "identity_seed", "node_specs", "package_versions", "pin_identities", "plan_fingerprint",
    "resolved_max_qubits", "run_centralized", "run_config", "run_distributed", "scenario_cluster", "send_faults",
    "slowed_nodes", "suite_circuits", "to_json_line", "width_limits",
]

#: Unrecorded warm-up job of every cluster, spread over all its nodes (``min_nodes`` = node count).
WARMUP_CIRCUIT: tuple[str, int] = ("vqe_real_amp", 4)

#: Receives one line per step of an experiment (default: printed to stderr).
Progress = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
        qpu = NodeSimulator.from_profile("central", profile)
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
