"""Serving an aiohttp app on 127.0.0.1 for the tests' own servers (fake RPC, receivers)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

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


class LoopbackServer:
    """A test's own HTTP server on 127.0.0.1: ``async with Server() as server`` starts it.

    Subclasses add their routes in :meth:`routes`; a handler that must hang awaits
    :meth:`hang`, which returns when the server stops so cleanup never waits for it.
    """

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._stopping: anyio.Event | None = None
        self._url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        if not self._url:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._url

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return int(self.url.rsplit(":", 1)[1].rstrip("/"))

    async def hang(self, seconds: float) -> None:
        """Wait *seconds*, or until the server stops."""
        assert self._stopping is not None
        with anyio.move_on_after(seconds):
            await self._stopping.wait()

    async def __aenter__(self) -> Self:
        self._stopping = anyio.Event()
        app = web.Application()
        self.routes(app)
        self._runner, port = await start_on_loopback(app)
        self._url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stopping is not None:
            self._stopping.set()  # release hanging handlers so cleanup does not wait for them
        runner, self._runner = self._runner, None
        if runner is not None:
            await stop(runner)
        self._url = ""
