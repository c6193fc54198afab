"""The user side's exception base (the tree is in :mod:`qb2.protocol.errors`)."""

from __future__ import annotations

from qb2.protocol.errors import Qb2Error


class ClientError(Qb2Error):
    """Base of the client's errors: an error answer from the API, a Qiskit job that did not complete."""
