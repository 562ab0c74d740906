"""Harness for running the live watcher in a test's event loop, against real Docker.

* :func:`scaled` builds a Config with intervals scaled down to seconds;
* :class:`HeadMover` moves the fake reference's head: following a fake node's saved best
  plus an offset (lag = offset), or running on its own;
* :func:`running` runs a :class:`~azwatch.watcher.Watcher` beside the test and cancels it
  at the end;
* :func:`eventually` polls a condition without blocking the loop.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

import anyio
from dockerkit import FakeNode
from fakerpc import FakeRpc

from azwatch.config import Config
from azwatch.watcher import Watcher

T = TypeVar("T")

#: Fake node pace in these tests: 5 blocks/s, status lines every second.
NODE = {"STEP": 1, "TICK": 0.2, "STATUS_EVERY": 1}


def scaled(names: tuple[str, ...], rpc_url: str, **overrides: Any) -> Config:
    """A config whose intervals are seconds, for tests of the live watcher."""
    base = Config(
        container_names=names,
        container_label=overrides.pop("container_label", None),
        rpc_urls=(rpc_url,),
        cooldown=3.0,
        max_cooldown=30.0,
        check_interval=1.0,
        rpc_poll_interval=0.3,
        rpc_timeout=0.25,
        stall_timeout=3.0,
        trend_window=3.0,
        stop_timeout=1,
        log_silence_timeout=5.0,
        log_tail=500,
    )
    return replace(base, **overrides)


class HeadMover:
    """Sets the fake reference's head every 50 ms.

    With a *node*, the head is the node's saved best plus :attr:`offset` (so the lag seen by
    the watcher is the offset, give or take a poll). Without one, it rises at *rate* blocks/s
    from *start*.
    """

    def __init__(
        self,
        rpc: FakeRpc,
        node: FakeNode | None = None,
        *,
        offset: int = 0,
        start: int = 1000,
        rate: float = 5.0,
        monotonic: bool = False,
    ) -> None:
        self.rpc, self.node, self.offset = rpc, node, offset
        self.start, self.rate = start, rate
        #: Never set a head below one already set, as a real chain's head never goes back.
        self.monotonic = monotonic
        self._highest = 0
        self._began = time.monotonic()

    def rise_from(self, start: int, rate: float) -> None:
        """From now on, rise at *rate* blocks/s from *start*, whatever the node does."""
        self.node, self.start, self.rate, self.offset = None, start, rate, 0
        self._began = time.monotonic()

    def head(self) -> int:
        if self.node is not None:
            return (self.node.best() or self.start) + self.offset
        return self.start + int((time.monotonic() - self._began) * self.rate) + self.offset

    async def run(self) -> None:
        while True:
            head = await anyio.to_thread.run_sync(self.head)
            if self.monotonic:
                head = self._highest = max(self._highest, head)
            self.rpc.head = head
            await anyio.sleep(0.05)


@asynccontextmanager
async def running(config: Config, *movers: HeadMover) -> AsyncIterator[Watcher]:
    """Run a watcher (and head movers) until the block ends."""
    watcher = Watcher(config)
    async with anyio.create_task_group() as group:
        for mover in movers:
            group.start_soon(mover.run)
        group.start_soon(watcher.run)
        await watcher.started.wait()
        try:
            yield watcher
        finally:
            group.cancel_scope.cancel()


async def eventually(probe: Callable[[], T | bool | None], *, within: float, what: str) -> T:
    """Poll *probe* every 50 ms until it returns something truthy; fail after *within* s."""
    deadline = anyio.current_time() + within
    while True:
        result = probe()
        if result is not None and result is not False:
            return result  # type: ignore[return-value]
        if anyio.current_time() > deadline:
            msg = f"not within {within}s: {what}"
            raise AssertionError(msg)
        await anyio.sleep(0.05)
