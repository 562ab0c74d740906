"""Notifications through apprise (``NOTIFY_URLS``; install ``azwatch[notify]``).

The decision task only *posts* a :class:`Notice`: a non-blocking put into a bounded stream.
A separate task sends them one by one, each under a deadline, so a notification service that
fails or hangs never delays a decision or a restart; failures are logged and counted. Repeats
of the same notice (same key) within ``repeat_after`` seconds are suppressed and counted, and
the next one that goes out says how many were.

apprise's URL syntax covers Telegram (``tgram://``), Discord (``discord://``), Slack
(``slack://``), Matrix (``matrix://``), e-mail (``mailto://``) and plain JSON webhooks
(``json://host/path``). URLs carry tokens, so they are never logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from azwatch.effects import Notice

__all__ = ["Notice", "Notifier"]

logger = logging.getLogger("azwatch.notify")

#: Seconds allowed for one notification (all services) before it is abandoned.
NOTIFY_TIMEOUT = 10.0
#: Seconds during which the same notice is not sent again.
REPEAT_AFTER = 900.0
#: Notices waiting to be sent before new ones are dropped.
QUEUE_SIZE = 100


class Notifier:
    """Delivers notices through apprise from its own task (:meth:`run`)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = NOTIFY_TIMEOUT,
        repeat_after: float = REPEAT_AFTER,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.timeout = timeout
        self.repeat_after = repeat_after
        self.clock = clock
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.suppressed = 0
        self._last_sent: dict[str, float] = {}
        self._suppressed_since: dict[str, int] = {}
        self._apprise = _load_apprise(urls)
        # Opened by run(): a stream is a resource, and a disabled notifier holds none.
        self._send: MemoryObjectSendStream[Notice] | None = None

    @property
    def enabled(self) -> bool:
        """Whether notices go anywhere (apprise is installed and a URL loaded)."""
        return self._apprise is not None

    def post(self, notice: Notice) -> None:
        """Queue *notice* for sending; never blocks, never raises."""
        if self._send is None:
            return  # disabled, or not running
        now = self.clock()
        last = self._last_sent.get(notice.key)
        if last is not None and now - last < self.repeat_after:
            self.suppressed += 1
            self._suppressed_since[notice.key] = self._suppressed_since.get(notice.key, 0) + 1
            return
        skipped = self._suppressed_since.pop(notice.key, 0)
        if skipped:
            notice = Notice(
                notice.key,
                notice.title,
                f"{notice.body}\n({skipped} similar notice(s) suppressed before this one)",
                notice.level,
            )
        try:
            self._send.send_nowait(notice)
        except anyio.WouldBlock:
            self.dropped += 1
            logger.warning(
                "notification queue full; dropped: %s", notice.title, extra={"event": "notify_drop"}
            )
            return
        self._last_sent[notice.key] = now

    async def run(self) -> None:
        """Send queued notices until cancelled."""
        if self._apprise is None:
            return
        send, receive = anyio.create_memory_object_stream[Notice](max_buffer_size=QUEUE_SIZE)
        self._send = send
        try:
            async with send, receive:
                async for notice in receive:
                    await self._deliver(notice)
        finally:
            self._send = None

    async def _deliver(self, notice: Notice) -> None:
        assert self._apprise is not None
        ok = False
        with anyio.move_on_after(self.timeout) as deadline:
            try:
                ok = bool(
                    await self._apprise.async_notify(
                        body=notice.body, title=notice.title, notify_type=notice.level
                    )
                )
            except Exception as error:  # a plugin bug must not take the watcher down
                logger.warning(
                    "notification failed: %s (%s)",
                    notice.title,
                    type(error).__name__,
                    extra={"event": "notify_failed"},
                )
                self.failed += 1
                return
        if deadline.cancelled_caught:
            self.failed += 1
            logger.warning(
                "notification timed out after %gs: %s",
                self.timeout,
                notice.title,
                extra={"event": "notify_timeout"},
            )
        elif not ok:
            self.failed += 1
            logger.warning(
                "notification not delivered: %s", notice.title, extra={"event": "notify_failed"}
            )
        else:
            self.sent += 1


@contextlib.contextmanager
def _quiet(target: logging.Logger) -> Iterator[None]:
    """Drop *target*'s records for the duration of the block."""
    drop = logging.Filter("\0")  # matches no logger name: filters out every record
    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)


def _load_apprise(urls: Sequence[str]) -> Any:
    """An apprise object with *urls* loaded, or ``None`` (logged once) if that fails."""
    if not urls:
        return None
    try:
        import apprise
    except ImportError:
        logger.error(
            "NOTIFY_URLS is set but apprise is not installed (pip install 'azwatch[notify]'); "
            "notifications are off",
            extra={"event": "notify_unavailable"},
        )
        return None
    bundle = apprise.Apprise()
    with _quiet(logging.getLogger("apprise")):  # it quotes unparsable URLs, tokens and all
        loaded = sum(1 for url in urls if bundle.add(url))
    if loaded < len(urls):
        logger.error(
            "%d of %d NOTIFY_URLS could not be understood by apprise; they are ignored",
            len(urls) - loaded,
            len(urls),
            extra={"event": "notify_bad_url"},
        )
    return bundle if loaded else None
