"""``make demo``: real benchmark circuits through a real local cluster (issue 2's acceptance run).

Starts one coordinator and N service-node processes on 127.0.0.1, waits for
discovery, submits the demo circuits over HTTP, waits for them, prints one row
per job, and stops the cluster (no orphan processes: see
:mod:`qb2.client.cluster`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from qb2.client.cluster import DEFAULT_NODES, LocalCluster, NodeSpec
from qb2.client.http import Client
from qb2.experiments.circuits import DEMO_SET, benchmark_circuit


def _top(counts: dict[str, int], k: int = 2) -> str:
    total = sum(counts.values()) or 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return " ".join(f"{b}:{c / total:.2f}" for b, c in best)


def run_demo(nodes: int = 4, shots: int = 2000, seed: int = 7, data_dir: Path | None = None,
             min_nodes: int = 2) -> int:
    """Run the demo; returns a process exit code (0 when every job completed).

    ``min_nodes`` asks the planner to spread each job over at least that many
    nodes: left to itself the cost model keeps small circuits on the single best
    node, and the demo is about watching state move between nodes.
    """
    circuits = [benchmark_circuit(name, q, fmt) for name, q, fmt in DEMO_SET]
    specs = [NodeSpec(DEFAULT_NODES[i % 4].name + ("" if i < 4 else str(i)), DEFAULT_NODES[i % 4].profile)
             for i in range(nodes)]
    root = data_dir or Path(tempfile.mkdtemp(prefix="qb2-demo-"))
    print(f"starting coordinator + {nodes} service nodes on 127.0.0.1 (data in {root}) ...", flush=True)
    with LocalCluster(root, specs) as cluster, Client(cluster.api_url) as client:
        print(f"coordinator API {cluster.api_url}", flush=True)
        names = {}
        for n in client.nodes()["nodes"]:
            names[n["node_id"]] = n["name"]
            print(f"  node {n['name']:<8} {n['qubits']} qubits, native {','.join(n['native_gates'])}", flush=True)
        submitted = {}
        for circuit in circuits:
            t0 = time.perf_counter()
            job = client.submit(circuit.qasm, shots=shots, seed=seed, fmt=circuit.format, name=circuit.label,
                                min_nodes=min_nodes)
            submitted[job["job_id"]] = (circuit, t0)
        header = (f"{'circuit':<10} {'fmt':<5} {'qubits':>6} {'ops':>4} {'frags':>5} {'ebits':>5} {'nodes used':<28} "
                  f"{'latency':>8}  {'top outcomes':<28} {'est F':>6} {'Hell. F':>7}")
        print(header)
        print("-" * len(header))
        failures = 0
        for job_id, (circuit, t0) in submitted.items():
            final = client.wait(job_id, timeout_s=300)
            latency = time.perf_counter() - t0
            if final["state"] != "COMPLETED":
                failures += 1
                print(f"{circuit.label:<10} {circuit.format:<5} FAILED: {final.get('error')}")
                continue
            res = client.result(job_id)
            used = ",".join(sorted(names.get(n, n[:8]) for n in res["nodes_used"]))
            measured = res["measured_fidelity"]
            print(f"{circuit.label:<10} {circuit.format:<5} {final['num_qubits']:>6} {final['num_operations']:>4} "
                  f"{len(res['fragments']):>5} {res['total_ebits']:>5} {used:<28} {latency * 1000:>6.0f}ms  "
                  f"{_top(res['counts']):<28} {res['estimated_fidelity']:>6.3f} "
                  f"{'n/a' if measured is None else f'{measured:.3f}':>7}", flush=True)
        print("stopping cluster ...", flush=True)
    print("done" if not failures else f"{failures} job(s) failed", flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m qb2.experiments.demo [--nodes N] [--shots S] [--seed K] [--min-nodes M]`` (``qb2 demo``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="qb2 demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=4, help="number of service nodes")
    parser.add_argument("--shots", type=int, default=2000, help="shots per circuit")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--min-nodes", type=int, default=2,
                        help="spread each job over at least this many nodes (1: planner's choice)")
    args = parser.parse_args(argv)
    return run_demo(nodes=args.nodes, shots=args.shots, seed=args.seed, min_nodes=args.min_nodes)


if __name__ == "__main__":
    sys.exit(main())
