"""Reservation of execution windows on a node (FR-005), over :data:`qb2.protocol.ids.RESERVE_PROTOCOL_ID`.

One JSON frame each way per stream (see :mod:`qb2.protocol.framing`, empty payload).
A window is ``[start, end)`` in Unix seconds. A node grants a window when
fewer than its ``capacity`` granted windows overlap it; otherwise it rejects
with the reason and the earliest window of the same length it could grant.
A granted window that is neither consumed (by an execution carrying its
``reservation_id``) nor released by ``end`` expires: a crashed coordinator
leaks nothing.

Ledger event kinds (event-sourced on the node; the coordinator persists the
events of its own jobs): ``requested``, ``granted``, ``rejected``,
``consumed``, ``released``, ``expired``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OperationSummary(BaseModel):
    """What will run in the window: gate counts by name, width, and expected duration in seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gates: dict[str, int] = Field(default_factory=dict)
    qubits: int = Field(ge=0, le=64)
    estimated_duration_s: float = Field(ge=0.0, le=86400.0)


class ReserveRequest(BaseModel):
    """Ask for (``action="reserve"``) or give back (``action="release"``) a window.

    ``reservation_id`` is chosen by the coordinator and unique per fragment
    attempt; ``job_id`` / ``fragment_id`` correlate it with the job.
    ``min_fidelity`` (in [0, 1]) is the fidelity the fragment needs: a node
    whose current estimate for the operation is lower rejects.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["reserve", "release"]
    reservation_id: str = Field(min_length=1, max_length=128)
    job_id: str = Field(default="", max_length=128)
    fragment_id: str = Field(default="", max_length=64)
    operation: OperationSummary | None = None
    start: float = Field(default=0.0, ge=0.0)
    end: float = Field(default=0.0, ge=0.0)
    min_fidelity: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _window(self) -> ReserveRequest:
        if self.action == "reserve":
            if self.operation is None:
                raise ValueError("a reserve request needs an operation summary")
            if not self.end > self.start:
                raise ValueError(f"window end {self.end} must be after start {self.start}")
        return self


class ReserveResponse(BaseModel):
    """The node's answer. On rejection, ``reason`` says why and ``next_start`` / ``next_end``
    give the earliest window of the same length it could grant (None if never)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str
    reservation_id: str
    granted: bool
    reason: str | None = None
    next_start: float | None = None
    next_end: float | None = None


LedgerEventKind = Literal["requested", "granted", "rejected", "consumed", "released", "expired"]


class LedgerEvent(BaseModel):
    """One entry of a reservation ledger; ``at`` is Unix seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LedgerEventKind
    reservation_id: str
    at: float
    start: float = 0.0
    end: float = 0.0
    job_id: str = ""
    fragment_id: str = ""
    reason: str | None = None
