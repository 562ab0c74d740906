"""``azwatch status`` as a process, against a watcher's HTTP app showing a hand-built
snapshot (or against something that is not a watcher at all).

It needs no CONTAINER_NAME: it asks the watcher.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
from aiohttp import web
from loopback import start_on_loopback, stop
from test_cli import without_containers
from test_snapshot_http import SNAPSHOT, VIEW

from azwatch.http import build_app
from azwatch.remote import COLUMNS, status_rows, table
from azwatch.snapshot import DecisionView, Snapshot, document

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
async def watcher(snapshot: Snapshot = TWO) -> AsyncIterator[int]:
    runner, port = await start_on_loopback(build_app(lambda: snapshot))
    try:
        yield port
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


async def test_status_prints_one_line_per_container_without_container_name() -> None:
    async with watcher() as port:
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
