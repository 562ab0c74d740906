"""The examples stay true: the sample scenario, the compose file, the embedding script, and
the README's table of settings."""

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
from azwatch.config import SETTINGS
from azwatch.containers import DEFAULT_DOCKER_URL

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


#: Operator pages whose "## Configuration" table documents the settings they introduce, until
#: the README's table lists them too.
SETTING_PAGES = (ROOT / "docs" / "status-page.md",)


def readme_settings(path: Path = ROOT / "README.md") -> dict[str, tuple[str, bool]]:
    """The table of README.md's "## Configuration": variable → (default, per container).

    A row may group settings (`A` / `B` with defaults `1 / 2`); its "per container" cell
    then holds for each of them.
    """
    text = path.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, tuple[str, bool]] = {}
    for row in rows:
        variables, defaults, per_container, _meaning = (
            cell.strip() for cell in row.strip().strip("|").split(" | ")
        )
        names = [name.strip("` ") for name in variables.split(" / ")]
        values = [value.replace("`", "").strip() for value in defaults.split(" / ")]
        assert len(names) == len(values), row
        assert per_container in {"yes", "no"}, row
        for name, value in zip(names, values, strict=True):
            assert name not in table, f"{name} is in the README table twice"
            table[name] = (value, per_container == "yes")
    return table


def test_readme_settings_table_is_the_settings_table() -> None:
    """Every setting is in the README with its default and whether a label may override it,
    and the README lists no setting that does not exist."""
    documented = readme_settings()
    for page in SETTING_PAGES:
        for variable, row in readme_settings(page).items():
            assert documented.setdefault(variable, row) == row, f"{variable}: {page.name}"
    declared = {item.variable: (item.shown_default, item.per_container) for item in SETTINGS}
    assert set(declared) - set(documented) == set(), "settings missing from the README"
    assert set(documented) - set(declared) == set(), "README rows that are no setting"
    assert documented == declared
    docker_host = next(item for item in SETTINGS if item.variable == "DOCKER_HOST")
    assert docker_host.shown_default == DEFAULT_DOCKER_URL


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
