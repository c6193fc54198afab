"""The ``qb2`` command line: run daemons, a local cluster, and talk to the job API.

Run ``qb2 --help`` or ``qb2 COMMAND --help`` for details. The daemons' own
commands are defined next to them and registered here (``qb2 coordinator``,
``qb2 node``, ``qb2 join-token``, ``qb2 db``); ``demo``, ``bench`` and
``experiment`` hand over to :mod:`qb2.experiments`, which sits above this
package, by running it as its own program.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from qb2.coordinator import command as coordinator_command
from qb2.daemon.process import ConfigOpt
from qb2.daemon.process import fail as _fail
from qb2.service_node import command as node_command

if TYPE_CHECKING:
    from qb2.client.http import Client

app = typer.Typer(
    name="qb2",
    help="Peer-to-peer coordinator for distributed quantum circuit execution over libp2p.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("coordinator")(coordinator_command.coordinator)
app.command("node")(node_command.node)
app.command("join-token")(coordinator_command.join_token_cmd)
app.add_typer(coordinator_command.db_app, name="db")

UrlOpt = Annotated[str, typer.Option("--url", envvar="QB2_URL", help="coordinator API base URL")]
DEFAULT_URL = "http://127.0.0.1:8700"


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
    from qb2.client.cluster import DEFAULT_NODES, Exited, LocalCluster, NodeSpec

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


def _hand_over(module: str, args: list[str], prog: str | None = None) -> None:
    """Run ``python -m MODULE ARGS`` as a child with this terminal and exit with its status.

    ``qb2.experiments`` sits above this package (docs/architecture.md), so its
    commands run as their own program instead of being imported here.
    """
    import os
    import subprocess

    try:
        env = {**os.environ, "QB2_PROG": prog} if prog else None  # the child's usage line names this command
        code = subprocess.call([sys.executable, "-m", module, *args], env=env)
    except KeyboardInterrupt:  # the child got the same Ctrl-C and stops its cluster itself
        code = 130
    raise typer.Exit(code)


@app.command()
def demo(
    nodes: Annotated[int, typer.Option(help="number of service nodes")] = 4,
    shots: Annotated[int, typer.Option(help="shots per circuit")] = 2000,
    seed: Annotated[int, typer.Option(help="simulator seed")] = 7,
    min_nodes: Annotated[int, typer.Option(help="spread each job over at least this many nodes (1: planner's choice)")] = 2,
) -> None:
    """Start a local cluster, run real mqt-bench circuits through it, print a table, stop."""
    _hand_over("qb2.experiments.demo", ["--nodes", str(nodes), "--shots", str(shots), "--seed", str(seed),
                                        "--min-nodes", str(min_nodes)])


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="OpenQASM 2 or 3 file", exists=True, dir_okay=False)],
    shots: Annotated[Optional[int], typer.Option(help="measurement repetitions")] = None,
    seed: Annotated[Optional[int], typer.Option(help="simulator seed")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the result and print it")] = False,
    url: UrlOpt = DEFAULT_URL,
) -> None:
    """Submit a circuit; prints the job id (or, with --wait, the result as JSON)."""
    from qb2.client.http import ApiError, Client

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
    from qb2.client.http import ApiError, Client

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


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run a benchmark: ``qb2 bench compile [OPTIONS]`` (compile latency, scaling and plan quality;
    writes experiments/results/). ``qb2 bench compile --help`` lists the benchmark's options."""
    what, *rest = ctx.args or ["compile"]
    if what in ("-h", "--help"):
        typer.echo("usage: qb2 bench compile [--help] [OPTIONS]  (benchmarks: compile)")
        raise typer.Exit(0)
    if what != "compile":
        _fail(f"unknown benchmark {what!r}; available: compile")
    _hand_over("qb2.experiments.bench_compile", rest)


experiment_app = typer.Typer(help="Experiment harness (FR-013): distributed vs centralized runs under faults.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def experiment_run(ctx: typer.Context) -> None:
    """Run a suite distributed and centralized (the options of `python -m qb2.experiments run`; see --help)."""
    # one parser for both entry points: the options are defined once, in experiments/__main__.py
    _hand_over("qb2.experiments", ["run", *ctx.args], prog="qb2 experiment")


def _print_job(url: str, read: Callable[[Client], dict[str, Any]]) -> None:
    """Print what ``read(client)`` returns as JSON; an API error exits 1 with its message."""
    from qb2.client.http import ApiError, Client

    with Client(url) as client:
        try:
            typer.echo(json.dumps(read(client), indent=2))
        except ApiError as exc:
            _fail(exc.message, 1)


@app.command()
def status(job_id: str, url: UrlOpt = DEFAULT_URL) -> None:
    """Print a job's state and metadata as JSON."""
    _print_job(url, lambda client: client.status(job_id))


@app.command()
def result(job_id: str, url: UrlOpt = DEFAULT_URL) -> None:
    """Print a completed job's counts, fidelities and fragment records as JSON."""
    _print_job(url, lambda client: client.result(job_id))


@app.command("nodes")
def list_nodes(url: UrlOpt = DEFAULT_URL) -> None:
    """List the nodes in the coordinator's registry."""
    from qb2.client.http import Client

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


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    sys.exit(app())
