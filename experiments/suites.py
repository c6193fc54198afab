"""Benchmark suites for the experiment harness (FR-013): which circuits, how often, under which faults."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Every fault scenario the harness knows (see :mod:`experiments.harness`).
ALL_SCENARIOS: tuple[str, ...] = ("none", "latency", "drop_node", "degrade")


@dataclass(frozen=True)
class Suite:
    """A named set of mqt-bench circuits ``(benchmark, qubits)``, repeats per circuit and default scenarios."""

    name: str
    circuits: tuple[tuple[str, int], ...]
    repeats: int
    scenarios: tuple[str, ...] = field(default=("none",))
    shots: int = 1000


SUITES: dict[str, Suite] = {
    # Three tiny circuits, one repeat, no faults: under 60 s on 2 cores.
    "smoke": Suite("smoke", (("ghz", 3), ("qft", 3), ("wstate", 3)), repeats=1, scenarios=("none",), shots=500),
    "default": Suite(
        "default",
        tuple((name, q) for name in ("ghz", "qft", "qaoa", "grover", "dj", "wstate") for q in (3, 4, 5, 6)
              if not (name == "grover" and q > 5)),
        repeats=3,
        scenarios=ALL_SCENARIOS,
        shots=1000,
    ),
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        KeyError: no such suite (the message lists the known ones).
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; choose one of {sorted(SUITES)}")
    return SUITES[name]
