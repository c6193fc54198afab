"""The service node's command line: ``python -m qb2.service_node`` (also ``qb2 node``).

Options override the config file and ``QB2_NODE__*`` environment
(:mod:`qb2.service_node.config`); a typo in an option or a fault spec fails
at once with exit status 2, before libp2p or Aer is imported.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from qb2.daemon.process import ConfigOpt, fail, run_until_signal


def node(
    config: ConfigOpt = None,
    profile: Annotated[Optional[str], typer.Option(help="built-in profile: ibm-like, ion-like, cz-native, single-qubit, ideal")] = None,
    name: Annotated[Optional[str], typer.Option(help="node label; also names its state folder")] = None,
    qubits: Annotated[Optional[int], typer.Option(help="largest fragment width accepted")] = None,
    native_gates: Annotated[Optional[str], typer.Option(help="comma-separated native gates, e.g. cx,rz,sx,x")] = None,
    device: Annotated[Optional[str], typer.Option(help="model a real device: a qiskit-ibm-runtime fake backend, e.g. fake_manila (FR-016)")] = None,
    executor: Annotated[str, typer.Option(help="simulator: aer (CPU) or aer-gpu")] = "aer",
    accept_control: Annotated[bool, typer.Option("--accept-control", help="serve fault injection (/qb2/control/1.0.0) for tests and experiments")] = False,
    bootstrap: Annotated[Optional[list[str]], typer.Option(help="coordinator multiaddr with /p2p/<peer id>; repeatable")] = None,
    join_token: Annotated[Optional[str], typer.Option(
        help="join token from the coordinator's operator (`qb2 join-token`); overrides p2p.join_token (FR-019)")] = None,
    allow_peer: Annotated[Optional[list[str]], typer.Option(
        help="also serve requests from this peer ID (e.g. an operator tool); adds to p2p.allowed_peers; repeatable")] = None,
    print_peer_id: Annotated[bool, typer.Option(
        "--print-peer-id", help="print this node's peer ID (creating its identity if needed) and exit; "
                                "the operator issues its join token for it")] = False,
    listen: Annotated[Optional[str], typer.Option(help="libp2p listen multiaddr")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="state folder root")] = None,
    ready_file: Annotated[Optional[Path], typer.Option(help="write peer ID and multiaddrs here when listening")] = None,
    fault: Annotated[Optional[list[str]], typer.Option(
        help="inject a fault, repeatable: latency:SECONDS[@AFTER][+DURATION], drop:PROB[@AFTER][+DURATION], "
             "crash[@AFTER], degrade:FACTOR[@AFTER][+DURATION]; times in seconds from when the node listens")] = None,
) -> None:
    """Run a service node: a simulated QPU that advertises itself and executes fragments."""
    import os

    from qb2.service_node.faults import FaultSyntaxError, parse_fault

    try:  # before the heavy imports: a typo fails at once
        cli_faults = [parse_fault(text) for text in fault or []]
    except FaultSyntaxError as exc:
        fail(str(exc))

    from qb2.daemon.logfmt import configure_logging
    from qb2.service_node.config import NodeConfigError, NodeSettings, load_node_settings
    from qb2.service_node.daemon import run_node

    if config is not None:
        os.environ["QB2_CONFIG"] = str(config)  # this process runs one daemon: the env is its own
    gates = [g.strip() for g in native_gates.split(",") if g.strip()] if native_gates else None
    try:
        if device is not None:
            if profile is not None:
                raise NodeConfigError("--device and --profile exclude each other: a device brings its own profile")
            from qb2.service_node.devices import load_device_node_settings

            try:  # the device's calibrated profile would otherwise drop faults set in the config file
                configured = NodeSettings().node.faults or None
            except ValueError:  # pydantic's ValidationError; load_device_node_settings reports it precisely
                configured = None
            settings = load_device_node_settings(device, executor, name=name, qubits=qubits, native_gates=gates,
                                                 faults=configured)
        else:
            settings = load_node_settings(profile, name=name, qubits=qubits, native_gates=gates)
            if executor != "aer":
                settings = settings.model_copy(update={"node": settings.node.model_copy(update={"executor": executor})})
    except NodeConfigError as exc:
        fail(str(exc))
    if accept_control:
        settings = settings.model_copy(update={"node": settings.node.model_copy(update={"accept_control": True})})
    if cli_faults:
        settings = settings.model_copy(update={"node": settings.node.model_copy(
            update={"faults": [*settings.node.faults, *cli_faults]})})
    updates: dict[str, Any] = {}
    p2p_updates: dict[str, Any] = {k: v for k, v in
                                   {"bootstrap": bootstrap, "listen": listen, "join_token": join_token}.items() if v}
    if allow_peer:
        p2p_updates["allowed_peers"] = [*settings.p2p.allowed_peers, *allow_peer]
    if p2p_updates:
        updates["p2p"] = settings.p2p.model_copy(update=p2p_updates)
    if data_dir is not None:
        updates["data_dir"] = data_dir
    settings = settings.model_copy(update=updates)
    if print_peer_id or settings.p2p.join_token:
        from qb2.daemon.host import load_or_create_identity
        from qb2.protocol.membership import JoinTokenError, peer_id_of
        from qb2.service_node.daemon import admitted_peers

        own = peer_id_of(load_or_create_identity(settings.state_dir / "identity.key"))
        if print_peer_id:
            typer.echo(own)
            return
        try:  # a wrong token fails here, with the reason, not after start-up
            admitted_peers(settings, own)
        except JoinTokenError as exc:
            fail(f"--join-token / p2p.join_token refused: {exc.reason}")
    configure_logging(settings.log_level, component="node")
    import trio  # here, not at the top: every `qb2` command imports this module

    trio.run(partial(run_until_signal, run_node, settings, ready_file=ready_file))


def main() -> None:
    """Entry point of ``python -m qb2.service_node``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(node)
    app()
