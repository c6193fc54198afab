"""Raw frame round trip over qb2's libp2p stack (Noise + yamux) on loopback: ``python -m qb2.experiments.bench_transport``.

Two in-process hosts built by :func:`qb2.daemon.host.make_host`; for each
payload size, a fresh stream per round trip carries one frame of that size to
an echo handler and back, through the same helpers the daemons use
(:func:`qb2.daemon.streams.request` and :func:`qb2.daemon.streams.respond`),
as an execute request carries a state to a node and the response carries it
back. Prints the median and P95 round trip in milliseconds over
``--repeats`` trips (after 5 warm-up trips).

Why it exists: the per-fragment orchestration overhead (NFR-003) grows with
the state moved; this separates the transport's share from the rest of the
runtime. The sizes default to the states qb2 sends: a 5-qubit density matrix
(16 KiB), 7 qubits (256 KiB), 8 qubits (1 MiB) and a 18-qubit statevector
(4 MiB).
"""

from __future__ import annotations

import argparse
import statistics
import time

import multiaddr
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.net_stream import INetStream
from libp2p.peer.peerinfo import info_from_p2p_addr
from pydantic import BaseModel

from qb2.daemon import streams
from qb2.daemon.host import make_host
from qb2.experiments.stats import percentile
from qb2.protocol.framing import read_frame

ECHO = TProtocol("/qb2-bench/echo/1.0.0")
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
MAX_PAYLOAD = 1 << 30  # bytes
TIMEOUT_S = 60.0  # one round trip, seconds


class _Header(BaseModel):
    size: int


async def _echo(stream: INetStream) -> None:
    _, payload = await read_frame(stream, _Header, max_payload=MAX_PAYLOAD)
    await streams.respond(stream, _Header(size=len(payload)), payload)


async def round_trips(size: int, repeats: int) -> list[float]:
    """``repeats`` round-trip times in seconds for a ``size``-byte payload each way."""
    client, server = make_host(create_new_key_pair()), make_host(create_new_key_pair())
    async with client.run(listen_addrs=[multiaddr.Multiaddr(LOOPBACK)]), \
            server.run(listen_addrs=[multiaddr.Multiaddr(LOOPBACK)]):
        server.set_stream_handler(ECHO, _echo)
        await client.connect(info_from_p2p_addr(server.get_addrs()[0]))
        server_id = server.get_id().to_base58()
        payload = bytes(size)
        times = []
        for _ in range(repeats + 5):
            start = time.perf_counter()
            _, back = await streams.request(client, server_id, ECHO, _Header(size=size), _Header, payload=payload,
                                            timeout_s=TIMEOUT_S, max_payload=MAX_PAYLOAD)
            times.append(time.perf_counter() - start)
            if len(back) != size:
                raise RuntimeError(f"echo returned {len(back)} bytes, sent {size}")
        return times[5:]


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, measure each size, print one line per size."""
    parser = argparse.ArgumentParser(prog="python -m qb2.experiments.bench_transport",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-kib", type=int, nargs="+", default=[1, 16, 256, 1024, 4096],
                        help="payload sizes in KiB, each way")
    parser.add_argument("--repeats", type=int, default=30, help="timed round trips per size")
    args = parser.parse_args(argv)
    for kib in args.sizes_kib:
        times = trio.run(round_trips, kib * 1024, args.repeats)
        print(f"{kib:>6} KiB each way: round trip P50 {statistics.median(times) * 1000:7.2f} ms   "
              f"P95 {percentile(times, 95) * 1000:7.2f} ms", flush=True)


if __name__ == "__main__":
    main()
