"""The follower: frame decoding without a container, then following a real one.

FrameReader reads a real HTTP response from an aiohttp server on 127.0.0.1 that sends
Docker's multiplexed frames in awkward pieces. The Docker tests follow a fake node through a
TCP front for the Engine's socket that can cut the log streams passing through it, as a
socket proxy or a daemon going away does; they check what the follower applied against what
``docker logs`` holds. Which lines are new is the cursor's business: tests/test_logcursor.py.
"""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiodocker
import aiohttp
import anyio
import pytest
from aiohttp import web
from anyio.abc import SocketStream
from dockerkit import FakeNode, FakeNodeFactory, docker
from loopback import start_on_loopback, stop

import azwatch.follower
from azwatch.config import Config
from azwatch.events import Event, LogCaughtUp
from azwatch.follower import FrameReader, LogFollower, SilenceWatchdog
from azwatch.logcursor import split_stamp
from azwatch.logparse import LogEvent


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


async def read_all(pieces: list[bytes], *, tty: bool = False) -> list[tuple[int, str]]:
    """Serve *pieces* as one chunked response and read it with a FrameReader."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await anyio.sleep(0.01)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner, port = await start_on_loopback(app)
    out: list[tuple[int, str]] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as r,
        ):
            reader = FrameReader(r, tty=tty)
            while (got := await reader.next()) is not None:
                out.extend(got)
    finally:
        await stop(runner)
    return out


async def test_frames_split_anywhere_are_reassembled() -> None:
    """Headers and payloads cut across network reads still give whole frames, in order."""
    data = frame(2, b"first line\n") + frame(1, b"on stdout\n") + frame(2, b"second\n")
    pieces = [data[:3], data[3:15], data[15:16], data[16:]]
    assert await read_all(pieces) == [(2, "first line\n"), (1, "on stdout\n"), (2, "second\n")]


async def test_utf8_is_decoded_per_stream_with_replacement() -> None:
    """A character cut between two frames of a stream is rejoined; a bad byte becomes U+FFFD."""
    euro = "€".encode()
    data = (
        frame(2, b"price " + euro[:1])
        + frame(1, b"other stream\n")
        + frame(2, euro[1:] + b" \xff!\n")
    )
    got = await read_all([data])
    assert "".join(text for kind, text in got if kind == 2) == "price € \ufffd!\n"
    assert [text for kind, text in got if kind == 1] == ["other stream\n"]


async def test_a_frame_cut_by_the_end_of_the_stream_is_dropped() -> None:
    """A truncated last frame (daemon gone mid-frame) ends the stream without garbage."""
    data = frame(2, b"whole\n") + frame(2, b"never finished\n")[:10]
    assert await read_all([data]) == [(2, "whole\n")]


async def test_tty_streams_are_raw_text() -> None:
    """With a TTY there are no frame headers."""
    assert "".join(t for _, t in await read_all([b"a\r\nb", b"\r\n"], tty=True)) == "a\r\nb\r\n"


# --- the silence watchdog --------------------------------------------------------------


async def test_silence_cancels_the_scope_one_timeout_after_the_last_reset() -> None:
    """Resets keep the stream alive; the scope is cancelled a full timeout after the last."""
    timeout = 0.2
    with anyio.CancelScope() as scope, SilenceWatchdog(scope, timeout) as watchdog:
        for _ in range(6):  # 0.3 s of batches, each well inside the timeout
            await anyio.sleep(0.05)
            watchdog.reset()
        last_reset = anyio.current_time()
        await anyio.sleep(5)
    assert scope.cancelled_caught
    assert timeout <= anyio.current_time() - last_reset < timeout + 0.5


async def test_silence_watchdog_stops_with_its_block() -> None:
    """Once its block is left, the watchdog cancels nothing."""
    with anyio.CancelScope() as scope:
        with SilenceWatchdog(scope, 0.05):
            pass
        await anyio.sleep(0.2)
    assert not scope.cancel_called


# --- following a real container ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mark:
    """A LogCaughtUp as the test saw it: in which attach, when, after how many lines."""

    attach: int
    at_ns: int
    lines_before: int


class Recorder:
    """What a follower applied, in order: every line it handed to the parser (with Docker's
    timestamp), and where each LogCaughtUp came among them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lines: list[str] = []
        self.marks: list[Mark] = []
        self.follower: LogFollower | None = None
        parse_block = azwatch.follower.parse_block

        def recording(block: str) -> list[LogEvent]:
            self.lines += block.split("\n")
            return parse_block(block)

        monkeypatch.setattr(azwatch.follower, "parse_block", recording)

    async def emit(self, name: str, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, LogCaughtUp):
                assert self.follower is not None
                attach = self.follower.status.attaches
                self.marks.append(Mark(attach, time.time_ns(), len(self.lines)))

    def live_lines(self) -> int:
        """Lines applied since the latest LogCaughtUp."""
        return len(self.lines) - self.marks[-1].lines_before if self.marks else 0


@asynccontextmanager
async def following(node: FakeNode, url: str, recorder: Recorder) -> AsyncIterator[LogFollower]:
    """Run a follower of *node* through the Engine at *url* until the block ends."""
    config = Config(container_names=(node.name,), log_tail=100_000)
    client = aiodocker.Docker(url=url)
    follower = recorder.follower = LogFollower(client, node.name, config, recorder.emit)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(follower.run)
            try:
                yield follower
            finally:
                group.cancel_scope.cancel()
    finally:
        await client.close()


def logged(node: FakeNode) -> list[str]:
    """The node's log as ``docker logs --timestamps`` gives it (the node writes to stderr)."""
    proc = docker("logs", "--timestamps", node.name)
    assert proc.stdout == ""
    return proc.stderr.removesuffix("\n").split("\n") if proc.stderr else []


def stamp_ns(line: str) -> int:
    ns = split_stamp(line)[0]
    assert ns is not None, line
    return ns


@dataclass(eq=False)
class _Connection:
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    request: bytes = b""


class CuttingFront:
    """A TCP front for the Engine's socket that cuts the log streams through it on demand."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.url = ""
        self._connections: set[_Connection] = set()

    def cut_logs(self) -> int:
        """Cut every connection whose latest request was for a log; how many were cut."""
        cut = [c for c in self._connections if b"/logs?" in c.request]
        for connection in cut:
            connection.scope.cancel()
        return len(cut)

    async def serve(self, client: SocketStream) -> None:
        connection = _Connection()
        self._connections.add(connection)
        try:
            with connection.scope:
                async with (
                    client,
                    await self._connect() as upstream,
                    anyio.create_task_group() as pumps,
                ):
                    pumps.start_soon(self._pump, client, upstream, connection, True)
                    pumps.start_soon(self._pump, upstream, client, connection, False)
        finally:
            self._connections.discard(connection)

    async def _connect(self) -> SocketStream:
        if self.engine.startswith("unix://"):
            return await anyio.connect_unix(self.engine.removeprefix("unix://"))
        host, _, port = self.engine.removeprefix("tcp://").rpartition(":")
        return await anyio.connect_tcp(host, int(port))

    async def _pump(
        self, source: SocketStream, sink: SocketStream, connection: _Connection, requests: bool
    ) -> None:
        try:
            async for data in source:
                if requests and data.startswith(b"GET "):
                    connection.request = data.split(b"\r\n", 1)[0]
                await sink.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        connection.scope.cancel()  # one side is gone: so is the connection


@asynccontextmanager
async def cutting_front(engine: str) -> AsyncIterator[CuttingFront]:
    front = CuttingFront(engine)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    front.url = f"tcp://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, front.serve)
        try:
            yield front
        finally:
            group.cancel_scope.cancel()


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await anyio.sleep(0.02)


async def test_caught_up_comes_after_the_history_and_before_the_live_lines(
    fake_node: FakeNodeFactory, docker_engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attached to a node with a long log, the follower applies all of it, says it caught up,
    then applies what is written from then on: every line written before the attach comes
    before LogCaughtUp, every line after it was written after the attach began."""
    node = fake_node(STEP=50, TICK=0.1, STATUS_EVERY=1)
    await anyio.to_thread.run_sync(lambda: node.wait_best(2500, timeout=60))
    history = await anyio.to_thread.run_sync(logged, node)
    recorder = Recorder(monkeypatch)
    attached_ns = time.time_ns()
    async with following(node, docker_engine, recorder):
        with anyio.fail_after(30):
            await until(lambda: recorder.live_lines() >= 200)
    [mark] = recorder.marks
    assert mark.attach == 1
    before, after = recorder.lines[: mark.lines_before], recorder.lines[mark.lines_before :]
    assert len(history) > 1500
    assert before[: len(history)] == history
    assert all(stamp_ns(line) >= attached_ns for line in after)
    written = await anyio.to_thread.run_sync(logged, node)
    assert recorder.lines == written[: len(recorder.lines)]


async def test_each_attach_catches_up_once_and_no_line_is_applied_twice(
    fake_node: FakeNodeFactory, docker_engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log streams cut while lines flow are re-attached: each attach says once that it
    caught up, and every line of the log is applied exactly once, in order."""
    node = fake_node(STEP=20, TICK=0.1, STATUS_EVERY=1)
    recorder = Recorder(monkeypatch)
    async with (
        cutting_front(docker_engine) as front,
        following(node, front.url, recorder) as follower,
    ):
        with anyio.fail_after(60):
            for attach in range(1, 5):
                await until(
                    lambda n=attach: len(recorder.marks) >= n and recorder.live_lines() >= 50
                )
                if attach < 4:
                    assert front.cut_logs() >= 1
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
            await anyio.sleep(1)  # the node's last tick
            written = await anyio.to_thread.run_sync(logged, node)
            await until(lambda: len(recorder.lines) >= len(written))
        assert follower.status.attaches == 4
    assert [mark.attach for mark in recorder.marks] == [1, 2, 3, 4]
    assert recorder.lines == written
