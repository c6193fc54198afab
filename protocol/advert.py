"""Service advertisement (FR-001): what a simulated QPU offers.

A node publishes a JSON-encoded :class:`ServiceAdvertisement` on
:data:`qb2.protocol.ids.ADVERT_TOPIC`. GossipSub signs every message with the
publisher's libp2p key; :func:`parse_advertisement` rejects an advertisement
whose ``node_id`` is not the peer that signed it, so a node cannot speak for
another.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from qb2.protocol.errors import ProtocolError
from qb2.protocol.ids import PEER_ID_RE, PROTOCOL_VERSION, major
from qb2.protocol.membership import MAX_TOKEN_CHARS

_GATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Fidelities(BaseModel):
    """Per-gate-class fidelities of a node, each a probability in (0, 1].

    ``gate_1q`` and ``gate_2q`` are process fidelities of one native gate,
    modelled as a depolarizing channel; ``readout`` is the probability that a
    measured bit is reported correctly (symmetric bit flip).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate_1q: float = Field(gt=0.0, le=1.0)
    gate_2q: float = Field(gt=0.0, le=1.0)
    readout: float = Field(gt=0.0, le=1.0)


class GateTimes(BaseModel):
    """Duration of one native operation per class, in microseconds (>= 0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gate_1q_us: float = Field(default=0.05, ge=0.0)
    gate_2q_us: float = Field(default=0.3, ge=0.0)
    readout_us: float = Field(default=1.0, ge=0.0)


class QubitRange(BaseModel):
    """How many qubits one fragment on this node may act on: ``min <= width <= max``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(default=1, ge=1)
    max: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _ordered(self) -> QubitRange:
        if self.min > self.max:
            raise ValueError(f"qubit_range.min ({self.min}) exceeds qubit_range.max ({self.max})")
        return self


Availability = Literal["available", "busy", "draining"]

#: One coupled pair of a node's qubits, ``(a, b)``: its 2-qubit native gates act on ``a, b`` in that order.
QubitPair = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
#: Most pairs a coupling map may list: every ordered pair of 64 qubits.
MAX_COUPLING_PAIRS = 64 * 63


class ServiceAdvertisement(BaseModel):
    """One node's advertised capabilities (FR-001).

    Fields:
        node_id: the node's libp2p peer ID (base58), must equal the signer.
        service_type: kind of service; ``"qpu-simulator"`` for qb2 nodes.
        native_gates: the node's native gate set (Qiskit gate names), sorted.
        fidelity: per-gate-class fidelities, probabilities in (0, 1].
        qubit_range: fragment widths the node accepts.
        availability: ``available`` nodes receive new fragments.
        timestamp: publication time, seconds since the Unix epoch.
        sequence: per-node counter; a registry keeps the highest it has seen.
        protocol_version: ``MAJOR.MINOR.PATCH``; the major must match ours.
        addrs: multiaddrs the node listens on.
        executor: simulator backend, e.g. ``"aer"``.
        gate_times: native operation durations in microseconds.
        price: optional price per shot in arbitrary credits (>= 0).
        coupling_map: the qubit pairs the node's 2-qubit native gates act on
            (FR-016), or None for all-to-all connectivity (every synthetic
            node). Pairs are directed, ``[a, b]`` = the gates act on ``(a, b)``
            in that order; a node whose gates work both ways lists both
            ``[a, b]`` and ``[b, a]``. Routing ignores direction. Qubits are
            numbered ``0..qubit_range.max-1`` in the node's *placement order*:
            every qubit ``k > 0`` is coupled to a qubit ``< k``, and an
            ``m``-qubit fragment runs on qubits ``0..m-1`` (its ``j``-th
            smallest qubit on qubit ``j``), so the coordinator can predict
            the node's routing SWAPs (:mod:`qb2.compiler.routing`). Sorted on
            parsing. Added in protocol 1.2.0.
        join_token: the node's join token (:mod:`qb2.protocol.membership`,
            FR-019), issued by the coordinator for this ``node_id``; absent
            (None) when the node is admitted by ``p2p.allowed_peers`` or the
            mesh is open. Verified by the coordinator, not here. Added in
            protocol 1.3.0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str
    service_type: Literal["qpu-simulator"] = "qpu-simulator"
    native_gates: tuple[str, ...] = Field(min_length=1, max_length=64)
    fidelity: Fidelities
    qubit_range: QubitRange
    availability: Availability = "available"
    timestamp: float = Field(gt=0.0)
    sequence: int = Field(default=0, ge=0)
    protocol_version: str = PROTOCOL_VERSION
    addrs: tuple[str, ...] = ()
    executor: str = "aer"
    gate_times: GateTimes = GateTimes()
    price: float | None = Field(default=None, ge=0.0)
    name: str = Field(default="", max_length=64, description="Human-readable node label")
    coupling_map: tuple[QubitPair, ...] | None = Field(
        default=None, max_length=MAX_COUPLING_PAIRS,
        description="coupled qubit pairs (directed) in placement order; None = all-to-all",
    )
    join_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS,
                                   description="join token issued by the coordinator (FR-019)")

    @field_validator("node_id")
    @classmethod
    def _peer_id_shape(cls, value: str) -> str:
        if not PEER_ID_RE.match(value):
            raise ValueError("node_id is not a base58 libp2p peer ID")
        return value

    @field_validator("native_gates")
    @classmethod
    def _gate_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for gate in value:
            if not _GATE_NAME.match(gate):
                raise ValueError(f"native gate name {gate!r} is not a lowercase identifier")
        if len(set(value)) != len(value):
            raise ValueError("native_gates contains duplicates")
        return tuple(sorted(value))

    @field_validator("coupling_map")
    @classmethod
    def _coupling(cls, value: tuple[tuple[int, int], ...] | None,
                  info: ValidationInfo) -> tuple[tuple[int, int], ...] | None:
        if value is None:
            return None
        seen: set[tuple[int, int]] = set()
        for a, b in value:
            if a == b:
                raise ValueError(f"coupling_map pair [{a}, {b}] couples qubit {a} to itself")
            if (a, b) in seen:
                raise ValueError(f"coupling_map lists the pair [{a}, {b}] twice")
            seen.add((a, b))
        qubit_range = info.data.get("qubit_range")
        if qubit_range is None:  # qubit_range itself is invalid; that error is reported
            return tuple(sorted(value))
        width = qubit_range.max
        for a, b in value:
            if max(a, b) >= width:
                raise ValueError(
                    f"coupling_map pair [{a}, {b}] names qubit {max(a, b)} but qubit_range.max is {width} "
                    f"(qubits 0..{width - 1})"
                )
        has_lower = {max(a, b) for a, b in value}  # qubits coupled to a lower-numbered qubit
        for k in range(1, width):
            if k not in has_lower:
                lower = "qubit 0" if k == 1 else f"any of qubits 0..{k - 1}"
                raise ValueError(
                    f"coupling_map does not couple qubit {k} to {lower}; number the qubits "
                    "in placement order (each qubit coupled to a lower one, so qubits 0..m-1 are connected "
                    "for every m) and advertise only connected qubits"
                )
        return tuple(sorted(value))

    @field_validator("protocol_version")
    @classmethod
    def _compatible(cls, value: str) -> str:
        try:
            theirs = major(value)
        except ValueError:
            raise ValueError(f"protocol_version {value!r} is not MAJOR.MINOR.PATCH") from None
        if theirs != major(PROTOCOL_VERSION):
            raise ValueError(f"protocol_version {value} is incompatible with {PROTOCOL_VERSION}")
        return value


class AdvertisementRejected(ProtocolError, ValueError):
    """An advertisement failed validation; ``reason`` says why in one line.

    ``code`` is a short, fixed label for metrics: ``invalid`` (bad JSON or
    field), ``forged`` (``node_id`` is not the signer), or one the caller sets
    (the coordinator's admission: ``not_admitted``, ``token_<code>``).
    """

    def __init__(self, reason: str, code: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def parse_advertisement(data: bytes, signer_peer_id: str) -> ServiceAdvertisement:
    """Decode and validate one advertisement received on the advert topic.

    Args:
        data: the pubsub message payload (UTF-8 JSON).
        signer_peer_id: base58 peer ID of the libp2p peer that signed the message.

    Returns:
        The validated advertisement.

    Raises:
        AdvertisementRejected: the payload is not a valid advertisement, or its
            ``node_id`` differs from ``signer_peer_id``.
    """
    try:
        advert = ServiceAdvertisement.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise AdvertisementRejected(f"invalid field {where}: {first['msg']}") from None
    if advert.node_id != signer_peer_id:
        raise AdvertisementRejected(
            f"node_id {advert.node_id} is not the signing peer {signer_peer_id}", "forged"
        )
    return advert
