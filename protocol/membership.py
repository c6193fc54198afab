"""Membership (FR-019, FR-014): which peers a coordinator admits, and join tokens.

A *join token* is a statement signed by a coordinator's libp2p identity key:
"peer ``peer_id`` may join coordinator ``coordinator`` until ``expires_at``".
The operator issues one per node (``qb2 join-token --peer-id PEER``), the node
presents it in every advertisement (``ServiceAdvertisement.join_token``), and
the coordinator admits the signer only if the token verifies under its *own*
key, names it, names exactly the signer and has not expired
(:func:`verify_join_token`). Tokens are bearer-proof only together with the
node's key: a copied token is useless to any other peer, because the
advertisement that carries it must be signed by the named peer.

Wire form (compact, URL- and shell-safe)::

    qb2jt1.<base64url(payload)>.<base64url(signature)>

``payload`` is canonical JSON (sorted keys, no spaces) of :class:`JoinToken`;
``signature`` is the Ed25519 signature (``PrivateKey.sign``) of
:data:`SIGNING_DOMAIN` + ``payload``. The domain prefix keeps a token
signature from ever being valid as a pubsub or Noise signature and vice versa.

Nothing here imports from the daemons.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qb2.protocol.errors import ProtocolError
from qb2.protocol.ids import PEER_ID_RE

if TYPE_CHECKING:  # libp2p is imported where keys are used, so settings can import this module cheaply
    from libp2p.crypto.keys import KeyPair, PublicKey

#: Prefix (and format version) of every join token's text form.
TOKEN_PREFIX: Final = "qb2jt1"
#: Bytes signed before the payload (domain separation from other uses of the identity key).
SIGNING_DOMAIN: Final = b"qb2/join-token/1\n"
#: Longest accepted token text, in characters (a real one is about 300).
MAX_TOKEN_CHARS: Final = 1024
#: Default token lifetime of ``qb2 join-token``, in seconds (30 days).
DEFAULT_TTL_S: Final = 30 * 86400

Membership = Literal["closed", "open"]

#: Why a token was refused; ``JoinTokenError.code`` is one of these (metric label ``token_<code>``).
TokenErrorCode = Literal["malformed", "bad_signature", "other_coordinator", "other_peer", "expired"]


class JoinToken(BaseModel):
    """The signed statement of a join token.

    Fields:
        coordinator: base58 peer ID of the issuing coordinator (whose key signed).
        peer_id: base58 peer ID of the node admitted by the token.
        issued_at: issue time, integer seconds since the Unix epoch.
        expires_at: end of validity, integer seconds since the Unix epoch
            (the token is refused from this second on).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    coordinator: str = Field(pattern=PEER_ID_RE.pattern)
    peer_id: str = Field(pattern=PEER_ID_RE.pattern)
    issued_at: int = Field(ge=0)
    expires_at: int = Field(ge=0)

    def payload(self) -> bytes:
        """Canonical JSON bytes of the statement (sorted keys, no whitespace): what is signed."""
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":")).encode()


class JoinTokenError(ProtocolError, ValueError):
    """A join token was refused. ``code`` is a :data:`TokenErrorCode`; ``reason`` one line for logs."""

    def __init__(self, code: TokenErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def peer_id_of(key_pair: KeyPair) -> str:
    """Base58 peer ID of ``key_pair`` (the form used in multiaddrs and logs)."""
    from libp2p.peer.id import ID

    return ID.from_pubkey(key_pair.public_key).to_base58()


def issue_join_token(coordinator_key: KeyPair, peer_id: str, ttl_s: float = DEFAULT_TTL_S, *,
                     now: float | None = None) -> str:
    """Sign a join token admitting ``peer_id`` to the coordinator whose identity is ``coordinator_key``.

    Args:
        coordinator_key: the coordinator's libp2p identity key pair (``data_dir/coordinator/identity.key``).
        peer_id: base58 peer ID of the node to admit (``qb2 node --print-peer-id``).
        ttl_s: validity in seconds from ``now``, > 0 (rounded up to whole seconds).
        now: issue time in Unix seconds (default: the current time).

    Returns:
        The token text, ``qb2jt1.<payload>.<signature>`` (about 300 ASCII characters).

    Raises:
        ValueError: ``peer_id`` is not a base58 peer ID, or ``ttl_s <= 0``.
    """
    if not PEER_ID_RE.match(peer_id):
        raise ValueError(f"{peer_id!r} is not a base58 libp2p peer ID")
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be > 0 seconds, got {ttl_s}")
    issued = int(time.time() if now is None else now)
    statement = JoinToken(coordinator=peer_id_of(coordinator_key), peer_id=peer_id, issued_at=issued,
                          expires_at=issued + max(1, math.ceil(ttl_s)))
    payload = statement.payload()
    signature = coordinator_key.private_key.sign(SIGNING_DOMAIN + payload)
    return f"{TOKEN_PREFIX}.{_b64(payload)}.{_b64(signature)}"


def decode_join_token(token: str) -> tuple[JoinToken, bytes, bytes]:
    """Split and parse a token's text *without* checking its signature or validity.

    Returns:
        ``(statement, signed payload bytes, signature bytes)``.

    Raises:
        JoinTokenError: code ``malformed`` (wrong prefix or shape, bad base64, bad JSON or fields, too long).
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise JoinTokenError("malformed", f"join token is longer than {MAX_TOKEN_CHARS} characters")
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise JoinTokenError("malformed", f"join token is not of the form {TOKEN_PREFIX}.<payload>.<signature>")
    try:
        payload, signature = _unb64(parts[1]), _unb64(parts[2])
        statement = JoinToken.model_validate_json(payload)
    except (binascii.Error, ValueError, ValidationError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise JoinTokenError("malformed", f"join token cannot be decoded: {first}") from None
    return statement, payload, signature


def _check_signature(key: PublicKey, payload: bytes, signature: bytes) -> None:
    try:
        valid = key.verify(SIGNING_DOMAIN + payload, signature)
    except Exception:  # wrong signature length and the like
        valid = False
    if not valid:
        raise JoinTokenError("bad_signature", "join token signature does not verify under the coordinator's key")


def verify_join_token(token: str, coordinator_key: PublicKey, peer_id: str, *, now: float | None = None) -> JoinToken:
    """Admission check of a coordinator: is ``token`` a valid token of *this* coordinator for ``peer_id``?

    Args:
        token: the token text presented by the node.
        coordinator_key: this coordinator's own public identity key.
        peer_id: base58 peer ID of the peer presenting the token (the advertisement's signer).
        now: Unix seconds to check expiry against (default: the current time).

    Returns:
        The verified statement.

    Raises:
        JoinTokenError: ``malformed``; ``other_coordinator`` (issued by another
            coordinator); ``bad_signature`` (not signed by ``coordinator_key``);
            ``other_peer`` (issued for another peer ID); ``expired``.
    """
    from libp2p.peer.id import ID

    statement, payload, signature = decode_join_token(token)
    own = ID.from_pubkey(coordinator_key).to_base58()
    if statement.coordinator != own:
        raise JoinTokenError("other_coordinator", f"join token was issued by coordinator {statement.coordinator}, "
                                                  f"not this one ({own})")
    _check_signature(coordinator_key, payload, signature)
    if statement.peer_id != peer_id:
        raise JoinTokenError("other_peer", f"join token admits peer {statement.peer_id}, not {peer_id}")
    current = time.time() if now is None else now
    if current >= statement.expires_at:
        raise JoinTokenError("expired", f"join token expired at {statement.expires_at} (now {int(current)})")
    return statement


def check_own_join_token(token: str, peer_id: str, *, now: float | None = None) -> JoinToken:
    """A node's start-up check of the token it was given: for it, signed by the coordinator it names, not expired.

    The coordinator's public key is taken from its peer ID (Ed25519 peer IDs
    embed the key), so a node can check its token before it has dialled.

    Returns:
        The statement; ``statement.coordinator`` is the peer the node will serve.

    Raises:
        JoinTokenError: as :func:`verify_join_token`; ``bad_signature`` also when
            the named coordinator's peer ID does not embed its key.
    """
    from libp2p.peer.id import ID

    statement, payload, signature = decode_join_token(token)
    try:
        key = ID.from_base58(statement.coordinator).extract_public_key()
    except Exception:  # not a valid multihash
        key = None
    if key is None:
        raise JoinTokenError("bad_signature", f"coordinator peer ID {statement.coordinator} does not embed a public key")
    return verify_join_token(token, key, peer_id, now=now)


def bootstrap_peer_ids(multiaddrs: list[str]) -> set[str]:
    """Peer IDs named by ``/p2p/<peer id>`` in ``multiaddrs`` (entries without one are skipped)."""
    found: set[str] = set()
    for addr in multiaddrs:
        parts = addr.rstrip("/").split("/")
        for key, value in zip(parts, parts[1:]):
            if key in ("p2p", "ipfs") and PEER_ID_RE.match(value):
                found.add(value)
    return found
