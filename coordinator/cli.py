"""The ``qb2`` command line: run daemons, a local cluster, and talk to the job API.

Run ``qb2 --help`` or ``qb2 COMMAND --help`` for details.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Optional

import trio
import typer

app = typer.Typer(
    name="qb2",
    help="Peer-to-peer coordinator for distributed quantum circuit execution over libp2p.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file (or $QB2_CONFIG)")]
UrlOpt = Annotated[str, typer.Option("--url", envvar="QB2_URL", help="coordinator API base URL")]
DEFAULT_URL = "http://127.0.0.1:8700"


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


async def _until_signal(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Run ``fn`` until SIGINT or SIGTERM, then cancel it cleanly."""
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            nursery.start_soon(lambda: fn(*args, **kwargs))
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


@app.command()
def coordinator(
    config: ConfigOpt = None,
    api_port: Annotated[Optional[int], typer.Option(help="HTTP port (0: ephemeral); overrides api.port")] = None,
    listen: Annotated[Optional[str], typer.Option(help="libp2p listen multiaddr; overrides p2p.listen")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="database and identity folder; overrides data_dir")] = None,
    ready_file: Annotated[Optional[Path], typer.Option(help="write API URL and multiaddrs here when ready")] = None,
) -> None:
    """Run the coordinator daemon: libp2p host, registry, job workers and the HTTP API."""
    from qb2.coordinator.config import ConfigError, load_settings
    from qb2.coordinator.daemon import run_coordinator
    from qb2.protocol.logfmt import configure_logging

    overrides: dict[str, Any] = {}
    try:
        settings = load_settings(config)
        if api_port is not None:
            overrides["api"] = settings.api.model_copy(update={"port": api_port})
        if listen is not None:
            overrides["p2p"] = settings.p2p.model_copy(update={"listen": listen})
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        settings = settings.model_copy(update=overrides)
    except ConfigError as exc:
        _fail(str(exc))
    configure_logging(settings.log_level, component="coordinator")
    trio.run(partial(_until_signal, run_coordinator, settings, ready_file=ready_file))


@app.command()
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
        _fail(str(exc))

    from qb2.protocol.logfmt import configure_logging
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
        _fail(str(exc))
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
        from qb2.protocol.membership import JoinTokenError, peer_id_of
        from qb2.protocol.transport import load_or_create_identity
        from qb2.service_node.daemon import admitted_peers

        own = peer_id_of(load_or_create_identity(settings.state_dir / "identity.key"))
        if print_peer_id:
            typer.echo(own)
            return
        try:  # a wrong token fails here, with the reason, not after start-up
            admitted_peers(settings, own)
        except JoinTokenError as exc:
            _fail(f"--join-token / p2p.join_token refused: {exc.reason}")
    configure_logging(settings.log_level, component="node")
    trio.run(partial(_until_signal, run_node, settings, ready_file=ready_file))


@app.command("join-token")
def join_token_cmd(
    peer_id: Annotated[str, typer.Option("--peer-id", help="the node's peer ID (`qb2 node --print-peer-id`)")],
    ttl_s: Annotated[Optional[float], typer.Option(
        "--ttl-s", min=1, help="validity in seconds from now (default: 30 days)")] = None,
    config: ConfigOpt = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="the coordinator's data folder; overrides data_dir")] = None,
) -> None:
    """Issue a join token admitting PEER_ID to this coordinator (FR-019); prints the token.

    Signs with the coordinator's identity key, ``DATA_DIR/coordinator/identity.key``
    (run on the coordinator's machine, with its config). The node presents it
    with ``qb2 node --join-token TOKEN`` (or ``p2p.join_token``).
    """
    import datetime

    from qb2.coordinator.config import ConfigError, load_settings
    from qb2.protocol.membership import DEFAULT_TTL_S, decode_join_token, issue_join_token, peer_id_of
    from qb2.protocol.transport import load_or_create_identity

    try:
        root = data_dir or load_settings(config).data_dir
    except ConfigError as exc:
        _fail(str(exc))
    key_file = root / "coordinator" / "identity.key"
    if not key_file.exists():
        _fail(f"no coordinator identity at {key_file}; start the coordinator once, or pass its --data-dir / --config")
    try:
        key_pair = load_or_create_identity(key_file)
        token = issue_join_token(key_pair, peer_id, DEFAULT_TTL_S if ttl_s is None else ttl_s)
    except ValueError as exc:
        _fail(str(exc))
    expires = decode_join_token(token)[0].expires_at
    until = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(timespec="seconds")
    typer.echo(f"join token for {peer_id} from coordinator {peer_id_of(key_pair)}, valid until {until}", err=True)
    typer.echo(token)


def _raise_keyboard_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@app.command()
def up(
    nodes: Annotated[int, typer.Option(help="number of service nodes (profiles cycle through the built-ins)")] = 4,
    devices: Annotated[Optional[str], typer.Option(help="comma-separated device models instead, e.g. fake_manila,fake_lima,fake_belem")] = None,
    api_port: Annotated[int, typer.Option(help="coordinator API port (0: ephemeral)")] = 8700,
    data_dir: Annotated[Optional[Path], typer.Option(help="cluster data folder (default: a new temporary one)")] = None,
    config: ConfigOpt = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="restart the coordinator or a node that exits, at most --max-restarts times each "
                          "(the coordinator keeps its API port and libp2p address); without it, or once a daemon "
                          "has used its restarts, `qb2 up` stops the cluster and exits 1")] = False,
    max_restarts: Annotated[int, typer.Option(min=1, max=100, help="restarts per daemon with --restart")] = 3,
) -> None:
    """Start a local cluster (coordinator + service nodes on 127.0.0.1) and run until Ctrl-C.

    Supervises its daemons: when the coordinator or a node exits, it says which
    and why (exit code or signal, last line of logs/<name>.log), then stops the
    cluster and exits with status 1, unless --restart restarts it (a bounded
    number of times, --max-restarts). Ctrl-C or SIGTERM stops it with status 0.
    """
    from qb2.coordinator.cluster import DEFAULT_NODES, Exited, LocalCluster, NodeSpec

    if devices:
        names = [d.strip() for d in devices.split(",") if d.strip()]
        specs = [NodeSpec(f"{d}-{i}" if names.count(d) > 1 else d, None, device=d) for i, d in enumerate(names)]
    else:
        specs = [NodeSpec(f"{DEFAULT_NODES[i % 4].name}{'' if i < 4 else i}", DEFAULT_NODES[i % 4].profile)
                 for i in range(nodes)]
    root = data_dir or Path(tempfile.mkdtemp(prefix="qb2-"))
    cluster = LocalCluster(root, specs, api_port=api_port, config=config)
    try:
        cluster.start()
    except (RuntimeError, TimeoutError) as exc:
        _fail(f"cluster did not start: {exc} (logs in {cluster.log_dir})", 1)
    typer.echo(cluster.api_url)
    typer.echo(f"coordinator {cluster.coordinator_multiaddr}", err=True)
    typer.echo(f"{len(specs)} nodes up; logs in {cluster.log_dir}; Ctrl-C to stop", err=True)
    # SIGINT explicitly too: a shell starts background jobs with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler, so `kill -INT` would not stop the cluster.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)

    def restarting(exited: Exited, n: int) -> None:
        typer.echo(f"{exited.describe()}; restarting it ({n}/{max_restarts})", err=True)

    status = 0
    try:
        final = cluster.watch(max_restarts=max_restarts if restart else 0, on_restart=restarting)
        status = 1
        budget = f" after {max_restarts} restarts" if restart and final.restart_error is None else ""
        typer.echo(f"error: {final.describe()}{budget}; stopping the cluster (logs in {cluster.log_dir})", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping cluster ...", err=True)
        cluster.stop()
    raise typer.Exit(status)


@app.command()
def demo(
    nodes: Annotated[int, typer.Option(help="number of service nodes")] = 4,
    shots: Annotated[int, typer.Option(help="shots per circuit")] = 2000,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 7,
    min_nodes: Annotated[int, typer.Option(help="spread each job over at least this many nodes (1: planner's choice)")] = 2,
) -> None:
    """Start a local cluster, run real mqt-bench circuits through it, print a table, stop."""
    from qb2.experiments.demo import run_demo

    raise typer.Exit(run_demo(nodes=nodes, shots=shots, seed=seed, min_nodes=min_nodes))


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="OpenQASM 2 or 3 file", exists=True, dir_okay=False)],
    shots: Annotated[Optional[int], typer.Option(help="measurement repetitions")] = None,
    seed: Annotated[Optional[int], typer.Option(help="simulator seed")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the result and print it")] = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Submit a circuit; prints the job id (or, with --wait, the result as JSON)."""
    from qb2.coordinator.client import ApiError, Client

    with Client(url) as client:
        try:
            job = client.submit(file.read_text(), shots=shots, seed=seed, name=file.stem)
            if not wait:
                typer.echo(job["job_id"])
                return
            final = client.wait(job["job_id"])
            body = client.result(job["job_id"]) if final["state"] == "COMPLETED" else final
        except ApiError as exc:
            _fail(f"{exc.message} {json.dumps(exc.details) if exc.details else ''}".strip(), 1)
        typer.echo(json.dumps(body, indent=2))
        if body.get("state") != "COMPLETED":
            raise typer.Exit(1)


@app.command()
def plan(
    file: Annotated[Path, typer.Argument(help="OpenQASM 2 or 3 file", exists=True, dir_okay=False)],
    url: UrlOpt = DEFAULT_URL,
    min_fidelity: Annotated[Optional[float], typer.Option(help="estimated-fidelity floor in [0, 1]")] = None,
    weight: Annotated[Optional[list[str]], typer.Option(help="cost weight override, e.g. entanglement=5; repeatable")] = None,
) -> None:
    """Print the plan the coordinator would use for FILE now (fragments, nodes, ebits, cost), without running it."""
    from qb2.coordinator.client import ApiError, Client

    weights: dict[str, float] = {}
    for item in weight or []:
        key, _, value = item.partition("=")
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            _fail(f"--weight {item!r}: expected NAME=NUMBER (latency, fidelity_risk, entanglement, price)")
    with Client(url) as client:
        try:
            body = client.dry_run(file.read_text(), min_fidelity=min_fidelity, weights=weights or None)
        except ApiError as exc:
            _fail(f"{exc.message} {json.dumps(exc.details) if exc.details else ''}".strip(), 1)
    typer.echo(json.dumps(body, indent=2))


@app.command()
def bench(
    what: Annotated[str, typer.Argument(help="benchmark to run: compile")] = "compile",
) -> None:
    """Run a benchmark (``compile``: compile latency, scaling and plan quality; writes experiments/results/)."""
    if what != "compile":
        _fail(f"unknown benchmark {what!r}; available: compile")
    from qb2.experiments.bench_compile import main as bench_compile

    sys.argv = [sys.argv[0]]  # the benchmark parses its own options
    bench_compile()


experiment_app = typer.Typer(help="Experiment harness (FR-013): distributed vs centralized runs under faults.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def experiment_run(ctx: typer.Context) -> None:
    """Run a suite distributed and centralized (the options of `python -m experiments run`; see --help)."""
    from qb2.experiments.__main__ import main as experiments_main

    try:  # one parser for both entry points: the options are defined once, in experiments/__main__.py
        code = experiments_main(["run", *ctx.args], prog="qb2 experiment")
    except SystemExit as exc:  # --help (0) or invalid options (2), already reported by argparse
        code = exc.code if isinstance(exc.code, int) else 2
    raise typer.Exit(code)


@app.command()
def status(job_id: str, url: UrlOpt = DEFAULT_URL) -> None:
    """Print a job's state and metadata as JSON."""
    from qb2.coordinator.client import ApiError, Client

    with Client(url) as client:
        try:
            typer.echo(json.dumps(client.status(job_id), indent=2))
        except ApiError as exc:
            _fail(exc.message, 1)


@app.command()
def result(job_id: str, url: UrlOpt = DEFAULT_URL) -> None:
    """Print a completed job's counts, fidelities and fragment records as JSON."""
    from qb2.coordinator.client import ApiError, Client

    with Client(url) as client:
        try:
            typer.echo(json.dumps(client.result(job_id), indent=2))
        except ApiError as exc:
            _fail(exc.message, 1)


@app.command("nodes")
def list_nodes(url: UrlOpt = DEFAULT_URL) -> None:
    """List the nodes in the coordinator's registry."""
    from qb2.coordinator.client import Client

    with Client(url) as client:
        body = client.nodes()
    typer.echo(f"{'name':<10} {'status':<10} {'qubits':>6}  {'f1q':>7} {'f2q':>7} {'ro':>6}  {'coupling':<10} native gates")
    for n in body["nodes"]:
        f = n["fidelity"]
        pairs = n.get("coupling_map")
        coupling = "all-to-all" if pairs is None else f"{len(pairs)} pairs"
        typer.echo(f"{n['name']:<10} {n['status']:<10} {n['qubits']:>6}  {f['gate_1q']:>7.4f} {f['gate_2q']:>7.4f} "
                   f"{f['readout']:>6.3f}  {coupling:<10} {','.join(n['native_gates'])}")
    typer.echo(f"{body['available']} available of {len(body['nodes'])}")


db_app = typer.Typer(help="Database migrations (FR-010): upgrade, downgrade, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="data folder (default: settings data_dir)")]


def _db_path(config: Optional[Path], data_dir: Optional[Path]) -> Path:
    from qb2.coordinator.config import ConfigError, load_settings

    try:
        root = data_dir or load_settings(config).data_dir
    except ConfigError as exc:
        _fail(str(exc))
    return root / "coordinator.db"


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply every pending migration (the coordinator also does this at start-up)."""
    from qb2.coordinator.store import migrate, migration_status

    path = _db_path(config, data_dir)
    migrate(path)
    typer.echo(f"{path}: at {[m for m, applied in migration_status(path) if applied][-1]}")


@db_app.command("downgrade")
def db_downgrade(
    steps: Annotated[int, typer.Option(min=1, help="how many migrations to roll back")] = 1,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Roll back the newest applied migrations (stop the coordinator first)."""
    from qb2.coordinator.store import downgrade

    path = _db_path(config, data_dir)
    if not path.exists():
        _fail(f"no database at {path}")
    rolled = downgrade(path, steps)
    typer.echo(f"{path}: rolled back {', '.join(rolled) or 'nothing'}")


@db_app.command("status")
def db_status(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List migrations and whether each is applied."""
    from qb2.coordinator.store import migration_status

    path = _db_path(config, data_dir)
    if not path.exists():
        _fail(f"no database at {path}")
    for migration_id, applied in migration_status(path):
        typer.echo(f"{'applied' if applied else 'pending':<8} {migration_id}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    sys.exit(app())
