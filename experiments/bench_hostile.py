"""Nested-gate bomb through HTTP (issue 11, FR-014): status and time per depth on a live cluster.

``python -m qb2.experiments.bench_hostile [--out experiments/results/hostile_input.md]`` starts a
``qb2 up``-style local cluster with one node, submits the nested two-call gate definition program
(``gate g1 a { g0 a; g0 a; }`` ... ``g<depth> q[0];``, 2**depth gates) in OpenQASM 2 and 3 at
depths 15 to 25 to ``POST /api/v1/circuits/plan`` (the dry run: parse, bound and plan, nothing
queued), ``repeats`` times each, and reports the status, the error code and the median / P95
wall time of the HTTP request. It also measures ``GET /api/v1/health`` while three depth-25
requests run concurrently.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.experiments.stats import percentile


def nested_program(depth: int, version: int) -> str:
    """``depth`` nested two-call gate definitions and one call: ``2**depth`` gates once expanded."""
    if version == 2:
        head = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\n'
    else:
        head = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\n'
    lines = ["gate g0 a { x a; }"] + [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, depth + 1)]
    return head + "\n".join(lines) + f"\ng{depth} q[0];\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experiments/results/hostile_input.md"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp), [NodeSpec("alpha", "ion-like")]) as cluster, \
            httpx.Client(base_url=cluster.api_url, timeout=120) as client:
        for version in (2, 3):
            for depth in (15, 16, 17, 18, 20, 25):
                body = {"qasm": nested_program(depth, version)}
                times, outcome = [], ""
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    response = client.post("/api/v1/circuits/plan", json=body)
                    times.append((time.perf_counter() - start) * 1000)
                    outcome = f"{response.status_code} " + (
                        response.json()["error"]["code"] if response.status_code >= 400 else "plan")
                rows.append((f"qasm{version}", depth, len(body["qasm"]), outcome, statistics.median(times),
                             percentile(times, 95)))
                print(*rows[-1], flush=True)
        health = _health_under_load(client, nested_program(25, 2))
    lines = [
        "# Nested gate definitions through HTTP (issue 11, FR-014)",
        "",
        "Command: `python -m qb2.experiments.bench_hostile`; one coordinator and one node on 127.0.0.1, "
        f"`POST /api/v1/circuits/plan`, {args.repeats} requests per row, default limits "
        "(`max_operations` 100000, `max_gate_nesting` 32).",
        "",
        "| format | depth | bytes | answer | median ms | P95 ms |",
        "|---|---|---|---|---|---|",
        *[f"| {f} | {d} | {b} | {a} | {m:.1f} | {p:.1f} |" for f, d, b, a, m, p in rows],
        "",
        f"`GET /api/v1/health` while three depth-25 requests run concurrently: median {health[0]:.1f} ms, "
        f"P95 {health[1]:.1f} ms (idle: {health[2]:.1f} ms).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


def _health_under_load(client: httpx.Client, bomb: str) -> tuple[float, float, float]:
    """Health latency (median, P95 under load; median idle), in milliseconds."""
    def timed() -> float:
        start = time.perf_counter()
        client.get("/api/v1/health")
        return (time.perf_counter() - start) * 1000

    idle = statistics.median(timed() for _ in range(20))
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=120) as own:
            while not stop.is_set():
                own.post("/api/v1/circuits/plan", json={"qasm": bomb})

    threads = [threading.Thread(target=flood) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        loaded = [timed() for _ in range(40)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return statistics.median(loaded), percentile(loaded, 95), idle


if __name__ == "__main__":
    sys.exit(main())
