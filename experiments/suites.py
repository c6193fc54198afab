"""Benchmark suites for the experiment harness (FR-013): which circuits, how often, under which faults.

Widths go from 3 qubits up to the run's width limit (``--max-qubits``; its
default, :func:`qb2.experiments.harness.width_limits`, is the widest circuit the
cluster can still place in every selected fault scenario, capped by the
coordinator's statevector limit and the machine's memory). A suite lists fixed
``(benchmark, width)`` instances, of which those wider than the limit are
skipped, plus ``widest`` benchmarks that also run at exactly the limit.

Circuits up to ``compiler.density_matrix_max_qubits`` (default 8) run as a
density matrix (exact noise); wider ones as a statevector (gate and link noise
then only estimated, readout noise still applied), in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Every fault scenario the harness knows (see :mod:`qb2.experiments.harness`).
ALL_SCENARIOS: tuple[str, ...] = ("none", "latency", "drop_node", "degrade")


@dataclass(frozen=True)
class Suite:
    """A named set of mqt-bench circuits, repeats per circuit, default scenarios and shots.

    Attributes:
        name: suite name (``--suite``).
        circuits: fixed ``(benchmark, qubits)`` instances (mqt-bench names,
            ``mqt.bench.benchmarks.get_available_benchmark_names()``).
        repeats: runs per circuit and mode; repeat ``r`` uses seed ``seed + r``.
        scenarios: default fault scenarios (subset of :data:`ALL_SCENARIOS`).
        shots: measurement shots per run.
        widest: benchmarks that also run at exactly the run's width limit.
    """

    name: str
    circuits: tuple[tuple[str, int], ...]
    repeats: int
    scenarios: tuple[str, ...] = field(default=("none",))
    shots: int = 1000
    widest: tuple[str, ...] = ()

    def instances(self, max_qubits: int | None = None) -> tuple[tuple[str, int], ...]:
        """The ``(benchmark, qubits)`` pairs to run under width limit ``max_qubits`` (None: no limit).

        Fixed instances wider than the limit are dropped; each ``widest``
        benchmark is appended at ``max_qubits`` unless already listed at that
        width. Order is kept, duplicates removed.

        Raises:
            ValueError: ``max_qubits`` is below 1.
        """
        if max_qubits is not None and max_qubits < 1:
            raise ValueError(f"max_qubits must be >= 1, got {max_qubits}")
        chosen = [(n, q) for n, q in self.circuits if max_qubits is None or q <= max_qubits]
        if max_qubits is not None:
            chosen += [(n, max_qubits) for n in self.widest]
        return tuple(dict.fromkeys(chosen))


def _ladder(widths: tuple[int, ...], *names: str) -> tuple[tuple[str, int], ...]:
    return tuple((name, q) for name in names for q in widths)


#: The default suite's instances: textbook circuits on a width ladder, the
#: variational and random circuits, and cheap wide ones. Measured on 2 cores
#: (seed 7, 6 nodes, width limit 17): 855 runs in 11 min; without faults every
#: job finishes in under 3 s (P95 1.6 s; slowest grover-5, 482 operations after
#: lowering), under ``latency`` in under 4 s (about 1.8 s of timeouts and
#: retries per job).
_DEFAULT = (
    _ladder((3, 4, 6, 8, 10, 12), "ghz", "qft", "dj", "wstate", "vqe_real_amp")
    + _ladder((3, 4, 5), "grover")  # already 482 operations at 5 qubits (534 at 6): stop there
    + _ladder((3, 4, 6, 8, 10), "qaoa", "randomcircuit", "qpeexact")
    + _ladder((3, 6, 10), "bv", "graphstate")
)

SUITES: dict[str, Suite] = {
    # Small and quick (CI, under 60 s on 2 cores): three 3-qubit circuits as a density matrix,
    # one 10-qubit circuit as a statevector (above the density-matrix limit), one repeat, no faults.
    "smoke": Suite("smoke", (("ghz", 3), ("qft", 3), ("wstate", 3), ("ghz", 10)), repeats=1,
                   scenarios=("none",), shots=500),
    # Every scenario, 3 repeats, widths 3 .. the width limit (ghz, bv and graphstate at the limit itself);
    # about 11 minutes on 2 cores.
    "default": Suite("default", _DEFAULT, repeats=3, scenarios=ALL_SCENARIOS, shots=1000,
                     widest=("ghz", "bv", "graphstate")),
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        KeyError: no such suite (the message lists the known ones).
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; choose one of {sorted(SUITES)}")
    return SUITES[name]
