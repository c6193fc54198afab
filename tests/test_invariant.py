"""DESIGN.md's correctness invariant: with ideal nodes and links, distributed = centralized.

For every demo circuit, the state handed through the fragments equals the
centralized simulation within 1e-9, and the counts equal Aer's for the same
seed (the centralized reference uses the same simulation method as the plan's
representation: Aer's automatic method would pick the stabilizer simulator
for Clifford circuits, whose sampler draws differently).
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import transpile
from qiskit.quantum_info import DensityMatrix, Statevector
from qiskit_aer import AerSimulator

from qb2.compiler import PlannerOptions, parse_qasm, plan_circuit
from qb2.compiler.export import to_quantum_circuit
from qb2.coordinator.runtime import execute_plan
from qb2.experiments.circuits import DEMO_SET, benchmark_circuit

SHOTS = 2000
SEED = 11


def centralized(ir, representation: str, seed: int):  # type: ignore[no-untyped-def]
    unitary = to_quantum_circuit(ir, include_measurements=False)
    state = Statevector(unitary)
    ref_state = state.data if representation == "statevector" else DensityMatrix(state).data
    sim = AerSimulator(method=representation, seed_simulator=seed)
    counts = sim.run(transpile(to_quantum_circuit(ir), sim, optimization_level=0), shots=SHOTS).result().get_counts()
    return ref_state, counts


NODE_QUBITS = 3  # small nodes: every circuit wider than one node must be distributed


@pytest.mark.parametrize("representation", ["density_matrix", "statevector"])
@pytest.mark.parametrize(("name", "qubits", "fmt"), DEMO_SET)
async def test_ideal_distributed_equals_centralized(name, qubits, fmt, representation):
    from tests.conftest import InProcessCluster

    ideal_cluster = InProcessCluster(ideal=True, qubits=NODE_QUBITS)
    circuit = benchmark_circuit(name, qubits, fmt)
    ir = parse_qasm(circuit.qasm, fmt, name=circuit.label)
    dm_limit = 16 if representation == "density_matrix" else 0
    plan = plan_circuit(ir, ideal_cluster.adverts, PlannerOptions(link_fidelity=1.0, density_matrix_max_qubits=dm_limit))
    assert plan.representation == representation
    execution = await execute_plan(plan, ir, ideal_cluster.invoke, job_id="t", shots=SHOTS, seed=SEED,
                                   keep_final_state=True)
    ref_state, ref_counts = centralized(ir, representation, SEED)
    assert np.abs(execution.final_state - ref_state).max() < 1e-9
    assert execution.counts == ref_counts
    if ir.num_qubits > NODE_QUBITS:
        assert len({r.node_id for r in execution.records}) > 1, "a circuit wider than a node must spread"


async def test_noisy_nodes_lower_fidelity_but_keep_shots(noisy_cluster):
    circuit = benchmark_circuit("ghz", 5, "qasm2")
    ir = parse_qasm(circuit.qasm, "qasm2")
    plan = plan_circuit(ir, noisy_cluster.adverts, PlannerOptions())
    execution = await execute_plan(plan, ir, noisy_cluster.invoke, job_id="t", shots=SHOTS, seed=SEED,
                                   keep_final_state=True)
    assert sum(execution.counts.values()) == SHOTS
    ideal = Statevector(to_quantum_circuit(ir, include_measurements=False))
    state = DensityMatrix(execution.final_state)
    assert state.purity().real < 0.999  # noise really happened
    assert 0.5 < float(np.real(ideal.data.conj() @ state.data @ ideal.data)) < 0.999
    assert len(execution.counts) > 2  # readout and gate errors leak outside |00000> / |11111>
