"""``hedgebot dashboard``: the read-only web dashboard over a database, without a daemon
(a stopped daemon's history, or a database copied from elsewhere). A running daemon
serves the same page itself, at ``/dashboard/`` on its ``[http]`` address.

aiohttp and the dashboard's code are imported inside the command, so ``hedgebot --help``
and the other read commands do not load them.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    DatabaseOption,
    UsageError,
    resolve_url,
    run_async,
    view,
)

# Beside the daemon's default port (8780), so both can run on one host.
DEFAULT_PORT = 8781


def dashboard(
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on; default the config's [http] host, else loopback.",
            metavar="HOST",
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port to listen on (0: any free port).", metavar="PORT"
        ),
    ] = DEFAULT_PORT,
) -> None:
    """Serve the read-only dashboard over the database until Ctrl-C (no daemon needed)."""
    url = resolve_url(config, database_url)
    if host is None:
        host = view(config).http_host or "127.0.0.1"
    run_async(lambda: _serve(url, host, port))


async def _serve(url: str, host: str, port: int) -> None:
    from bot.clock import SystemClock
    from bot.service.dashboard import DashboardServer
    from bot.service.database import open_existing
    from bot.store.repository import Repository

    engine = await open_existing(url)
    try:
        server = DashboardServer(Repository(engine, SystemClock()), host, port)
        try:
            bound = await server.start()
        except OSError as exc:
            raise UsageError(
                f"dashboard: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "pass --port with a free port"
            ) from None
        typer.echo(f"dashboard: http://{host}:{bound}/dashboard/ (read only; Ctrl-C stops it)")
        try:
            await _until_stopped()
        finally:
            await server.stop()
    finally:
        await engine.dispose()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
