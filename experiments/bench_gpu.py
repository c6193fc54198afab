"""GPU executor check and benchmark (FR-016): ``aer-gpu`` against ``aer`` on the same fragments.

A node started with ``--executor aer-gpu`` runs the same code path as an
``aer`` node with ``AerSimulator(device="GPU")``. This script checks that the
two agree, then times them:

1. Agreement: random fragments through :func:`qb2.service_node.handler.handle_execute`
   on a CPU node and a GPU node with the same profile: the outgoing states
   (statevector and density matrix, noisy profile and the ``fake_manila``
   device model) agree within ``ATOL``, and readout counts for the same seed
   are compared (reported, not assumed: Aer's GPU sampler may draw differently).
2. Speed: one layered fragment (``h`` on every qubit, a ``cx`` ladder and
   ``rz`` rotations, ``DEPTH`` layers) applied to an ``n``-qubit statevector as
   a node does it (state in and out of host memory included), for ``n`` from
   16 to ``--max-qubits``; median and P95 wall seconds over ``--repeats`` runs
   on each executor, and the CPU/GPU ratio.

Without a GPU-enabled Aer it prints why and exits 0, so it is safe anywhere
(CI has no GPU). Usage::

    python -m qb2.experiments.bench_gpu [--max-qubits 28] [--repeats 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from qb2.experiments.stats import percentile
from qb2.protocol.execute import ClbitRegister, ExecuteRequest, GateOp
from qb2.protocol.state import pack_state, unpack_state, zero_state
from qb2.service_node.config import PROFILES, NodeProfile
from qb2.service_node.executor import apply_gates

#: Largest elementwise difference allowed between CPU and GPU states (both complex128).
ATOL = 1e-9
#: Layers of the benchmark fragment.
DEPTH = 4
NODE_ID = "12D3KooW" + "G" * 44


def _random_ops(n: int, count: int, rng: np.random.Generator) -> tuple[GateOp, ...]:
    """``count`` random gates from {h, sx, rz, ry, cx, cz} on ``n`` qubits."""
    ops = []
    for _ in range(count):
        name = str(rng.choice(["h", "sx", "rz", "ry", "cx", "cz"] if n > 1 else ["h", "sx", "rz", "ry"]))
        if name in ("cx", "cz"):
            a, b = (int(x) for x in rng.choice(n, size=2, replace=False))
            ops.append(GateOp(name=name, qubits=(a, b)))
        else:
            params = (float(rng.uniform(0, 2 * np.pi)),) if name in ("rz", "ry") else ()
            ops.append(GateOp(name=name, qubits=(int(rng.integers(n)),), params=params))
    return tuple(ops)


def _layered_ops(n: int) -> tuple[GateOp, ...]:
    """The benchmark fragment: ``DEPTH`` layers of h on all, cx ladder, rz on all (``DEPTH * (3n - 1)`` gates)."""
    ops: list[GateOp] = []
    for layer in range(DEPTH):
        ops += [GateOp(name="h", qubits=(q,)) for q in range(n)]
        ops += [GateOp(name="cx", qubits=(q, q + 1)) for q in range(n - 1)]
        ops += [GateOp(name="rz", qubits=(q,), params=(0.1 * (layer + 1),)) for q in range(n)]
    return tuple(ops)


def _qpu(executor: str, profile: str, device: str | None = None):  # noqa: ANN202 - NodeSimulator, imported lazily
    from qb2.service_node.handler import NodeSimulator

    fields = {**PROFILES[profile], "name": f"{profile}-{executor}", "executor": executor}
    if device:
        fields.update(device=device, native_gates=["cx", "id", "rz", "sx", "x"])
    return NodeSimulator.from_profile(NODE_ID, NodeProfile(**fields))


def check_agreement(seed: int = 11) -> list[dict[str, object]]:
    """Run the same requests on CPU and GPU nodes; one row per case.

    Each row: ``case``, ``representation``, ``qubits``, ``max_abs_diff`` (largest
    elementwise state difference), ``ok`` (``max_abs_diff <= ATOL``) and, for
    readout cases, ``same_counts``.
    """
    from qb2.service_node.handler import handle_execute

    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    cases = [("ibm-like", None, "statevector", n) for n in (3, 5, 8, 12)]
    cases += [("ibm-like", None, "density_matrix", n) for n in (2, 4, 5)]
    cases += [("ibm-like", "fake_manila", "density_matrix", 5), ("ibm-like", "fake_manila", "statevector", 5)]
    for profile, device, rep, n in cases:
        cpu, gpu = _qpu("aer", profile, device), _qpu("aer-gpu", profile, device)
        width = min(n, cpu.profile.qubits)
        ops = _random_ops(width, 6 * width, rng)
        request = ExecuteRequest(job_id="j", fragment_id="f0", kind="gates", representation=rep, num_qubits=n, ops=ops)
        payload = pack_state(zero_state(rep, n))
        (h_cpu, p_cpu), (h_gpu, p_gpu) = handle_execute(cpu, request, payload), handle_execute(gpu, request, payload)
        if not (h_cpu.ok and h_gpu.ok):
            rows.append({"case": f"{device or profile}", "representation": rep, "qubits": n, "ok": False,
                         "error": str(h_cpu.error or h_gpu.error)})
            continue
        s_cpu, s_gpu = unpack_state(p_cpu, rep, n), unpack_state(p_gpu, rep, n)
        diff = float(np.max(np.abs(s_cpu - s_gpu)))
        readout = ExecuteRequest(
            job_id="j", fragment_id="f1", kind="readout", representation=rep, num_qubits=n,
            measurements=tuple((q, q) for q in range(n)), clbit_registers=(ClbitRegister(name="c", size=n),),
            shots=2000, seed=seed,
        )
        r_cpu, _ = handle_execute(cpu, readout, p_cpu)
        r_gpu, _ = handle_execute(gpu, readout, p_cpu)
        rows.append({
            "case": f"{device or profile}", "representation": rep, "qubits": n,
            "max_abs_diff": diff, "ok": diff <= ATOL and r_cpu.ok and r_gpu.ok,
            "same_counts": r_cpu.counts == r_gpu.counts,
        })
    return rows


def bench_speed(max_qubits: int, repeats: int) -> list[dict[str, object]]:
    """Median/P95 wall seconds of :func:`_layered_ops` on CPU and GPU statevectors, ``n = 16, 18, ... max_qubits``."""
    rows: list[dict[str, object]] = []
    native = ["cx", "rz", "sx", "x", "h"]
    for n in range(16, max_qubits + 1, 2):
        ops = _layered_ops(n)
        state = zero_state("statevector", n)
        row: dict[str, object] = {"qubits": n, "gates": len(ops)}
        for device in ("CPU", "GPU"):
            apply_gates(state, "statevector", n, ops, native, None, aer_device=device)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                apply_gates(state, "statevector", n, ops, native, None, aer_device=device)
                times.append(time.perf_counter() - t0)
            row[f"{device.lower()}_p50_s"] = statistics.median(times)
            row[f"{device.lower()}_p95_s"] = percentile(times, 95)
        row["speedup_p50"] = float(row["cpu_p50_s"]) / float(row["gpu_p50_s"])  # type: ignore[arg-type]
        rows.append(row)
        print(f"  n={n:2d} gates={len(ops):4d} cpu P50 {row['cpu_p50_s']:.3f}s gpu P50 {row['gpu_p50_s']:.3f}s "
              f"speed-up x{row['speedup_p50']:.1f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 when CPU and GPU disagree)."""
    parser = argparse.ArgumentParser(prog="python -m qb2.experiments.bench_gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-qubits", type=int, default=26, help="widest benchmark statevector (16..28)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per width and executor")
    parser.add_argument("--out", type=Path, default=None, help="write gpu_bench.json here")
    args = parser.parse_args(argv)

    from qb2.service_node.devices import gpu_available

    if not gpu_available():
        from qiskit_aer import AerSimulator

        print(f"no GPU-enabled Aer here (devices {list(AerSimulator().available_devices())}); nothing to check")
        return 0
    print("agreement, CPU vs GPU node:")
    agreement = check_agreement()
    for row in agreement:
        print("  " + json.dumps(row))
    print("speed, statevector fragment:")
    speed = bench_speed(min(args.max_qubits, 28), args.repeats)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_bench.json").write_text(json.dumps({"agreement": agreement, "speed": speed}, indent=2))
    return 0 if all(row["ok"] for row in agreement) else 1


if __name__ == "__main__":
    sys.exit(main())
