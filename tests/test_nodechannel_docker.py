"""Log-less mode against a real Docker Engine: a fake node logging to the ``none`` driver.

Its log cannot be read, so azwatch sees the node only through the node channel: a fake node
RPC on 127.0.0.1 (the test's own server, speaking the node's wire format) whose best block
follows the container's. Docker still tells the runs (events, ``State.StartedAt``).
"""

from __future__ import annotations

import logging
from datetime import datetime

import anyio
import pytest
from dockerkit import DockerEvents, FakeNode, FakeNodeFactory
from fakenoderpc import FakeNodeRpc
from fakerpc import FakeRpc
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch.channels import Channel
from azwatch.policy import Hold, HoldReason, Restart
from azwatch.watcher import Watcher

pytestmark = pytest.mark.docker


class NodeRpcMover:
    """Keeps the fake node RPC's best (and finalized) at the container's saved best."""

    def __init__(self, rpc: FakeNodeRpc, node: FakeNode) -> None:
        self.rpc, self.node = rpc, node

    async def run(self) -> None:
        while True:
            best = await anyio.to_thread.run_sync(self.node.best)
            if best is not None:
                self.rpc.best, self.rpc.finalized = best, max(0, best - 2)
            await anyio.sleep(0.05)


def decision_of(watcher: Watcher, name: str) -> Hold | Restart | None:
    return watcher.supervisor.books[name].decision


def epoch(docker_time: str) -> float:
    return datetime.fromisoformat(docker_time.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


async def test_log_less_node_in_sync_is_judged_healthy_from_its_rpc(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the node channel this node holds no_local_best forever; with it, healthy."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(docker_args=("--log-driver", "none"), **NODE)
    async with FakeRpc() as reference, FakeNodeRpc(best=0) as node_rpc:
        reference.finalized = 4321  # asked every FINALITY_POLL_EVERY head polls
        config = scaled((node.name,), reference.url, node_rpc_url=node_rpc.url)
        async with anyio.create_task_group() as group:
            group.start_soon(NodeRpcMover(node_rpc, node).run)
            async with running(config, HeadMover(reference, node)) as watcher:

                def healthy() -> bool:
                    decision = decision_of(watcher, node.name)
                    return isinstance(decision, Hold) and decision.reason is HoldReason.HEALTHY

                await eventually(healthy, within=config.cooldown + 8, what="healthy hold")
                view = watcher.snapshot().container(node.name)
                assert view is not None
                signals = {signal.name: signal for signal in view.signals}
                assert signals["best"].channel == Channel.NODE
                assert signals["producing"].channel is None  # only the log tells it
                assert view.node is not None
                assert view.node.log_less
                # The unreadable log is no watcher problem while the node channel carries it.
                assert watcher.snapshot().problems == ()
                # The reference's finalized block reached the node's state, for finality_lag.
                assert watcher.supervisor.books[node.name].state.head_finalized == 4321
                assert watcher.supervisor.books[node.name].state.restarts == 0
            group.cancel_scope.cancel()
    said = [r.getMessage() for r in caplog.records if "log-less mode" in r.getMessage()]
    assert len(said) == 1, said
    assert "cannot be read" in said[0] or "none" in said[0]


async def test_log_less_severe_lag_restarts_and_the_new_run_is_seen(
    fake_node: FakeNodeFactory,
) -> None:
    """Lag 500 told by the node's own RPC: restarted after the cooldown; Docker tells the run."""
    node = fake_node(docker_args=("--log-driver", "none"), **NODE)
    first_start = epoch(node.started_at())
    async with FakeRpc() as reference, FakeNodeRpc(best=0) as node_rpc:
        mover = HeadMover(reference, node, offset=500)
        config = scaled((node.name,), reference.url, node_rpc_url=node_rpc.url)
        with DockerEvents(node.name) as events:
            async with anyio.create_task_group() as group:
                group.start_soon(NodeRpcMover(node_rpc, node).run)
                async with running(config, mover) as watcher:
                    run_before = await eventually(
                        lambda: watcher.supervisor.books[node.name].state.run.run_id,
                        within=5,
                        what="the run seen",
                    )
                    with anyio.fail_after(20):
                        await events.wait_for_async("restart")
                    mover.offset = 0  # the restart helped

                    def new_run() -> bool:
                        run = watcher.supervisor.books[node.name].state.run
                        return run.run_id is not None and run.run_id != run_before

                    await eventually(new_run, within=10, what="the new run seen")
                    book = watcher.supervisor.books[node.name]
                    assert book.restarts_by_rule == {"severe_lag": 1}
                group.cancel_scope.cancel()
    assert epoch(node.started_at()) > first_start
