"""A notification receiver for tests: an aiohttp server on 127.0.0.1 that keeps what apprise's
``json://`` scheme posts to it. ``mode`` switches it to answering 500 or hanging.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from aiohttp import web
from loopback import start_on_loopback, stop

Mode = Literal["ok", "fail", "hang"]


class Receiver:
    """``async with Receiver() as hook:`` then ``hook.url()`` for NOTIFY_URLS."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.mode: Mode = "ok"
        self.arrived = anyio.Event()
        self._runner: web.AppRunner | None = None
        self._release = anyio.Event()
        self._port = 0

    def url(self, path: str = "hook") -> str:
        """An apprise URL posting here, with short socket timeouts."""
        return f"json://127.0.0.1:{self._port}/{path}?cto=1&rto=1"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner, self._port = await start_on_loopback(app)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        if self._runner is not None:
            await stop(self._runner)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.mode == "hang":
            with anyio.move_on_after(30):
                await self._release.wait()
            return web.Response(status=504)
        if self.mode == "fail":
            return web.Response(status=500, text="boom")
        self.received.append({"path": request.path, **json.loads(body)})
        self.arrived.set()
        self.arrived = anyio.Event()
        return web.json_response({"ok": True})

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until *count* notifications arrived (bound it with ``anyio.fail_after``)."""
        while len(self.received) < count:
            await self.arrived.wait()
        return self.received
