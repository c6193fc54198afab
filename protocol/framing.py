"""Length-prefixed frames on a libp2p stream: a JSON header and a binary payload.

Layout of one frame (all integers big-endian, unsigned)::

    u32 header_length | header (UTF-8 JSON) | u64 payload_length | payload

The reader enforces ``max_header`` and ``max_payload`` before allocating, so a
peer cannot make us buffer more than the configured limits.

One request/response exchange around these frames (open the stream, bound it
in time, reset it on failure, close it) is :mod:`qb2.daemon.streams`.
"""

from __future__ import annotations

import struct
from typing import Protocol, TypeVar

from pydantic import BaseModel

from qb2.protocol.errors import ProtocolError

M = TypeVar("M", bound=BaseModel)

DEFAULT_MAX_HEADER = 4 * 1024 * 1024  # bytes
DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024  # bytes: a 12-qubit density matrix is 256 MiB


class ByteStream(Protocol):
    """What framing needs of a stream: libp2p's ``INetStream`` satisfies it."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class FrameError(ProtocolError):
    """The peer sent a malformed or oversized frame, or closed mid-frame."""


def encode_frame(header: BaseModel, payload: bytes = b"") -> bytes:
    """Encode ``header`` (as JSON) and ``payload`` into one frame."""
    head = header.model_dump_json(exclude_none=True).encode()  # older peers never see new optional fields
    return struct.pack(">I", len(head)) + head + struct.pack(">Q", len(payload)) + payload


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Read exactly ``n`` bytes.

    Raises:
        FrameError: the stream ended first (libp2p raises ``StreamEOF``, or a read returns b"").
    """
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        try:
            chunk = await stream.read(min(remaining, 1 << 20))
        except Exception as exc:  # StreamEOF / StreamReset from libp2p
            raise FrameError(f"stream closed with {remaining} of {n} bytes unread: {exc!r}") from exc
        if not chunk:
            raise FrameError(f"stream closed with {remaining} of {n} bytes unread")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


async def read_frame(
    stream: ByteStream,
    header_model: type[M],
    *,
    max_header: int = DEFAULT_MAX_HEADER,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> tuple[M, bytes]:
    """Read one frame and validate its header as ``header_model``.

    Raises:
        FrameError: truncated frame, a length over the limits, or a header
            that does not validate.
    """
    (head_len,) = struct.unpack(">I", await read_exactly(stream, 4))
    if head_len > max_header:
        raise FrameError(f"header of {head_len} bytes exceeds the {max_header}-byte limit")
    head = await read_exactly(stream, head_len)
    (payload_len,) = struct.unpack(">Q", await read_exactly(stream, 8))
    if payload_len > max_payload:
        raise FrameError(f"payload of {payload_len} bytes exceeds the {max_payload}-byte limit")
    payload = await read_exactly(stream, payload_len) if payload_len else b""
    try:
        header = header_model.model_validate_json(head)
    except ValueError as exc:
        raise FrameError(f"invalid {header_model.__name__} header: {exc}") from exc
    return header, payload


async def write_frame(stream: ByteStream, header: BaseModel, payload: bytes = b"") -> None:
    """Write one frame (see :func:`encode_frame`)."""
    await stream.write(encode_frame(header, payload))
