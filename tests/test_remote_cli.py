"""``azwatch status``, ``pause`` and ``resume`` as processes, against a watcher's HTTP app
showing a hand-built snapshot (or against something that is not a watcher at all).

None of them needs CONTAINER_NAME: they ask the watcher.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import pytest
from aiohttp import web
from loopback import start_on_loopback, stop
from test_cli import without_containers
from test_control_http import CLOCK, Recorder
from test_snapshot_http import SNAPSHOT, VIEW

from azwatch.control import ControlAccess
from azwatch.http import Control, build_app
from azwatch.remote import COLUMNS, status_rows, table
from azwatch.snapshot import DecisionView, PauseView, Snapshot, document
from azwatch.supervisor import Pause, Resume

TOKEN = "cli-control-token-0123456789"

TWO = replace(
    SNAPSHOT,
    containers=(
        VIEW,
        replace(
            VIEW,
            name="validator-with-a-long-name",
            status="exited (exit code 1)",
            running=False,
            best=None,
            head=105_499_290,
            lag=None,
            restarts=11,
            cooldown_left=125.0,
            decision=DecisionView("hold", "container_not_running", "left alone", 1.0, None),
        ),
    ),
)


async def azwatch(*argv: str, **settings: str) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "azwatch", *argv], env=without_containers(**settings), check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@asynccontextmanager
async def watcher(
    snapshot: Snapshot = TWO, *, http_host: str = "127.0.0.1", token: str | None = None
) -> AsyncIterator[tuple[int, Recorder]]:
    recorder = Recorder()
    control = Control(recorder, lambda: CLOCK, ControlAccess(http_host, token))
    runner, port = await start_on_loopback(build_app(lambda: snapshot, control))
    try:
        yield port, recorder
    finally:
        await stop(runner)


def test_status_rows_line_up_like_docker_ps() -> None:
    """A header, then one line per container; each column as wide as its widest cell."""
    assert table(status_rows(document(TWO))) == [
        "NAME                         STATE                  BEST      HEAD        LAG       "
        "DECISION                      COOLDOWN   RESTARTS",
        "node                         running                1000      1003        3         "
        "hold: healthy                 0s         2",
        "validator-with-a-long-name   exited (exit code 1)   unknown   105499290   unknown   "
        "hold: container_not_running   2m05s      11",
    ]
    assert table(status_rows(document(replace(TWO, containers=())))) == [
        "NAME   STATE   BEST   HEAD   LAG   DECISION   COOLDOWN   RESTARTS"
    ]


def test_status_says_which_containers_have_restarts_paused() -> None:
    view = replace(
        VIEW,
        decision=DecisionView("paused", "severe_lag", "lag 500 > 100", 1.0, None),
        pause=PauseView(0, 1, 3540.0, "resync"),
    )
    _, line = table(status_rows(document(replace(TWO, containers=(view,)))))
    assert line.split("   ")[:2] == ["node", "running, restarts paused 59m00s"]
    assert "   paused: severe_lag   " in line


async def test_status_prints_one_line_per_container_without_container_name() -> None:
    async with watcher() as (port, _):
        code, out, err = await azwatch("status", HTTP_PORT=str(port))
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0].split() == list(COLUMNS)
        assert [line.split()[0] for line in lines[1:]] == ["node", "validator-with-a-long-name"]
        code, out, err = await azwatch("status", "--json", "--url", f"http://127.0.0.1:{port}/")
    assert (code, err) == (0, "")
    assert json.loads(out) == json.loads(json.dumps(document(TWO)))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_status_when_nothing_answers_is_one_line_and_exit_3() -> None:
    port = closed_port()
    code, out, err = await azwatch("status", "--url", f"http://127.0.0.1:{port}")
    assert (code, out) == (3, "")
    assert err.startswith(f"azwatch: no watcher answers at http://127.0.0.1:{port}/status: ")
    assert err.count("\n") == 1


async def test_status_of_a_server_that_hangs_times_out_with_exit_3() -> None:
    release = anyio.Event()

    async def hang(request: web.Request) -> web.Response:
        with anyio.move_on_after(10):
            await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/status", hang)
    runner, port = await start_on_loopback(app)
    try:
        code, out, err = await azwatch(
            "status", "--timeout", "0.5", "--url", f"http://127.0.0.1:{port}"
        )
    finally:
        release.set()
        await stop(runner)
    assert (code, out) == (3, "")
    assert (
        err
        == f"azwatch: no watcher answers at http://127.0.0.1:{port}/status: no answer within 0.5s\n"
    )


async def test_status_of_something_that_is_not_the_watcher_is_exit_3() -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def other(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/status", html)
    app.router.add_get("/other/status", other)
    runner, port = await start_on_loopback(app)
    try:
        code, out, err = await azwatch("status", "--url", f"http://127.0.0.1:{port}")
        code_json, _, err_json = await azwatch("status", "--url", f"http://127.0.0.1:{port}/other")
    finally:
        await stop(runner)
    assert (code, out) == (3, "")
    assert err == (
        f"azwatch: http://127.0.0.1:{port}/status did not answer JSON (HTTP 200, text/html): "
        "is this azwatch's HTTP_PORT?\n"
    )
    assert code_json == 3
    assert (
        err_json
        == f"azwatch: http://127.0.0.1:{port}/other/status is not azwatch's status (HTTP 200)\n"
    )


async def test_status_needs_an_endpoint() -> None:
    code, out, err = await azwatch("status")
    assert (code, out) == (2, "")
    assert err == "azwatch: status needs HTTP_PORT (the watcher's endpoint) or --url\n"


async def test_pause_and_resume_reach_the_watcher() -> None:
    async with watcher() as (port, recorder):
        code, out, err = await azwatch(
            "pause", "node", "--for", "2h", "--reason", "db resync", HTTP_PORT=str(port)
        )
        assert (code, err) == (0, "")
        assert out.startswith("paused node for 2h00m00s (until 2023-11-15 00:15:00 UTC)")
        assert out.endswith(": db resync\n")
        code, out, err = await azwatch("resume", "node", HTTP_PORT=str(port))
        assert (code, out, err) == (0, "node was not paused\n", "")
    assert recorder.messages == [Pause("node", CLOCK + 7200, "db resync"), Resume("node")]


async def test_pause_sends_control_token_and_a_refusal_is_exit_1() -> None:
    async with watcher(http_host="0.0.0.0", token=TOKEN) as (port, recorder):
        code, out, err = await azwatch("pause", "node", HTTP_PORT=str(port))
        assert (code, out) == (1, "")
        assert err == (
            "azwatch: pause refused (HTTP 401): "
            "control needs Authorization: Bearer <CONTROL_TOKEN>\n"
        )
        code, out, err = await azwatch(
            "pause", "node", HTTP_PORT=str(port), CONTROL_TOKEN="wrong-token-0123456789"
        )
        assert (code, err) == (1, "azwatch: pause refused (HTTP 401): wrong control token\n")
        assert recorder.messages == []
        code, out, err = await azwatch(
            "pause", "node", "--for", "90s", HTTP_PORT=str(port), CONTROL_TOKEN=TOKEN
        )
        assert (code, err) == (0, "")
        code, out, err = await azwatch("resume", "nobody", HTTP_PORT=str(port), CONTROL_TOKEN=TOKEN)
        assert (code, err) == (1, "azwatch: resume refused (HTTP 404): nobody is not watched\n")
        assert TOKEN not in out + err
    assert recorder.messages == [Pause("node", CLOCK + 90, "")]


@pytest.mark.parametrize(
    ("duration", "said"),
    [
        ("2d", "azwatch: pause duration '2d': expected a duration such as 90s, 30m, 2h or 1h30m\n"),
        ("48h", "azwatch: pause duration '48h': at most 24h\n"),
    ],
)
async def test_a_bad_duration_is_refused_before_asking(duration: str, said: str) -> None:
    async with watcher() as (port, recorder):
        code, out, err = await azwatch("pause", "node", "--for", duration, HTTP_PORT=str(port))
    assert (code, out, err) == (2, "", said)
    assert recorder.messages == []


async def test_pause_when_nothing_answers_is_exit_3() -> None:
    port = closed_port()
    code, out, err = await azwatch("pause", "node", "--url", f"http://127.0.0.1:{port}")
    assert (code, out) == (3, "")
    assert err.startswith(f"azwatch: no watcher answers at http://127.0.0.1:{port}/control/pause")
