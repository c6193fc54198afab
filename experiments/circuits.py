"""Real benchmark circuits from mqt-bench, generated offline, as OpenQASM text.

mqt-bench's target-independent level (``BenchmarkLevel.INDEP``) gives the
standard textbook circuits (GHZ, QFT, Grover, QAOA, Deutsch-Jozsa, W-state,
...). Circuits that mqt-bench ships without measurements (QAOA) get
``measure_all`` so that every benchmark returns counts.

Generation is deterministic (NFR-001: reruns must see the same circuits):
mqt-bench fixes its own seeds for random parameters, QAOA, QPE and random
circuits, but draws ``graphstate``'s random graph unseeded unless told;
:data:`GENERATOR_SEEDS` passes those generators a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import qiskit.qasm2
import qiskit.qasm3
from mqt.bench import BenchmarkLevel, get_benchmark

#: mqt-bench generators that are random unless given ``seed=``; they get mqt-bench's usual fixed seed (10).
GENERATOR_SEEDS: dict[str, int] = {"graphstate": 10}


@dataclass(frozen=True)
class BenchmarkCircuit:
    """One benchmark instance: mqt-bench name, width, and its program text."""

    benchmark: str
    qubits: int
    format: Literal["qasm2", "qasm3"]
    qasm: str

    @property
    def label(self) -> str:
        """``name-width`` as used in tables, e.g. ``qft-6``."""
        return f"{self.benchmark}-{self.qubits}"


def benchmark_circuit(name: str, qubits: int, fmt: Literal["qasm2", "qasm3"] = "qasm2") -> BenchmarkCircuit:
    """Generate mqt-bench benchmark ``name`` on ``qubits`` qubits as OpenQASM ``fmt`` (deterministic).

    Raises:
        ValueError: mqt-bench does not know ``name`` or cannot build that width.
    """
    extra = {"seed": GENERATOR_SEEDS[name]} if name in GENERATOR_SEEDS else {}
    qc = get_benchmark(name, BenchmarkLevel.INDEP, qubits, **extra)
    if not any(inst.operation.name == "measure" for inst in qc.data):
        qc.measure_all()
    text = qiskit.qasm2.dumps(qc) if fmt == "qasm2" else qiskit.qasm3.dumps(qc)
    return BenchmarkCircuit(name, qc.num_qubits, fmt, text)


#: The demo set (issue 2): six algorithms, 3-8 qubits, both OpenQASM versions.
DEMO_SET: list[tuple[str, int, Literal["qasm2", "qasm3"]]] = [
    ("ghz", 8, "qasm2"),
    ("qft", 6, "qasm3"),
    ("grover", 4, "qasm2"),
    ("qaoa", 5, "qasm3"),
    ("dj", 5, "qasm2"),
    ("wstate", 3, "qasm3"),
]
