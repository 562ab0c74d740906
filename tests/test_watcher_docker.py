"""The live watcher against a real Docker Engine, a fake node container and a fake RPC.

Each scenario asserts what Docker itself reports (``State.StartedAt``, the events it emits),
not only what the watcher believes. Intervals are scaled down: a cooldown of 3 s, head polls
every 0.3 s, a fake node importing 5 blocks/s.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from dockerkit import DockerEvents, FakeNode, FakeNodeFactory, docker
from fakerpc import FakeRpc
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch import watch
from azwatch.policy import Hold, HoldReason, Restart
from azwatch.watcher import Watcher

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parent.parent


def epoch(docker_time: str) -> float:
    return datetime.fromisoformat(docker_time.replace("Z", "+00:00")[:26] + "+00:00").timestamp()


def event_time(event: dict[str, object]) -> float:
    nano = event.get("timeNano")
    assert isinstance(nano, int)
    return nano / 1e9


def restarts_seen(events: DockerEvents) -> int:
    return events.actions().count("restart")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def reason(watcher: Watcher, name: str) -> HoldReason | None:
    decision = watcher.supervisor.books[name].decision
    return decision.reason if isinstance(decision, Hold) else None


async def test_healthy_node_is_not_restarted(fake_node: FakeNodeFactory) -> None:
    """In sync for several cooldowns: no restart, StartedAt unchanged."""
    node = fake_node(**NODE)
    started = node.started_at()
    async with FakeRpc() as rpc:
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url)
            async with running(config, HeadMover(rpc, node)) as watcher:
                await anyio.sleep(8)
                assert reason(watcher, node.name) is HoldReason.HEALTHY
                assert watcher.supervisor.books[node.name].state.restarts == 0
    assert node.started_at() == started
    assert "restart" not in events.actions()
    assert "die" not in events.actions()


async def test_severe_lag_restarts_once_right_after_the_cooldown(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Lag 500 from the start: one restart as soon as the cooldown allows, rule in the log."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    first_start = epoch(node.started_at())
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node, offset=500)
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url)
            async with running(config, mover):
                with anyio.fail_after(15):
                    kill = await events.wait_for_async("kill")
                mover.offset = 0  # the restart helped
                await anyio.sleep(2 * config.cooldown + 1)
    # The restart came right after the cooldown: within one poll interval and a second.
    delay = event_time(kill) - first_start
    assert config.cooldown <= delay <= config.cooldown + config.rpc_poll_interval + 1.0
    assert restarts_seen(events) == 1
    assert epoch(node.started_at()) > first_start
    (line,) = [r.getMessage() for r in caplog.records if "restarting:" in r.getMessage()]
    assert "severe_lag: lag" in line
    assert "BLOCK_LAG_100=100" in line


async def test_operator_restart_is_seen_and_starts_the_cooldown(
    fake_node: FakeNodeFactory,
) -> None:
    """A restart by the operator begins a new run; the watcher's cooldown counts from it."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node)
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url)
            async with running(config, mover) as watcher:
                await anyio.sleep(config.cooldown + 1)  # the first run's cooldown is over
                before = watcher.supervisor.books[node.name].state.run.run_id
                await anyio.to_thread.run_sync(node.restart)
                operator_start = epoch(node.started_at())
                mover.offset = 500  # and now the node lags badly
                await eventually(
                    lambda: watcher.supervisor.books[node.name].state.run.run_id != before,
                    within=5,
                    what="the watcher saw the operator's restart as a new run",
                )
                with anyio.fail_after(15):
                    watcher_restart = await events.wait_for_async("restart", count=2)
                mover.offset = 0
    assert event_time(watcher_restart) - operator_start >= config.cooldown


async def test_stopped_container_is_never_started_again(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator's stop wins, even while the lag would call for a restart."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url)
            async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
                await anyio.to_thread.run_sync(node.stop)
                await anyio.sleep(3 * config.cooldown)
                assert reason(watcher, node.name) is HoldReason.NOT_RUNNING
    assert node.status() == "exited"
    assert events.actions().count("start") == 0
    assert "restart" not in events.actions()
    assert any("left alone" in r.getMessage() for r in caplog.records)


async def test_recreated_container_is_followed(
    fake_node: FakeNodeFactory, fake_node_image: str, tmp_path: Path
) -> None:
    """Removed and re-created under the same name: the watcher follows the new container."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node)) as watcher:
            tracked = watcher.supervisor.books[node.name]
            await eventually(lambda: tracked.state.run.best, within=5, what="a first best")
            await anyio.to_thread.run_sync(node.remove)
            twin = await anyio.to_thread.run_sync(
                lambda: FakeNode.start(node.name, node.ctl_dir, image=fake_node_image, **NODE)
            )
            try:
                await eventually(
                    lambda: (tracked.state.run.run_id or "").startswith(twin.id[:12]),
                    within=10,
                    what="the watcher follows the new container",
                )
                best = tracked.state.run.best or 0
                await eventually(
                    lambda: (tracked.state.run.best or 0) > best + 5,
                    within=5,
                    what="the new container's imports are applied",
                )
                assert tracked.state.restarts == 0
            finally:
                await anyio.to_thread.run_sync(twin.remove)


def _restart_daemon() -> None:
    """Stop dockerd (SIGTERM, as `systemctl restart docker` does) and start it again."""
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    subprocess.run([str(REPO / ".ci" / "start-dockerd")], check=True, capture_output=True)


def _proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line
    except OSError:
        return "Z"
    return ""


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/var/run/docker.pid").exists(),
    reason="restarting the Docker daemon needs root and a daemon started with a pid file",
)
async def test_daemon_restart_is_survived_without_a_spurious_restart(
    fake_node: FakeNodeFactory,
) -> None:
    """dockerd goes away and comes back: the watcher re-attaches and restarts nothing."""
    node = fake_node(restart_policy="unless-stopped", **NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node)) as watcher:
            tracked = watcher.supervisor.books[node.name]
            await eventually(
                lambda: watcher.followers[node.name].status.attached, within=5, what="attach"
            )
            first_run = tracked.state.run.run_id
            await anyio.to_thread.run_sync(_restart_daemon)
            await eventually(
                lambda: (
                    tracked.state.run.run_id != first_run
                    and watcher.followers[node.name].status.attached
                ),
                within=30,
                what="the watcher follows the run Docker restarted",
            )
            best = tracked.state.run.best or 0
            await eventually(
                lambda: (tracked.state.run.best or 0) > best + 5,
                within=10,
                what="imports of the new run are applied",
            )
            await eventually(
                lambda: watcher.events is not None and watcher.events.connected,
                within=10,
                what="the event stream is back",
            )
            await anyio.sleep(config.cooldown + 1)
            assert tracked.state.restarts == 0


@pytest.mark.parametrize("mode", ["html", "hang", "bad_json", "rpc_error"])
async def test_garbage_or_silent_rpc_never_restarts(fake_node: FakeNodeFactory, mode: str) -> None:
    """A stalled node with an RPC that answers garbage or nothing: never restarted."""
    node = fake_node(**{**NODE, "STEP": 0})
    started = node.started_at()
    async with FakeRpc() as rpc:
        rpc.mode = mode  # type: ignore[assignment]
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
            await anyio.sleep(2.5 * config.cooldown)
            assert reason(watcher, node.name) is HoldReason.NO_HEAD
            assert watcher.supervisor.books[node.name].state.restarts == 0
    assert node.started_at() == started


async def test_dry_run_logs_the_decision_and_touches_nothing(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """DRY_RUN: "would restart" is logged, under the cooldown; the container is untouched."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    started = node.started_at()
    async with FakeRpc() as rpc:
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url, dry_run=True, backoff_factor=1.0)
            async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
                await anyio.sleep(3 * config.cooldown + 1)
                decisions = watcher.supervisor.books[node.name].state.restarts
    would = [r.getMessage() for r in caplog.records if "would restart (dry run)" in r.getMessage()]
    assert 2 <= len(would) == decisions <= 4  # one per cooldown, never more
    assert "severe_lag" in would[0]
    assert node.started_at() == started
    assert events.actions() == []


async def test_watch_runs_beside_other_tasks_and_leaks_nothing(
    fake_node: FakeNodeFactory,
) -> None:
    """Embedded: watch() shares the loop with another task, and cancelling it leaves no
    task, socket or session behind (warnings are errors in this suite)."""
    import asyncio

    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        tasks_before = len(asyncio.all_tasks())
        fds_before = open_fds()
        ticks = 0

        async def neighbour() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as group:
            group.start_soon(neighbour)
            with anyio.CancelScope() as watch_scope:
                group.start_soon(HeadMover(rpc, node).run)

                async def stop_later() -> None:
                    await anyio.sleep(4)
                    watch_scope.cancel()

                group.start_soon(stop_later)
                await watch(config)
            ticks_at_cancel = ticks
            await anyio.sleep(0.5)
            assert ticks > ticks_at_cancel  # the neighbour lives on
            group.cancel_scope.cancel()
        gc.collect()
        await anyio.sleep(0.2)
        assert len(asyncio.all_tasks()) == tasks_before
        assert open_fds() == fds_before
        assert ticks > 60  # the watcher never starved the loop


async def test_silent_stream_is_reattached_and_no_line_is_applied_twice(
    fake_node: FakeNodeFactory,
) -> None:
    """A follow that falls silent is re-attached; every line is applied exactly once."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        # While quiet the node still advances; a long cooldown keeps this test about the log.
        config = scaled(
            (node.name,), rpc.url, log_silence_timeout=1.0, cooldown=600.0, max_cooldown=600.0
        )
        async with running(config, HeadMover(rpc, node)) as watcher:
            status = watcher.followers[node.name].status
            await eventually(lambda: status.lines > 10, within=5, what="lines flow")
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
            await eventually(lambda: status.silences >= 2, within=6, what="two silences")
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=0))
            await anyio.sleep(2)
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
            await anyio.sleep(1)
            logged = await anyio.to_thread.run_sync(lambda: node.logs(stdout=False))
            assert status.attaches >= 3
            assert status.lines == len(logged.splitlines())


async def test_unreadable_log_driver_is_reported_once_and_holds(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A container logging to `none` cannot be followed: said once, and azwatch holds."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(docker_args=("--log-driver", "none"), **NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node, offset=500)) as watcher:
            await anyio.sleep(config.cooldown + 2)
            assert reason(watcher, node.name) is HoldReason.NO_BEST
            assert not isinstance(watcher.supervisor.books[node.name].decision, Restart)
    # Warned once; the holds and summaries that follow only repeat why they hold.
    said = [
        r for r in caplog.records if "cannot be read" in r.getMessage() and r.levelname == "WARNING"
    ]
    assert len(said) == 1


def test_cli_run_stops_promptly_on_sigterm(fake_node: FakeNodeFactory) -> None:
    """`azwatch run` as a process: SIGTERM ends it with exit code 0 within a few seconds."""
    node = fake_node(**NODE)

    async def scenario() -> tuple[int, str, float]:
        async with FakeRpc() as rpc:
            env = {
                **os.environ,
                "CONTAINER_NAME": node.name,
                "RPC_URL": rpc.url,
                "RPC_POLL_INTERVAL": "0.5",
                "RPC_TIMEOUT": "0.4",
                "PYTHONWARNINGS": "error",
            }
            process = await anyio.open_process(
                [sys.executable, "-m", "azwatch", "run"],
                env=env,
                stderr=subprocess.STDOUT,
            )
            output = b""
            async with process:
                assert process.stdout is not None
                with anyio.fail_after(10):
                    async for chunk in process.stdout:
                        output += chunk
                        if b"following" in output or b"holding" in output:
                            break
                process.send_signal(signal.SIGTERM)
                began = anyio.current_time()
                with anyio.fail_after(10):
                    async for chunk in process.stdout:
                        output += chunk
                    code = await process.wait()
                return code, output.decode(), anyio.current_time() - began

    code, output, took = anyio.run(scenario)
    assert code == 0, output
    assert took < 3, output
    assert "received SIGTERM; stopping" in output
    assert "azwatch stopped" in output
    assert "Traceback" not in output


async def test_check_exit_codes(fake_node: FakeNodeFactory) -> None:
    """`azwatch check`: 0 healthy, 1 would restart, 3 missing container or no head."""
    from azwatch import commands

    node = fake_node(**NODE)
    await anyio.sleep(1)
    async with FakeRpc() as rpc, anyio.create_task_group() as group:
        mover = HeadMover(rpc, node)  # the head moves with the node, as the chain would
        group.start_soon(mover.run)
        healthy = scaled((node.name,), rpc.url, cooldown=0.0)
        assert await anyio.to_thread.run_sync(commands.check, healthy) == 0
        mover.offset = 500
        assert await anyio.to_thread.run_sync(commands.check, healthy) == 1
        missing = scaled(("azwatch-test-no-such-container",), rpc.url)
        assert await anyio.to_thread.run_sync(commands.check, missing) == 3
        rpc.mode = "html"
        assert await anyio.to_thread.run_sync(commands.check, healthy) == 3
        # No reference reachable is "cannot observe" even while the cooldown holds.
        cooling = scaled((node.name,), rpc.url, cooldown=3600.0, max_cooldown=3600.0)
        assert await anyio.to_thread.run_sync(commands.check, cooling) == 3
        group.cancel_scope.cancel()


async def test_check_watcher_asks_the_running_watcher(fake_node: FakeNodeFactory) -> None:
    """`azwatch check --watcher` is 0 while the watcher's /healthz is 200, 3 when none answers."""
    from azwatch import commands

    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url, http_port=0)
        async with running(config, HeadMover(rpc, node)) as watcher:
            assert watcher.http_address is not None
            await eventually(
                lambda: watcher.supervisor.last_evaluation_at, within=5, what="a decision"
            )
            await anyio.sleep(0.5)
            asking = replace(config, http_port=watcher.http_address[1])
            assert await anyio.to_thread.run_sync(commands.check_watcher, asking) == 0
        assert await anyio.to_thread.run_sync(commands.check_watcher, asking) == 3


async def test_events_of_a_prefix_named_container_are_not_ours(
    fake_node: FakeNodeFactory, fake_node_image: str
) -> None:
    """Docker's container filter matches prefixes; azwatch matches names exactly, so stopping
    `<name>-twin` says nothing about `<name>`."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node)) as watcher:
            tracked = watcher.supervisor.books[node.name]
            await eventually(
                lambda: watcher.followers[node.name].status.attached, within=5, what="attach"
            )
            twin = await anyio.to_thread.run_sync(
                lambda: FakeNode.start(
                    f"{node.name}-twin", node.ctl_dir / "twin", image=fake_node_image, **NODE
                )
            )
            try:
                await anyio.to_thread.run_sync(twin.stop)
                await anyio.sleep(1.5)
                assert tracked.state.running
                assert watcher.followers[node.name].status.attached
            finally:
                await anyio.to_thread.run_sync(twin.remove)


async def attached_and_filtered(watcher: Watcher, node: FakeNode) -> None:
    """Until *node*'s log is followed and the event stream is open with its id in its filter."""
    events = watcher.events
    assert events is not None
    await eventually(
        lambda: (
            watcher.followers[node.name].status.attached
            and node.id in events.filters.get("container", [])
            and events.connected
        ),
        within=5,
        what="attached, and the event stream filters by the container's id",
    )


async def test_other_containers_events_are_filtered_out_by_the_daemon(
    fake_node: FakeNodeFactory,
) -> None:
    """The event stream asks only for the watched container's events: another container
    starting and stopping on the same daemon sends azwatch nothing; its own restart does."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node)) as watcher:
            events = watcher.events
            assert events is not None
            await attached_and_filtered(watcher, node)
            before = events.received
            other = await anyio.to_thread.run_sync(lambda: fake_node(name="other", **NODE))
            await anyio.to_thread.run_sync(other.stop)
            await anyio.sleep(1.0)
            assert events.received == before
            await anyio.to_thread.run_sync(node.restart)
            await eventually(
                lambda: events.received >= before + 2, within=5, what="its own stop and start"
            )


async def test_a_container_renamed_away_is_seen_at_once(fake_node: FakeNodeFactory) -> None:
    """Renamed to a name unlike its own, the container still sends its rename event (the
    daemon's filter names its id too), and azwatch says it is gone at once."""
    node = fake_node(**NODE)
    new_name = f"azwatch-test-renamed-{uuid.uuid4().hex[:8]}"
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url)
        async with running(config, HeadMover(rpc, node)) as watcher:
            tracked = watcher.supervisor.books[node.name]
            await attached_and_filtered(watcher, node)
            await anyio.to_thread.run_sync(docker, "rename", node.name, new_name)
            try:
                await eventually(
                    lambda: tracked.state.status == f"renamed to {new_name}",
                    within=3,
                    what="the rename seen",
                )
                assert not tracked.state.running
            finally:
                await anyio.to_thread.run_sync(docker, "rename", new_name, node.name)
