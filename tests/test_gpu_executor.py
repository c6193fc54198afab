"""The GPU executor check (FR-016): safe without a GPU, and CPU/GPU agreement where there is one.

CI has no GPU, so there the first test runs and the second is skipped; on a
machine with qiskit-aer-gpu and an NVIDIA GPU it is the other way round
(experiments/results/gpu_bench.md records such a run on an H100).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from qb2.service_node.devices import gpu_available


@pytest.mark.skipif(gpu_available(), reason="this Aer has a GPU: the check runs for real")
def test_gpu_check_without_a_gpu_says_so_and_succeeds() -> None:
    proc = subprocess.run([sys.executable, "-m", "qb2.experiments.bench_gpu"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "no GPU-enabled Aer here" in proc.stdout


@pytest.mark.skipif(not gpu_available(), reason="needs qiskit-aer-gpu and an NVIDIA GPU")
def test_gpu_node_states_and_counts_equal_the_cpu_node() -> None:  # pragma: no cover - CI has no GPU
    from qb2.experiments.bench_gpu import ATOL, check_agreement

    rows = check_agreement()
    assert rows and all(row["ok"] for row in rows), rows
    assert all(float(row["max_abs_diff"]) <= ATOL for row in rows)
