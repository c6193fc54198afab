"""What both daemons share to run as processes: the libp2p host, stream request/response, logging, settings.

``qb2.coordinator`` and ``qb2.service_node`` are independent of each other;
the code they both need to *run* (not the wire contract, which is
:mod:`qb2.protocol`) lives here, one layer below them (docs/architecture.md).

- :mod:`qb2.daemon.host` — the libp2p host: Noise, yamux, GossipSub, identities.
- :mod:`qb2.daemon.streams` — one request/response over a libp2p stream, client and server side.
- :mod:`qb2.daemon.settings` — network settings both daemons read (``[p2p]``, ``[discovery]``).
- :mod:`qb2.daemon.logfmt` — JSON log lines; rate-limited refusal logs.
- :mod:`qb2.daemon.process` — command-line plumbing: one-line errors, run until a signal.
"""

if __name__ != "qb2.daemon":  # one import path only (issue 12): the folder is installed as qb2.daemon
    raise ImportError(f"import qb2.daemon, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")
