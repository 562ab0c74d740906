"""The maintenance pause, live: a watcher, a fake node container, the fake reference RPC and
the real CLI.

What is checked is what Docker itself reports (its events), not only what the watcher
believes.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import aiohttp
import anyio
import pytest
from dockerkit import DockerEvents, FakeNodeFactory
from fakerpc import FakeRpc
from test_cli import without_containers
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch.watcher import Watcher

pytestmark = pytest.mark.docker


async def status(base: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/status") as reply,
    ):
        document: dict[str, Any] = json.loads(await reply.text())
    return document


async def cli(*argv: str) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "azwatch", *argv], env=without_containers(), check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_a_paused_container_is_not_restarted_until_resumed(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """`azwatch pause`: the watcher keeps deciding and says it would restart, Docker reports
    no restart; `azwatch resume`: the restart comes at once. A new watcher starts unpaused."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node, offset=500)  # lagging from the start
        config = scaled((node.name,), rpc.url, http_port=0, cooldown=6.0)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                assert watcher.http_address is not None
                base = f"http://127.0.0.1:{watcher.http_address[1]}"
                code, out, err = await cli(
                    "pause", node.name, "--for", "10m", "--reason", "maintenance", "--url", base
                )
                assert (code, err) == (0, ""), err
                assert out.startswith(f"paused {node.name} for 10m00s")
                would = await eventually(
                    lambda: (
                        [
                            r.getMessage()
                            for r in caplog.records
                            if "paused: would restart: severe_lag" in r.getMessage()
                        ]
                        or None
                    ),
                    within=15,
                    what="the paused watcher says it would restart",
                )
                assert "maintenance" in would[0]
                await anyio.sleep(3 * config.check_interval)  # still deciding, still not
                assert "restart" not in events.actions()
                assert "kill" not in events.actions()
                document = (await status(base))["containers"][node.name]
                assert document["paused"] is True
                assert document["pause"]["reason"] == "maintenance"
                assert document["decision"]["action"] == "paused"
                assert document["restarts"] == 0
                code, out, _ = await cli("status", "--url", base)
                assert code == 0
                assert "paused" in out.splitlines()[1]
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{base}/metrics") as reply,
                ):
                    metrics = await reply.text()
                assert f'azwatch_paused{{container="{node.name}"}} 1.0' in metrics

                code, out, err = await cli("resume", node.name, "--url", base)
                assert (code, out, err) == (0, f"resumed {node.name}\n", "")
                with anyio.fail_after(10):
                    await events.wait_for_async("restart")
                mover.offset = 0
                # Pause again, then stop this watcher while paused...
                code, _, err = await cli("pause", node.name, "--url", base)
                assert (code, err) == (0, "")
                assert watcher.snapshot().containers[0].paused
        assert events.actions().count("restart") == 1
        # ...and a new watcher, like a restarted azwatch, starts unpaused.
        async with running(config, mover) as again:
            assert isinstance(again, Watcher)
            assert again.http_address is not None
            base = f"http://127.0.0.1:{again.http_address[1]}"
            document = (await status(base))["containers"][node.name]
            assert (document["paused"], document["pause"]) == (False, None)
