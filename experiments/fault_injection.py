"""Faults the harness injects at run time (FR-013), over the nodes' libp2p control protocol.

The nodes of a fault scenario start with ``--accept-control``
(:func:`qb2.experiments.scenarios.scenario_cluster`); the harness then sends
them :class:`qb2.protocol.control.FaultSpec` faults as the cluster's operator
(:func:`send_faults`, the runtime equivalent of ``--fault``), and for
``degrade`` waits until the coordinator's registry shows the lowered
fidelities (:func:`degrade_nodes`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import trio

from qb2.client.cluster import LocalCluster
from qb2.client.http import Client
from qb2.experiments.scenarios import DEGRADE_FACTOR
from qb2.protocol.control import FaultSpec

__all__ = ["degrade_nodes", "send_faults"]


def send_faults(cluster: LocalCluster, faults: Mapping[str, FaultSpec], timeout_s: float = 30.0) -> None:
    """Send each node (by name) its fault over the control protocol, concurrently, and wait for the answers.

    The nodes must run with ``--accept-control``. A fault is in force on the
    node when its answer arrives (degrade also needs the re-advertisement to
    reach the registry: see :func:`degrade_nodes`).

    Raises:
        RuntimeError: a node refused its fault (the message names the nodes and why).
        trio.TooSlowError: not every answer arrived within ``timeout_s`` seconds.
        KeyError: an unknown node name.
    """
    import multiaddr
    from libp2p.peer.peerinfo import info_from_p2p_addr

    from qb2.daemon.host import load_or_create_identity, make_host
    from qb2.service_node.faults import send_fault

    targets = {name: (cluster.node_peer_ids[name],
                      json.loads((cluster.data_dir / "run" / f"node-{name}.json").read_text())["addrs"][0])
               for name in faults}
    refused: dict[str, str] = {}

    async def one(host: Any, name: str) -> None:
        peer, addr = targets[name]
        await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
        answer = await send_fault(host, peer, faults[name], timeout_s=timeout_s)
        if not answer.accepted:
            refused[name] = answer.reason or "refused"

    async def send_all() -> None:
        host = make_host(load_or_create_identity(cluster.operator_identity))  # nodes serve the operator (FR-019)
        async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with trio.fail_after(timeout_s):
                async with trio.open_nursery() as nursery:
                    for name in faults:
                        nursery.start_soon(one, host, name)

    trio.run(send_all)
    if refused:
        raise RuntimeError("nodes refused the fault: " + "; ".join(f"{n}: {r}" for n, r in sorted(refused.items())))


def degrade_nodes(cluster: LocalCluster, client: Client, names: Iterable[str], factor: float = DEGRADE_FACTOR,
                  timeout_s: float = 30.0) -> None:
    """Send ``degrade:factor`` to the nodes ``names`` (started with ``--accept-control``) and wait, up to
    ``timeout_s`` seconds, until the coordinator's registry lists the lowered ``gate_2q`` of each.

    Raises:
        RuntimeError: a node refused the fault.
        TimeoutError: the registry did not show every change in time.
    """
    names = list(names)
    peers = {cluster.node_peer_ids[n]: n for n in names}

    def gate_2q() -> dict[str, float]:
        return {n["node_id"]: n["fidelity"]["gate_2q"] for n in client.nodes()["nodes"] if n["node_id"] in peers}

    before = gate_2q()
    send_faults(cluster, {n: FaultSpec(kind="degrade", factor=factor) for n in names}, timeout_s=timeout_s)
    deadline = time.monotonic() + timeout_s
    while pending := sorted(peers[p] for p, f in gate_2q().items() if f >= before[p]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"registry still shows nodes {pending} undegraded after {timeout_s} s")
        time.sleep(0.05)  # polling interval of the registry endpoint
