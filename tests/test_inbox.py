"""The decision task's inbox: order, back-pressure, and waiting until a deadline."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import anyio

from azwatch.inbox import Inbox

T = TypeVar("T")


async def receive(inbox: Inbox[T], seconds: float) -> T | None:
    """A message, waiting *seconds* at most from now."""
    return await inbox.receive_until(asyncio.get_running_loop().time() + seconds)


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    inbox = Inbox[int](4)
    assert all(inbox.offer(n) for n in (1, 2, 3))
    assert await receive(inbox, 1.0) == 1
    assert inbox.take() == 2
    assert await receive(inbox, 1.0) == 3
    assert inbox.take() is None


async def test_a_full_inbox_refuses_an_offer_and_makes_a_sender_wait() -> None:
    """Back-pressure: nothing is dropped; the sender waits until the reader takes one."""
    inbox = Inbox[int](2)
    assert inbox.offer(1)
    assert inbox.offer(2)
    assert not inbox.offer(3)
    sent = anyio.Event()

    async def sender() -> None:
        await inbox.send(3)
        sent.set()

    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        await anyio.sleep(0.05)
        assert not sent.is_set()
        assert inbox.take() == 1
        with anyio.fail_after(1):
            await sent.wait()
    assert [inbox.take(), inbox.take(), inbox.take()] == [2, 3, None]


async def test_receive_gives_none_after_its_time_limit() -> None:
    inbox = Inbox[int](2)
    started = anyio.current_time()
    assert await receive(inbox, 0.1) is None
    assert 0.09 <= anyio.current_time() - started < 1.0


async def test_receive_wakes_when_a_message_arrives() -> None:
    inbox = Inbox[str](2)
    got: list[str | None] = []

    async def reader() -> None:
        got.append(await receive(inbox, 30.0))

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.sleep(0.05)
        assert inbox.offer("batch")
        with anyio.fail_after(1):
            while not got:
                await anyio.sleep(0.01)
    assert got == ["batch"]


async def test_a_message_sent_as_the_time_limit_ends_is_not_lost() -> None:
    """Whatever ends the wait, a message put in stays in the inbox until it is taken."""
    inbox = Inbox[int](8)
    for n in range(50):
        async with anyio.create_task_group() as group:

            async def late(n: int = n) -> None:
                await anyio.sleep(0.001)
                inbox.offer(n)

            group.start_soon(late)
            got = await receive(inbox, 0.001)
        if got is None:
            got = inbox.take()
        assert got == n


async def test_cancelling_a_waiting_reader_leaves_the_inbox_usable() -> None:
    inbox = Inbox[int](2)
    with anyio.move_on_after(0.05) as scope:
        await receive(inbox, 30.0)
    assert scope.cancelled_caught
    assert inbox.offer(7)
    assert await receive(inbox, 1.0) == 7


async def test_receive_takes_a_waiting_message_without_waiting() -> None:
    inbox = Inbox[int](1)
    assert inbox.offer(5)
    with anyio.fail_after(0.5):
        assert await receive(inbox, 60.0) == 5


async def test_waits_for_one_deadline_end_at_it_however_many_messages_came_before() -> None:
    """The timer kept for a deadline across waits still ends the last one on time."""
    inbox = Inbox[int](4)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.3
    got: list[int | None] = []

    async def reader() -> None:
        while (message := await inbox.receive_until(deadline)) is not None:
            got.append(message)
        got.append(None)

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        for n in range(5):
            await anyio.sleep(0.02)
            assert inbox.offer(n)
    assert got == [0, 1, 2, 3, 4, None]
    assert deadline <= loop.time() < deadline + 0.5


async def test_a_moved_deadline_is_the_one_waited_for() -> None:
    inbox = Inbox[int](2)
    loop = asyncio.get_running_loop()
    with anyio.fail_after(2):
        assert inbox.offer(1)
        assert await inbox.receive_until(loop.time() + 30) == 1  # no wait: a message is in
        later = loop.time() + 30
        sooner = loop.time() + 0.05
        async with anyio.create_task_group() as group:
            group.start_soon(inbox.receive_until, later)
            await anyio.sleep(0.01)
            group.cancel_scope.cancel()
        assert await inbox.receive_until(sooner) is None  # ends at the new, earlier one
    assert sooner <= loop.time() < sooner + 1


async def test_a_closed_inbox_arms_its_deadline_again() -> None:
    inbox = Inbox[int](2)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.05
    async with anyio.create_task_group() as group:
        group.start_soon(inbox.receive_until, deadline)
        await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    inbox.close()  # the reader stopped: its timer goes
    with anyio.fail_after(1):
        assert await inbox.receive_until(deadline) is None


async def test_a_past_deadline_gives_none_at_once() -> None:
    inbox = Inbox[int](2)
    loop = asyncio.get_running_loop()
    with anyio.fail_after(0.5):
        assert await inbox.receive_until(loop.time() - 1) is None
    assert inbox.offer(3)
    assert await inbox.receive_until(loop.time() - 1) == 3  # a waiting message still comes
