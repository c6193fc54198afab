"""qb2's pure circuit compiler: ingestion, fragments, placement, plans (FR-003, FR-004).

Nothing here performs file or network I/O or imports the daemons; the
coordinator calls :func:`parse_qasm` / :func:`from_quantum_circuit` and then
:func:`plan_circuit`.

Modules, one idea each:

- :mod:`compiler.ir` — the circuit IR (contract).
- :mod:`compiler.plan` — the plan model (contract).
- :mod:`compiler.errors` — :class:`QasmValidationError`, :class:`InfeasiblePlanError`.
- :mod:`compiler.ingest` — OpenQASM 2/3 text to IR.
- :mod:`compiler.limits` — resource bounds checked while ingesting (FR-014).
- :mod:`compiler.qasm_errors` — parser exceptions to positioned validation errors.
- :mod:`compiler.lower` — ``QuantumCircuit`` to IR (gate expansion, terminal measurements).
- :mod:`compiler.export` — IR back to a ``QuantumCircuit`` (baseline, checks).
- :mod:`compiler.dag` / :mod:`compiler.partition` — fragments and the splitting rule.
- :mod:`compiler.capability` — which gates a node can run (native or translated).
- :mod:`compiler.translation` — native gate counts after Qiskit translation.
- :mod:`compiler.cost` — the cost model: terms, units, sources, weights.
- :mod:`compiler.placement` — node capability views, "no node can run it" errors.
- :mod:`compiler.search` — placement with qubit residency: exact DP, beam, baselines.
- :mod:`compiler.routing` — SWAP routing on a node's coupling map (FR-016),
  shared with device nodes; the planner charges its SWAPs in the search.
- :mod:`compiler.planner` — :func:`plan_circuit` and :class:`PlannerOptions`.
"""

from compiler.capability import supports_gate, unsupported_gates
from compiler.cost import CostBreakdown, CostWeights
from compiler.dag import Fragment, FragmentDAG
from compiler.errors import InfeasiblePlanError, QasmValidationError
from compiler.export import to_quantum_circuit
from compiler.ingest import from_quantum_circuit, parse_qasm
from compiler.limits import IngestLimits, IngestStats, LimitExceededError
from compiler.ir import CircuitIR, Measurement, Operation, Register
from compiler.partition import split_fragments
from compiler.plan import FragmentPlan, Plan
from compiler.planner import PlannerOptions, plan_circuit

__all__ = [
    "CircuitIR",
    "CostBreakdown",
    "CostWeights",
    "Fragment",
    "FragmentDAG",
    "FragmentPlan",
    "InfeasiblePlanError",
    "IngestLimits",
    "IngestStats",
    "LimitExceededError",
    "Measurement",
    "Operation",
    "Plan",
    "PlannerOptions",
    "QasmValidationError",
    "Register",
    "from_quantum_circuit",
    "parse_qasm",
    "plan_circuit",
    "split_fragments",
    "supports_gate",
    "to_quantum_circuit",
    "unsupported_gates",
]
