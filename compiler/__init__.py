"""qb2's pure circuit compiler: ingestion, fragments, placement, plans (FR-003, FR-004).

Nothing here performs file or network I/O or imports the daemons; the
coordinator calls :func:`parse_qasm` / :func:`from_quantum_circuit` and then
:func:`plan_circuit`.

Modules, one idea each:

- :mod:`qb2.compiler.ir` — the circuit IR (contract).
- :mod:`qb2.compiler.plan` — the plan model (contract).
- :mod:`qb2.compiler.errors` — :class:`QasmValidationError`, :class:`InfeasiblePlanError`.
- :mod:`qb2.compiler.ingest` — OpenQASM 2/3 text to IR.
- :mod:`qb2.compiler.limits` — resource bounds checked while ingesting (FR-014).
- :mod:`qb2.compiler.qasm_errors` — parser exceptions to positioned validation errors.
- :mod:`qb2.compiler.lower` — ``QuantumCircuit`` to IR (gate expansion, terminal measurements).
- :mod:`qb2.compiler.export` — IR back to a ``QuantumCircuit`` (baseline, checks).
- :mod:`qb2.compiler.dag` / :mod:`qb2.compiler.partition` — fragments and the splitting rule.
- :mod:`qb2.compiler.capability` — which gates a node can run (native or translated).
- :mod:`qb2.compiler.translation` — native gate counts after Qiskit translation.
- :mod:`qb2.compiler.estimate` — the one fidelity estimate and gate-arity table (planner, result, ledger).
- :mod:`qb2.compiler.cost` — the cost model: terms, units, sources, weights.
- :mod:`qb2.compiler.placement` — node capability views, "no node can run it" errors.
- :mod:`qb2.compiler.routing` — SWAP routing on a node's coupling map (FR-016),
  shared with device nodes; the planner charges its SWAPs in the search.

Placement with qubit residency (the search and what it works on):

- :mod:`qb2.compiler.problem` — the placement instance (:class:`Problem`), teleport/readout tables.
- :mod:`qb2.compiler.transitions` — moving a fragment's qubits in; evictions (all, or Belady's).
- :mod:`qb2.compiler.readout` — final residency of untouched qubits, terminal readout cost.
- :mod:`qb2.compiler.evaluation` — replaying decisions: every teleport and cost term of a plan.
- :mod:`qb2.compiler.search` — beam search, then exact branch and bound (layered DP).
- :mod:`qb2.compiler.baselines` — first-fit, round-robin, greedy, the brute-force optimum.

The planner, as named stages over one context (:mod:`qb2.compiler.stages`):

- :mod:`qb2.compiler.options` — :class:`PlannerOptions`.
- :mod:`qb2.compiler.checks` — usable nodes, tie order, representation, width and gate checks.
- :mod:`qb2.compiler.placement_model` — translation tables, node costs, routing SWAPs, instances.
- :mod:`qb2.compiler.fragmentations` — the candidate fragmentations and which nodes can run them.
- :mod:`qb2.compiler.candidates` — solving one fragmentation: search plus baselines, ranking.
- :mod:`qb2.compiler.fidelity_floor` — the ``min_fidelity`` multiplier ladder.
- :mod:`qb2.compiler.assembly` — the :class:`Plan` of the chosen placement (readout fragment, totals).
- :mod:`qb2.compiler.stages` — :class:`PlanningContext`, the stages (``STAGES``), ``run_stages``.
- :mod:`qb2.compiler.planner` — :func:`plan_circuit` (all stages), ``planning_instances``.
"""

if __name__ != "qb2.compiler":  # one import path only (issue 12): the folder is installed as qb2.compiler
    raise ImportError(f"import qb2.compiler, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")

from qb2.compiler.capability import supports_gate, unsupported_gates
from qb2.compiler.cost import CostBreakdown, CostWeights
from qb2.compiler.dag import Fragment, FragmentDAG
from qb2.compiler.errors import InfeasiblePlanError, QasmValidationError
from qb2.compiler.export import to_quantum_circuit
from qb2.compiler.ingest import from_quantum_circuit, parse_qasm
from qb2.compiler.ir import CircuitIR, Measurement, Operation, Register
from qb2.compiler.limits import IngestLimits, IngestStats, LimitExceededError
from qb2.compiler.options import PlannerOptions
from qb2.compiler.partition import split_fragments
from qb2.compiler.plan import FragmentPlan, Plan
from qb2.compiler.planner import plan_circuit

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
