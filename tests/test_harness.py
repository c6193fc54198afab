"""Experiment harness (FR-013) with real processes: a local cluster per scenario, no mocks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from experiments.__main__ import main
from experiments.harness import HarnessConfig, run_experiment
from experiments.suites import Suite

pytestmark = pytest.mark.integration


def test_smoke_suite_writes_every_output_and_all_runs_succeed(tmp_path: Path) -> None:
    assert main(["run", "--suite", "smoke", "--seed", "7", "--out", str(tmp_path)]) == 0
    for name in ("report.md", "results.csv", "results.jsonl", "run_config.json", "latency_by_size.png",
                 "fidelity_est_vs_measured.png", "success_by_scenario.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {(r["circuit"], r["mode"]) for r in rows} == {
        (c, m) for c in ("ghz-3", "qft-3", "wstate-3") for m in ("distributed", "centralized")}
    assert all(r["success"] and r["counts"] and 0 < r["estimated_fidelity"] <= 1 for r in rows)
    assert all(r["compile_s"] > 0 and r["latency_s"] > 0 for r in rows)
    assert all(r["overhead_per_fragment_s"] is not None for r in rows if r["mode"] == "distributed")
    with open(tmp_path / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    config = json.loads((tmp_path / "run_config.json").read_text())
    assert config["seeds"] == [7] and config["suite"]["name"] == "smoke" and "qiskit" in config["packages"]
    report = (tmp_path / "report.md").read_text()
    assert "NFR-003" in report and "| ghz-3 | none | distributed | 1 | 1.00 |" in report


def test_ideal_nodes_give_the_same_counts_distributed_and_centralized(tmp_path: Path) -> None:
    suite = Suite("ideal", (("ghz", 3), ("wstate", 3)), repeats=1, shots=300)
    records = run_experiment(HarnessConfig(suite, seed=11, nodes=3, ideal=True), tmp_path, progress=lambda _: None)
    by = {(r.circuit, r.mode): r for r in records}
    for circuit in ("ghz-3", "wstate-3"):
        dist, central = by[(circuit, "distributed")], by[(circuit, "centralized")]
        assert dist.success and central.success
        assert dist.fragments >= 2  # really distributed (min_nodes=2)
        assert dist.counts == central.counts, circuit
        assert dist.estimated_fidelity == pytest.approx(1.0) and central.estimated_fidelity == pytest.approx(1.0)


def test_degrade_scenario_lowers_the_distributed_estimated_fidelity(tmp_path: Path) -> None:
    suite = Suite("degrade", (("ghz", 3),), repeats=1, shots=200)
    config = HarnessConfig(suite, seed=7, scenarios=("none", "degrade"), nodes=6, centralized=False)
    records = {r.scenario: r for r in run_experiment(config, tmp_path, progress=lambda _: None)}
    assert records["none"].success and records["degrade"].success
    assert records["degrade"].estimated_fidelity < records["none"].estimated_fidelity


def test_drop_node_scenario_makes_the_struck_job_fall_back(tmp_path: Path) -> None:
    """A node killed while the first recorded job is EXECUTING: that job completes through a fallback
    plan; the next one is planned without the dead node (refused reservation)."""
    suite = Suite("drop", (("qft", 4),), repeats=2, shots=200)
    config = HarnessConfig(suite, seed=7, scenarios=("drop_node",), nodes=4, centralized=False)
    first, second = run_experiment(config, tmp_path, progress=lambda _: None)
    assert first.success and first.fallbacks >= 1 and first.retries >= 1
    assert second.success and second.fallbacks == 0
