"""End-to-end job latency on a local cluster: ``python -m qb2.experiments.latency``.

Submits one benchmark circuit ``--repeats`` times, one job at a time, and
prints medians and P95 of

- end-to-end latency: submit request sent -> COMPLETED observed (10 ms polls);
- execution: first fragment dispatched -> readout returned (coordinator clock);
- per-fragment orchestration overhead: invocation round trip minus the node's
  simulation time (framing, libp2p stream, state (de)serialisation).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from qb2.client.cluster import LocalCluster
from qb2.client.http import Client
from qb2.experiments.circuits import benchmark_circuit
from qb2.experiments.stats import percentile


def main() -> None:
    """Parse arguments, run the measurement, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuit", default="ghz", help="mqt-bench benchmark name")
    parser.add_argument("--qubits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--shots", type=int, default=1000)
    args = parser.parse_args()

    circuit = benchmark_circuit(args.circuit, args.qubits)
    e2e, execution, overhead = [], [], []
    with LocalCluster(Path(tempfile.mkdtemp(prefix="qb2-latency-"))) as cluster, Client(cluster.api_url) as client:
        client.wait(client.submit(circuit.qasm, shots=args.shots, seed=0)["job_id"])  # warm-up
        for i in range(args.repeats):
            started = time.perf_counter()
            job_id = client.submit(circuit.qasm, shots=args.shots, seed=i)["job_id"]
            client.wait(job_id, poll_s=0.01, max_poll_s=0.01)
            e2e.append(time.perf_counter() - started)
            result = client.result(job_id)
            execution.append(result["execution_s"])
            overhead += [f["round_trip_s"] - f["simulation_s"] for f in result["fragments"]]
        fragments = len(result["fragments"])
    print(f"{circuit.label}: {fragments} fragments, {args.repeats} jobs, {args.shots} shots")
    for name, values in (("end-to-end latency", e2e), ("execution", execution),
                         ("overhead per fragment", overhead)):
        print(f"  {name:<22} P50 {statistics.median(values) * 1000:8.1f} ms   P95 {percentile(values, 95) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
