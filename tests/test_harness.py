"""Experiment harness (FR-013, NFR-001) with real processes: a local cluster per scenario, no mocks.

Cluster runs are shared between assertions through module-scoped fixtures
(each cluster start costs about 10 s): ``smoke_runs`` runs the smoke suite
twice with the same seed (once through ``python -m experiments``, once through
``qb2 experiment run``), ``fault_runs`` runs two small circuits under every
fault scenario once.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coordinator.cli import app
from experiments.__main__ import add_run_arguments, main
from experiments.circuits import benchmark_circuit
from experiments.harness import (
    ALL_SCENARIOS,
    EXECUTE_TIMEOUT_S,
    MAX_ATTEMPTS,
    HarnessConfig,
    RunRecord,
    best_profile,
    central_profile,
    node_specs,
    plan_fingerprint,
    run_experiment,
    slowed_nodes,
    width_limits,
)
from experiments.suites import SUITES, Suite, get_suite

integration = pytest.mark.integration
SMOKE_ARGS = ["run", "--suite", "smoke", "--seed", "7", "--repeats", "2"]


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, int]:
    """The smoke suite (2 repeats, seed 7) run twice on two separate clusters: ``python -m experiments run``
    then ``qb2 experiment run``; returns both output folders and exit codes."""
    first, second = tmp_path_factory.mktemp("smoke-a"), tmp_path_factory.mktemp("smoke-b")
    code_a = main([*SMOKE_ARGS, "--out", str(first)])
    result = CliRunner().invoke(app, ["experiment", *SMOKE_ARGS, "--out", str(second)])
    return first, second, code_a, result.exit_code


@pytest.fixture(scope="module")
def fault_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[RunRecord]]:
    """ghz-3 and qft-4, 2 repeats, 2000 shots, distributed only, under every scenario on 6 nodes; by scenario."""
    suite = Suite("faults", (("ghz", 3), ("qft", 4)), repeats=2, shots=2000)
    config = HarnessConfig(suite, seed=7, scenarios=ALL_SCENARIOS, nodes=6, centralized=False)
    records = run_experiment(config, tmp_path_factory.mktemp("faults"), progress=lambda _: None)
    return {s: [r for r in records if r.scenario == s] for s in ALL_SCENARIOS}


# ---------------------------------------------------------------------------------------------- no cluster


def test_default_suite_spans_3_qubits_to_the_width_limit_and_includes_variational_and_random_circuits() -> None:
    suite = get_suite("default")
    names = {n for n, _ in suite.circuits}
    assert {"vqe_real_amp", "randomcircuit", "bv", "graphstate", "qpeexact"} <= names
    at_17 = suite.instances(17)
    assert min(q for _, q in at_17) == 3 and max(q for _, q in at_17) == 17
    assert {n for n, q in at_17 if q == 17} == set(suite.widest)
    assert any(q > 8 for n, q in at_17 if n not in suite.widest)  # statevector widths on the ladder too
    at_6 = suite.instances(6)
    assert max(q for _, q in at_6) == 6 and len(at_6) == len(set(at_6))
    smoke = get_suite("smoke")
    assert smoke.scenarios == ("none",) and smoke.repeats == 1 and len(smoke.instances(24)) <= 5


def test_width_limits_follow_cluster_capacity_fault_scenarios_statevector_and_memory() -> None:
    specs = node_specs(6)  # ibm 5 + ion 6 + cz 4 + single 3 + ibm 5 + ion 6
    plenty = 64 * 2**30
    every = width_limits(specs, ALL_SCENARIOS, memory_bytes=plenty)
    assert every["cluster"] == 29
    assert every["scenarios"] == {"none": 29, "latency": 29 - 12, "drop_node": 29 - 6, "degrade": 29}
    assert every["statevector"] == 24 and every["density_matrix"] == 8 and every["default"] == 17
    assert width_limits(specs, ["none"], memory_bytes=plenty)["default"] == 24  # the statevector limit
    small = width_limits(specs, ["none"], memory_bytes=2**30)  # 8 copies of 16 * 2**n bytes in 1 GiB: n = 23
    assert small["memory"] == 23 and small["default"] == 23


def test_best_profile_ignores_profiles_without_entangling_gates() -> None:
    specs = node_specs(6)
    assert best_profile(specs) == "ion-like"  # not single-qubit, whose gate_2q = 1.0 is a placeholder
    assert slowed_nodes(specs) == ["bravo", "foxtrot"]
    assert central_profile(specs).fidelity.gate_2q == pytest.approx(0.995)


def test_plan_fingerprint_maps_peer_ids_to_names_and_tells_assignments_apart() -> None:
    def plan(a: str, b: str) -> dict:
        return {"fragments": [{"fragment_id": "f0", "node_id": a}, {"fragment_id": "f1", "node_id": b}],
                "final_residency": [a, b], "cost": {"total": 0.25}}

    one = plan_fingerprint(plan("12D3KooWaaa", "12D3KooWbbb"), {"12D3KooWaaa": "alpha", "12D3KooWbbb": "bravo"})
    other_ids = plan_fingerprint(plan("12D3KooWccc", "12D3KooWddd"), {"12D3KooWccc": "alpha", "12D3KooWddd": "bravo"})
    swapped = plan_fingerprint(plan("12D3KooWbbb", "12D3KooWaaa"), {"12D3KooWaaa": "alpha", "12D3KooWbbb": "bravo"})
    assert one == other_ids and one != swapped and len(one) == 16


def test_every_suite_circuit_is_generated_identically_twice() -> None:
    """mqt-bench's graphstate draws an unseeded random graph unless given a seed (NFR-001)."""
    instances = {i for suite in SUITES.values() for i in suite.instances(12)}
    for name, qubits in sorted(instances):
        assert benchmark_circuit(name, qubits).qasm == benchmark_circuit(name, qubits).qasm, (name, qubits)


def test_qb2_experiment_run_help_explains_every_option_of_python_m_experiments_run() -> None:
    result = CliRunner().invoke(app, ["experiment", "run", "--help"])
    assert result.exit_code == 0
    run_parser = argparse.ArgumentParser()
    add_run_arguments(run_parser)
    options = {opt for action in run_parser._actions for opt in action.option_strings} - {"-h", "--help"}
    assert {"--suite", "--seed", "--out", "--scenarios", "--ideal", "--min-nodes", "--max-qubits"} <= options
    for option in options:
        assert option in result.output, option
    assert "usage: qb2 experiment run" in result.output and "statevector" in result.output
    bad = CliRunner().invoke(app, ["experiment", "run", "--out", "/nonexistent", "--scenarios", "nope"])
    assert bad.exit_code == 2
    too_wide = CliRunner().invoke(app, ["experiment", "run", "--out", "/nonexistent", "--max-qubits", "40"])
    assert too_wide.exit_code == 2


# ---------------------------------------------------------------------------------------------- clusters


@integration
def test_smoke_suite_writes_every_output_and_all_runs_succeed(smoke_runs: tuple[Path, Path, int, int]) -> None:
    out, _, code, _ = smoke_runs
    assert code == 0
    for name in ("report.md", "results.csv", "results.jsonl", "run_config.json", "latency_by_size.png",
                 "fidelity_est_vs_measured.png", "success_by_scenario.png"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out)
    assert {(r["circuit"], r["mode"], r["repeat"]) for r in rows} == {
        (c, m, rep) for c in ("ghz-3", "qft-3", "wstate-3", "ghz-10") for m in ("distributed", "centralized")
        for rep in (0, 1)}
    assert all(r["success"] and r["counts"] and 0 < r["estimated_fidelity"] <= 1 for r in rows)
    assert all(r["compile_s"] > 0 and r["latency_s"] > 0 for r in rows)
    # Above the density-matrix limit (8 qubits) both modes simulate a statevector.
    assert all(r["representation"] == ("statevector" if r["qubits"] > 8 else "density_matrix") for r in rows)
    distributed = [r for r in rows if r["mode"] == "distributed"]
    assert all(r["overhead_per_fragment_s"] is not None and r["plan_fingerprint"] for r in distributed)
    assert all(len(r["ran_on"]) >= 2 for r in distributed)  # min_nodes=2: really distributed
    with open(out / "results.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(rows) and all(r["plan_fingerprint"] for r in csv_rows if r["mode"] == "distributed")
    config = json.loads((out / "run_config.json").read_text())
    assert config["seeds"] == [7, 8] and config["suite"]["name"] == "smoke" and "qiskit" in config["packages"]
    assert config["max_qubits"] == config["width_limits"]["default"]
    report = (out / "report.md").read_text()
    assert "NFR-003" in report and "| ghz-3 | none | distributed | dm | 2 | 1.00 |" in report
    assert "| ghz-10 | none | centralized | sv | 2 | 1.00 |" in report
    assert "Latencies differ between reruns; plans and counts repeat." in report
    assert "only estimated" in report


@integration
def test_qb2_experiment_run_is_the_same_command(smoke_runs: tuple[Path, Path, int, int]) -> None:
    first, second, _, code = smoke_runs
    assert code == 0
    a, b = (json.loads((o / "run_config.json").read_text()) for o in (first, second))
    for key in ("suite", "circuits", "seeds", "scenarios", "nodes", "max_qubits", "fault_parameters"):
        assert a[key] == b[key], key
    assert (second / "report.md").stat().st_size > 0


@integration
def test_rerun_with_the_same_seed_repeats_plans_and_counts(smoke_runs: tuple[Path, Path, int, int]) -> None:
    """NFR-001 across two separate clusters: same plan fingerprint and same counts per (mode, circuit, repeat);
    the seed reaches the readout (repeats 0 and 1 differ in seed and, for some circuit, in counts)."""
    first, second, _, _ = smoke_runs
    a = {(r["mode"], r["circuit"], r["repeat"]): r for r in _rows(first)}
    b = {(r["mode"], r["circuit"], r["repeat"]): r for r in _rows(second)}
    assert a.keys() == b.keys() and len(a) == 16
    for key, row in a.items():
        assert row["counts"] == b[key]["counts"], key
        assert row["plan_fingerprint"] == b[key]["plan_fingerprint"], key
        assert row["seed"] == b[key]["seed"] == 7 + key[2]
    assert all(a[k]["plan_fingerprint"] for k in a if k[0] == "distributed")
    assert any(a[(m, c, 0)]["counts"] != a[(m, c, 1)]["counts"] for m, c, _ in a)


@integration
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


@integration
def test_fault_free_runs_need_no_retries(fault_runs: dict[str, list[RunRecord]]) -> None:
    assert all(r.success and r.retries == 0 and r.fallbacks == 0 for r in fault_runs["none"])


@integration
def test_latency_scenario_makes_fragments_on_slowed_nodes_time_out_retry_and_fall_back(
        fault_runs: dict[str, list[RunRecord]]) -> None:
    """The slowed nodes answer after 1 s, the execute timeout is 0.4 s: every job's plan uses them, their
    fragments are retried then re-planned elsewhere, and every job still completes on the other nodes."""
    slowed = set(slowed_nodes(node_specs(6)))
    records = fault_runs["latency"]
    assert len(records) == 4
    for r in records:
        assert r.success, r.error
        assert r.retries >= 1 and r.fallbacks >= 1, (r.circuit, r.repeat)
        assert slowed & set(r.plan_nodes), r.plan_nodes  # the first plan chose a slowed node ...
        assert not slowed & set(r.ran_on), r.ran_on  # ... which never completed a fragment
        assert r.latency_s > EXECUTE_TIMEOUT_S * MAX_ATTEMPTS  # at least one node's attempts timed out


@integration
def test_drop_node_scenario_makes_the_struck_job_fall_back(fault_runs: dict[str, list[RunRecord]]) -> None:
    """A node killed while the first recorded job is EXECUTING: that job completes through a fallback
    plan; later jobs are planned without the dead node (refused reservation)."""
    first, *later = fault_runs["drop_node"]
    assert first.success and first.fallbacks >= 1 and first.retries >= 1
    dead = set(first.plan_nodes) - set(first.ran_on)
    assert dead
    for r in later:
        assert r.success and r.fallbacks == 0
        assert not dead & set(r.plan_nodes)


@integration
def test_degrade_scenario_lowers_estimated_and_measured_fidelity(fault_runs: dict[str, list[RunRecord]]) -> None:
    """Degrading the preferred nodes lowers the estimated fidelity of every run and the measured (Hellinger)
    fidelity of ghz-3: mean over 2 repeats of 2000 shots (true gap ~0.05, shot noise ~0.005)."""
    none, degraded = fault_runs["none"], fault_runs["degrade"]
    assert all(r.success for r in none + degraded)
    for circuit in ("ghz-3", "qft-4"):
        assert (max(r.estimated_fidelity for r in degraded if r.circuit == circuit)
                < min(r.estimated_fidelity for r in none if r.circuit == circuit)), circuit
    # qft-4 from |0000> measures a uniform distribution, which readout noise hardly changes: ghz-3 only.
    before = statistics.fmean(r.measured_fidelity for r in none if r.circuit == "ghz-3")
    after = statistics.fmean(r.measured_fidelity for r in degraded if r.circuit == "ghz-3")
    assert after < before - 0.02, (before, after)
