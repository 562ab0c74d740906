"""The HTTP endpoint (``HTTP_PORT``): ``/``, ``/metrics``, ``/healthz``, ``/status``, ``/control``.

Served by aiohttp from the watcher's own event loop and task group, never from a thread.
Binds to ``127.0.0.1`` unless ``HTTP_HOST`` says otherwise.

Each request takes a fresh :class:`~azwatch.snapshot.Snapshot` and shows it: this module
knows nothing of the watcher. ``/healthz`` answers 200 while the watcher is working and 503
with the snapshot's problems when it is not (:func:`azwatch.snapshot.health_problems`); an
unhealthy *node* is not an unhealthy watcher: that is ``/status``'s business. ``/`` is the
status page (:mod:`azwatch.page`), rendered from the same snapshot.

``POST /control/pause`` and ``POST /control/resume`` (JSON) pause and resume restarts of one
container; they exist when the watcher hands :func:`build_app` a :class:`Control`, which
says who may use them (:class:`~azwatch.control.ControlAccess`) and how a message reaches
the decision task.

``GET /livez`` is the probe mode's (``RESTART_VIA=kubelet``): the verdict the node's
``livenessProbe`` reads, 200 while the rules hold and 503 with the decided restart, its rule
and its numbers (JSON, or one line of text to a client that asks for ``text/plain``). It
exists when the watcher hands :func:`build_app` a *livez* source.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from azwatch.control import ControlAccess, ControlError, clean_reason, parse_duration
from azwatch.metrics import registry_for
from azwatch.page import CONTENT_SECURITY_POLICY, render
from azwatch.snapshot import Snapshot, document
from azwatch.supervisor import Pause, Resume

logger = logging.getLogger("azwatch.http")

SnapshotSource = Callable[[], Snapshot]
#: The probe mode's verdict as a JSON document: ``alive`` (bool) and ``text`` at least.
LivezSource = Callable[[], dict[str, Any]]

#: Where the probe mode serves its verdict; the livenessProbe's ``httpGet.path``.
LIVEZ_PATH = "/livez"

#: Security headers of the status page: it loads nothing and is framed by no one.
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: A verdict is of the moment: no cache keeps an old one.
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Control:
    """What the control endpoint needs from the watcher.

    *submit* hands a message to the decision task and returns once it was applied; *clock*
    is the supervisor's clock (a pause's end is a time on it); *access* says who may ask.
    """

    submit: Callable[[Pause | Resume], Awaitable[None]]
    clock: Callable[[], float]
    access: ControlAccess


def build_app(
    snapshot: SnapshotSource, control: Control | None = None, livez: LivezSource | None = None
) -> web.Application:
    """The aiohttp application showing the snapshots *snapshot* takes.

    With *control*, it also serves ``POST /control/pause`` and ``POST /control/resume``;
    with *livez*, ``GET /livez``.
    """

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

    app = web.Application(client_max_size=16 * 1024)
    app.router.add_get("/", page)
    app.router.add_get("/metrics", make_aiohttp_handler(registry_for(snapshot)))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    if control is not None:
        _add_control(app, snapshot, control)
    if livez is not None:
        _add_livez(app, livez)
    return app


def _add_livez(app: web.Application, livez: LivezSource) -> None:
    """``GET /livez``: 200 while the rules hold, 503 once they decided a restart."""

    async def verdict(request: web.Request) -> web.Response:
        document = livez()
        status = 200 if document["alive"] else 503
        accept = request.headers.get("Accept", "")
        if "text/plain" in accept and "json" not in accept:
            return web.Response(text=f"{document['text']}\n", status=status, headers=NO_STORE)
        return web.json_response(document, status=status, headers=NO_STORE)

    app.router.add_get(LIVEZ_PATH, verdict)


def _add_control(app: web.Application, snapshot: SnapshotSource, control: Control) -> None:
    """``POST /control/pause`` and ``/control/resume``; each answers JSON."""

    async def body_of(request: web.Request) -> dict[str, Any] | web.Response:
        refusal = control.access.refusal(
            request.headers.get("Authorization"), request.headers.get("Host")
        )
        if refusal is not None:
            headers = (
                {"WWW-Authenticate": 'Bearer realm="azwatch"'} if refusal.status == 401 else {}
            )
            logger.warning(
                "control request refused (%d): %s",
                refusal.status,
                refusal.message,
                extra={"event": "control_refused", "fields": {"path": request.path}},
            )
            return _error(refusal.status, refusal.message, headers)
        if request.content_type != "application/json":
            return _error(415, "send the request as JSON (Content-Type: application/json)")
        try:
            body = json.loads(await request.text())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the request body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object")
        name = body.get("container")
        if not isinstance(name, str) or not name:
            return _error(400, 'say which container: {"container": NAME}')
        if snapshot().container(name) is None:
            return _error(404, f"{name} is not watched")
        return body

    async def pause(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        try:
            seconds = parse_duration(body.get("for"))
            reason = clean_reason(body.get("reason"))
        except ControlError as error:
            return _error(400, str(error))
        name = body["container"]
        wall = snapshot().time
        if not await _submitted(control, Pause(name, control.clock() + seconds, reason)):
            return _error(503, "the decision task did not take the request in time")
        return web.json_response(
            {
                "container": name,
                "paused": True,
                "seconds": seconds,
                "until": wall + seconds,
                "reason": reason,
            }
        )

    async def resume(request: web.Request) -> web.Response:
        body = await body_of(request)
        if isinstance(body, web.Response):
            return body
        name = body["container"]
        view = snapshot().container(name)
        was_paused = view is not None and view.paused
        if not await _submitted(control, Resume(name)):
            return _error(503, "the decision task did not take the request in time")
        return web.json_response({"container": name, "paused": False, "was_paused": was_paused})

    app.router.add_post("/control/pause", pause)
    app.router.add_post("/control/resume", resume)


async def _submitted(control: Control, message: Pause | Resume) -> bool:
    try:
        await control.submit(message)
    except TimeoutError:
        return False
    return True


def _control_mode(control: Control | None) -> str:
    """What the log says about /control (never the token itself)."""
    if control is None:
        return "no /control"
    access = control.access
    if access.token is not None:
        return "/control (pause, resume) needs CONTROL_TOKEN"
    if access.open_on_loopback:
        return "/control (pause, resume) open on loopback"
    return f"/control off: HTTP_HOST={access.http_host} is not loopback and CONTROL_TOKEN is unset"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def serve(
    snapshot: SnapshotSource,
    host: str,
    port: int,
    control: Control | None = None,
    livez: LivezSource | None = None,
    *,
    task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; report the bound (host, port) through *task_status*."""
    runner = web.AppRunner(
        build_app(snapshot, control, livez), handle_signals=False, shutdown_timeout=2.0
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        address = (str(bound[0]), int(bound[1]))
        logger.info(
            "HTTP endpoint on http://%s:%d (/, /metrics, /healthz, /status%s); %s",
            *address,
            "" if livez is None else f", {LIVEZ_PATH}",
            _control_mode(control),
            extra={"event": "http_started"},
        )
        task_status.started(address)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await runner.cleanup()
