"""Notifications through apprise to a receiver on 127.0.0.1 (json:// scheme)."""

from __future__ import annotations

import logging

import anyio
import pytest
from receiver import Receiver

from azwatch.notify import Notice, Notifier


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_notices_are_delivered(caplog: pytest.LogCaptureFixture) -> None:
    """Each posted notice reaches the receiver with its title, body and level."""
    async with Receiver() as hook, anyio.create_task_group() as group:
        notifier = Notifier([hook.url("secret-token-123")])
        group.start_soon(notifier.run)
        await anyio.sleep(0.05)
        notifier.post(Notice("a", "azwatch: restarted node", "rule severe_lag", "warning"))
        notifier.post(Notice("b", "azwatch: node is not running", "exited", "warning"))
        with anyio.fail_after(10):
            received = await hook.wait_for(2)
            while notifier.sent < 2:
                await anyio.sleep(0.02)
        group.cancel_scope.cancel()
    assert [r["title"] for r in received] == [
        "azwatch: restarted node",
        "azwatch: node is not running",
    ]
    assert received[0]["message"] == "rule severe_lag"
    assert received[0]["type"] == "warning"
    assert received[0]["path"] == "/secret-token-123"
    assert notifier.sent == 2
    assert all("secret-token-123" not in r.getMessage() for r in caplog.records)


async def test_repeats_are_suppressed_then_counted() -> None:
    """The same notice within REPEAT_AFTER is not sent again; the next one says how many."""
    clock = Clock()
    async with Receiver() as hook, anyio.create_task_group() as group:
        notifier = Notifier([hook.url()], repeat_after=100, clock=clock)
        group.start_soon(notifier.run)
        await anyio.sleep(0.05)
        notice = Notice("rpc", "azwatch: reference RPC lost", "down")
        notifier.post(notice)
        clock.now = 50
        notifier.post(notice)
        notifier.post(notice)
        clock.now = 150
        notifier.post(notice)
        with anyio.fail_after(10):
            received = await hook.wait_for(2)
        await anyio.sleep(0.3)
        group.cancel_scope.cancel()
    assert len(received) == 2
    assert notifier.suppressed == 2
    assert "2 similar notice(s) suppressed" in received[1]["message"]


async def test_a_hanging_service_never_blocks_and_is_abandoned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """post() returns at once even while the service hangs; the send is abandoned after its
    deadline and later notices still go out."""
    caplog.set_level(logging.WARNING, logger="azwatch")
    async with Receiver() as hook, anyio.create_task_group() as group:
        hook.mode = "hang"
        notifier = Notifier([hook.url()], timeout=0.5)
        group.start_soon(notifier.run)
        await anyio.sleep(0.05)
        began = anyio.current_time()
        for i in range(5):
            notifier.post(Notice(f"k{i}", f"notice {i}", "body"))
        assert anyio.current_time() - began < 0.05
        await anyio.sleep(0.8)
        hook.mode = "ok"
        with anyio.fail_after(10):
            received = await hook.wait_for(1)
        group.cancel_scope.cancel()
    assert notifier.failed >= 1
    assert received
    assert any("timed out" in r.getMessage() for r in caplog.records)


async def test_a_failing_service_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A 500 from the service is a logged, counted failure."""
    caplog.set_level(logging.WARNING, logger="azwatch")
    async with Receiver() as hook, anyio.create_task_group() as group:
        hook.mode = "fail"
        notifier = Notifier([hook.url()], timeout=5)
        group.start_soon(notifier.run)
        await anyio.sleep(0.05)
        notifier.post(Notice("k", "azwatch: test", "body"))
        with anyio.fail_after(10):
            while notifier.failed == 0:
                await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    assert any("not delivered" in r.getMessage() for r in caplog.records)


def test_without_urls_notifications_are_off() -> None:
    """No NOTIFY_URLS: posting is a no-op."""
    notifier = Notifier([])
    assert not notifier.enabled
    notifier.post(Notice("k", "t", "b"))


def test_a_bad_url_is_reported_without_the_url(caplog: pytest.LogCaptureFixture) -> None:
    """An URL apprise cannot read is reported as a count, never quoted."""
    notifier = Notifier(["nosuchscheme://token-456@x"])
    assert not notifier.enabled
    assert "token-456" not in caplog.text
    assert "could not be understood" in caplog.text
