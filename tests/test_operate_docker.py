"""Operating azwatch: /metrics, /healthz, /status, notifications, JSON logs, several nodes.

Against a real Docker Engine with fake node containers, a fake RPC and a notification
receiver, all on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import aiohttp
import anyio
import pytest
from dockerkit import DockerEvents, FakeNodeFactory
from fakerpc import FakeRpc, closed_port_url
from prometheus_client.parser import text_string_to_metric_families
from receiver import Receiver
from watchkit import NODE, HeadMover, eventually, running, scaled

pytestmark = pytest.mark.docker


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as reply:
        return reply.status, await reply.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus exposition parsed by prometheus_client: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_follow_a_scripted_restart(fake_node: FakeNodeFactory) -> None:
    """/metrics (parsed by prometheus_client) reports the node, the head, the restart by rule
    and the failing endpoint, with a container label; it listens on 127.0.0.1 by default."""
    node = fake_node(**NODE)
    refused = closed_port_url()
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node, offset=500)
        config = scaled((node.name,), rpc.url, http_port=0, rpc_urls=(rpc.url, refused))
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                assert watcher.http_address is not None
                host, port = watcher.http_address
                assert host == "127.0.0.1"
                with anyio.fail_after(15):
                    await events.wait_for_async("start")
                mover.offset = 0
                tracked = watcher.supervisor.books[node.name]
                await eventually(
                    lambda: tracked.state.lag == 0 and not tracked.state.run.major_sync,
                    within=10,
                    what="in sync again, out of the new run's major sync",
                )
                status, text = await get(f"http://{host}:{port}/metrics")
                state = tracked.state
    assert status == 200
    found = samples(text)
    who = (("container", node.name),)
    assert (
        found[("azwatch_restarts_total", (("container", node.name), ("rule", "severe_lag")))] == 1
    )
    assert found[("azwatch_restarts_total", (("container", node.name), ("rule", "stall")))] == 0
    # Scraped a moment apart from `state`, while the node imports 5 blocks/s.
    assert abs(found[("azwatch_local_best", who)] - (state.run.best or 0)) <= 10
    assert abs(found[("azwatch_network_head", who)] - (state.head or 0)) <= 10
    assert abs(found[("azwatch_lag_blocks", who)]) <= 5
    assert found[("azwatch_container_running", who)] == 1
    # One restart, and the node has not held its lag for RECOVERY_PERIOD yet: k = 1.
    assert found[("azwatch_effective_cooldown_seconds", who)] == config.cooldown * 2
    assert found[("azwatch_last_restart_timestamp_seconds", who)] > 0
    assert found[("azwatch_major_sync", who)] == 0
    assert found[("azwatch_producing", who)] == 0
    assert found[("azwatch_log_lines_total", who)] > 10
    dead = refused.removeprefix("http://").rstrip("/")
    assert found[("azwatch_rpc_errors_total", (("endpoint", dead), ("kind", "refused")))] > 3


async def test_healthz_turns_503_on_a_stuck_stream_and_back(fake_node: FakeNodeFactory) -> None:
    """A running container whose log brings nothing: 503 naming it; lines again: 200."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        config = scaled(
            (node.name,),
            rpc.url,
            http_port=0,
            log_silence_timeout=1.5,
            cooldown=600.0,
            max_cooldown=600.0,
        )
        async with running(config, HeadMover(rpc, node)) as watcher:
            assert watcher.http_address is not None
            url = "http://{}:{}".format(*watcher.http_address)
            await eventually(
                lambda: watcher.supervisor.last_evaluation_at, within=5, what="a decision"
            )
            await anyio.sleep(1)
            assert (await get(f"{url}/healthz"))[0] == 200
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
            with anyio.fail_after(10):
                while (reply := await get(f"{url}/healthz"))[0] != 503:
                    await anyio.sleep(0.2)
            problems = json.loads(reply[1])["problems"]
            assert any(node.name in p and "no log line" in p for p in problems)
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=0))
            with anyio.fail_after(10):
                while (await get(f"{url}/healthz"))[0] != 200:
                    await anyio.sleep(0.2)
            status, body = await get(f"{url}/status")
    assert status == 200
    document = json.loads(body)
    entry = document["containers"][node.name]
    assert entry["running"] is True
    assert entry["decision"]["action"] == "hold"
    assert entry["log"]["silences"] >= 1
    assert entry["run"]["best"] > 1000
    assert document["healthy"] is True


async def test_restart_notification_says_whether_it_helped(fake_node: FakeNodeFactory) -> None:
    """One message per restart: container, rule, lag, best, head, and the verdict."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc, Receiver() as hook:
        mover = HeadMover(rpc, node, offset=500)
        config = scaled((node.name,), rpc.url, notify_urls=(hook.url(),))
        with DockerEvents(node.name) as events:
            async with running(config, mover):
                with anyio.fail_after(15):
                    await events.wait_for_async("start")
                mover.offset = 0
                with anyio.fail_after(15):
                    (message,) = await hook.wait_for(1)
    assert message["title"] == f"azwatch: restarted {node.name} (severe_lag)"
    assert re.search(r"lag (49\d|50\d)\b", message["message"])  # 500, give or take a poll
    assert "best #" in message["message"]
    assert "head #" in message["message"]
    assert "helped: yes" in message["message"]


async def test_a_hanging_notification_service_never_delays_a_restart(
    fake_node: FakeNodeFactory,
) -> None:
    """The receiver hangs: the restart still comes right after the cooldown."""
    node = fake_node(**NODE)
    async with FakeRpc() as rpc, Receiver() as hook:
        hook.mode = "hang"
        mover = HeadMover(rpc, node, offset=500)
        config = scaled((node.name,), rpc.url, notify_urls=(hook.url(),), backoff_factor=1.0)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                with anyio.fail_after(20):
                    first_kill = await events.wait_for_async("kill")
                    second_kill = await events.wait_for_async("kill", count=2)
                notifier = watcher.notifier
    # Two restarts one cooldown apart although every notification hangs.
    assert notifier.enabled
    gap = (second_kill["timeNano"] - first_kill["timeNano"]) / 1e9
    assert gap < config.cooldown + config.rpc_poll_interval + 3.0


async def test_three_nodes_only_the_lagging_one_is_restarted(fake_node: FakeNodeFactory) -> None:
    """One process watches three nodes; the lagging one restarts (slowly: it ignores SIGTERM)
    while the other two keep being followed."""
    good_a = fake_node(name="a", **{**NODE, "START": 5000})
    good_b = fake_node(name="b", **{**NODE, "START": 5000})
    lagging = fake_node(name="c", IGNORE_TERM=1, **{**NODE, "START": 1000})
    names = (good_a.name, good_b.name, lagging.name)
    async with FakeRpc() as rpc:
        config = scaled(names, rpc.url, stop_timeout=2)
        with DockerEvents(lagging.name) as events:
            async with running(config, HeadMover(rpc, good_a)) as watcher:
                with anyio.fail_after(20):
                    await events.wait_for_async("kill")
                during = {n: watcher.supervisor.books[n].state.run.best or 0 for n in names[:2]}
                with anyio.fail_after(20):
                    await events.wait_for_async("start")
                after = {n: watcher.supervisor.books[n].state.run.best or 0 for n in names[:2]}
                restarts = {n: watcher.supervisor.books[n].state.restarts for n in names}
    assert restarts[lagging.name] == 1
    assert restarts[good_a.name] == restarts[good_b.name] == 0
    # The lagging node took >= 2 s to stop; the other two moved on meanwhile.
    assert all(after[n] > during[n] for n in names[:2])


async def test_label_mode_finds_new_containers_and_applies_overrides(
    fake_node: FakeNodeFactory,
) -> None:
    """CONTAINER_LABEL picks up labelled containers, also ones started later; a label may
    raise a threshold for its own container only."""
    label = ("--label", "azwatch.enable=true")
    tolerant = fake_node(
        name="tolerant",
        docker_args=(
            *label,
            "--label",
            "azwatch.block_lag_100=100000",
            "--label",
            "azwatch.block_lag_20=50000",
        ),
        **NODE,
    )
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, tolerant, offset=500)
        config = scaled((), rpc.url, container_label="azwatch.enable=true")
        async with running(config, mover) as watcher:
            await eventually(
                lambda: tolerant.name in watcher.supervisor.books, within=10, what="found"
            )
            late = fake_node(name="late", docker_args=label, **NODE)
            await eventually(
                lambda: late.name in watcher.supervisor.books, within=10, what="late found"
            )
            late_tracked = watcher.supervisor.books[late.name]
            await eventually(lambda: late_tracked.state.restarts >= 1, within=15, what="restart")
            tolerant_tracked = watcher.supervisor.books[tolerant.name]
            assert tolerant_tracked.config.block_lag_100 == 100000
            assert tolerant_tracked.state.restarts == 0
            assert late_tracked.config.block_lag_100 == config.block_lag_100


def test_json_logs_are_one_object_per_line_without_secrets(fake_node: FakeNodeFactory) -> None:
    """LOG_FORMAT=json: every line parses, with time, level, container and event; the RPC
    URL's credentials never appear."""
    node = fake_node(**NODE)

    async def scenario() -> str:
        async with FakeRpc() as rpc:
            secret_url = rpc.url.replace("http://", "http://agent:pa55word@") + "?apikey=K3YK3Y"
            env = {
                **os.environ,
                "CONTAINER_NAME": node.name,
                "RPC_URL": secret_url,
                "RPC_POLL_INTERVAL": "0.5",
                "RPC_TIMEOUT": "0.4",
                "CHECK_INTERVAL": "1",
                "LOG_FORMAT": "json",
            }
            process = await anyio.open_process(
                [sys.executable, "-m", "azwatch", "run"], env=env, stderr=subprocess.STDOUT
            )
            async with process:
                await anyio.sleep(4)
                process.send_signal(signal.SIGTERM)
                assert process.stdout is not None
                with anyio.fail_after(10):
                    output = b"".join([chunk async for chunk in process.stdout])
                    assert await process.wait() == 0
            return output.decode()

    output = anyio.run(scenario)
    records = [json.loads(line) for line in output.splitlines()]
    assert records
    for record in records:
        assert {"time", "level", "logger", "container", "event", "message"} <= set(record)
    events = {record["event"] for record in records}
    assert {"start", "summary", "stopped"} <= events
    summary = next(r for r in records if r["event"] == "summary")
    assert summary["container"] == node.name
    for secret in ("pa55word", "K3YK3Y", "agent"):
        assert secret not in output
