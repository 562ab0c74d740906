"""The HTTP endpoint (``HTTP_PORT``): ``/metrics``, ``/healthz`` and ``/status``.

Served by aiohttp from the watcher's own event loop and task group, never from a thread.
Binds to ``127.0.0.1`` unless ``HTTP_HOST`` says otherwise.

``/healthz`` answers 200 while the watcher is working and 503 with a JSON list of reasons
when it is not: a log stream that brings nothing from a running container, a Docker Engine
that cannot be reached, a head poller that stopped polling, a decision task that stopped
deciding. An unhealthy *node* is not an unhealthy watcher: that is ``/status``'s business.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from azwatch.metrics import registry_for
from azwatch.policy import Restart, effective_cooldown
from azwatch.progress import format_duration

if TYPE_CHECKING:
    from azwatch.watcher import Tracked, Watcher

logger = logging.getLogger("azwatch.http")


def health_problems(watcher: Watcher) -> list[str]:
    """Why the watcher is not working right now (empty: it is)."""
    now = watcher.clock()
    config = watcher.config
    problems: list[str] = []
    if watcher.last_evaluation_at is None or now - watcher.last_evaluation_at > (
        2 * config.check_interval + 5
    ):
        problems.append("the decision task has not evaluated recently")
    polled = watcher.head.last_poll_at
    if polled is None or now - polled > 2 * config.rpc_poll_interval + config.rpc_timeout + 5:
        problems.append("the head poller has not polled recently")
    for name, tracked in sorted(watcher.tracked.items()):
        problem = _follow_problem(tracked, now, config.log_silence_timeout)
        if problem is not None:
            problems.append(f"{name}: {problem}")
    return problems


def _follow_problem(tracked: Tracked, now: float, silence: float) -> str | None:
    status = tracked.follower.status
    if tracked.state.restart_in_flight:
        return None  # the node is being restarted: silence is expected
    if status.attached:
        # A live aleph-node prints at least every 20 s; LOG_SILENCE_TIMEOUT without a line
        # from a running container means the stream (or the node) is stuck.
        last = status.last_line_at if status.last_line_at is not None else status.attached_at
        if last is not None and now - last > silence:
            return f"no log line for {format_duration(now - last)} from a running container"
        return None
    if status.waiting in ("stopped", "missing"):
        return None  # waiting for a container the operator stopped: that is working
    if status.waiting is None:
        return None  # between two attaches
    return status.detail


def status_document(watcher: Watcher) -> dict[str, Any]:
    """The state model and the last decision of every container, as JSON-ready data."""
    now = watcher.clock()
    head = watcher.head
    containers = {name: _container_status(t, now) for name, t in sorted(watcher.tracked.items())}
    return {
        "time": time.time(),
        "dry_run": watcher.config.dry_run,
        "head": {
            "last_poll_age": _age(now, head.last_poll_at),
            "last_ok_age": _age(now, head.last_ok_at),
            "failures": [
                {"endpoint": f.endpoint, "kind": str(f.kind), "detail": f.detail}
                for f in (head.last_result.failures if head.last_result else ())
            ],
        },
        "containers": containers,
        "healthy": not health_problems(watcher),
        "problems": health_problems(watcher),
    }


def _container_status(tracked: Tracked, now: float) -> dict[str, Any]:
    state, run = tracked.state, tracked.state.run
    decision = tracked.decision
    last: dict[str, Any] | None = None
    if decision is not None:
        facts = decision.facts
        last = {
            "action": "restart" if isinstance(decision, Restart) else "hold",
            "rule" if isinstance(decision, Restart) else "reason": (
                str(decision.rule) if isinstance(decision, Restart) else str(decision.reason)
            ),
            "detail": decision.detail,
            "age": _age(now, tracked.decided_at),
            "catch_up_rate": _finite(facts.catch_up_rate),
        }
    follower = tracked.follower.status
    return {
        "running": state.running,
        "status": state.status,
        "run": {
            "id": run.run_id,
            "age": max(0.0, now - run.started_at),
            "best": run.best,
            "best_advanced_age": _age(now, run.best_advanced_at),
            "finalized": run.finalized,
            "major_sync": run.major_sync,
            "producing": run.producing(now),
            "session": run.session,
            "peers": run.peers,
            "fatal": run.fatal,
        },
        "head": state.head,
        "lag": state.lag,
        "restarts": state.restarts,
        "restarts_by_rule": dict(tracked.restarts_by_rule),
        "failed_restarts": tracked.failed_restarts,
        "unhelped_restarts": state.unhelped_restarts,
        "effective_cooldown": effective_cooldown(state, tracked.config),
        "decision": last,
        "log": {
            "attached": follower.attached,
            "waiting": follower.waiting,
            "detail": follower.detail,
            "lines": follower.lines,
            "lines_cut": follower.lines_cut,
            "attaches": follower.attaches,
            "silences": follower.silences,
            "last_line_age": _age(now, follower.last_line_at),
        },
    }


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else round(max(0.0, now - then), 3)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def build_app(watcher: Watcher) -> web.Application:
    """The aiohttp application serving *watcher*."""

    async def healthz(request: web.Request) -> web.Response:
        problems = health_problems(watcher)
        if problems:
            return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
        return web.json_response({"status": "ok"})

    async def status(request: web.Request) -> web.Response:
        return web.json_response(status_document(watcher))

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry_for(watcher)))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/status", status)
    return app


async def serve(
    watcher: Watcher,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; report the bound (host, port) through *task_status*."""
    runner = web.AppRunner(build_app(watcher), handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        address = (str(bound[0]), int(bound[1]))
        logger.info(
            "HTTP endpoint on http://%s:%d (/metrics, /healthz, /status)",
            *address,
            extra={"event": "http_started"},
        )
        task_status.started(address)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await runner.cleanup()
