"""The probe mode end to end: a fake node RPC and a fake reference on 127.0.0.1, the probe
watcher between them, and ``/livez`` read as the kubelet reads it. Intervals are scaled to
fractions of a second."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import anyio
import anyio.abc
import pytest
from fakenoderpc import FakeNodeRpc
from fakerpc import FakeRpc

import azwatch
from azwatch.cli import main
from azwatch.config import Config
from azwatch.policy import effective_cooldown
from azwatch.probewatch import UNHEEDED_PERIODS, ProbeWatcher

#: Scaled: polls every 0.2 s, a 1 s cooldown, severe lag past 50 blocks, probe period 0.6 s.
#: Stall and falling behind wait longer than any test runs.
BASE = {
    "restart_via": "kubelet",
    "container_names": ("aleph-node",),
    "http_port": 0,
    "cooldown": 1.0,
    "max_cooldown": 10.0,
    "check_interval": 0.5,
    "rpc_poll_interval": 0.2,
    "rpc_timeout": 0.15,
    "block_lag_20": 20,
    "block_lag_100": 50,
    "stall_timeout": 30.0,
    "trend_window": 30.0,
    "probe_period": 0.6,
}


class Chain:
    """The reference's head rises at *rate* blocks/s; the node follows *lag* behind, or stands
    still at its best while :attr:`stalled`."""

    def __init__(self, rpc: FakeRpc, node: FakeNodeRpc, *, rate: float = 20.0) -> None:
        self.rpc, self.node, self.rate = rpc, node, rate
        self.lag = 2
        self.stalled = False
        self._began = time.monotonic()
        self._start = rpc.head

    def head(self) -> int:
        return self._start + int((time.monotonic() - self._began) * self.rate)

    async def run(self) -> None:
        while True:
            head = self.head()
            self.rpc.head = head
            if not self.stalled:
                self.node.best = head - self.lag
                self.node.finalized = self.node.best - 2
            await anyio.sleep(0.05)


async def eventually(
    condition: Callable[[], Any], *, within: float = 10.0, every: float = 0.05
) -> Any:
    """*condition*'s first truthy value within *within* seconds (else the test fails)."""
    with anyio.move_on_after(within):
        while True:
            value = condition()
            if value:
                return value
            await anyio.sleep(every)
    pytest.fail(f"not within {within}s")


@asynccontextmanager
async def probing(**overrides: Any) -> AsyncIterator[tuple[ProbeWatcher, Chain, str]]:
    """A fake node and reference, a chain moving them, and a probe watcher: (watcher, chain,
    /livez URL)."""
    async with (
        FakeRpc(head=1000) as rpc,
        # In major sync: moderate lag holds for it, so severe lag is the rule that decides.
        FakeNodeRpc(best=998, syncing=True) as node,
        anyio.create_task_group() as group,
    ):
        chain = Chain(rpc, node)
        group.start_soon(chain.run)
        config = Config(**(BASE | {"rpc_urls": (rpc.url,), "node_rpc_url": node.url} | overrides))
        watcher = ProbeWatcher(config)
        group.start_soon(watcher.run)
        with anyio.fail_after(5):
            await watcher.started.wait()
        assert watcher.http_address is not None
        host, port = watcher.http_address
        yield watcher, chain, f"http://{host}:{port}/livez"
        group.cancel_scope.cancel()


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        with anyio.fail_after(5):
            async with session.post(url, json=body) as resp:
                return resp.status, await resp.json()


async def get(url: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        with anyio.fail_after(5):
            async with session.get(url, headers=headers) as resp:
                if resp.content_type == "application/json":
                    return resp.status, await resp.json()
                return resp.status, await resp.text()


async def test_verdict_flips_to_503_on_severe_lag_and_back_after_the_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch")
    async with probing() as (watcher, chain, livez):
        # Healthy after the cooldown: the rules hold, the kubelet is told so.
        await eventually(lambda: watcher.supervisor.books["aleph-node"].decision is not None)
        await anyio.sleep(1.5)
        status, body = await get(livez)
        assert (status, body["alive"]) == (200, True)

        # The node stands still while the chain moves on: severe lag, a 503 with its numbers.
        chain.stalled = True
        await eventually(lambda: not watcher.verdict.alive, within=15)
        status, body = await get(livez)
        assert status == 503
        assert body["rule"] == "severe_lag"
        numbers = body["numbers"]
        assert numbers["lag"] > 50
        assert numbers["best"] == chain.node.best
        assert numbers["head"] > numbers["best"]
        assert all(not isinstance(value, dict | list) for value in numbers.values())
        assert "BLOCK_LAG_100=50" in body["text"]
        status, text = await get(livez, Accept="text/plain")
        assert status == 503
        assert text.startswith("restart: severe_lag: lag ")

        # It stays 503 while the node still answers: the kubelet has not restarted it yet.
        await anyio.sleep(1.0)
        assert (await get(livez))[0] == 503

        # The kubelet kills the node (its RPC refuses for longer than PROBE_PERIOD) and
        # starts it again; it comes back caught up.
        chain.node.mode = "close"
        await anyio.sleep(1.2)
        chain.stalled = False
        chain.node.mode = "ok"
        await eventually(lambda: watcher.verdict.alive, within=5)
        status, body = await get(livez)
        assert (status, body["alive"]) == (200, True)
        # The new run gets its cooldown, then the rules judge it healthy: still 200.
        await anyio.sleep(2.0)
        assert (await get(livez))[0] == 200
        # The kubelet's back-off replaces azwatch's: the restart did not double the cooldown.
        state = watcher.supervisor.books["aleph-node"].state
        assert state.unhelped_restarts == 1
        assert watcher.config.backoff_factor == 1
        assert effective_cooldown(state, watcher.config) == BASE["cooldown"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("probe mode (RESTART_VIA=kubelet)" in m for m in messages) == 1
    # The tests listen on loopback only, where no kubelet could probe: said once.
    assert sum("HTTP_HOST=127.0.0.1 is a loopback address" in m for m in messages) == 1
    assert any("restarting: severe_lag" in m for m in messages)
    assert any("new run: the node answers again after" in m for m in messages)
    assert any("restart done: the kubelet restarted it" in m for m in messages)


async def test_finality_lag_flips_the_verdict_too() -> None:
    """The node imports blocks but its finality stopped, while the reference's goes on: the
    finality rule decides from the node channel alone. The reference here is another node
    (FakeNodeRpc), which tells its finalized block."""
    async with (
        FakeNodeRpc(best=1000, finalized=998) as reference,
        FakeNodeRpc(best=998, finalized=990) as node,
        anyio.create_task_group() as group,
    ):

        async def move() -> None:
            began = time.monotonic()
            while True:
                reference.best = 1000 + int((time.monotonic() - began) * 20)
                reference.finalized = reference.best - 2
                node.best = reference.best - 2  # keeps up; its finalized stays at #990
                await anyio.sleep(0.05)

        group.start_soon(move)
        settings = {"rpc_urls": (reference.url,), "node_rpc_url": node.url}
        config = Config(**(BASE | settings | {"finality_timeout": 2.0, "finality_min_rise": 5}))
        watcher = ProbeWatcher(config)
        group.start_soon(watcher.run)
        await eventually(lambda: not watcher.verdict.alive, within=20)
        assert watcher.http_address is not None
        host, port = watcher.http_address
        status, body = await get(f"http://{host}:{port}/livez")
        assert (status, body["rule"]) == (503, "finality_lag")
        assert body["numbers"]["finalized"] == 990
        group.cancel_scope.cancel()


async def test_a_node_back_with_a_lower_best_is_a_new_run() -> None:
    """A restart shorter than PROBE_PERIOD is still a new run when the best went down (the
    node started on an empty database)."""
    async with probing(probe_period=30.0) as (watcher, chain, livez):
        chain.stalled = True
        await eventually(lambda: not watcher.verdict.alive, within=15)
        chain.node.mode = "close"
        await anyio.sleep(0.5)
        chain.node.best, chain.node.finalized = 10, 8
        chain.node.mode = "ok"
        await eventually(lambda: watcher.verdict.alive, within=5)
        assert watcher.tracker.runs == 2
        assert (await get(livez))[0] == 200


async def test_a_lost_poll_is_not_a_restart() -> None:
    """The node's RPC fails for less than PROBE_PERIOD and comes back with its best: the
    verdict stays 503, since the kubelet has not restarted the node."""
    async with probing(probe_period=5.0) as (watcher, chain, livez):
        chain.stalled = True
        await eventually(lambda: not watcher.verdict.alive, within=15)
        chain.node.mode = "close"
        await anyio.sleep(0.5)
        chain.node.mode = "ok"
        await anyio.sleep(1.0)
        assert watcher.tracker.runs == 1
        assert (await get(livez))[0] == 503


async def test_a_503_nobody_acts_on_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """UNHEEDED_PERIODS probe periods of 503 and the node answering all along: the probe is
    not wired to /livez, and azwatch says so once."""
    caplog.set_level(logging.INFO, logger="azwatch")
    async with probing(probe_period=0.05) as (watcher, chain, _livez):
        chain.stalled = True
        await eventually(lambda: not watcher.verdict.alive, within=15)
        since = time.monotonic()

        def unheeded() -> list[str]:
            return [r.getMessage() for r in caplog.records if "has not restarted" in r.getMessage()]

        (said,) = await eventually(unheeded, within=5)
        assert time.monotonic() - since >= UNHEEDED_PERIODS * 0.05 - 0.2
        assert "/livez has answered 503 for" in said
        assert "PROBE_PERIOD=0.05s" in said
        await anyio.sleep(0.5)
        assert len(unheeded()) == 1
        assert not watcher.verdict.alive


async def test_a_pause_keeps_200_until_resumed(caplog: pytest.LogCaptureFixture) -> None:
    """The operator's pause (POST /control/pause, open on loopback) holds the verdict at 200
    while the rules would restart; after resume the verdict turns 503."""
    caplog.set_level(logging.INFO, logger="azwatch")
    async with probing() as (watcher, chain, livez):
        control = livez.replace("/livez", "/control")
        status, _ = await post(f"{control}/pause", {"container": "aleph-node", "for": "1h"})
        assert status == 200
        chain.stalled = True
        await eventually(
            lambda: any("paused: would restart" in r.getMessage() for r in caplog.records),
            within=15,
        )
        assert (await get(livez))[0] == 200
        status, _ = await post(f"{control}/resume", {"container": "aleph-node"})
        assert status == 200
        await eventually(lambda: not watcher.verdict.alive, within=5)
        assert (await get(livez))[0] == 503


async def test_dry_run_decides_and_keeps_serving_200(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="azwatch")
    async with probing(dry_run=True) as (watcher, chain, livez):
        chain.stalled = True
        await eventually(
            lambda: any("would restart (dry run)" in r.getMessage() for r in caplog.records),
            within=15,
        )
        assert (await get(livez))[0] == 200
        assert watcher.verdict.alive
        assert watcher.supervisor.books["aleph-node"].restarts_by_rule == {"severe_lag": 1}


async def test_no_docker_is_contacted() -> None:
    """The probe mode opens no Docker client: a DOCKER_HOST that records connections sees
    none. The node's chain comes from its RPC."""
    connections = 0

    async def count(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, count)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with probing(docker_host=f"tcp://127.0.0.1:{port}") as (watcher, _chain, livez):
            await eventually(lambda: watcher.supervisor.books["aleph-node"].decision is not None)
            assert (await get(livez))[0] == 200
            # /healthz and /status work as in Docker mode; the log is said not to be read.
            assert (await get(livez.replace("/livez", "/healthz")))[0] == 200
            status, document = await get(livez.replace("/livez", "/status"))
            view = document["containers"]["aleph-node"]
            assert (status, view["run"]["genesis"]) == (200, "0x7025…344e")
            assert "RESTART_VIA=kubelet" in view["log"]["detail"]
        group.cancel_scope.cancel()
    assert connections == 0


async def test_azwatch_run_in_kubelet_mode_serves_livez_and_stops_on_sigterm() -> None:
    """`azwatch run` with RESTART_VIA=kubelet and no Docker socket: JSON logs say the mode
    once, /livez answers, SIGTERM ends it with exit code 0."""
    async with FakeRpc(head=1000) as rpc, FakeNodeRpc(best=999) as node:
        port = free_port()
        env = {
            **os.environ,
            "RESTART_VIA": "kubelet",
            "NODE_RPC_URL": node.url,
            "RPC_URL": rpc.url,
            "HTTP_PORT": str(port),
            "RPC_POLL_INTERVAL": "0.3",
            "RPC_TIMEOUT": "0.25",
            "CHECK_INTERVAL": "1",
            "DOCKER_HOST": "unix:///nonexistent/docker.sock",
            "LOG_FORMAT": "json",
            "PYTHONWARNINGS": "error",
        }
        process = await anyio.open_process(
            [sys.executable, "-m", "azwatch", "run"], env=env, stderr=subprocess.STDOUT
        )
        async with process:
            status = await eventually_answered(f"http://127.0.0.1:{port}/livez")
            process.send_signal(signal.SIGTERM)
            assert process.stdout is not None
            with anyio.fail_after(10):
                output = b"".join([chunk async for chunk in process.stdout])
                assert await process.wait() == 0
    assert status == 200
    records = [json.loads(line) for line in output.decode().splitlines()]
    starts = [record for record in records if record["event"] == "start"]
    assert len(starts) == 1
    assert starts[0]["mode"] == "kubelet"
    assert "probe mode (RESTART_VIA=kubelet)" in starts[0]["message"]
    assert any(record["event"] == "new_run" for record in records)
    assert records[-1]["event"] == "stopped"


async def test_the_library_door_serves_the_verdict_in_kubelet_mode() -> None:
    """``azwatch.watch(config)`` with RESTART_VIA=kubelet is the probe watcher, not Docker's."""
    async with FakeRpc(head=1000) as rpc, FakeNodeRpc(best=999) as node:
        port = free_port()
        config = Config(**(BASE | {"rpc_urls": (rpc.url,), "node_rpc_url": node.url}))
        async with anyio.create_task_group() as group:
            group.start_soon(azwatch.watch, replace(config, http_port=port))
            status = await eventually_answered(f"http://127.0.0.1:{port}/livez")
            group.cancel_scope.cancel()
    assert status == 200


def test_check_says_it_needs_docker_in_kubelet_mode(capsys: pytest.CaptureFixture[str]) -> None:
    environ = {"RESTART_VIA": "kubelet", "NODE_RPC_URL": "http://127.0.0.1:9944", "HTTP_PORT": "1"}
    assert main(["check"], environ=environ) == 2
    assert "check looks through Docker" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually_answered(url: str, within: float = 15.0) -> int:
    """The status of the first answer *url* gives within *within* seconds."""
    with anyio.fail_after(within):
        while True:
            try:
                return (await get(url))[0]
            except aiohttp.ClientConnectionError:
                await anyio.sleep(0.1)
