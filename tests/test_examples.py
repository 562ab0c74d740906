"""The examples stay true: the sample scenario, the compose file, the embedding script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import yaml
from dockerkit import FakeNodeFactory
from fakerpc import FakeRpc
from watchkit import NODE, HeadMover

from azwatch.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_sample_scenario_replays_to_one_restart(capsys: pytest.CaptureFixture[str]) -> None:
    """examples/scenario.jsonl: a stall with a rate-limited reference; one restart at 300 s."""
    assert main(["replay", str(EXAMPLES / "scenario.jsonl")], environ={}) == 0
    (decision,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (decision["at"], decision["rule"], decision["lag"]) == (300.0, "severe_lag", 230)


def test_compose_file_gives_azwatch_only_the_proxy() -> None:
    """The compose example: azwatch talks to the proxy, never to the socket; the proxy allows
    list/inspect, logs, events and restarts, and no other write."""
    compose = yaml.safe_load((EXAMPLES / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    azwatch, proxy = services["azwatch"], services["socket-proxy"]
    assert azwatch["environment"]["DOCKER_HOST"] == "tcp://socket-proxy:2375"
    assert "volumes" not in azwatch
    assert azwatch["read_only"] is True
    allowed = {key for key, value in proxy["environment"].items() if value == "1"}
    assert allowed == {"CONTAINERS", "ALLOW_LOGS", "EVENTS", "PING", "VERSION", "ALLOW_RESTARTS"}
    assert proxy["environment"]["POST"] == "0"
    assert azwatch["environment"]["CONTAINER_NAME"] in {
        service.get("container_name") for service in services.values()
    }


@pytest.mark.docker
def test_embed_example_runs_beside_the_application(fake_node: FakeNodeFactory) -> None:
    """examples/embed.py: azwatch watches beside the app's own task and is cancelled cleanly."""
    node = fake_node(**NODE)

    async def scenario() -> tuple[int, str]:
        async with FakeRpc() as rpc, anyio.create_task_group() as group:
            group.start_soon(HeadMover(rpc, node).run)
            env = {
                **os.environ,
                "CONTAINER_NAME": node.name,
                "RPC_URL": rpc.url,
                "RPC_POLL_INTERVAL": "0.5",
                "RPC_TIMEOUT": "0.4",
                "CHECK_INTERVAL": "1",
                "AZWATCH_EMBED_SECONDS": "3",
                "PYTHONWARNINGS": "error",
            }
            result = await anyio.run_process(
                [sys.executable, str(EXAMPLES / "embed.py")],
                env=env,
                stderr=subprocess.STDOUT,
                check=False,
            )
            group.cancel_scope.cancel()
        return result.returncode, result.stdout.decode()

    code, output = anyio.run(scenario)
    assert code == 0, output
    assert "application heartbeat 1" in output
    assert "fully caught up" in output or "lag" in output
    assert "azwatch stopped; the application goes on" in output
    assert "Traceback" not in output
