"""Bad input, live, against the real Docker Engine (issue 10, "Bad input" and "Also").

* a watched name that matches no container turns ``/healthz`` unhealthy after the grace
  (scaled down here), and healthy again once the container exists;
* what becomes of the node when the client that asked for its restart disappears
  mid-restart: the daemon finishes the restart, the node runs again;
* azwatch told to stop while its restart is in flight says what it waits for, waits, and
  leaves the node running;
* a socket proxy that answers 403 to restart: said once, the watcher goes on, nothing is
  restarted;
* a reference whose genesis comes in an unexpected form, then is redeployed on another
  chain: each said once, never a restart.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import aiodocker
import aiohttp
import anyio
import pytest
from dockerkit import DockerEvents, FakeNode, FakeNodeFactory
from fakerpc import TESTNET_GENESIS, FakeRpc
from proxykit import SocketProxy, haproxy_binary
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch import snapshot as snapshots
from azwatch.policy import HoldReason

pytestmark = pytest.mark.docker


def messages(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "event", None) == event]


async def test_a_misspelled_container_name_is_a_health_problem_after_the_grace(
    fake_node_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots, "MISSING_GRACE", 1.0)  # grace: 2 × CHECK_INTERVAL = 2 s
    name = f"azwatch-test-missing-{uuid.uuid4().hex[:8]}"
    async with FakeRpc() as rpc:
        config = scaled((name,), rpc.url)
        async with running(config, HeadMover(rpc)) as watcher:
            problem = f"{name}: no container has this name for"

            def named_problem() -> str | None:
                return next((p for p in watcher.snapshot().problems if p.startswith(problem)), None)

            await anyio.sleep(1.0)
            assert named_problem() is None  # within the grace
            said = await eventually(named_problem, within=10, what="the health problem")
            assert said.endswith("(is CONTAINER_NAME right?)")
            node = await anyio.to_thread.run_sync(
                lambda: FakeNode.run(name, tmp_path / "ctl", image=fake_node_image, **NODE)
            )
            try:
                await eventually(
                    lambda: named_problem() is None, within=10, what="healthy once it exists"
                )
            finally:
                await anyio.to_thread.run_sync(node.remove)


async def test_the_node_runs_again_when_the_client_that_asked_for_its_restart_disappears(
    fake_node: FakeNodeFactory,
) -> None:
    """Docker, not the client, carries a restart out: azwatch killed mid-restart (SIGKILL
    after ``docker stop``'s grace) leaves the node running, not stopped."""
    node = fake_node(IGNORE_TERM=True, **NODE)  # like the official image: waits the grace
    before = node.started_at()
    grace = 3
    with DockerEvents(node.name) as events:
        docker = aiodocker.Docker()
        try:
            container = docker.containers.container(node.id)
            timeout = aiohttp.ClientTimeout(total=grace + 30)
            with anyio.move_on_after(1.0) as asked:
                await container.restart(t=grace, timeout=timeout)
            assert asked.cancelled_caught  # the client left during the stop grace
        finally:
            await docker.close()
        assert node.status() == "running"  # still in its grace
        with anyio.fail_after(grace + 15):
            await events.wait_for_async("start")
    assert node.status() == "running"
    assert node.started_at() != before


async def test_stopping_azwatch_mid_restart_says_what_it_waits_for_and_leaves_the_node_running(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(IGNORE_TERM=True, **NODE)
    before = node.started_at()
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url, stop_timeout=3.0)
        with DockerEvents(node.name) as events:
            async with running(config, HeadMover(rpc, node, offset=500)):
                with anyio.fail_after(20):
                    await events.wait_for_async("kill")  # azwatch's restart began
            # Leaving the block cancelled the watcher; it returned once the restart ended.
    (waiting,) = messages(caplog, "stop_waits_for_restart")
    assert f"{node.name}: stopping while its restart is in flight: waiting up to" in waiting
    assert node.status() == "running"
    assert node.started_at() != before
    (done,) = messages(caplog, "restart_done_while_stopping")
    assert done.startswith(f"{node.name}: restart done while azwatch was stopping: running again")


async def test_a_proxy_refusing_restart_is_said_once_and_the_watcher_goes_on(
    fake_node: FakeNodeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    haproxy_binary()
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    before = node.started_at()
    profile = {"CONTAINERS": "1", "ALLOW_LOGS": "1", "ALLOW_RESTARTS": "0", "POST": "0"}
    with SocketProxy(tmp_path, profile) as proxy:
        async with FakeRpc() as rpc:
            config = scaled(
                (node.name,), rpc.url, docker_host=proxy.url, cooldown=1.0, max_cooldown=1.0
            )
            async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
                book = watcher.supervisor.books[node.name]
                await eventually(lambda: book.failed_restarts >= 3, within=30, what="3 refusals")
                status = watcher.followers[node.name].status
                lines = status.lines
                await eventually(lambda: status.lines > lines, within=5, what="still following")
        refused = proxy.requests("POST", "/restart")
    assert refused
    assert all(r.status == 403 and r.refused for r in refused)
    (said,) = messages(caplog, "restart_failed")
    assert "Docker answered 403" in said
    assert len(messages(caplog, "restart_failed_again")) >= 2
    assert node.started_at() == before


async def test_a_reference_redeployed_on_another_chain_or_with_an_odd_genesis_never_restarts(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The node's only reference is redeployed twice: first on testnet, then answering its
    genesis in an unexpected form; each time the node lags 500 behind what it answers. Each
    is said once; the node is never restarted."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node)
        config = scaled((node.name,), rpc.url)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                book = watcher.supervisor.books[node.name]

                def held() -> HoldReason | None:
                    return getattr(book.decision, "reason", None)

                await eventually(lambda: held() is HoldReason.HEALTHY, within=15, what="healthy")
                for genesis, said in ((TESTNET_GENESIS, "another chain"), ("0x1234", "form")):
                    rpc.mode = "http_500"  # the redeploy: down for a moment ...
                    await eventually(lambda: book.state.head_error, within=5, what="a failure")
                    rpc.mode, rpc.genesis, mover.offset = "ok", genesis, 500  # ... then back
                    await eventually(
                        lambda: held() is HoldReason.WRONG_CHAIN, within=10, what=f"held: {said}"
                    )
                    await anyio.sleep(2 * config.cooldown)
                    assert held() is HoldReason.WRONG_CHAIN
    assert "kill" not in events.actions()
    assert book.state.restarts == 0
    (other,) = messages(caplog, "reference_wrong_chain")
    assert "serves another chain (genesis 0x05d5…60c5) than the node (0x7025…344e)" in other
    odd = [r for r in caplog.records if "unexpected form" in r.getMessage()]
    assert len(odd) == 1
