"""Follow one container's log live, across runs, re-attaching whenever the stream ends.

A follow ends silently for many reasons (restart, stop, recreate, daemon gone, a socket proxy
cutting an idle stream) and can also hang without ending (json-file rotation). The follower
treats every end the same way: re-inspect the container by name, then re-open the log where
it left off. A :class:`~azwatch.logcursor.LogCursor` keeps that exact: a run's lines are those
stamped after the previous run's end, and the lines a re-opened log re-delivers (``since`` is
inclusive) are skipped exactly, however many share one timestamp.

Each attach reads in two requests: first the log as it is (no follow: the response ends at
the present), then, once :class:`~azwatch.events.LogCaughtUp` is emitted, the live stream
from where the first one ended. A container that is not running is waited for (woken by
Docker events), never spun on.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp
import anyio

from azwatch.config import Config
from azwatch.containers import (
    API_TIMEOUT,
    DOCKER_TRANSIENT,
    ContainerInfo,
    describe_error,
    docker_since,
    inspect,
    on_loop_clock,
)
from azwatch.events import ContainerStatus, Event, LogCaughtUp, LogUnreadable, RunStarted
from azwatch.logcursor import LogCursor, resume
from azwatch.logparse import LineAssembler, parse_block

logger = logging.getLogger("azwatch.follower")

#: Hands a container's events on. The cursor has moved past their lines already, so an
#: emit that has to wait shields its wait: a hand-over is never cut short. (Not shielding
#: every call saves a cancel scope per batch; the usual emit does not wait at all.)
Emit = Callable[[str, Sequence[Event]], Awaitable[None]]

#: Longest wait before looking at a container again when no Docker event wakes the follower.
RECHECK_INTERVAL = 30.0
#: Re-attach back-off: first delay and cap (seconds).
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 30.0


@dataclass
class FollowStatus:
    """What the follower is doing, for ``/healthz`` and ``/status`` (written only here)."""

    attached: bool = False
    #: Why the follower is not attached: "stopped", "missing", "docker", "driver"; or None.
    waiting: str | None = None
    detail: str = "starting"
    last_line_at: float | None = None
    attached_at: float | None = None
    attaches: int = 0
    lines: int = 0
    lines_cut: int = 0
    silences: int = 0


class LogFollower:
    """Follows container *name*; sends parsed events through *emit*.

    ``wake()`` is called by the Docker events task when something happened to the container,
    so a waiting follower looks again at once instead of at its next periodic check.
    """

    def __init__(
        self,
        docker: aiodocker.Docker,
        name: str,
        config: Config,
        emit: Emit,
        *,
        clock: Callable[[], float] | None = None,
        on_inspect: Callable[[str, ContainerInfo], Awaitable[None]] | None = None,
    ) -> None:
        self.docker = docker
        self.name = name
        self.config = config
        self.emit = emit
        self.clock = clock or loop_time
        self.on_inspect = on_inspect
        self.status = FollowStatus()
        self._cursor: LogCursor | None = None
        self._wake = anyio.Event()
        self._problem: str | None = None

    def wake(self) -> None:
        """Look at the container again now."""
        self._wake.set()

    async def run(self) -> None:
        """Follow forever (until cancelled)."""
        failures = 0
        while True:
            self._wake = anyio.Event()
            try:
                info = await inspect(self.docker, self.name)
            except DOCKER_TRANSIENT as error:
                failures += 1
                self._note("docker", f"{describe_error(error)}; retrying")
                await self._pause(_backoff(failures))
                continue
            if info is not None and self.on_inspect is not None:
                await self.on_inspect(self.name, info)
            if info is None:
                await self.emit(self.name, [ContainerStatus(False, "missing")])
                self._note("missing", "no such container; waiting for it to appear")
                await self._pause(RECHECK_INTERVAL)
                continue
            if not info.observable:
                await self.emit(self.name, [ContainerStatus(False, info.describe())])
                self._note("stopped", f"container is {info.describe()}; waiting for it to start")
                await self._pause(RECHECK_INTERVAL)
                continue
            await self.emit(self.name, [RunStarted(info.run_key, self._monotonic(info))])
            if not info.logs_readable:
                why = f"log driver {info.log_driver!r} cannot be read through the Engine API"
                await self.emit(self.name, [LogUnreadable(why)])
                self._note("driver", f"{why}; azwatch holds (use json-file, local or journald)")
                await self._pause(RECHECK_INTERVAL)
                continue
            lines_before = self.status.lines
            try:
                got_lines = await self._follow(info)
            except DOCKER_TRANSIENT as error:
                if isinstance(error, aiodocker.DockerError) and error.status == 501:
                    await self.emit(self.name, [LogUnreadable(describe_error(error))])
                    self._note("driver", f"{describe_error(error)}; azwatch holds")
                    await self._pause(RECHECK_INTERVAL)
                    continue
                # A stream that brought lines and was then cut (a socket proxy's idle
                # timeout ends it without its last chunk) worked: re-attach at once.
                got_lines = self.status.lines > lines_before
                if got_lines:
                    logger.info(
                        "%s: log stream cut (%s); re-attaching",
                        self.name,
                        describe_error(error),
                        extra={"container": self.name, "event": "follow_cut"},
                    )
                else:
                    self._note("docker", f"log stream failed: {describe_error(error)}")
            finally:
                self.status.attached = False
            failures = 0 if got_lines else failures + 1
            await self._pause(_backoff(failures) if failures else BACKOFF_FIRST)

    def _monotonic(self, info: ContainerInfo) -> float:
        """The run's start on the monotonic clock (it may be long ago)."""
        now = self.clock()
        return now if info.started_ns is None else on_loop_clock(info.started_ns, now)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to *seconds*, or until woken by a Docker event."""
        with anyio.move_on_after(seconds):
            await self._wake.wait()

    def _note(self, kind: str, detail: str) -> None:
        """Record why the follower is not attached; log it once per change."""
        self.status.waiting, self.status.detail = kind, detail
        if self._problem != detail:
            level = logging.WARNING if kind in ("docker", "driver", "missing") else logging.INFO
            logger.log(
                level,
                "%s: %s",
                self.name,
                detail,
                extra={"container": self.name, "event": f"follow_{kind}"},
            )
            self._problem = detail

    async def _follow(self, info: ContainerInfo) -> bool:
        """Read the current run's log up to the present, say so, then stream it live until
        the stream ends or falls silent.

        The first request does not follow, so its response ends at the present: everything
        it holds is history, and :class:`LogCaughtUp` goes out when it ends. The live stream
        then opens where the history ended; the cursor skips what both requests deliver.
        Returns whether any new line arrived.
        """
        self.status.attached, self.status.waiting = True, None
        self.status.attached_at = self.clock()
        self.status.attaches += 1
        if self._problem is not None:
            logger.info(
                "%s: following the log again",
                self.name,
                extra={"container": self.name, "event": "follow_attached"},
            )
            self._problem = None
        self.status.detail = "following"
        got_history, ended = await self._read(info, follow=False)
        if not ended:
            return got_history
        await self.emit(self.name, [LogCaughtUp()])
        got_live, _ = await self._read(info, follow=True)
        return got_history or got_live

    async def _read(self, info: ContainerInfo, *, follow: bool) -> tuple[bool, bool]:
        """Apply the run's lines that are new, from one request for its log.

        Returns whether any new line arrived, and whether the response ended (rather than
        falling silent).
        """
        cursor = self._cursor = resume(self._cursor, info.run_key, info.previous_run_end_ns)
        # `tail` bounds every request: with it the daemon reads the log backwards from its end
        # instead of scanning a huge file from the start to find `since`.
        params: dict[str, Any] = {
            "timestamps": True,
            "tail": str(self.config.log_tail),
            "stdout": True,
            "stderr": True,
            "follow": follow,
        }
        if cursor.since_ns is not None:
            params["since"] = docker_since(cursor.since_ns)
        # One assembler per stream, so a partial stdout line never swallows stderr lines.
        assemblers = {kind: LineAssembler(timestamped=True) for kind in (0, 1, 2)}
        lines_before = self.status.lines
        # aiodocker's own follow never releases its response when the reader stops early
        # (silence, shutdown), which leaks the connection until garbage collection. Reading
        # the frames here lets us close the response ourselves, whatever ends the stream.
        async with contextlib.AsyncExitStack() as stack:
            # The headers come at once from a working daemon; one that accepted the connection
            # and never answers would hold this attach for ever (the stream has no total).
            with anyio.fail_after(API_TIMEOUT):
                response = await stack.enter_async_context(
                    self.docker._query(  # the documented way to own a response's lifetime
                        f"containers/{info.id}/logs",
                        params=params,
                        timeout=aiohttp.ClientTimeout(sock_connect=API_TIMEOUT),
                    )
                )
            frames = FrameReader(response, tty=info.tty)
            timeout = self.config.log_silence_timeout
            try:
                # One scope for the whole stream; the watchdog cancels it after a silence.
                with (
                    anyio.CancelScope() as silence,
                    SilenceWatchdog(silence, timeout) as watchdog,
                ):
                    await self._apply_frames(frames, assemblers, cursor, watchdog)
            finally:
                response.close()
        if silence.cancelled_caught:
            self.status.silences += 1
            logger.info(
                "%s: no log line for %gs; re-attaching",
                self.name,
                timeout,
                extra={"container": self.name, "event": "follow_silent"},
            )
        return self.status.lines > lines_before, not silence.cancelled_caught

    async def _apply_frames(
        self,
        frames: FrameReader,
        assemblers: dict[int, LineAssembler],
        cursor: LogCursor,
        watchdog: SilenceWatchdog,
    ) -> None:
        """Apply the new lines of *frames* until the stream ends, noting each batch."""
        while (pieces := await frames.next()) is not None:
            blocks = [
                block for kind, text in pieces for block in assemblers[kind].feed_blocks(text)
            ]
            self.status.lines_cut = sum(a.lines_cut for a in assemblers.values())
            if blocks:
                fresh, cursor = cursor.fresh_block("\n".join(blocks))
                self._cursor = cursor
                if fresh is not None:
                    self.status.lines += fresh.count("\n") + 1
                    self.status.last_line_at = self.clock()
                    events = parse_block(fresh)
                    if events:
                        await self.emit(self.name, events)
            watchdog.reset()


class SilenceWatchdog:
    """Cancels *scope* once :meth:`reset` has not been called for *timeout* seconds.

    A stream's silence deadline moves with every batch of lines. Moving a cancel scope's
    deadline cancels and re-creates its timer each time; here a batch only stores the time,
    and one timer, which fires about once per *timeout*, looks at it (as the scope's own
    deadline timer would, it cancels the scope from the event loop).
    """

    def __init__(self, scope: anyio.CancelScope, timeout: float) -> None:
        self._scope = scope
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> SilenceWatchdog:
        self._timer = self._loop.call_at(self._last + self._timeout, self._check)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def reset(self) -> None:
        """Something arrived now: the silence starts again."""
        self._last = self._loop.time()

    def _check(self) -> None:
        due = self._last + self._timeout
        if self._loop.time() >= due:
            self._timer = None
            self._scope.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)


def _backoff(failures: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** min(failures, 16))


def loop_time() -> float:
    """The event loop's clock: what ``anyio.current_time()`` reads, without its per-call
    look-up of the async backend (measurable on the hot path of many streams)."""
    return asyncio.get_running_loop().time()


class FrameReader:
    """Docker's log stream, decoded, as many frames at a time as have arrived.

    Without a TTY each frame is an 8-byte header (stream type, three zero bytes, big-endian
    length) and its payload; with a TTY the stream is raw text. Reading everything already
    buffered at once lets a burst (a node catching up prints hundreds of lines a second) be
    parsed and applied as one batch. Each stream gets its own incremental UTF-8 decoder that
    replaces bad bytes: a multibyte character cut at a frame boundary is reassembled, and
    invalid bytes become U+FFFD instead of vanishing.
    """

    def __init__(self, response: aiohttp.ClientResponse, *, tty: bool) -> None:
        self._content = response.content
        self._tty = tty
        self._buffer = bytearray()
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")(errors="replace") for kind in (0, 1, 2)
        }

    async def next(self) -> list[tuple[int, str]] | None:
        """The (stream, text) pieces that arrived, at least one; ``None`` at the end."""
        while True:
            data = await self._content.readany()
            if not data:
                return None  # a frame cut off by the end of the stream is dropped
            if self._tty:
                text = self._decoders[1].decode(data)
                if text:
                    return [(1, text)]
                continue
            pieces = self._frames(data)
            if pieces:
                return pieces

    def _frames(self, data: bytes) -> list[tuple[int, str]]:
        buffer = self._buffer
        buffer += data
        pieces: list[tuple[int, str]] = []
        start = 0
        while len(buffer) - start >= 8:
            kind, length = struct.unpack_from(">BxxxL", buffer, start)
            end = start + 8 + length
            if end > len(buffer):
                break
            decoder = self._decoders.get(kind, self._decoders[0])
            text = decoder.decode(bytes(buffer[start + 8 : end]))
            if text:
                pieces.append((kind, text))
            start = end
        del buffer[:start]
        return pieces
