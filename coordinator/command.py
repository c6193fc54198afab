"""The coordinator's command line: ``python -m qb2.coordinator`` (also ``qb2 coordinator``),
and the operator commands that act on its data folder: ``qb2 join-token`` and ``qb2 db``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from qb2.daemon.process import ConfigOpt, fail, run_until_signal


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
    from qb2.daemon.logfmt import configure_logging

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
        fail(str(exc))
    configure_logging(settings.log_level, component="coordinator")
    import trio  # here, not at the top: every `qb2` command imports this module

    trio.run(partial(run_until_signal, run_coordinator, settings, ready_file=ready_file))


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
    from qb2.daemon.host import load_or_create_identity
    from qb2.protocol.membership import DEFAULT_TTL_S, decode_join_token, issue_join_token, peer_id_of

    try:
        root = data_dir or load_settings(config).data_dir
    except ConfigError as exc:
        fail(str(exc))
    key_file = root / "coordinator" / "identity.key"
    if not key_file.exists():
        fail(f"no coordinator identity at {key_file}; start the coordinator once, or pass its --data-dir / --config")
    try:
        key_pair = load_or_create_identity(key_file)
        token = issue_join_token(key_pair, peer_id, DEFAULT_TTL_S if ttl_s is None else ttl_s)
    except ValueError as exc:
        fail(str(exc))
    expires = decode_join_token(token)[0].expires_at
    until = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).isoformat(timespec="seconds")
    typer.echo(f"join token for {peer_id} from coordinator {peer_id_of(key_pair)}, valid until {until}", err=True)
    typer.echo(token)


db_app = typer.Typer(help="Database migrations (FR-010): upgrade, downgrade, status.", no_args_is_help=True)
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="data folder (default: settings data_dir)")]


def _db_path(config: Optional[Path], data_dir: Optional[Path]) -> Path:
    from qb2.coordinator.config import ConfigError, load_settings

    try:
        root = data_dir or load_settings(config).data_dir
    except ConfigError as exc:
        fail(str(exc))
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
        fail(f"no database at {path}")
    rolled = downgrade(path, steps)
    typer.echo(f"{path}: rolled back {', '.join(rolled) or 'nothing'}")


@db_app.command("status")
def db_status(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List migrations and whether each is applied."""
    from qb2.coordinator.store import migration_status

    path = _db_path(config, data_dir)
    if not path.exists():
        fail(f"no database at {path}")
    for migration_id, applied in migration_status(path):
        typer.echo(f"{'applied' if applied else 'pending':<8} {migration_id}")


def main() -> None:
    """Entry point of ``python -m qb2.coordinator``."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(coordinator)
    app()
