"""A local cluster on loopback: one coordinator and N service-node processes (``qb2 up``).

Each daemon is a separate OS process started with ``PR_SET_PDEATHSIG`` on
Linux, so none outlives the launcher even if the launcher is killed.
Processes report their ephemeral ports through ready files; the launcher waits
for those, then for the registry to list every node.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from coordinator.client import Client

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: rely on stop()
        pass


def _wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} not written within {timeout_s} s")
        time.sleep(0.05)
    return json.loads(path.read_text())


@dataclass
class NodeSpec:
    """One node of a local cluster: a name and a built-in profile (see ``service_node.config.PROFILES``),
    or a device model (``device="fake_manila"``, FR-016) instead of a profile."""

    name: str
    profile: str | None
    extra_args: list[str] = field(default_factory=list)
    device: str | None = None

    def args(self) -> list[str]:
        """``qb2 node`` arguments selecting this node's profile or device."""
        chosen = ["--device", self.device] if self.device else ["--profile", self.profile or "ibm-like"]
        return ["--name", self.name, *chosen, *self.extra_args]


DEFAULT_NODES = [
    NodeSpec("alpha", "ibm-like"),
    NodeSpec("bravo", "ion-like"),
    NodeSpec("charlie", "cz-native"),
    NodeSpec("delta", "single-qubit"),
]


class LocalCluster:
    """Start and stop a coordinator and nodes on 127.0.0.1.

    Args:
        data_dir: root for the database, identities, ready files and logs.
        nodes: node names and profiles.
        api_port: coordinator API port (0: ephemeral).
        env: extra environment for every daemon (e.g. ``QB2_COMPILER__MAX_FRAGMENT_QUBITS``).
        config: TOML config file passed to every daemon.
    """

    def __init__(self, data_dir: Path, nodes: list[NodeSpec] | None = None, *, api_port: int = 0,
                 env: dict[str, str] | None = None, config: Path | None = None) -> None:
        self.data_dir = data_dir
        self.nodes = nodes if nodes is not None else list(DEFAULT_NODES)
        self.api_port = api_port
        self.env = {**os.environ, **(env or {}), "QB2_DATA_DIR": str(data_dir)}
        if config is not None:
            self.env["QB2_CONFIG"] = str(config)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = ""
        self.coordinator_multiaddr = ""
        self.node_peer_ids: dict[str, str] = {}

    @property
    def log_dir(self) -> Path:
        """Where each daemon's JSON log goes (``<name>.log``)."""
        return self.data_dir / "logs"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "coordinator.cli", *args], env=self.env, stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_coordinator(self, timeout_s: float = 60.0, *, same_address: bool = False) -> None:
        """Start the coordinator and wait for its ready file.

        Args:
            same_address: listen on the libp2p multiaddr of the previous
                coordinator (a restart): its peer ID is kept in ``data_dir``, so
                nodes redial the multiaddr they bootstrapped from.
        """
        ready = self.data_dir / "run" / "coordinator.json"
        ready.unlink(missing_ok=True)
        args = ["coordinator", "--api-port", str(self.api_port), "--ready-file", str(ready)]
        if same_address and self.coordinator_multiaddr:
            args += ["--listen", self.coordinator_multiaddr.split("/p2p/")[0]]
        proc = self._spawn("coordinator", args)
        info = _wait_for_file(ready, proc, timeout_s)
        self.api_url = info["api_url"]
        self.coordinator_multiaddr = info["multiaddrs"][0]

    def start_node(self, spec: NodeSpec, timeout_s: float = 60.0) -> str:
        """Start one node bootstrapped to the coordinator; returns its peer ID once it listens."""
        ready = self.data_dir / "run" / f"node-{spec.name}.json"
        ready.unlink(missing_ok=True)
        proc = self._spawn(f"node-{spec.name}", [
            "node", *spec.args(), "--bootstrap", self.coordinator_multiaddr, "--ready-file", str(ready),
        ])
        peer_id = _wait_for_file(ready, proc, timeout_s)["peer_id"]
        self.node_peer_ids[spec.name] = peer_id
        return peer_id

    def start(self, timeout_s: float = 90.0) -> LocalCluster:
        """Start everything and wait until the registry lists every node as available."""
        try:
            self.start_coordinator(timeout_s)
            for spec in self.nodes:
                self.start_node(spec, timeout_s)
            with Client(self.api_url) as client:
                client.wait_for_nodes(len(self.nodes), timeout_s=timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one daemon (``coordinator`` or ``node-<name>``) and reap it."""
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every daemon (nodes first), then SIGKILL whatever is left after ``timeout_s``."""
        order = [n for n in self.procs if n != "coordinator"] + [n for n in self.procs if n == "coordinator"]
        for name in order:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
