"""Network settings both daemons read from the same config file (FR-001, FR-002, FR-011).

Both daemons load them, so they live in :mod:`qb2.daemon`, below both; coordinator
and nodes must agree on them: a registry TTL shorter than the advertisement
interval would flap every node.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from qb2.protocol.membership import MAX_TOKEN_CHARS, Membership


class P2PSettings(BaseModel):
    """libp2p host. ``listen`` is a multiaddr; TCP port 0 picks a free port.

    ``bootstrap`` lists multiaddrs ending in ``/p2p/<peer id>`` to dial at
    start-up: that is how nodes on other machines join a coordinator.
    ``max_frame_mib`` caps one execution frame (state payload) in MiB;
    ``frame_timeout_s`` bounds how long a node waits for a request frame.
    ``allowed_peers``: peer IDs admitted explicitly: the coordinator registers
    their advertisements and a node serves their execute / reserve / control
    requests (FR-014, FR-019), in addition to the peers admitted below.
    ``membership`` (FR-019): ``"closed"`` (default) admits, at the coordinator,
    only ``allowed_peers`` and nodes presenting a valid join token
    (:mod:`qb2.protocol.membership`), and, at a node, only its coordinators: the
    ``/p2p/`` peers of ``bootstrap``, the coordinator named in ``join_token``
    and ``allowed_peers``. ``"open"`` admits any peer (an open mesh; both
    daemons log a WARNING at start-up).
    ``join_token``: a node's token from ``qb2 join-token`` (``--join-token``).
    """

    model_config = ConfigDict(extra="forbid")

    listen: str = "/ip4/127.0.0.1/tcp/0"
    bootstrap: list[str] = Field(default_factory=list)
    max_frame_mib: int = Field(default=256, ge=1, le=4096)
    frame_timeout_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    allowed_peers: list[str] = Field(default_factory=list)
    membership: Membership = "closed"
    join_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)


class DiscoverySettings(BaseModel):
    """Advertisement and registry timing, in seconds.

    A node re-advertises every ``advert_interval_s`` (and at once when its
    capabilities change); the coordinator marks a node unavailable when its
    latest advertisement is older than ``registry_ttl_s``.
    """

    model_config = ConfigDict(extra="forbid")

    advert_interval_s: float = Field(default=2.0, gt=0.0, le=3600.0)
    registry_ttl_s: float = Field(default=10.0, gt=0.0, le=86400.0)
    gossip_heartbeat_s: float = Field(default=1.0, ge=1.0, le=60.0)


def qb2_sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Setting sources of both daemons, highest priority first: explicit values (CLI),
    ``QB2_`` environment variables, then the TOML file named by ``$QB2_CONFIG`` (FR-011)."""
    path = os.environ.get("QB2_CONFIG")
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    if path:
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
    return tuple(sources)


class Qb2Settings(BaseSettings):
    """Base of both daemons' settings classes: values are read from :func:`qb2_sources`
    (explicit values, then ``QB2_`` environment, then the TOML file), nothing else (FR-011)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return qb2_sources(settings_cls, init_settings, env_settings)
