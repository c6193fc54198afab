"""Process plumbing of a daemon's command line: fail with a one-line error, run until a signal."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

#: The ``--config`` option every qb2 command shares: a TOML file, else ``$QB2_CONFIG``, else defaults.
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML config file (or $QB2_CONFIG)")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr and exit with ``code`` (2: usage or configuration error).

    Raises:
        typer.Exit: always.
    """
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


async def run_until_signal(fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` until it returns or SIGINT / SIGTERM arrives, then cancel it cleanly.

    The daemon's task lives in this function's nursery, so a signal cancels it
    through its cancel scope and every cleanup (``finally``, shielded releases) runs.
    """
    import trio  # here, not at the top: every `qb2` command imports this module

    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async def run() -> None:
                await fn(*args, **kwargs)
                nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
