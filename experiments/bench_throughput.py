"""Job throughput of a local cluster under concurrent clients: ``python -m qb2.experiments.bench_throughput``.

Starts a :class:`~qb2.client.cluster.LocalCluster` of ``--nodes`` identical
nodes (profile ``ideal``, 4 qubits), then ``--clients`` threads, each with its
own HTTP :class:`~qb2.client.http.Client`, submit ``--jobs`` small circuits in
all (``ghz`` on 3 qubits by default) back to back and wait for them. Prints
and writes (``--out``, Markdown):

* jobs/s: jobs over the wall time from the first submit to the last job final;
* P50 / P95 job latency: the coordinator's ``updated_at - created_at`` of each
  final job record (submit to final state), milliseconds;
* jobs per node: jobs with a DONE fragment on the node, and fragments per node
  (from each result's fragment records).

Why it exists: issue 13 (load-aware placement). Without a queue-wait input the
planner put every one of 200 such jobs on the same node while three sat idle.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from qb2.client.cluster import LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.experiments.circuits import benchmark_circuit
from qb2.experiments.stats import percentile

DEFAULT_OUT = Path(__file__).parent / "results" / "throughput.md"


def _client(url: str, qasm: str, count: int, first_seed: int, shots: int, out: list[str],
            errors: list[str]) -> None:
    try:
        with Client(url) as client:
            out.extend(client.submit(qasm, shots=shots, seed=first_seed + i)["job_id"] for i in range(count))
            for job_id in out:
                client.wait(job_id, timeout_s=600)
    except Exception as exc:  # reported by the main thread
        errors.append(f"{type(exc).__name__}: {exc}")


def run(nodes: int, jobs: int, clients: int, circuit: str, qubits: int, shots: int) -> dict:
    """Run the benchmark; returns its figures (see the module docstring)."""
    qasm = benchmark_circuit(circuit, qubits).qasm
    specs = [NodeSpec(f"n{i}", "ideal", ["--qubits", "4"]) for i in range(nodes)]
    with tempfile.TemporaryDirectory(prefix="qb2-throughput-") as tmp, LocalCluster(Path(tmp), specs) as cluster:
        names = {peer: name for name, peer in cluster.node_peer_ids.items()}
        shares = [jobs // clients + (1 if k < jobs % clients else 0) for k in range(clients)]
        ids: list[list[str]] = [[] for _ in range(clients)]
        errors: list[str] = []
        threads = [threading.Thread(target=_client, args=(cluster.api_url, qasm, shares[k], 1000 * k, shots,
                                                          ids[k], errors)) for k in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall_s = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"a client failed: {errors[0]}")
        with Client(cluster.api_url) as client:
            all_ids = [j for part in ids for j in part]
            records = [client.status(j) for j in all_ids]
            results = [client.result(j) for j in all_ids if client.status(j)["state"] == "COMPLETED"]
    states = Counter(r["state"] for r in records)
    latencies_ms = [1000 * (r["updated_at"] - r["created_at"]) for r in records]
    jobs_per_node: Counter[str] = Counter()
    fragments_per_node: Counter[str] = Counter()
    for result in results:
        done = [f for f in result["fragments"] if f["status"] == "DONE"]
        fragments_per_node.update(names.get(f["node_id"], f["node_id"]) for f in done)
        jobs_per_node.update({names.get(f["node_id"], f["node_id"]) for f in done})
    return {
        "nodes": nodes, "jobs": jobs, "clients": clients, "circuit": f"{circuit} {qubits}", "shots": shots,
        "states": dict(states), "wall_s": wall_s, "jobs_per_s": jobs / wall_s,
        "p50_ms": percentile(latencies_ms, 50), "p95_ms": percentile(latencies_ms, 95),
        "jobs_per_node": {f"n{i}": jobs_per_node.get(f"n{i}", 0) for i in range(nodes)},
        "fragments_per_node": {f"n{i}": fragments_per_node.get(f"n{i}", 0) for i in range(nodes)},
    }


def markdown(figures: dict, command: str) -> str:
    """The figures as the Markdown of ``experiments/results/throughput.md``."""
    f = figures
    lines = [
        "# Job throughput under concurrent clients (issue 13: load-aware placement)",
        "",
        f"Command: `{command}`; one coordinator and {f['nodes']} `ideal` nodes (4 qubits each) on 127.0.0.1, "
        f"{f['jobs']} `{f['circuit']}` jobs ({f['shots']} shots) submitted back to back by {f['clients']} "
        "concurrent clients (one thread and HTTP client each), each then waiting for its jobs. "
        "Latency: the coordinator's submit-to-final time of each job.",
        "",
        "| jobs | final states | wall s | jobs/s | P50 ms | P95 ms |",
        "|---|---|---|---|---|---|",
        f"| {f['jobs']} | {', '.join(f'{k} {v}' for k, v in sorted(f['states'].items()))} | {f['wall_s']:.1f} "
        f"| {f['jobs_per_s']:.1f} | {f['p50_ms']:.0f} | {f['p95_ms']:.0f} |",
        "",
        "| node | jobs with a fragment on it | fragments run |",
        "|---|---|---|",
        *(f"| {n} | {f['jobs_per_node'][n]} | {f['fragments_per_node'][n]} |" for n in f["jobs_per_node"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qb2.experiments.bench_throughput", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--circuit", default="ghz")
    parser.add_argument("--qubits", type=int, default=3)
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file to write ('-': none)")
    args = parser.parse_args(argv)
    figures = run(args.nodes, args.jobs, args.clients, args.circuit, args.qubits, args.shots)
    command = " ".join(["python -m qb2.experiments.bench_throughput",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    text = markdown(figures, command)
    print(text)
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
