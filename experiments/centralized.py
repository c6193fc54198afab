"""The centralized baseline of the harness (FR-013): a circuit on ONE monolithic simulated QPU, in-process.

The same parsed circuit a cluster runs distributed runs here on one QPU with
the same node handler code (:func:`qb2.service_node.handler.handle_execute`):
one ``gates`` request with every operation on the full state, then one
``readout`` request. No network, no teleportation, no capacity limit; the QPU
is the best node grown to 24 qubits (:func:`central_profile`). Centralized
runs do not depend on the fault scenario; the harness runs them once per
circuit and repeat and reports them under scenario ``none``.
"""

from __future__ import annotations

import time
from typing import Any

from qb2.client.cluster import NodeSpec
from qb2.compiler import parse_qasm
from qb2.compiler.planner import PlannerOptions, choose_representation
from qb2.coordinator.fidelity import estimated_fidelity, ideal_distribution, measured_fidelity
from qb2.experiments.circuits import BenchmarkCircuit
from qb2.experiments.records import RunRecord
from qb2.experiments.scenarios import best_profile
from qb2.protocol.execute import ClbitRegister, ExecuteRequest, GateOp
from qb2.protocol.jobs import FragmentRecord
from qb2.protocol.state import pack_state, zero_state
from qb2.service_node.config import PROFILES, NodeProfile
from qb2.service_node.handler import NodeSimulator, handle_execute

__all__ = ["central_profile", "run_centralized"]


def central_profile(specs: list[NodeSpec]) -> NodeProfile:
    """The monolithic QPU: the best node (:func:`qb2.experiments.scenarios.best_profile`) grown to 24 qubits.

    Same native gate set and fidelities as that node, so the baseline pays the
    same gate translation per operation as a fragment placed there (e.g. ``cp``
    becomes one ``rzz`` on the ion-like profile); only the network, the
    teleportations and the capacity limit are gone.
    """
    best = PROFILES[best_profile(specs)]
    return NodeProfile(name="central", native_gates=best["native_gates"], qubits=24, fidelity=best["fidelity"])


def _clbit_registers(ir: Any) -> tuple[ClbitRegister, ...]:
    if ir.cregs:
        return tuple(ClbitRegister(name=r.name, size=r.size) for r in ir.cregs)
    return (ClbitRegister(name="c", size=ir.num_clbits),) if ir.num_clbits else ()


def run_centralized(circuit: BenchmarkCircuit, qpu: NodeSimulator, *, shots: int, seed: int,
                    repeat: int = 0, density_matrix_max_qubits: int = 8,
                    statevector_max_qubits: int = 24) -> RunRecord:
    """Run ``circuit`` in-process on one monolithic QPU (same handler code as a node).

    The representation is chosen as the planner chooses it
    (:func:`qb2.compiler.planner.choose_representation`): a density matrix (exact
    noise) up to ``density_matrix_max_qubits``, else a statevector (no gate
    noise; readout noise only). ``compile_s`` is parsing plus request building
    (no partitioning or placement is needed); ``latency_s`` is the wall time
    of the two ``handle_execute`` calls (gates on the full state, then
    readout), seconds.

    Raises:
        qb2.compiler.errors.InfeasiblePlanError: wider than ``statevector_max_qubits``.
    """
    t0 = time.perf_counter()
    ir = parse_qasm(circuit.qasm, circuit.format, circuit.label)
    n = ir.num_qubits
    representation = choose_representation(n, PlannerOptions(density_matrix_max_qubits=density_matrix_max_qubits,
                                                             statevector_max_qubits=statevector_max_qubits))
    gates = ExecuteRequest(job_id="central", fragment_id="f0", kind="gates", representation=representation,
                           num_qubits=n, ops=tuple(GateOp(name=o.name, qubits=o.qubits, params=o.params)
                                                   for o in ir.operations))
    readout = ExecuteRequest(job_id="central", fragment_id="readout", kind="readout",
                             representation=representation, num_qubits=n,
                             measurements=tuple((m.qubit, m.clbit) for m in ir.measurements),
                             clbit_registers=_clbit_registers(ir), shots=shots, seed=seed)
    payload = pack_state(zero_state(representation, n))
    compile_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    g_resp, state = handle_execute(qpu, gates, payload)
    r_resp, _ = handle_execute(qpu, readout, state) if g_resp.ok else (g_resp, b"")
    latency = time.perf_counter() - t1
    rec = RunRecord("centralized", "none", circuit.label, n, ir.num_operations, repeat, seed,
                    success=bool(g_resp.ok and r_resp.ok), representation=representation, compile_s=compile_s,
                    latency_s=latency, fragments=2, nodes_used=1, ran_on=["central"])
    if not rec.success:
        rec.error = (r_resp.error or g_resp.error).message if (r_resp.error or g_resp.error) else "failed"
        return rec
    records = [FragmentRecord(fragment_id="f0", kind="gates", node_id="central", native_op_counts=g_resp.native_op_counts),
               FragmentRecord(fragment_id="readout", kind="readout", node_id="central",
                              native_op_counts=r_resp.native_op_counts)]
    rec.estimated_fidelity = estimated_fidelity(records, {"central": qpu.profile.fidelity}, 1.0)
    rec.measured_fidelity = measured_fidelity(r_resp.counts, ideal_distribution(ir))
    rec.counts = dict(r_resp.counts)
    return rec
