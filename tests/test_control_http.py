"""``/`` and ``/control`` of the HTTP endpoint, with hand-built snapshots and a recording
callback in place of the decision task.

The server listens on 127.0.0.1 in every case; what differs is the ``HTTP_HOST`` its
:class:`~azwatch.control.ControlAccess` is told, which is what decides who may pause.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from loopback import start_on_loopback, stop
from test_snapshot_http import SNAPSHOT, VIEW

from azwatch.control import ControlAccess
from azwatch.http import Control, build_app
from azwatch.snapshot import PauseView, RestartView
from azwatch.supervisor import Pause, Resume

TOKEN = "s3cret-control-token-0123456789"
CLOCK = 5000.0  # the supervisor's clock, as the watcher would hand it


class Recorder:
    """Stands in for the decision task: records what it is handed."""

    def __init__(self) -> None:
        self.messages: list[Pause | Resume] = []

    async def __call__(self, message: Pause | Resume) -> None:
        self.messages.append(message)


@asynccontextmanager
async def serving(
    http_host: str = "127.0.0.1", token: str | None = None
) -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    control = Control(recorder, lambda: CLOCK, ControlAccess(http_host, token))
    runner, port = await start_on_loopback(build_app(lambda: SNAPSHOT, control))
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        await stop(runner)


async def post(
    url: str, body: Any, headers: dict[str, str] | None = None, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if raw is not None:
            request = session.post(url, data=raw, headers=headers)
        else:
            request = session.post(url, json=body, headers=headers)
        async with request as reply:
            return reply.status, json.loads(await reply.text()), dict(reply.headers)


async def test_pause_on_loopback_needs_no_token_and_reaches_the_decision_task() -> None:
    async with serving() as (url, recorder):
        body = {"container": "node", "for": "2h", "reason": "db resync"}
        status, reply, _ = await post(f"{url}/control/pause", body)
        assert status == 200, reply
        assert reply == {
            "container": "node",
            "paused": True,
            "seconds": 7200.0,
            "until": SNAPSHOT.time + 7200,
            "reason": "db resync",
        }
        status, reply, _ = await post(f"{url}/control/resume", {"container": "node"})
        assert (status, reply) == (200, {"container": "node", "paused": False, "was_paused": False})
    assert recorder.messages == [Pause("node", CLOCK + 7200, "db resync"), Resume("node")]


async def test_a_pause_without_for_lasts_an_hour() -> None:
    async with serving() as (url, recorder):
        status, reply, _ = await post(f"{url}/control/pause", {"container": "node"})
    assert (status, reply["seconds"]) == (200, 3600.0)
    assert recorder.messages == [Pause("node", CLOCK + 3600, "")]


async def test_off_loopback_a_pause_needs_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving("0.0.0.0", TOKEN) as (url, recorder):
        target = f"{url}/control/pause"
        status, reply, headers = await post(target, {"container": "node"})
        assert (status, reply["error"]) == (
            401,
            "control needs Authorization: Bearer <CONTROL_TOKEN>",
        )
        assert headers["WWW-Authenticate"] == 'Bearer realm="azwatch"'
        wrong = {"Authorization": "Bearer not-the-token-0123456789"}
        status, reply, _ = await post(target, {"container": "node"}, wrong)
        assert (status, reply["error"]) == (401, "wrong control token")
        status, reply, _ = await post(f"{url}/control/resume", {"container": "node"}, wrong)
        assert status == 401
        assert recorder.messages == []  # a refused request changes nothing
        right = {"Authorization": f"Bearer {TOKEN}"}
        status, reply, _ = await post(target, {"container": "node", "for": "30m"}, right)
        assert status == 200, reply
        status, _, _ = await post(f"{url}/control/resume", {"container": "node"}, right)
        assert status == 200
    assert recorder.messages == [Pause("node", CLOCK + 1800, ""), Resume("node")]
    assert TOKEN not in caplog.text
    assert "control request refused (401)" in caplog.text


async def test_off_loopback_without_a_token_control_is_off() -> None:
    async with serving("0.0.0.0") as (url, recorder):
        status, reply, _ = await post(f"{url}/control/pause", {"container": "node"})
    assert status == 403
    assert reply["error"] == (
        "control is off: HTTP_HOST=0.0.0.0 is not a loopback address and CONTROL_TOKEN is not set"
    )
    assert recorder.messages == []


async def test_on_loopback_a_request_naming_another_host_is_refused() -> None:
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) cannot pause."""
    async with serving() as (url, recorder):
        headers = {"Host": "evil.example:9616"}
        status, _, _ = await post(f"{url}/control/pause", {"container": "node"}, headers)
    assert status == 403
    assert recorder.messages == []


async def test_a_token_set_on_loopback_is_required_there_too() -> None:
    async with serving("127.0.0.1", TOKEN) as (url, recorder):
        status, _, _ = await post(f"{url}/control/pause", {"container": "node"})
        assert status == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        status, _, _ = await post(f"{url}/control/pause", {"container": "node"}, right)
        assert status == 200
    assert len(recorder.messages) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"container": "node", "for": "2d"}, 400, "pause duration '2d': expected a duration"),
        ({"container": "node", "for": "25h"}, 400, "pause duration '25h': at most 24h"),
        ({"container": "node", "for": 0}, 400, "pause duration 0: expected more than 0s"),
        ({"container": "node", "reason": "x" * 300}, 400, "reason: at most 200 characters"),
        ({"container": "other"}, 404, "other is not watched"),
        ({}, 400, 'say which container: {"container": NAME}'),
        (["node"], 400, "the request body must be a JSON object"),
    ],
)
async def test_bad_pause_requests_are_clear_errors(body: Any, status: int, error: str) -> None:
    async with serving() as (url, recorder):
        got, reply, _ = await post(f"{url}/control/pause", body)
    assert got == status
    assert reply["error"].startswith(error)
    assert recorder.messages == []


async def test_control_takes_json_only() -> None:
    """A form post (what a page of another site can send without asking) is refused."""
    async with serving() as (url, recorder):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, reply, _ = await post(f"{url}/control/pause", None, form, raw=b"container=node")
        assert (status, reply["error"]) == (
            415,
            "send the request as JSON (Content-Type: application/json)",
        )
        broken = {"Content-Type": "application/json"}
        status, reply, _ = await post(f"{url}/control/pause", None, broken, raw=b"{nope")
        assert (status, reply["error"]) == (400, "the request body is not JSON")
    assert recorder.messages == []


async def test_without_a_control_there_is_no_control_endpoint() -> None:
    runner, port = await start_on_loopback(build_app(lambda: SNAPSHOT))
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(f"http://127.0.0.1:{port}/control/pause", json={}) as reply,
        ):
            assert reply.status == 404
    finally:
        await stop(runner)


async def get(url: str) -> tuple[int, str, dict[str, str]]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
        return reply.status, await reply.text(), dict(reply.headers)


async def test_the_page_is_served_at_the_root_and_may_load_nothing() -> None:
    async with serving() as (url, _):
        status, text, headers = await get(f"{url}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert '<section class="card" id="container-node">' in text


async def test_status_shows_the_pause_and_the_recent_restarts() -> None:
    view = replace(
        VIEW,
        pause=PauseView(SNAPSHOT.time - 60, SNAPSHOT.time + 540, 540.0, "upgrade"),
        recent_restarts=(RestartView(1_700_000_000.0, "stall", "d", False, "yes: best #9"),),
    )
    snapshot = replace(SNAPSHOT, containers=(view,))
    runner, port = await start_on_loopback(build_app(lambda: snapshot))
    try:
        _, text, _ = await get(f"http://127.0.0.1:{port}/status")
        _, metrics, _ = await get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await stop(runner)
    node = json.loads(text)["containers"]["node"]
    assert node["paused"] is True
    assert node["pause"] == {
        "since": SNAPSHOT.time - 60,
        "until": SNAPSHOT.time + 540,
        "left": 540.0,
        "reason": "upgrade",
    }
    assert node["recent_restarts"] == [
        {
            "time": 1_700_000_000.0,
            "rule": "stall",
            "detail": "d",
            "dry_run": False,
            "verdict": "yes: best #9",
        }
    ]
    assert 'azwatch_paused{container="node"} 1.0' in metrics
