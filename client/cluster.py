"""A local cluster on loopback: one coordinator and N service-node processes (``qb2 up``).

Each daemon is a separate OS process started with ``PR_SET_PDEATHSIG`` on
Linux, so none outlives the launcher even if the launcher is killed.
Processes report their ephemeral ports through ready files; the launcher waits
for those, then for the registry to list every node.

Membership (FR-019) needs no user action: the launcher creates the
coordinator's identity under ``data_dir`` and, for each node, its identity and
a join token signed with the coordinator's key (``--join-token``). It also
creates an *operator* identity (:attr:`LocalCluster.operator_identity`) that
every node serves (``--allow-peer``): the key tests and the experiment harness
use to talk to nodes directly (fault injection).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from qb2.client.http import Client

_PR_SET_PDEATHSIG = 1
#: Lifetime of the join tokens a local cluster gives its nodes, in seconds (a year).
_TOKEN_TTL_S = 365 * 86400


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


@dataclass(frozen=True)
class Exited:
    """A daemon of a :class:`LocalCluster` that exited.

    Attributes:
        name: ``coordinator`` or ``node-<name>``.
        returncode: the process's exit status; negative: killed by that signal.
        last_log_line: the last line of its log (``logs/<name>.log``), ``""`` if none.
        restart_error: why restarting it failed, if it was tried.
    """

    name: str
    returncode: int
    last_log_line: str = ""
    restart_error: str | None = None

    @property
    def how(self) -> str:
        """``"exit code 1"`` or ``"signal SIGKILL"``."""
        if self.returncode < 0:
            try:
                return f"signal {signal.Signals(-self.returncode).name}"
            except ValueError:
                return f"signal {-self.returncode}"
        return f"exit code {self.returncode}"

    def describe(self) -> str:
        """One line for the operator: who exited, how, and its last log line."""
        text = f"{self.name} exited ({self.how})"
        if self.restart_error:
            text += f"; restart failed: {self.restart_error}"
        return text + (f"; last log line: {self.last_log_line}" if self.last_log_line else "; its log is empty")


@dataclass
class NodeSpec:
    """One node of a local cluster: a name and a built-in profile (see ``qb2.service_node.config.PROFILES``),
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
    def operator_identity(self) -> Path:
        """Identity key file of the cluster's operator tool; every node of the cluster serves its peer ID.

        Load it with :func:`qb2.daemon.host.load_or_create_identity` to send
        execute, reserve or control requests to a node directly (FR-019).
        """
        return self.data_dir / "operator" / "identity.key"

    def admission_args(self, name: str) -> list[str]:
        """``qb2 node`` arguments admitting node ``name`` to this cluster (FR-019), for nodes started by hand.

        Creates, if absent, the coordinator's, the node's
        (``data_dir/nodes/<name>/identity.key``) and the operator's identities.

        Returns:
            ``["--join-token", TOKEN, "--allow-peer", OPERATOR_PEER_ID]``: a
            token for the node's peer ID signed with the coordinator's key
            (valid a year), and the operator tool's peer ID.
        """
        from qb2.daemon.host import load_or_create_identity
        from qb2.protocol.membership import issue_join_token, peer_id_of

        coordinator = load_or_create_identity(self.data_dir / "coordinator" / "identity.key")
        node = peer_id_of(load_or_create_identity(self.data_dir / "nodes" / name / "identity.key"))
        operator = peer_id_of(load_or_create_identity(self.operator_identity))
        return ["--join-token", issue_join_token(coordinator, node, _TOKEN_TTL_S), "--allow-peer", operator]

    @property
    def log_dir(self) -> Path:
        """Where each daemon's JSON log goes (``<name>.log``)."""
        return self.data_dir / "logs"

    def _spawn(self, name: str, module: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Start ``python -m MODULE ARGS`` (a daemon: ``qb2.coordinator`` or ``qb2.service_node``)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], env=self.env, stdout=log, stderr=log,
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
        args = ["--api-port", str(self.api_port), "--ready-file", str(ready)]
        if same_address and self.coordinator_multiaddr:
            args += ["--listen", self.coordinator_multiaddr.split("/p2p/")[0]]
        proc = self._spawn("coordinator", "qb2.coordinator", args)
        info = _wait_for_file(ready, proc, timeout_s)
        self.api_url = info["api_url"]
        self.coordinator_multiaddr = info["multiaddrs"][0]

    def start_node(self, spec: NodeSpec, timeout_s: float = 60.0) -> str:
        """Start one node bootstrapped to the coordinator; returns its peer ID once it listens."""
        ready = self.data_dir / "run" / f"node-{spec.name}.json"
        ready.unlink(missing_ok=True)
        proc = self._spawn(f"node-{spec.name}", "qb2.service_node", [
            *spec.args(), "--bootstrap", self.coordinator_multiaddr, "--ready-file", str(ready),
            *self.admission_args(spec.name),
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

    def last_log_line(self, name: str, max_bytes: int = 64 * 1024) -> str:
        """The last non-empty line of ``logs/<name>.log`` (its final ``max_bytes`` bytes are read), or ``""``."""
        path = self.log_dir / f"{name}.log"
        try:
            with path.open("rb") as f:
                f.seek(max(0, path.stat().st_size - max_bytes))
                tail = f.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def poll_exited(self) -> list[Exited]:
        """Daemons of this cluster that have exited (without :meth:`stop` or :meth:`kill`), in start order.

        Does not block and does not reap anything a later call would miss: an
        exited daemon stays listed until it is restarted (:meth:`restart`) or
        the cluster stops.
        """
        return [Exited(name, proc.returncode, self.last_log_line(name))
                for name, proc in self.procs.items() if proc.poll() is not None]

    def restart(self, name: str, timeout_s: float = 60.0) -> None:
        """Start the exited daemon ``name`` (``coordinator`` or ``node-<name>``) again.

        The coordinator comes back on the same libp2p multiaddr (nodes redial
        it) and the same API port, so the API URL printed by ``qb2 up`` stays
        valid; a node comes back with its identity and profile.

        Raises:
            KeyError: no daemon of that name.
            RuntimeError: it exited again before it was ready.
            TimeoutError: not ready within ``timeout_s`` seconds.
        """
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {proc.pid})")
        if name == "coordinator":
            port = urlsplit(self.api_url).port if self.api_url else None
            if port:
                self.api_port = port
            self.start_coordinator(timeout_s, same_address=True)
            return
        spec = next((s for s in self.nodes if f"node-{s.name}" == name), None)
        if spec is None:
            raise KeyError(f"no daemon named {name!r}; have {sorted(self.procs)}")
        self.start_node(spec, timeout_s)

    def watch(
        self,
        *,
        max_restarts: int = 0,
        poll_s: float = 0.2,
        on_restart: Callable[[Exited, int], None] | None = None,
    ) -> Exited:
        """Supervise the daemons until one exits for good (``qb2 up``, issue 11).

        Checks every ``poll_s`` seconds. A daemon that exits is restarted
        (:meth:`restart`) while it has been restarted fewer than
        ``max_restarts`` times (``on_restart(exit, n)`` is told first, ``n``
        counting from 1); otherwise, or if its restart fails, ``watch``
        returns. Interrupt it with a signal handler that raises (as ``qb2 up``
        does for SIGINT and SIGTERM). The caller stops the cluster.

        Returns:
            The exit that ended supervision; a failed restart is reported as
            that daemon's exit, with the reason in ``restart_error``.
        """
        restarts: dict[str, int] = {}
        while True:
            for exited in self.poll_exited():
                done = restarts.get(exited.name, 0)
                if done >= max_restarts:
                    return exited
                restarts[exited.name] = done + 1
                if on_restart is not None:
                    on_restart(exited, done + 1)
                try:
                    self.restart(exited.name)
                except (RuntimeError, TimeoutError) as exc:
                    return Exited(exited.name, exited.returncode, self.last_log_line(exited.name), str(exc))
            time.sleep(poll_s)

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
