"""The coordinator's exception base (the tree is in :mod:`qb2.protocol.errors`)."""

from __future__ import annotations

from qb2.protocol.errors import Qb2Error


class CoordinatorError(Qb2Error):
    """Base of the coordinator's errors: settings, admission, node invocation, fragment failures."""
