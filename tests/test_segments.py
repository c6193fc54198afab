"""Segments (issue 13): consecutive same-node gate fragments run as one invocation, one record each."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qb2.compiler import PlannerOptions, parse_qasm, plan_circuit
from qb2.compiler.plan import Plan, segments
from qb2.coordinator.runtime import execute_plan
from qb2.experiments.circuits import benchmark_circuit
from tests.conftest import InProcessCluster, peer_id
from tests.test_invariant import SEED, SHOTS, centralized


def qft_plan(cluster: InProcessCluster) -> tuple[object, Plan]:
    ir = parse_qasm(benchmark_circuit("qft", 6).qasm)
    return ir, plan_circuit(ir, cluster.adverts, PlannerOptions(link_fidelity=1.0))


def moved(plan: Plan, fragment_id: str, node_id: str) -> Plan:
    """``plan`` with one fragment reassigned to ``node_id`` (splits a same-node run)."""
    fragments = tuple(f.model_copy(update={"node_id": node_id}) if f.fragment_id == fragment_id else f
                      for f in plan.fragments)
    return plan.model_copy(update={"fragments": fragments})


def test_grouping_follows_plan_order_node_and_shared_qubits(ideal_cluster: InProcessCluster) -> None:
    _, plan = qft_plan(ideal_cluster)
    gates = [f for f in plan.fragments if f.kind == "gates"]
    assert len({f.node_id for f in plan.fragments}) == 1 and len(gates) > 3  # one node: one segment
    assert plan.segments == (tuple(f.fragment_id for f in gates),)
    other = next(n for n in ideal_cluster.qpus if n != gates[0].node_id)
    split = moved(plan, gates[2].fragment_id, other)
    ids = [f.fragment_id for f in gates]
    # qft(6): f3 (1,3), f4 (1,2) share qubit 1; f5 (0,4) shares none with them: a new segment
    assert split.segments == (tuple(ids[:2]), (ids[2],), tuple(ids[3:5]), tuple(ids[5:]))
    assert segments(split.fragments) == split.segments
    assert all(len(s) == 1 for s in segments(
        [f.model_copy(update={"node_id": peer_id("ABCD"[i % 2])}) for i, f in enumerate(gates)]))
    # no shared qubit with the segment so far: a new segment (independent pieces stay concurrent)
    a = gates[0].model_copy(update={"qubits": (0,)})
    b = gates[1].model_copy(update={"qubits": (1,)})
    assert segments([a, b]) == ((a.fragment_id,), (b.fragment_id,))
    assert plan.to_json() == plan.model_validate_json(plan.to_json()).to_json()  # not in the JSON


async def test_one_invocation_per_segment_one_record_per_fragment_same_counts(
    ideal_cluster: InProcessCluster,
) -> None:
    ir, plan = qft_plan(ideal_cluster)
    gates = [f for f in plan.fragments if f.kind == "gates"]
    other = next(n for n in ideal_cluster.qpus if n != gates[0].node_id)
    ref_state, ref_counts = centralized(ir, plan.representation, SEED)
    for p in (plan, moved(plan, gates[2].fragment_id, other)):
        ideal_cluster.calls.clear()
        execution = await execute_plan(p, ir, ideal_cluster.invoke, job_id="t", shots=SHOTS, seed=SEED,
                                       keep_final_state=True)
        assert len(ideal_cluster.calls) == len(p.segments) + 1  # + the readout
        assert ideal_cluster.calls[:-1] == [p.fragments[[f.fragment_id for f in p.fragments].index(s[0])].node_id
                                            for s in p.segments]
        assert [r.fragment_id for r in execution.records] == [f.fragment_id for f in p.fragments]
        assert all(r.status == "DONE" and r.attempts == 1 for r in execution.records)
        assert [r.node_id for r in execution.records] == [f.node_id for f in p.fragments]
        assert all(r.native_op_counts for r in execution.records if r.kind == "gates" and r.operation_indices)
        assert np.abs(execution.final_state - ref_state).max() < 1e-9
        assert execution.counts == ref_counts


async def test_noisy_segment_equals_fragment_by_fragment(noisy_cluster: InProcessCluster) -> None:
    """The node applies members back to back exactly as separate invocations would (same noisy state)."""
    ir, plan = qft_plan(noisy_cluster)
    one_by_one = plan.model_copy(update={"fragments": tuple(
        f.model_copy(update={"node_id": peer_id("ABCD"[i % 2])}) if f.kind == "gates" else f
        for i, f in enumerate(plan.fragments))})
    assert all(len(s) == 1 for s in one_by_one.segments)
    grouped = one_by_one.model_copy(update={"fragments": tuple(
        f.model_copy(update={"node_id": peer_id("A")}) if f.kind == "gates" else f for f in plan.fragments)})
    assert len(grouped.segments) == 1
    # same node for every fragment, run (a) as one segment and (b) with the grouping disabled by hand
    a = await execute_plan(grouped, ir, noisy_cluster.invoke, job_id="t", shots=SHOTS, seed=SEED, keep_final_state=True)
    from qb2.coordinator import runtime

    real = runtime.Plan.segments
    try:
        runtime.Plan.segments = property(lambda p: tuple((f.fragment_id,) for f in p.fragments  # type: ignore[method-assign,assignment]
                                                         if f.kind == "gates"))
        noisy_cluster.calls.clear()
        b = await execute_plan(grouped, ir, noisy_cluster.invoke, job_id="t", shots=SHOTS, seed=SEED,
                               keep_final_state=True)
    finally:
        runtime.Plan.segments = real  # type: ignore[method-assign]
    assert len(noisy_cluster.calls) == len(grouped.fragments)
    assert np.abs(a.final_state - b.final_state).max() < 1e-9
    assert a.counts == b.counts
    assert [r.native_op_counts for r in a.records] == [r.native_op_counts for r in b.records]


async def test_the_api_shows_the_segments_of_a_plan(tmp_path: Path, ideal_cluster: InProcessCluster) -> None:
    """The dry-run plan and a job's stored plan list their segments (issue 13: "the plan shows segments")."""
    from tests.test_api import make_client

    qasm = benchmark_circuit("qft", 6).qasm
    _, client = await make_client(tmp_path, ideal_cluster)
    async with client:
        dry = (await client.post("/api/v1/circuits/plan", json={"qasm": qasm})).json()
        job = (await client.post("/api/v1/circuits/submit", json={"qasm": qasm, "shots": 10})).json()
        stored = (await client.get(f"/api/v1/jobs/{job['job_id']}/plan")).json()
    for body in (dry, stored):
        segments = body.pop("segments")
        plan = Plan.model_validate(body)
        assert segments == [list(s) for s in plan.segments] and segments
        gates = [f.fragment_id for f in plan.fragments if f.kind == "gates"]
        assert [f for s in segments for f in s] == gates  # every gate fragment once, in plan order
