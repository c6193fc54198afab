"""Estimated and measured fidelity of a job's result (DESIGN.md, Execution semantics).

Estimated fidelity
    Product, over every native gate a node actually ran, of that node's
    advertised gate fidelity (1q or 2q; a gate on ``k >= 3`` qubits counts as
    ``2k - 3`` 2-qubit gates, an unknown name as one), times the readout
    fidelity per measured bit, times the link fidelity per ebit. This is the
    standard "product of component fidelities" success-probability estimate
    used by cost models for NISQ placement (e.g. Nishio et al., 2020); it
    ignores error cancellation. It is computed by
    :func:`qb2.compiler.estimate.fidelity_nats`, the same estimate as the
    planner's ``fidelity_risk + entanglement`` and a node's reservation check.
Measured fidelity
    Hellinger fidelity ``(sum_x sqrt(p(x) q(x)))**2`` between the returned
    counts and the ideal output distribution, as in
    :func:`qiskit.quantum_info.hellinger_fidelity`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from qiskit.quantum_info import Statevector, hellinger_fidelity

from qb2.compiler.estimate import ClassRisks, fidelity_nats, tally
from qb2.compiler.export import to_quantum_circuit
from qb2.compiler.ir import CircuitIR
from qb2.protocol.advert import Fidelities
from qb2.protocol.jobs import FragmentRecord

#: Widest circuit whose ideal distribution we compute (2**20 amplitudes, ~16 MiB).
IDEAL_MAX_QUBITS = 20


def estimated_fidelity(
    records: Sequence[FragmentRecord],
    fidelities: Mapping[str, Fidelities],
    link_fidelity: float,
) -> float:
    """Product of the fidelities of everything the job ran, in [0, 1].

    ``exp(-sum(fidelity_nats(node, *tally(native_op_counts), (link_fidelity,) * ebits)))``
    over ``records`` (:mod:`qb2.compiler.estimate`): for each record, the
    same number as the planner's ``estimated_fidelity`` of a fragment with
    these native counts and ebits on that node.

    Args:
        records: finished fragment records with ``native_op_counts`` (the
            readout fragment reports ``{"measure": k}``).
        fidelities: advertised fidelities per node id.
        link_fidelity: fidelity per ebit (teleported qubit), in (0, 1].
    """
    risk = 0.0
    for record in records:
        node = ClassRisks.of(fidelities[record.node_id])
        risk += fidelity_nats(node, *tally(record.native_op_counts),
                              link_fidelities=(link_fidelity,) * record.ebits)
    return math.exp(-risk)


def format_bitstring(clbits: Sequence[int], register_sizes: Sequence[int]) -> str:
    """Clbit values (index 0 first) as Qiskit prints them: registers right to left, space-separated."""
    parts, start = [], 0
    for size in register_sizes:
        parts.append("".join(str(b) for b in reversed(clbits[start : start + size])))
        start += size
    return " ".join(reversed(parts))


def ideal_distribution(ir: CircuitIR) -> dict[str, float] | None:
    """Exact output distribution of the measured clbits, keyed like the job's counts.

    Returns None when the circuit measures nothing or is wider than
    :data:`IDEAL_MAX_QUBITS`.
    """
    if not ir.measurements or ir.num_qubits > IDEAL_MAX_QUBITS:
        return None
    measured = list(dict.fromkeys(m.qubit for m in ir.measurements))  # a qubit may feed several clbits
    position = {q: k for k, q in enumerate(measured)}
    probs = Statevector(to_quantum_circuit(ir, include_measurements=False)).probabilities(qargs=measured)
    sizes = [r.size for r in ir.cregs] or [ir.num_clbits]
    out: dict[str, float] = {}
    for index, p in enumerate(probs):
        if p < 1e-12:
            continue
        clbits = [0] * ir.num_clbits
        for m in ir.measurements:
            clbits[m.clbit] = (index >> position[m.qubit]) & 1
        key = format_bitstring(clbits, sizes)
        out[key] = out.get(key, 0.0) + float(p)
    return out


def measured_fidelity(counts: Mapping[str, int], ideal: Mapping[str, float] | None) -> float | None:
    """Hellinger fidelity of ``counts`` against ``ideal``, in [0, 1]; None without an ideal."""
    if ideal is None or not counts:
        return None
    return float(hellinger_fidelity(dict(counts), dict(ideal)))
