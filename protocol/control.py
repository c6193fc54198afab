"""Fault injection into a node (used by tests and the experiment harness), over
:data:`qb2.protocol.ids.CONTROL_PROTOCOL_ID`: one :class:`FaultSpec` frame in, one
:class:`ControlResponse` frame out.

Faults apply to execute requests from ``after_s`` seconds after they are set
(0: at once) for ``duration_s`` seconds (None: until cleared):

- ``latency``: add ``latency_s`` seconds before answering;
- ``drop``: reset the stream without answering, with probability ``probability``;
- ``crash``: exit the node process (code 137) when the fault becomes active;
- ``degrade``: multiply the node's fidelities by ``factor`` (re-advertised at once);
- ``clear``: remove every fault and restore the fidelities.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FaultSpec(BaseModel):
    """One fault to inject. Times in seconds, probabilities and factors in [0, 1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["latency", "drop", "crash", "degrade", "clear"]
    latency_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    factor: float = Field(default=1.0, gt=0.0, le=1.0)
    after_s: float = Field(default=0.0, ge=0.0, le=86400.0)
    duration_s: float | None = Field(default=None, gt=0.0, le=86400.0)


class ControlResponse(BaseModel):
    """Whether the node accepted the fault, and the faults now configured."""

    model_config = ConfigDict(extra="forbid")

    node_id: str
    accepted: bool
    active: list[FaultSpec] = Field(default_factory=list)
    reason: str | None = None
