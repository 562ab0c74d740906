"""Crash loops and misconfigured containers, live: a fake node exiting under Docker's restart
policy, watched by the real watcher through a real Docker Engine.

Docker starts the container again after each exit (``--restart always``), with its own
growing delay (100 ms, 200 ms, 400 ms, …). azwatch must say "crash loop" once, show it in
its metrics, and restart nothing itself: every ``kill`` event would be azwatch's (Docker's
restart policy sends none).
"""

from __future__ import annotations

import logging

import anyio
import pytest
from dockerkit import DockerEvents, FakeNodeFactory
from fakerpc import FakeRpc
from prometheus_client import generate_latest
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch.metrics import registry_for
from azwatch.policy import Hold, HoldReason
from azwatch.watcher import Watcher

pytestmark = pytest.mark.docker

ENTRYPOINT_LINE = "/node/docker_entrypoint.sh: line 45: NODE_KEY_PATH: unbound variable"


def messages(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "event", None) == event]


def held_for(watcher: Watcher, name: str) -> HoldReason | None:
    decision = watcher.supervisor.books[name].decision
    return decision.reason if isinstance(decision, Hold) else None


def metrics(watcher: Watcher) -> str:
    return generate_latest(registry_for(watcher.snapshot)).decode()


async def test_a_node_exiting_again_and_again_is_a_crash_loop_azwatch_never_restarts(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(restart_policy="always", **NODE)
    async with FakeRpc() as rpc:
        # A lag of 500 would have azwatch restart the node right after each cooldown.
        mover = HeadMover(rpc, node, offset=500)
        config = scaled((node.name,), rpc.url, cooldown=3.0)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                book = watcher.supervisor.books[node.name]
                await eventually(lambda: book.state.run.log_live, within=10, what="attached")
                node.set(EXIT=123)  # every run from now on exits at its first tick
                await eventually(
                    lambda: book.crashes.loop is not None, within=30, what="a crash loop"
                )
                # Several cooldowns more of exits: still said once, never restarted.
                await anyio.sleep(3 * config.cooldown)
                # Each run's end is counted once, though the die event, the inspect of the
                # restarting container and its RestartCount each report it.
                await eventually(
                    lambda: book.crashes.total == events.actions().count("die"),
                    within=10,
                    what="one exit counted per die Docker reported",
                )
                assert held_for(watcher, node.name) is HoldReason.CRASH_LOOP
                text = metrics(watcher)
                assert f'azwatch_crash_loop{{container="{node.name}"}} 1.0' in text
                crashes = book.crashes.total
                assert crashes >= 3
                assert f'azwatch_crashes_total{{container="{node.name}"}} {crashes}.0' in text
                assert "kill" not in events.actions()  # azwatch restarted nothing
                (said,) = messages(caplog, "crash_loop")
                assert "the last with exit code 123: the node exited non-zero" in said
                exited = messages(caplog, "container_exited")
                assert len(exited) == crashes
                # Docker counted its restarts too: each exit was one run's end.
                assert node.restart_count() >= crashes - 1
                # The node runs again: after a full cooldown the loop is over and the rules
                # decide again, so the lag of 500 now brings azwatch's restart.
                node.set(EXIT=None)
                with anyio.fail_after(60):
                    await events.wait_for_async("kill")
                assert len(messages(caplog, "crash_loop_over")) == 1
    assert len(messages(caplog, "crash_loop")) == 1


async def test_an_entrypoint_error_is_reported_as_a_misconfigured_container(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The official entrypoint's "unbound variable" line, from runs that last milliseconds."""
    caplog.set_level(logging.INFO, logger="azwatch")
    script = f'echo "{ENTRYPOINT_LINE}" >&2; exit 1'
    node = fake_node(
        restart_policy="always",
        docker_args=["--entrypoint", "/bin/busybox"],
        command=["sh", "-c", script],
    )
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url, cooldown=1.0)
        with DockerEvents(node.name) as events:
            async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
                book = watcher.supervisor.books[node.name]
                await eventually(
                    lambda: messages(caplog, "misconfigured"), within=30, what="misconfigured"
                )
                await eventually(
                    lambda: book.crashes.loop is not None, within=30, what="a crash loop"
                )
                await anyio.sleep(2)
    said = messages(caplog, "misconfigured")
    assert said[0].startswith(f"{node.name}: misconfigured container: {ENTRYPOINT_LINE}")
    assert "NODE_KEY_PATH is not set" in said[0]
    # Once per run at most: never more reports than runs that ended.
    assert len(said) <= book.crashes.total
    assert "kill" not in events.actions()
    exits = messages(caplog, "container_exited")
    assert any(line.endswith(f"; last fatal line: {ENTRYPOINT_LINE}") for line in exits)
