"""The service node's exception base (the tree is in :mod:`qb2.protocol.errors`)."""

from __future__ import annotations

from qb2.protocol.errors import Qb2Error


class NodeError(Qb2Error):
    """Base of the service node's errors: settings, execution, reservation ledger, fault specs."""
