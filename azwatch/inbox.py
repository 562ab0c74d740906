"""The decision task's inbox: a bounded FIFO from the source tasks to the one reader.

At idle nearly every message (a batch of log lines, about one a second) is handed over on
its own, so the hand-over's own cost is a large share of azwatch's work. anyio's memory
object stream pays a checkpoint, a raised ``WouldBlock``, a new ``Event`` and a cancel scope
with its timer per message. Here an :class:`asyncio.Queue` holds the messages and the reader
waits on one future, with one loop timer per deadline rather than per wait (benchmarks/
README.md, "Idle cost"). The watcher runs on asyncio only (its clock is the loop's), so
nothing is lost.

Senders never lose a message: :meth:`Inbox.offer` puts it without waiting when there is
room, and :meth:`Inbox.send` waits while the inbox is full (back-pressure, as before).
"""

from __future__ import annotations

import asyncio
import math
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """At most *size* messages waiting; many senders, one reader."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(size)
        #: The reader's wait, while it waits; a message or the deadline ends it.
        self._waiter: asyncio.Future[None] | None = None
        #: One timer for the reader's deadline, kept while the deadline stays the same: at
        #: idle a message a second ends the wait, and the next wait has the same deadline
        #: (the next summary or wake-up), so the timer is made once per deadline, not per
        #: message.
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = math.nan

    def offer(self, message: T) -> bool:
        """Put *message* in if there is room now; ``False`` (and nothing put) if full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        self._wake()
        return True

    async def send(self, message: T) -> None:
        """Put *message* in, waiting while the inbox is full."""
        await self._queue.put(message)
        self._wake()

    async def receive_until(self, deadline: float) -> T | None:
        """The next message, waiting until *deadline* (the loop's clock) at most; ``None`` if
        none came by then."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            return None
        if deadline != self._deadline:
            self.close()
            self._deadline = deadline
            self._timer = loop.call_at(deadline, self._on_deadline)
        self._waiter = waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        return self.take()

    def take(self) -> T | None:
        """The next message if one is waiting, without waiting."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Drop the deadline's timer (the reader is done, or its deadline moved)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._deadline = None, math.nan

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_deadline(self) -> None:
        self._timer, self._deadline = None, math.nan
        self._wake()
