"""One request/response exchange over a libp2p stream: the client side (:func:`request`) and the server side (:func:`respond`).

Every qb2 stream protocol (:data:`qb2.protocol.ids.EXECUTE_PROTOCOL_ID`,
``RESERVE_PROTOCOL_ID``, ``CONTROL_PROTOCOL_ID``) is one frame each way
(:mod:`qb2.protocol.framing`: a JSON header and a binary payload) on a fresh
stream over the long-lived connection, then both sides close. A stream that
failed is reset, not closed, so the muxer frees it and drops any late reply.

Callers map the errors to their own (the coordinator's
:class:`qb2.coordinator.p2p.InvocationError`; the fault client raises them as
they are).

Cancellation: a libp2p write is not cancel-safe. Cancelling a task in the
middle of writing a Noise frame leaves half a frame on the shared connection
and breaks every stream on it. These helpers do not protect against that, and
the ``timeout_s`` of :func:`request` is itself a cancellation (it may fire
while the request is being written): callers must not cancel a request while
it is in flight (run it outside scopes that may be cancelled). What the helpers
do is run the reset that follows a failure or a cancellation shielded, so that
the reset is not itself cut off mid-write.
"""

from __future__ import annotations

import logging
from typing import TypeVar

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from pydantic import BaseModel

from qb2.protocol.framing import DEFAULT_MAX_HEADER, read_frame, write_frame

__all__ = ["close", "request", "reset", "respond"]

log = logging.getLogger("qb2.daemon.streams")

M = TypeVar("M", bound=BaseModel)

#: How long closing or resetting a stream may take, in seconds.
_TEARDOWN_S = 1.0


async def request(
    host: IHost,
    peer_id: str,
    protocol_id: str,
    header: BaseModel,
    response_model: type[M],
    *,
    payload: bytes = b"",
    timeout_s: float,
    max_payload: int = 0,
    max_header: int = DEFAULT_MAX_HEADER,
) -> tuple[M, bytes]:
    """Open a stream to ``peer_id`` for ``protocol_id``, send one frame, read one frame back, close.

    The host must already be connected to the peer (or know its addresses).

    Args:
        host: the local libp2p host.
        peer_id: the base58 peer ID of the receiver.
        protocol_id: the stream protocol, e.g. :data:`qb2.protocol.ids.EXECUTE_PROTOCOL_ID`.
        header: the request header (sent as JSON, ``None`` fields left out).
        response_model: the model the response header must validate as.
        payload: the request's binary payload, in bytes (empty: none).
        timeout_s: bound, in seconds, on opening the stream, writing the
            request and reading the whole response. Closing afterwards is
            bounded separately (1 s) and never fails the exchange.
        max_payload: largest response payload accepted, in bytes (0: none).
        max_header: largest response header accepted, in bytes.

    Returns:
        ``(response header, response payload)``.

    Raises:
        trio.TooSlowError: no complete response within ``timeout_s`` seconds.
        qb2.protocol.framing.FrameError: the stream ended or was reset before a
            complete response, or the response is oversized or does not
            validate as ``response_model``.
        Exception: whatever libp2p raises when it cannot open the stream or
            write to it (e.g. ``StreamClosed``, ``StreamReset``; a ``ValueError``
            for a malformed ``peer_id``).

    On any error, and on cancellation, the stream (once open) is reset before
    the exception propagates, shielded from the cancellation and bounded to
    1 s: it frees the stream on both sides and discards a reply that arrives
    late. Callers must not cancel a request mid-write (see the module docstring).
    """
    with trio.fail_after(timeout_s):
        stream = await host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol_id)])
        try:
            await write_frame(stream, header, payload)
            response = await read_frame(stream, response_model, max_header=max_header, max_payload=max_payload)
        except BaseException:  # cancellation too: free the stream, then let it propagate
            await reset(stream)
            raise
    await close(stream)
    return response


async def respond(
    stream: INetStream,
    header: BaseModel,
    payload: bytes = b"",
    *,
    timeout_s: float = 60.0,
    logger: logging.Logger = log,
) -> None:
    """Server side: write the response frame on ``stream`` and close it.

    The requester going away, or the frame not going out within ``timeout_s``,
    is logged at WARNING on ``logger`` and the stream is reset; nothing is
    raised but cancellation.

    Args:
        timeout_s: bound on writing the frame and closing, in seconds.
        logger: where a failure is logged (the daemon's own logger).
    """
    try:
        with trio.fail_after(timeout_s):
            await write_frame(stream, header, payload)
            await stream.close()
    except Exception as exc:  # the requester went away; free the stream
        logger.warning("could not send response", extra={"response": type(header).__name__, "reason": repr(exc)})
        await reset(stream)


async def reset(stream: INetStream) -> None:
    """Reset ``stream``, even while the caller is being cancelled (shielded, bounded to 1 s).

    Never raises: a stream that is already gone is logged at DEBUG.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(_TEARDOWN_S):
        try:
            await stream.reset()
        except Exception as exc:  # already gone
            log.debug("stream reset failed", extra={"reason": repr(exc)})


async def close(stream: INetStream) -> None:
    """Close ``stream`` after a complete exchange, bounded to 1 s.

    Never raises: the response is already in hand, so a peer that closed or
    reset first is logged at DEBUG. Cancellation propagates.
    """
    with trio.move_on_after(_TEARDOWN_S):
        try:
            await stream.close()
        except Exception as exc:  # the peer closed first
            log.debug("stream close failed", extra={"reason": repr(exc)})
