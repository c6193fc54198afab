"""Wire contracts shared by the coordinator and the service nodes.

Nothing here imports from the daemons (DESIGN.md, Layout). The modules are:

- :mod:`qb2.protocol.ids` — protocol version, libp2p protocol ids and GossipSub topics.
- :mod:`qb2.protocol.advert` — the service advertisement (FR-001) and its validation.
- :mod:`qb2.protocol.execute` — fragment execution request / response headers.
- :mod:`qb2.protocol.framing` — length-prefixed frames (JSON header + binary payload).
- :mod:`qb2.protocol.state` — packing simulated quantum states into payload bytes.
"""

if __name__ != "qb2.protocol":  # one import path only (issue 12): the folder is installed as qb2.protocol
    raise ImportError(f"import qb2.protocol, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")

from qb2.protocol.ids import ADVERT_TOPIC, EXECUTE_PROTOCOL_ID, PROTOCOL_VERSION

__all__ = ["ADVERT_TOPIC", "EXECUTE_PROTOCOL_ID", "PROTOCOL_VERSION"]
