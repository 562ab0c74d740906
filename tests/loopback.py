"""Serving an aiohttp app on 127.0.0.1 for the tests' own servers (fake RPC, receivers)."""

from __future__ import annotations

import anyio
from aiohttp import web


async def start_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve *app* on 127.0.0.1 at a free port: the runner (for :func:`stop`) and the port."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


async def stop(runner: web.AppRunner) -> None:
    """Close the server and its connections, even while the caller is being cancelled."""
    with anyio.CancelScope(shield=True):
        await runner.cleanup()
