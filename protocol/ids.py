"""Protocol version, libp2p protocol ids and GossipSub topic names.

A peer speaking another *major* protocol version is rejected (FR-001); minor
versions add optional fields only.
"""

import re
from typing import Final

#: Semantic version of every qb2 wire contract in this package.
PROTOCOL_VERSION: Final = "1.4.0"

#: A libp2p peer ID in its base58btc text form (the legacy ``Qm...`` / ``12D3KooW...`` form of multiaddrs).
PEER_ID_RE: Final = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{30,128}$")

#: GossipSub topic on which service nodes publish their advertisements (FR-001).
ADVERT_TOPIC: Final = "qb2/adverts/1"

#: libp2p stream protocol: coordinator asks a node to run one fragment (FR-006).
EXECUTE_PROTOCOL_ID: Final = "/qb2/execute/1.0.0"


def major(version: str) -> int:
    """Return the major component of a ``MAJOR.MINOR.PATCH`` version string.

    Raises:
        ValueError: if ``version`` does not start with an integer component.
    """
    return int(version.split(".", 1)[0])

#: libp2p stream protocol: coordinator reserves an execution window on a node (FR-005).
RESERVE_PROTOCOL_ID: Final = "/qb2/reserve/1.0.0"

#: libp2p stream protocol: operator / harness injects faults into a node (FR-013 support).
CONTROL_PROTOCOL_ID: Final = "/qb2/control/1.0.0"
