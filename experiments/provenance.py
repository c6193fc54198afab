"""The ``run_config.json`` document of an experiment (FR-013, NFR-001): what was run, and with what.

:func:`run_config` records the suite, seeds, scenarios, nodes, widths, fault
parameters, reproducibility settings, the daemons' environment, package
versions (:func:`package_versions`) and the git commit (:func:`git_commit`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from qb2.compiler.cost import DEFAULT_LINK_RTT_S
from qb2.experiments.records import HarnessConfig
from qb2.experiments.scenarios import (
    BASE_ENV,
    DEGRADE_FACTOR,
    DROP_SLOWDOWN_S,
    EXECUTE_TIMEOUT_S,
    LATENCY_SPIKE_S,
    LATENCY_TIMEOUT_PER_MIB_S,
    MAX_ATTEMPTS,
    node_specs,
    slowed_nodes,
)
from qb2.experiments.widths import resolved_max_qubits, width_limits

__all__ = ["git_commit", "package_versions", "run_config"]


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
