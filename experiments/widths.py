"""How wide the harness's circuits go (FR-013), and which circuits a configuration runs.

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

import math
import os
from collections.abc import Iterable
from typing import Any

from qb2.client.cluster import NodeSpec
from qb2.coordinator.config import load_settings
from qb2.coordinator.fidelity import IDEAL_MAX_QUBITS
from qb2.experiments.circuits import BenchmarkCircuit, benchmark_circuit
from qb2.experiments.records import HarnessConfig
from qb2.experiments.scenarios import best_profile, node_specs
from qb2.experiments.suites import ALL_SCENARIOS
from qb2.service_node.config import PROFILES

__all__ = ["STATE_COPIES", "resolved_max_qubits", "suite_circuits", "width_limits"]

#: Statevectors the memory limit budgets for (coordinator state + packed/unpacked copies on both ends,
#: Aer's working copy, the centralized run in the harness process).
STATE_COPIES = 8


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
