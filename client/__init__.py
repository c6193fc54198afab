"""The user side of qb2: the ``qb2`` command line, the typed HTTP client, Qiskit, local clusters.

Everything a user imports lives here, one layer above the daemons
(docs/architecture.md)::

    from qb2.client import Client, QB2Backend, QB2Sampler, LocalCluster

- :class:`Client`, :class:`ApiError`: the job API over HTTP (:mod:`qb2.client.http`).
- :class:`QB2Backend`, :class:`QB2Sampler`: Qiskit ``BackendV2`` and ``SamplerV2``
  (:mod:`qb2.client.qiskit`).
- :class:`LocalCluster`, :class:`NodeSpec`: a coordinator and service nodes as
  local processes (:mod:`qb2.client.cluster`, ``qb2 up``).
- :mod:`qb2.client.cli`: the ``qb2`` command.

Names are imported on first use, so ``import qb2.client`` stays cheap for the
command line (Qiskit loads only when its classes are used).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if __name__ != "qb2.client":  # one import path only (issue 12): the folder is installed as qb2.client
    raise ImportError(f"import qb2.client, not {__name__}: qb2 installs its packages under qb2. (pip install -e .)")

_WHERE = {
    "Client": "qb2.client.http", "ApiError": "qb2.client.http",
    "QB2Backend": "qb2.client.qiskit", "QB2Sampler": "qb2.client.qiskit", "QB2Job": "qb2.client.qiskit",
    "LocalCluster": "qb2.client.cluster", "NodeSpec": "qb2.client.cluster",
}
__all__ = ["ApiError", "Client", "LocalCluster", "NodeSpec", "QB2Backend", "QB2Job", "QB2Sampler"]

if TYPE_CHECKING:
    from qb2.client.cluster import LocalCluster, NodeSpec
    from qb2.client.http import ApiError, Client
    from qb2.client.qiskit import QB2Backend, QB2Job, QB2Sampler


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'qb2.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
