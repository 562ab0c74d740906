"""The decision task's inbox: order, back-pressure, and waiting with a time limit."""

from __future__ import annotations

import anyio

from azwatch.inbox import Inbox


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    inbox = Inbox[int](4)
    assert all(inbox.offer(n) for n in (1, 2, 3))
    assert await inbox.receive(1.0) == 1
    assert inbox.take() == 2
    assert await inbox.receive(1.0) == 3
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
    assert await inbox.receive(0.1) is None
    assert 0.09 <= anyio.current_time() - started < 1.0


async def test_receive_wakes_when_a_message_arrives() -> None:
    inbox = Inbox[str](2)
    got: list[str | None] = []

    async def reader() -> None:
        got.append(await inbox.receive(30.0))

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
            got = await inbox.receive(0.001)
        if got is None:
            got = inbox.take()
        assert got == n


async def test_cancelling_a_waiting_reader_leaves_the_inbox_usable() -> None:
    inbox = Inbox[int](2)
    with anyio.move_on_after(0.05) as scope:
        await inbox.receive(30.0)
    assert scope.cancelled_caught
    assert inbox.offer(7)
    assert await inbox.receive(1.0) == 7


async def test_receive_takes_a_waiting_message_without_waiting() -> None:
    inbox = Inbox[int](1)
    assert inbox.offer(5)
    with anyio.fail_after(0.5):
        assert await inbox.receive(60.0) == 5
