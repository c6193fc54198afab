"""What both daemons share to run as processes: the libp2p host, stream request/response, logging, settings.

``qb2.coordinator`` and ``qb2.service_node`` are independent of each other;
the code they both need to *run* (not the wire contract, which is
:mod:`qb2.protocol`) lives here, one layer below them (docs/architecture.md).
"""

if __name__ != "qb2.daemon":  # one import path only (issue 12): the folder is installed as qb2.daemon
    raise ImportError(f"import qb2.daemon, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")
