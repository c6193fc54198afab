"""What makes a rerun of the harness repeat its plans and counts (FR-013, NFR-001).

Rerunning with the same suite, seed and options gives the same plans and the
same counts; latencies differ. Two harness settings make that hold across
separate clusters:

- node identities are pinned (:func:`pin_identities`): each node's libp2p key
  is derived from its name, so a rerun has the same peer IDs, and the
  planner's tie-break between identical twin nodes (by peer ID) repeats;
- link probes are off (``QB2_QUALITY__PROBE_INTERVAL_S=0`` in
  :data:`qb2.experiments.scenarios.BASE_ENV`): the planner then uses the
  nominal round trip (``qb2.compiler.cost.DEFAULT_LINK_RTT_S``, 3.1 ms) for
  every node instead of measured loopback pings, whose jitter would otherwise
  pick between twin nodes at random. RTT/loss degradation (FR-008) is
  therefore not exercised by the harness.

Each distributed record carries ``plan_fingerprint``: a hash of the job's
stored plan (the first plan; fallback plans are not stored) with peer IDs
mapped to node names (:func:`plan_fingerprint`). Counts are seeded end to end:
repeat ``r`` submits seed ``seed + r``, which the coordinator passes to the
readout fragment as Aer's ``seed_simulator``; gate fragments are deterministic
(density matrix or statevector evolution, no sampling).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from qb2.client.cluster import NodeSpec

__all__ = ["identity_seed", "pin_identities", "plan_fingerprint"]


def identity_seed(name: str) -> bytes:
    """The 32-byte Ed25519 seed the harness gives daemon ``name`` (derived from the name only).

    Experiment clusters on loopback only: anyone can derive these keys.
    """
    return hashlib.blake2b(f"qb2-harness-identity/{name}".encode(), digest_size=32).digest()


def pin_identities(data_dir: Path, specs: Iterable[NodeSpec]) -> None:
    """Write fixed identity keys for the coordinator and each node under ``data_dir`` (NFR-001).

    The daemons load ``coordinator/identity.key`` and ``nodes/<name>/identity.key``
    (see :func:`qb2.daemon.host.load_or_create_identity`), so every cluster
    started on these specs has the same peer IDs.

    Raises:
        OSError: the files cannot be written.
    """
    targets = {"coordinator": data_dir / "coordinator" / "identity.key"}
    targets.update({s.name: data_dir / "nodes" / s.name / "identity.key" for s in specs})
    for name, path in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(identity_seed(name))
        path.chmod(0o600)


def plan_fingerprint(plan: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """SHA-256 (first 16 hex digits) of the canonical plan JSON with every peer ID replaced by its node name.

    Equal for equal plans on clusters whose peer IDs differ but whose node
    names agree; ``names`` maps peer ID -> node name.
    """
    def rename(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list | tuple):
            return [rename(v) for v in value]
        if isinstance(value, Mapping):
            return {names.get(k, k): rename(v) for k, v in value.items()}
        return value

    text = json.dumps(rename(plan), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
