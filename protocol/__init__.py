"""Wire contracts: what the coordinator, the service nodes and the client say to each other, and nothing else.

Nothing here imports from another qb2 package (DESIGN.md, Layout;
docs/architecture.md). Code that *runs* the wire (the libp2p host, logging,
settings) is :mod:`qb2.daemon`. The modules are:

- :mod:`qb2.protocol.errors` — :class:`Qb2Error`, the root of qb2's exceptions, and the tree.
- :mod:`qb2.protocol.ids` — protocol version, libp2p protocol ids and GossipSub topics.
- :mod:`qb2.protocol.advert` — the service advertisement (FR-001) and its validation.
- :mod:`qb2.protocol.execute` — fragment execution request / response headers.
- :mod:`qb2.protocol.framing` — length-prefixed frames (JSON header + binary payload).
- :mod:`qb2.protocol.state` — packing simulated quantum states into payload bytes.
- :mod:`qb2.protocol.reservation` — reservation windows: requests, responses, ledger events (FR-005).
- :mod:`qb2.protocol.control` — fault-injection control messages (FR-013).
- :mod:`qb2.protocol.membership` — join tokens: issue, verify (FR-019).
- :mod:`qb2.protocol.jobs` — job states, priorities, job and fragment records (FR-006, FR-009).
- :mod:`qb2.protocol.http` — the HTTP job API's request, response and error bodies (FR-009).
"""

if __name__ != "qb2.protocol":  # one import path only (issue 12): the folder is installed as qb2.protocol
    raise ImportError(f"import qb2.protocol, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")

from qb2.protocol.ids import ADVERT_TOPIC, EXECUTE_PROTOCOL_ID, PROTOCOL_VERSION

__all__ = ["ADVERT_TOPIC", "EXECUTE_PROTOCOL_ID", "PROTOCOL_VERSION"]
