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
Docker events), never spun on. A run that ended by itself (Docker's restart policy is
starting it again, or ``RestartCount`` stepped over it) is reported once as
:class:`~azwatch.events.ContainerExited`, with the fatal and entrypoint lines of a run too
short to have been followed.
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
    DOCKER_TRANSIENT,
    ContainerInfo,
    describe_error,
    docker_since,
    engine_deadline,
    inspect,
    on_loop_clock,
)
from azwatch.events import (
    ContainerExited,
    ContainerStatus,
    EntrypointError,
    Event,
    FatalLine,
    LogCaughtUp,
    LogUnreadable,
    RunStarted,
)
from azwatch.logcursor import LogCursor, resume
from azwatch.logparse import LineAssembler, parse_block, parse_lines

logger = logging.getLogger("azwatch.follower")

#: Hands a container's events on. The cursor has moved past their lines already, so an
#: emit that has to wait shields its wait: a hand-over is never cut short. (Not shielding
#: every call saves a cancel scope per batch; the usual emit does not wait at all.)
Emit = Callable[[str, Sequence[Event]], Awaitable[None]]

#: Longest wait before looking at a container again when no Docker event wakes the follower.
RECHECK_INTERVAL = 30.0
#: Why the follower was not attached that only a line can disprove (see ``_opened``).
_BLIND = ("docker", "silent")
#: Re-attach back-off: first delay and cap (seconds).
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 30.0
#: Lines of an ended run read for its last words, and how far before its start they begin
#: (a run's first lines are stamped slightly before its ``StartedAt``).
LAST_WORDS_TAIL = 200
LAST_WORDS_BEFORE_START_NS = 1_000_000_000


@dataclass
class FollowStatus:
    """What the follower is doing, for ``/healthz`` and ``/status`` (written only here)."""

    attached: bool = False
    #: Why the follower is not attached (or, for "docker" and "silent", sees no line yet):
    #: "stopped", "missing", "docker", "driver", "silent" (the latest stream fell silent);
    #: or None.
    waiting: str | None = None
    detail: str = "starting"
    last_line_at: float | None = None
    attached_at: float | None = None
    attaches: int = 0
    lines: int = 0
    lines_cut: int = 0
    silences: int = 0
    #: Since when no container has the watched name (``None``: one has, or not looked yet).
    missing_since: float | None = None


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
        #: The run whose end was reported (an exit is reported once).
        self._exit_reported: str | None = None
        #: (container id, run, RestartCount) of the latest running run seen.
        self._last_run: tuple[str, str, int] | None = None

    def wake(self) -> None:
        """Look at the container again now."""
        self._wake.set()

    async def run(self) -> None:
        """Follow forever (until cancelled)."""
        failures = 0
        while True:
            self._wake = anyio.Event()
            try:
                info = await inspect(self.docker, self.name, seconds=self.config.docker_timeout)
            except DOCKER_TRANSIENT as error:
                failures += 1
                self._note("docker", f"container state unknown: {describe_error(error)}; retrying")
                await self._pause(_backoff(failures))
                continue
            if info is not None and self.on_inspect is not None:
                await self.on_inspect(self.name, info)
            if info is not None:
                self.status.missing_since = None
            elif self.status.missing_since is None:
                self.status.missing_since = self.clock()
            if info is None:
                await self.emit(self.name, [ContainerStatus(False, "missing")])
                self._note("missing", "no such container; waiting for it to appear")
                await self._pause(RECHECK_INTERVAL)
                continue
            if not info.observable:
                status: list[Event] = [ContainerStatus(False, info.describe())]
                if info.restarting:
                    # Docker's restart policy is starting it again: the run ended by itself.
                    status += await self._exit_of(info)
                await self.emit(self.name, status)
                self._note("stopped", f"container is {info.describe()}; waiting for it to start")
                await self._pause(RECHECK_INTERVAL)
                continue
            started = RunStarted(info.run_key, self._monotonic(info))
            await self.emit(self.name, [*self._missed_exits(info), started])
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

    async def _exit_of(self, info: ContainerInfo) -> list[Event]:
        """The exit that ended *info*'s run (once a run), with its last words if its log
        was not followed to the end (a run too short to be attached to)."""
        if self._exit_reported == info.run_key:
            return []
        self._exit_reported = info.run_key
        followed = self._cursor is not None and self._cursor.run_key == info.run_key
        words = () if followed else await self._last_words(info)
        seen_at = (
            None if info.finished_ns is None else on_loop_clock(info.finished_ns, self.clock())
        )
        return [ContainerExited(info.exit_code, info.run_key, seen_at, words)]

    def _missed_exits(self, info: ContainerInfo) -> list[Event]:
        """Exits Docker's restart policy counted (``RestartCount``) since the previous run
        seen, when that run's end was not reported: each run ended once."""
        last, self._last_run = self._last_run, (info.id, info.run_key, info.restart_count)
        if last is None or last[0] != info.id or last[1] == info.run_key:
            return []
        missed: list[Event] = []
        if info.restart_count > last[2] and self._exit_reported != last[1]:
            missed.append(ContainerExited(None, run_id=last[1]))
        # Runs between the two that were never seen: named by their restart number.
        missed += [
            ContainerExited(None, run_id=f"{info.id[:12]}#restart{count}")
            for count in range(last[2] + 1, info.restart_count)
        ]
        if missed:
            self._exit_reported = last[1]
        return missed

    async def _last_words(self, info: ContainerInfo) -> tuple[FatalLine | EntrypointError, ...]:
        """The fatal and entrypoint lines of *info*'s ended run ((): none, or unreadable)."""
        if not info.logs_readable or info.started_ns is None:
            return ()
        since = info.started_ns - LAST_WORDS_BEFORE_START_NS
        if self._cursor is not None:
            since = max(since, self._cursor.last_ns + 1)  # past every line already applied
        params: dict[str, Any] = {"tail": str(LAST_WORDS_TAIL), "since": docker_since(since)}
        if info.finished_ns is not None:
            params["until"] = docker_since(info.finished_ns + LAST_WORDS_BEFORE_START_NS // 10)
        try:
            with anyio.fail_after(self.config.docker_timeout):
                chunks = await self.docker.containers.container(info.id).log(
                    stdout=True, stderr=True, timestamps=True, **params
                )
        except DOCKER_TRANSIENT:
            return ()  # the exit still counts; its words are a bonus
        events = parse_lines("".join(chunks).splitlines())
        return tuple(e for e in events if isinstance(e, FatalLine | EntrypointError))

    def _monotonic(self, info: ContainerInfo) -> float:
        """The run's start on the monotonic clock (it may be long ago)."""
        now = self.clock()
        return now if info.started_ns is None else on_loop_clock(info.started_ns, now)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to *seconds*, or until woken by a Docker event."""
        with anyio.move_on_after(seconds):
            await self._wake.wait()

    def _note(self, kind: str, detail: str) -> None:
        """Record why the follower is not attached; log it once per change (until lines
        arrive again: a daemon that keeps failing the same way is said once)."""
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
        self.status.attaches += 1
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
            seconds = self.config.docker_timeout
            with engine_deadline("a log request", seconds):
                response = await stack.enter_async_context(
                    self.docker._query(  # the documented way to own a response's lifetime
                        f"containers/{info.id}/logs",
                        params=params,
                        timeout=aiohttp.ClientTimeout(sock_connect=seconds),
                    )
                )
            self._opened()
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
            self._note("silent", f"no log line for {timeout:g}s; re-attaching")
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
                    if self._problem is not None:
                        self._lines_again()
                    self.status.lines += fresh.count("\n") + 1
                    self.status.last_line_at = self.clock()
                    events = parse_block(fresh)
                    if events:
                        await self.emit(self.name, events)
            watchdog.reset()

    def _opened(self) -> None:
        """A log response began: attached. A daemon that failed or a log that fell silent
        stays the reason (``/healthz``) until a line arrives: a response alone proves
        little when the daemon hangs mid-stream."""
        status = self.status
        if not status.attached:
            status.attached, status.attached_at = True, self.clock()
        if status.waiting not in _BLIND:
            status.waiting, status.detail = None, "following"

    def _lines_again(self) -> None:
        """The log brings lines again after a problem: say so once."""
        self.status.waiting, self.status.detail = None, "following"
        logger.info(
            "%s: following the log again",
            self.name,
            extra={"container": self.name, "event": "follow_attached"},
        )
        self._problem = None


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
