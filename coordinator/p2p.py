"""The coordinator's libp2p side: advertisement intake and fragment invocation.

Advertisements arrive on :data:`qb2.protocol.ids.ADVERT_TOPIC`; pubsub has already
checked the message signature (strict signing; unsigned or badly signed
messages are reported through :meth:`CoordinatorNetwork.note_unverified`),
:func:`qb2.protocol.advert.parse_advertisement` checks that the advertised
``node_id`` is the signer, and :meth:`CoordinatorNetwork.admission` decides
membership (FR-019): in ``closed`` mode only peers in ``p2p.allowed_peers``
or presenting a valid join token are registered. Invocations open one stream per request over the
long-lived connection that the node dialled (connecting costs ~250 ms; a
stream costs one round trip).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub.pubsub import Pubsub
from pydantic import BaseModel

from qb2.coordinator.errors import CoordinatorError
from qb2.coordinator.registry import Registry
from qb2.daemon import streams
from qb2.daemon.logfmt import RateLimitedLog
from qb2.protocol.advert import AdvertisementRejected, ServiceAdvertisement, parse_advertisement
from qb2.protocol.execute import ExecuteRequest, ExecuteResponse
from qb2.protocol.ids import ADVERT_TOPIC, EXECUTE_PROTOCOL_ID
from qb2.protocol.membership import JoinTokenError, Membership, verify_join_token

log = logging.getLogger("qb2.coordinator.p2p")

M = TypeVar("M", bound=BaseModel)


#: Fields that change with every advertisement; equal otherwise means "no capability change".
_VOLATILE = {"timestamp": 1.0, "sequence": 0}


class InvocationError(CoordinatorError):
    """A node could not be reached or sent back no valid response."""


class CoordinatorNetwork:
    """The coordinator's libp2p host, its pubsub service and the registry it feeds."""

    def __init__(self, host: IHost, pubsub: Pubsub, registry: Registry, max_frame_bytes: int,
                 allowed_peers: frozenset[str] = frozenset(), on_advert: Callable[[ServiceAdvertisement], Awaitable[None]] | None = None,
                 *, membership: Membership = "closed", on_reject: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.pubsub = pubsub
        self.registry = registry
        self.max_frame_bytes = max_frame_bytes
        self.allowed_peers = allowed_peers
        self.on_advert = on_advert
        #: ``closed`` (admit allowed_peers and join tokens) or ``open`` (admit any signer), FR-019
        self.membership = membership
        #: called with the reason code of every refused advertisement (the metric)
        self.on_reject = on_reject
        self.peer_id = host.get_id().to_base58()
        self._refusals = RateLimitedLog(log)

    def admission(self, advert: ServiceAdvertisement) -> None:
        """Raise unless the signer of ``advert`` (already checked: ``node_id``) is a member (FR-019).

        Open mode admits every signer; closed mode a peer in ``p2p.allowed_peers``
        or one whose ``join_token`` verifies under this coordinator's key for
        exactly ``advert.node_id`` and has not expired.

        Raises:
            AdvertisementRejected: code ``not_admitted`` (no allowlist entry, no
                token) or ``token_<code>`` (see :class:`qb2.protocol.membership.JoinTokenError`).
        """
        if self.membership == "open" or advert.node_id in self.allowed_peers:
            return
        if advert.join_token is None:
            raise AdvertisementRejected(
                f"peer {advert.node_id} is not admitted: not in p2p.allowed_peers and no join token "
                "(issue one with `qb2 join-token --peer-id PEER`)", "not_admitted")
        try:
            verify_join_token(advert.join_token, self.host.get_public_key(), advert.node_id)
        except JoinTokenError as exc:
            raise AdvertisementRejected(f"peer {advert.node_id} is not admitted: {exc.reason}",
                                        f"token_{exc.code}") from None

    def reject(self, peer_id: str, code: str, reason: str, **extra: object) -> None:
        """Count one refused advertisement (``registry.rejected``, ``on_reject(code)``) and log it, rate-limited
        per peer and code: the first at WARNING, then at most one line a minute (with a ``suppressed`` count)."""
        self.registry.rejected += 1
        if self.on_reject is not None:
            self.on_reject(code)
        self._refusals.warning((peer_id, code), "advertisement rejected",
                               {"peer_id": peer_id, "code": code, "reason": reason, **extra})

    def note_unverified(self, forwarder: str, author: str, topics: list[str], reason: str) -> None:
        """Pubsub hook (:func:`qb2.daemon.host.make_pubsub`): an advertisement without a valid signature."""
        if ADVERT_TOPIC in topics:
            self.reject(forwarder, reason, f"message on {ADVERT_TOPIC} is {reason.replace('_', ' ')}; "
                        "strict signing drops it", author=author)

    async def ingest_advertisements(self) -> None:
        """Consume the advert topic forever, feeding valid advertisements to the registry.

        The subscription queue holds 32 messages and drops the rest, so this
        loop does nothing slow.
        """
        subscription = await self.pubsub.subscribe(ADVERT_TOPIC)
        while True:
            message = await subscription.get()
            signer = ID(message.from_id).to_base58()
            try:
                advert = parse_advertisement(message.data, signer)
                self.admission(advert)
            except AdvertisementRejected as exc:
                self.reject(signer, exc.code, exc.reason)
                continue
            previous = self.registry.get(advert.node_id)
            before = previous.advert if previous else None
            if not self.registry.observe(advert):
                continue
            if before is None or before.model_copy(update=_VOLATILE) != advert.model_copy(update=_VOLATILE):
                log.info(
                    "node capabilities" if before else "node discovered",
                    extra={"peer_id": advert.node_id, "node_name": advert.name, "qubits": advert.qubit_range.max},
                )
                if self.on_advert is not None:
                    await self.on_advert(advert)

    async def invoke(
        self, node_id: str, request: ExecuteRequest, payload: bytes, timeout_s: float
    ) -> tuple[ExecuteResponse, bytes, float]:
        """Send one fragment to ``node_id`` and wait for its response.

        Returns:
            ``(response header, response payload, round-trip seconds)``; the
            round trip includes opening and closing the stream.

        Raises:
            InvocationError: no connection, stream failure, malformed response,
                or no answer within ``timeout_s`` seconds.
        """
        started = time.perf_counter()
        header, out = await self._exchange(node_id, EXECUTE_PROTOCOL_ID, request, ExecuteResponse, payload=payload,
                                           timeout_s=timeout_s, max_payload=self.max_frame_bytes, what="")
        return header, out, time.perf_counter() - started

    async def request(self, node_id: str, protocol_id: str, request: BaseModel, response_model: type[M],
                      timeout_s: float) -> M:
        """One JSON frame to ``node_id`` on ``protocol_id`` and one back (reservations, control).

        Raises:
            InvocationError: unreachable, malformed answer, or no answer within ``timeout_s``.
        """
        header, _ = await self._exchange(node_id, protocol_id, request, response_model, payload=b"",
                                         timeout_s=timeout_s, max_payload=0, what=f"{protocol_id} ")
        return header

    async def _exchange(self, node_id: str, protocol_id: str, request: BaseModel, response_model: type[M], *,
                        payload: bytes, timeout_s: float, max_payload: int, what: str) -> tuple[M, bytes]:
        """:func:`qb2.daemon.streams.request`, its errors raised as :class:`InvocationError`
        (``what`` names the request in the timeout message); cancellation propagates."""
        try:
            return await streams.request(self.host, node_id, protocol_id, request, response_model, payload=payload,
                                         timeout_s=timeout_s, max_payload=max_payload)
        except trio.TooSlowError:
            raise InvocationError(f"node {node_id} did not answer {what}within {timeout_s} s") from None
        except Exception as exc:
            raise InvocationError(f"node {node_id} unreachable: {type(exc).__name__}: {exc}") from exc
