"""The decision task's inbox: a bounded FIFO from the source tasks to the one reader.

At idle nearly every message (a batch of log lines, about one a second) is handed over on
its own, so the hand-over's own cost is a large share of azwatch's work. anyio's memory
object stream pays a checkpoint, a raised ``WouldBlock``, a new ``Event`` and a cancel scope
with its timer per message; an :class:`asyncio.Queue` read under :func:`asyncio.timeout`
does the same job for about a third of that (benchmarks/README.md, "Idle cost"). The watcher
runs on asyncio only (its clock is the loop's), so nothing is lost.

Senders never lose a message: :meth:`Inbox.offer` puts it without waiting when there is
room, and :meth:`Inbox.send` waits while the inbox is full (back-pressure, as before).
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """At most *size* messages waiting; many senders, one reader."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(size)

    def offer(self, message: T) -> bool:
        """Put *message* in if there is room now; ``False`` (and nothing put) if full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    async def send(self, message: T) -> None:
        """Put *message* in, waiting while the inbox is full."""
        await self._queue.put(message)

    # A time-out here is the usual outcome, not an error: returned as None, not raised.
    async def receive(self, timeout: float) -> T | None:  # noqa: ASYNC109
        """The next message, waiting at most *timeout* seconds; ``None`` if none came."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def take(self) -> T | None:
        """The next message if one is waiting, without waiting."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
