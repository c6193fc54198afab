"""The HTTP job API contract (FR-009, FR-014): request and response bodies, shared by the API and the client.

The coordinator serves these models (:mod:`qb2.coordinator.api`, which adds
the routes, the door and the error handlers); :mod:`qb2.client.http` sends
and reads them. Job states and records are in :mod:`qb2.protocol.jobs`.
Every error response is :class:`ErrorBody`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from qb2.protocol.jobs import CostWeightOverrides, ErrorInfo, JobRecord, JobResult, JobState, Priority


def _utf8(value: str) -> str:
    """Reject text that cannot be stored and returned as UTF-8 (a lone surrogate such as ``"\\ud800"``)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text: lone surrogate at character {exc.start}") from None
    return value


#: A request string: any ``str`` that is encodable as UTF-8 (checked at the door, FR-014).
Text = Annotated[str, AfterValidator(_utf8)]


class SubmitRequest(BaseModel):
    """Body of ``POST /api/v1/circuits/submit`` (and of the dry-run plan). Unknown fields are a 422."""

    model_config = ConfigDict(extra="forbid")

    qasm: Text = Field(min_length=1, description="OpenQASM 2 or 3 program text")
    format: Literal["qasm2", "qasm3"] | None = Field(default=None, description="detected from the header when omitted")
    shots: int | None = Field(default=None, ge=1, description="measurement repetitions; default from config")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="simulator seed for reproducible counts")
    name: Text | None = Field(default=None, max_length=128, description="label shown in job lists")
    priority: Priority = Field(default=Priority.NORMAL, description="queue priority: low, normal, high, urgent")
    tags: list[Text] = Field(default_factory=list, max_length=16, description="free labels to filter job lists by")
    weights: CostWeightOverrides | None = Field(default=None, description="cost weights for this job (FR-004)")
    min_fidelity: float | None = Field(default=None, ge=0.0, le=1.0, description="estimated-fidelity floor")
    min_nodes: int = Field(default=1, ge=1, le=1000, description="spread over at least this many nodes")


class SubmitResponse(BaseModel):
    """Returned at once (202) by submit: poll ``status_url``, stream ``stream_url`` or read ``result_url``."""

    job_id: str
    state: JobState
    status_url: str
    result_url: str
    stream_url: str


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobRecord]
    total: int
    limit: int
    offset: int


class ResultResponse(JobResult):
    """Result of a COMPLETED job."""

    job_id: str
    state: JobState


class NodeView(BaseModel):
    """A registry entry: the latest advertisement, its age and derived status (FR-002)."""

    node_id: str
    name: str
    status: str
    native_gates: list[str]
    qubits: int
    fidelity: dict[str, float]
    advert_age_s: float
    addrs: list[str]
    executor: str
    degraded: list[str] = Field(default_factory=list, description="why the node gets no new fragments (FR-008)")
    rtt_ms: float | None = Field(default=None, description="latest median libp2p ping round trip, milliseconds")
    loss: float = Field(default=0.0, description="fraction of the latest probes lost, in [0, 1]")
    coupling_map: list[tuple[int, int]] | None = Field(
        default=None, description="advertised coupled qubit pairs (FR-016); null: all-to-all")


class NodeList(BaseModel):
    """All known nodes, stale ones included."""

    nodes: list[NodeView]
    available: int


class DependencyHealth(BaseModel):
    """One dependency's state: ``ok`` or ``failing``, with a human detail."""

    status: Literal["ok", "failing"]
    detail: str


class Health(BaseModel):
    """Coordinator health (FR-012). ``status`` is ``ok`` only if every dependency is ``ok``."""

    status: Literal["ok", "degraded"]
    peer_id: str
    protocol_version: str
    dependencies: dict[str, DependencyHealth]
    nodes_available: int
    queue_depth: int
    jobs: dict[str, int]
    uptime_s: float


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorInfo
