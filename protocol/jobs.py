"""Job and fragment records: what the API returns and the store persists (FR-006, FR-009)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class JobState(StrEnum):
    """Lifecycle of a job (FR-009). COMPLETED, FAILED and CANCELLED are final."""

    QUEUED = "QUEUED"
    COMPILING = "COMPILING"
    RESERVING = "RESERVING"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        """Whether no further transition can happen."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


#: The states no job leaves (strings compare equal to them: ``"FAILED" in FINAL_STATES``).
FINAL_STATES = frozenset(state for state in JobState if state.final)


class Priority(StrEnum):
    """Queue priority (FR-009): higher priorities leave the queue first; FIFO within one."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 for urgent ... 3 for low: smaller leaves the queue first."""
        return (Priority.URGENT, Priority.HIGH, Priority.NORMAL, Priority.LOW).index(self)


FragmentStatus = Literal["PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED"]


class ErrorInfo(BaseModel):
    """A structured error: machine-readable ``code``, human ``message``, optional ``details``."""

    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class FragmentRecord(BaseModel):
    """Execution record of one fragment (FR-006, FR-007): when, where, how it went,
    every failed attempt's error, and whether it belongs to a fallback plan.

    ``started_at`` / ``ended_at`` are Unix seconds; ``round_trip_s`` is the
    coordinator-measured invocation time and ``simulation_s`` the node's
    simulator time, both in seconds. ``planned_routing_swaps`` is the plan's
    ``FragmentPlan.routing_swaps`` and ``routing_swaps`` the SWAPs the node
    reports it inserted (FR-016; None until it ran, and from nodes without a
    coupling map); the two are equal for a node running qb2's device model.
    """

    model_config = ConfigDict(extra="forbid")

    fragment_id: str
    kind: Literal["gates", "readout"]
    node_id: str
    status: FragmentStatus = "PENDING"
    started_at: float | None = None
    ended_at: float | None = None
    attempts: int = 0
    error: str | None = None
    qubits: tuple[int, ...] = ()
    ebits: int = 0
    operation_indices: tuple[int, ...] = ()
    errors: list[str] = Field(default_factory=list, description="one entry per failed attempt")
    fallback: int = Field(default=0, description="0: original plan; k: the k-th fallback plan (FR-007)")
    original_node_id: str | None = Field(default=None, description="node of the failed plan's fragment, for fallbacks")
    native_op_counts: dict[str, int] = Field(default_factory=dict)
    round_trip_s: float | None = None
    simulation_s: float | None = None
    planned_routing_swaps: int = Field(default=0, description="SWAPs the plan predicts on the node's coupling map")
    routing_swaps: int | None = Field(default=None, description="SWAPs the node reported it inserted (FR-016)")


class JobResult(BaseModel):
    """What a completed job produced.

    Attributes:
        counts: bitstring -> shots, bitstrings in Qiskit's format (registers
            separated by spaces, highest clbit first).
        shots / seed: as run.
        representation: simulated state kind handed between nodes.
        estimated_fidelity: product over native gates, readouts and ebits of
            the fidelities the nodes advertise (DESIGN.md), in [0, 1].
        measured_fidelity: Hellinger fidelity of ``counts`` against the ideal
            distribution, in [0, 1]; None when the ideal is not computable.
        nodes_used: distinct node ids that ran fragments.
        total_ebits: qubits teleported between nodes.
        execution_s: from the first fragment's start to the readout's end, seconds
            (of the last plan, when fallbacks were used).
        fragments: one record per fragment of every plan tried (``fallback`` > 0
            marks a fallback plan's fragments).
    """

    counts: dict[str, int]
    shots: int
    seed: int | None
    representation: str
    estimated_fidelity: float
    measured_fidelity: float | None
    nodes_used: list[str]
    total_ebits: int
    execution_s: float
    fragments: list[FragmentRecord]
    fallbacks: int = Field(default=0, description="fallback plans used (FR-007)")
    retries: int = Field(default=0, description="fragment invocations retried")


class CostWeightOverrides(BaseModel):
    """Per-job cost weights (FR-004); unset ones keep the configured defaults. Each >= 0."""

    model_config = ConfigDict(extra="forbid")

    latency: float | None = Field(default=None, ge=0.0, le=1e9)
    fidelity_risk: float | None = Field(default=None, ge=0.0, le=1e9)
    entanglement: float | None = Field(default=None, ge=0.0, le=1e9)
    price: float | None = Field(default=None, ge=0.0, le=1e9)


class JobOptions(BaseModel):
    """Planner options a job brings: cost weight overrides, a fidelity floor in [0, 1], and
    ``min_nodes`` to force a spread (experiments)."""

    model_config = ConfigDict(extra="forbid")

    weights: CostWeightOverrides = Field(default_factory=CostWeightOverrides)
    min_fidelity: float | None = Field(default=None, ge=0.0, le=1.0)
    min_nodes: int = Field(default=1, ge=1, le=1000)


class JobRecord(BaseModel):
    """A job as stored and as returned by ``GET /api/v1/jobs/{id}``."""

    job_id: str
    state: JobState
    created_at: float
    updated_at: float
    name: str
    format: Literal["qasm2", "qasm3"]
    shots: int
    seed: int | None
    num_qubits: int
    num_operations: int
    priority: Priority = Priority.NORMAL
    tags: list[str] = Field(default_factory=list)
    options: JobOptions = Field(default_factory=lambda: JobOptions())
    error: ErrorInfo | None = None


class JobEvent(BaseModel):
    """One state change of a job, as stored in the event log and pushed on the job stream.

    ``event_id`` increases monotonically across all jobs; ``at`` is Unix seconds.
    """

    event_id: int
    job_id: str
    state: JobState
    at: float
    detail: dict[str, Any] = Field(default_factory=dict)
