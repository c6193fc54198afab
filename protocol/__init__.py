"""Wire contracts shared by the coordinator and the service nodes.

Nothing here imports from the daemons (DESIGN.md, Layout). The modules are:

- :mod:`protocol.ids` — protocol version, libp2p protocol ids and GossipSub topics.
- :mod:`protocol.advert` — the service advertisement (FR-001) and its validation.
- :mod:`protocol.execute` — fragment execution request / response headers.
- :mod:`protocol.framing` — length-prefixed frames (JSON header + binary payload).
- :mod:`protocol.state` — packing simulated quantum states into payload bytes.
"""

from protocol.ids import ADVERT_TOPIC, EXECUTE_PROTOCOL_ID, PROTOCOL_VERSION

__all__ = ["ADVERT_TOPIC", "EXECUTE_PROTOCOL_ID", "PROTOCOL_VERSION"]
