"""The libp2p stack both daemons speak: Noise only, yamux, GossipSub v1.1.

Both daemons build their host here; the choices fixed here are part of the
wire contract (DESIGN.md, measured facts):

- security is Noise only; py-libp2p's default also accepts ``/plaintext/2.0.0``;
- the muxer is yamux only;
- GossipSub's heartbeat is 1 s (go-libp2p's default; py-libp2p defaults to 120 s),
  adaptive gossip is off (it raises the heartbeat to 60 s on tiny meshes),
  and per-topic spam protection is off: it drops bursts of more than
  10 messages/s, our own publishes included;
- messages are signed (strict signing), so the receiver knows the author.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import signature_validator
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

_SEED_BYTES = 32


def load_or_create_identity(path: Path | None) -> KeyPair:
    """Ed25519 identity kept in ``path`` (a 32-byte seed), so the peer ID survives restarts.

    With ``path=None`` a fresh, unsaved identity is made. The file is created
    with mode 0600.

    Raises:
        ValueError: the file exists but does not hold a 32-byte seed.
    """
    if path is None:
        return ed25519_key_pair()
    if path.exists():
        seed = path.read_bytes()
        if len(seed) != _SEED_BYTES:
            raise ValueError(f"identity file {path} holds {len(seed)} bytes, expected {_SEED_BYTES}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = os.urandom(_SEED_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(seed)
    return ed25519_key_pair(seed)


def make_host(key_pair: KeyPair) -> IHost:
    """A libp2p host restricted to Noise security and yamux multiplexing."""
    noise = NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)
    return new_host(
        key_pair=key_pair,
        sec_opt={NOISE_PROTOCOL_ID: noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
    )


#: ``on_unverified(forwarder, author, topics, reason)``: peer that sent it, peer it claims as author
#: (both base58), its topics, and ``"unsigned"`` or ``"bad_signature"``.
UnverifiedHook = Callable[[str, str, list[str], str], None]


class _ReportingPubsub(Pubsub):
    """Pubsub that reports each message it drops for a missing or invalid signature.

    py-libp2p drops such messages under strict signing with a DEBUG line only;
    the coordinator counts and logs them (FR-019). The check repeats the
    library's own (``signature_validator``) before handing over to it.
    """

    def __init__(self, *args: object, on_unverified: UnverifiedHook, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._on_unverified = on_unverified

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if self.strict_signing and not signature_validator(msg):
            try:
                author = ID(msg.from_id).to_base58()
            except Exception:  # arbitrary bytes
                author = msg.from_id.hex()
            self._on_unverified(msg_forwarder.to_base58(), author, list(msg.topicIDs),
                                "unsigned" if not msg.signature else "bad_signature")
            return
        await super().push_msg(msg_forwarder, msg)


def make_pubsub(host: IHost, heartbeat_s: float = 1.0, *,
                on_unverified: UnverifiedHook | None = None) -> tuple[Pubsub, GossipSub]:
    """GossipSub router and Pubsub service for ``host``.

    Create both before the host connects to any peer: the Pubsub constructor
    registers the stream handlers that existing connections would otherwise miss.
    Start each with ``libp2p.tools.anyio_service.background_trio_service``.

    Args:
        heartbeat_s: GossipSub heartbeat interval in seconds (rounded to whole seconds, at least 1).
        on_unverified: called (synchronously; keep it cheap) for every received
            message dropped because it is unsigned or badly signed; see :data:`UnverifiedHook`.
    """
    router = GossipSub(
        protocols=[PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=max(1, round(heartbeat_s)),
        heartbeat_initial_delay=0.1,
        adaptive_gossip_enabled=False,
        spam_protection_enabled=False,
        # On one machine every peer shares 127.0.0.1; IP-diversity pruning would
        # starve the mesh. Eclipse attacks are out of scope (DESIGN.md).
        eclipse_protection_enabled=False,
    )
    if on_unverified is None:
        pubsub = Pubsub(host, router, strict_signing=True)
    else:
        pubsub = _ReportingPubsub(host, router, strict_signing=True, on_unverified=on_unverified)
    return pubsub, router
