"""Wire contracts: advertisement validation (FR-001), frames and state payloads."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from qb2.protocol.advert import AdvertisementRejected, parse_advertisement
from qb2.protocol.execute import ExecuteRequest, GateOp
from qb2.protocol.framing import FrameError, encode_frame, read_frame
from qb2.protocol.state import pack_state, state_nbytes, unpack_state, zero_state
from tests.conftest import peer_id

NODE = peer_id("N")


def advert_dict(**changes: object) -> dict:
    base = {
        "node_id": NODE,
        "native_gates": ["sx", "rz", "cx", "x"],
        "fidelity": {"gate_1q": 0.999, "gate_2q": 0.99, "readout": 0.98},
        "qubit_range": {"min": 1, "max": 5},
        "timestamp": time.time(),
        "protocol_version": "1.0.0",
    }
    base.update(changes)
    return base


def test_valid_advertisement_round_trips_with_sorted_gates() -> None:
    advert = parse_advertisement(json.dumps(advert_dict()).encode(), NODE)
    assert advert.native_gates == ("cx", "rz", "sx", "x")
    assert parse_advertisement(advert.model_dump_json().encode(), NODE) == advert


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fidelity": {"gate_1q": 1.2, "gate_2q": 0.99, "readout": 0.98}}, "fidelity.gate_1q"),
        ({"fidelity": {"gate_1q": 0.0, "gate_2q": 0.99, "readout": 0.98}}, "fidelity.gate_1q"),
        ({"qubit_range": {"min": 6, "max": 5}}, "qubit_range"),
        ({"native_gates": []}, "native_gates"),
        ({"native_gates": ["CX!"]}, "native_gates"),
        ({"native_gates": ["cx", "cx"]}, "native_gates"),
        ({"protocol_version": "2.0.0"}, "protocol_version"),
        ({"protocol_version": "banana"}, "protocol_version"),
        ({"timestamp": -1}, "timestamp"),
        ({"node_id": "not a peer id"}, "node_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_advertisement_is_rejected_with_the_field(changes: dict, field: str) -> None:
    payload = advert_dict(**changes)
    with pytest.raises(AdvertisementRejected) as info:
        parse_advertisement(json.dumps(payload).encode(), payload.get("node_id", NODE))
    assert field in info.value.reason


LINE = [[0, 1], [1, 0], [1, 2], [2, 1], [2, 3], [3, 2], [3, 4], [4, 3]]


def test_coupling_map_round_trips_and_older_adverts_parse_without_it() -> None:
    """FR-016: the optional coupling map (protocol 1.2.0); adverts without it mean all-to-all."""
    advert = parse_advertisement(json.dumps(advert_dict(coupling_map=list(reversed(LINE)))).encode(), NODE)
    assert advert.coupling_map == tuple(tuple(p) for p in LINE)  # sorted
    assert parse_advertisement(advert.model_dump_json().encode(), NODE) == advert
    assert parse_advertisement(advert.model_dump_json(exclude_none=True).encode(), NODE) == advert
    older = parse_advertisement(json.dumps(advert_dict()).encode(), NODE)  # a 1.0.0 node: no field
    assert older.coupling_map is None
    # what nodes publish: a node without a map sends no coupling_map key, so 1.1 coordinators accept it
    assert "coupling_map" not in older.model_dump_json(exclude_none=True)
    directed = parse_advertisement(json.dumps(advert_dict(coupling_map=[[1, 0], [1, 2], [3, 1], [4, 2]])).encode(),
                                   NODE)
    assert directed.coupling_map == ((1, 0), (1, 2), (3, 1), (4, 2))
    single = advert_dict(coupling_map=[], qubit_range={"min": 1, "max": 1})
    assert parse_advertisement(json.dumps(single).encode(), NODE).coupling_map == ()


@pytest.mark.parametrize(
    ("coupling_map", "reason"),
    [
        ([[0, 1], [1, 1]], "couples qubit 1 to itself"),
        ([[0, 1], [1, 2], [0, 1]], "lists the pair [0, 1] twice"),
        ([[0, 1], [1, 2], [2, 3], [3, 5]], "names qubit 5 but qubit_range.max is 5 (qubits 0..4)"),
        ([[0, 1], [1, 2], [2, 3]], "does not couple qubit 4 to any of qubits 0..3"),
        ([[0, 1], [2, 3], [3, 4], [1, 2]][:3], "does not couple qubit 2 to any of qubits 0..1"),
        ([], "does not couple qubit 1 to qubit 0"),
        ([[0, -1]], "coupling_map.0.1"),
        ([[0, 1, 2]], "coupling_map.0"),
        ("0-1", "coupling_map"),
    ],
)
def test_invalid_coupling_maps_are_rejected_with_the_reason(coupling_map: object, reason: str) -> None:
    with pytest.raises(AdvertisementRejected) as info:
        parse_advertisement(json.dumps(advert_dict(coupling_map=coupling_map)).encode(), NODE)
    assert "invalid field coupling_map" in info.value.reason and reason in info.value.reason, info.value.reason


def test_advertisement_from_another_signer_is_rejected() -> None:
    with pytest.raises(AdvertisementRejected, match="not the signing peer"):
        parse_advertisement(json.dumps(advert_dict()).encode(), peer_id("Z"))


@pytest.mark.parametrize("garbage", [b"", b"not json", b"[]", b'{"node_id": 3}', b"\xff\xfe"])
def test_garbage_payloads_are_rejected_not_raised(garbage: bytes) -> None:
    with pytest.raises(AdvertisementRejected):
        parse_advertisement(garbage, NODE)


class _Pipe:
    """An in-memory byte stream that returns data in small, uneven chunks."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk = data, chunk

    async def read(self, n: int | None = None) -> bytes:
        take = min(self.chunk, n or self.chunk, len(self.data))
        out, self.data = self.data[:take], self.data[take:]
        return out

    async def write(self, data: bytes) -> None:
        self.data += data


@given(payload=st.binary(max_size=5000), chunk=st.integers(1, 700))
def test_frames_round_trip_whatever_the_read_chunking(payload: bytes, chunk: int) -> None:
    request = ExecuteRequest(job_id="j", fragment_id="f0", kind="gates", representation="statevector",
                             num_qubits=2, ops=(GateOp(name="cx", qubits=(0, 1)),))

    async def roundtrip() -> tuple[ExecuteRequest, bytes]:
        return await read_frame(_Pipe(encode_frame(request, payload), chunk), ExecuteRequest)

    header, body = trio.run(roundtrip)
    assert header == request and body == payload


async def test_truncated_and_oversized_frames_raise_frame_error() -> None:
    request = ExecuteRequest(job_id="j", fragment_id="f0", kind="readout", representation="statevector", num_qubits=1)
    frame = encode_frame(request, b"x" * 100)
    with pytest.raises(FrameError, match="unread"):
        await read_frame(_Pipe(frame[:-10], 64), ExecuteRequest)
    with pytest.raises(FrameError, match="exceeds"):
        await read_frame(_Pipe(frame, 64), ExecuteRequest, max_payload=50)
    with pytest.raises(FrameError, match="invalid ExecuteRequest"):
        await read_frame(_Pipe(encode_frame(GateOp(name="h", qubits=(0,))), 64), ExecuteRequest)


@pytest.mark.parametrize("representation", ["statevector", "density_matrix"])
def test_state_payload_round_trip_and_size_check(representation: str) -> None:
    rng = np.random.default_rng(3)
    state = zero_state(representation, 3) + 1j * rng.normal(size=zero_state(representation, 3).shape)
    payload = pack_state(state)
    assert len(payload) == state_nbytes(representation, 3)
    assert np.array_equal(unpack_state(payload, representation, 3), state)
    with pytest.raises(ValueError, match="needs"):
        unpack_state(payload[:-16], representation, 3)


def test_transport_benchmark_round_trips_whole_frames_over_noise_and_yamux() -> None:
    """qb2.experiments.bench_transport (NFR-003 evidence) moves every byte both ways over a real libp2p stack."""
    import trio

    from qb2.experiments.bench_transport import round_trips

    times = trio.run(round_trips, 300_000, 3)  # > yamux's 256 KiB initial window: window updates must flow
    assert len(times) == 3 and all(t > 0 for t in times)


async def test_stream_request_round_trip_timeout_and_reset_on_real_hosts() -> None:
    """qb2.daemon.streams over two loopback hosts (Noise + yamux): an answer; a silent peer (TooSlowError, and the
    stream is reset, so the server's read ends); a peer that resets (FrameError); the coordinator's error mapping."""
    import multiaddr
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from qb2.coordinator.p2p import CoordinatorNetwork, InvocationError
    from qb2.coordinator.registry import Registry
    from qb2.daemon import streams
    from qb2.daemon.host import make_host

    echo, silent, rude = "/qb2-test/echo/1", "/qb2-test/silent/1", "/qb2-test/rude/1"
    request = ExecuteRequest(job_id="j", fragment_id="f0", kind="readout", representation="statevector", num_qubits=1)
    silent_ended = trio.Event()

    async def serve_echo(stream) -> None:  # type: ignore[no-untyped-def]
        header, payload = await read_frame(stream, ExecuteRequest)
        await streams.respond(stream, header, payload[::-1])

    async def serve_silent(stream) -> None:  # type: ignore[no-untyped-def]
        await read_frame(stream, ExecuteRequest)
        with pytest.raises(FrameError):  # the requester's reset ends the wait for more
            await read_frame(stream, ExecuteRequest)
        silent_ended.set()

    async def serve_rude(stream) -> None:  # type: ignore[no-untyped-def]
        await read_frame(stream, ExecuteRequest)
        await streams.reset(stream)

    client, server = make_host(create_new_key_pair()), make_host(create_new_key_pair())
    loopback = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with client.run(listen_addrs=loopback), server.run(listen_addrs=loopback):
        for protocol, handler in ((echo, serve_echo), (silent, serve_silent), (rude, serve_rude)):
            server.set_stream_handler(TProtocol(protocol), handler)
        await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
        peer = server.get_id().to_base58()
        with trio.fail_after(20):
            header, back = await streams.request(client, peer, echo, request, ExecuteRequest, payload=b"abc",
                                                 timeout_s=5, max_payload=3)
            assert header == request and back == b"cba"
            with pytest.raises(FrameError, match="exceeds the 2-byte limit"):
                await streams.request(client, peer, echo, request, ExecuteRequest, payload=b"abc",
                                      timeout_s=5, max_payload=2)
            with pytest.raises(trio.TooSlowError):
                await streams.request(client, peer, silent, request, ExecuteRequest, timeout_s=0.3)
            await silent_ended.wait()
            with pytest.raises(FrameError, match="unread"):
                await streams.request(client, peer, rude, request, ExecuteRequest, timeout_s=5)

            network = CoordinatorNetwork(client, None, Registry(ttl_s=60), max_frame_bytes=2)  # type: ignore[arg-type]
            with pytest.raises(InvocationError, match=f"did not answer {silent} within 0.3 s"):
                await network.request(peer, silent, request, ExecuteRequest, timeout_s=0.3)
            with pytest.raises(InvocationError, match="unreachable: FrameError: stream closed"):
                await network.request(peer, rude, request, ExecuteRequest, timeout_s=5)
            assert (await network.request(peer, echo, request, ExecuteRequest, timeout_s=5)) == request
