"""The HTTP endpoint (``HTTP_PORT``): ``/``, ``/metrics``, ``/healthz`` and ``/status``.

Served by aiohttp from the watcher's own event loop and task group, never from a thread.
Binds to ``127.0.0.1`` unless ``HTTP_HOST`` says otherwise.

Each request takes a fresh :class:`~azwatch.snapshot.Snapshot` and shows it: this module
knows nothing of the watcher. ``/healthz`` answers 200 while the watcher is working and 503
with the snapshot's problems when it is not (:func:`azwatch.snapshot.health_problems`); an
unhealthy *node* is not an unhealthy watcher: that is ``/status``'s business. ``/`` is the
status page (:mod:`azwatch.page`), rendered from the same snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.abc
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from azwatch.metrics import registry_for
from azwatch.page import CONTENT_SECURITY_POLICY, render
from azwatch.snapshot import Snapshot, document

logger = logging.getLogger("azwatch.http")

SnapshotSource = Callable[[], Snapshot]

#: Security headers of the status page: it loads nothing and is framed by no one.
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def build_app(snapshot: SnapshotSource) -> web.Application:
    """The aiohttp application showing the snapshots *snapshot* takes."""

    async def healthz(request: web.Request) -> web.Response:
        problems = snapshot().problems
        if problems:
            return web.json_response(
                {"status": "unhealthy", "problems": list(problems)}, status=503
            )
        return web.json_response({"status": "ok"})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(document(snapshot()))

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=render(snapshot()), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
        )

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/metrics", make_aiohttp_handler(registry_for(snapshot)))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    return app


async def serve(
    snapshot: SnapshotSource,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; report the bound (host, port) through *task_status*."""
    runner = web.AppRunner(build_app(snapshot), handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        address = (str(bound[0]), int(bound[1]))
        logger.info(
            "HTTP endpoint on http://%s:%d (/, /metrics, /healthz, /status)",
            *address,
            extra={"event": "http_started"},
        )
        task_status.started(address)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await runner.cleanup()
