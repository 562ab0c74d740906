"""The snapshot and what shows it (/status, /healthz, /metrics), with hand-built snapshots.

No watcher, no Docker: :mod:`azwatch.http` and :mod:`azwatch.metrics` take a function that
returns a :class:`~azwatch.snapshot.Snapshot`, so these tests hand them one.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import aiohttp
from loopback import start_on_loopback, stop
from prometheus_client.parser import text_string_to_metric_families

from azwatch.config import Config
from azwatch.events import BlockImported, HeadSample, LogCaughtUp, RunStarted
from azwatch.http import build_app
from azwatch.snapshot import (
    ContainerView,
    DecisionView,
    HeadView,
    LogView,
    Snapshot,
    health_problems,
    take,
)
from azwatch.supervisor import ContainerEvents, HeadPolled, Supervisor

CONFIG = Config(container_names=("node",))

VIEW = ContainerView(
    name="node",
    running=True,
    status="running",
    run_id="abc@t",
    run_age=400.0,
    log_live=True,
    best=1000,
    best_advanced_age=1.0,
    finalized=998,
    major_sync=False,
    producing=True,
    session=12,
    peers=7,
    fatal=None,
    genesis="0x7025…344e",
    wrong_chain=(),
    head=1003,
    lag=3,
    restarts=2,
    restarts_by_rule=(("severe_lag", 1), ("stall", 1)),
    failed_restarts=1,
    unhelped_restarts=0,
    restart_in_flight=False,
    effective_cooldown=300.0,
    cooldown_left=0.0,
    last_restart_time=1_700_000_000.0,
    decision=DecisionView("hold", "healthy", "lag 3 within thresholds", 0.5, None),
    log=LogView(attached=True, detail="following", lines=420, last_line_age=0.4),
)
HEAD = HeadView(last_poll_age=2.0, last_ok_age=2.0, errors=(("rpc.example", "timeout", 3),))
SNAPSHOT = Snapshot(time=1_700_000_100.0, dry_run=False, head=HEAD, containers=(VIEW,), problems=())


async def get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
        return reply.status, await reply.text()


async def serve_and_get(snapshot: Snapshot, path: str) -> tuple[int, str]:
    runner, port = await start_on_loopback(build_app(lambda: snapshot))
    try:
        return await get(f"http://127.0.0.1:{port}{path}")
    finally:
        await stop(runner)


async def test_status_shows_the_snapshot() -> None:
    status, body = await serve_and_get(SNAPSHOT, "/status")
    assert status == 200
    document = json.loads(body)
    node = document["containers"]["node"]
    assert (node["lag"], node["run"]["best"], node["run"]["peers"]) == (3, 1000, 7)
    assert node["restarts_by_rule"] == {"severe_lag": 1, "stall": 1}
    assert node["decision"] == {
        "action": "hold",
        "reason": "healthy",
        "detail": "lag 3 within thresholds",
        "age": 0.5,
        "catch_up_rate": None,
    }
    assert document["healthy"] is True


async def test_healthz_is_503_with_the_snapshots_problems() -> None:
    assert (await serve_and_get(SNAPSHOT, "/healthz"))[0] == 200
    sick = replace(SNAPSHOT, problems=("the head poller has not polled recently",))
    status, body = await serve_and_get(sick, "/healthz")
    assert status == 503
    assert json.loads(body)["problems"] == ["the head poller has not polled recently"]


async def test_metrics_show_the_snapshot() -> None:
    status, text = await serve_and_get(SNAPSHOT, "/metrics")
    assert status == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    node = (("container", "node"),)
    assert samples[("azwatch_lag_blocks", node)] == 3
    assert samples[("azwatch_local_best", node)] == 1000
    assert samples[("azwatch_producing", node)] == 1
    assert samples[("azwatch_restarts_total", (("container", "node"), ("rule", "stall")))] == 1
    assert (
        samples[("azwatch_restarts_total", (("container", "node"), ("rule", "falling_behind")))]
        == 0
    )
    assert samples[("azwatch_restart_failures_total", node)] == 1
    errors = (("endpoint", "rpc.example"), ("kind", "timeout"))
    assert samples[("azwatch_rpc_errors_total", errors)] == 3
    # Unknown values are absent, never a made-up number.
    unknown = replace(SNAPSHOT, containers=(replace(VIEW, lag=None, head=None),))
    _, text = await serve_and_get(unknown, "/metrics")
    assert "azwatch_lag_blocks{" not in text
    assert "azwatch_network_head{" not in text


def test_health_problems_name_what_does_not_work() -> None:
    quiet = replace(VIEW, log=replace(VIEW.log, last_line_age=120.0))
    problems = health_problems(CONFIG, (quiet,), HEAD, last_evaluation_age=1.0)
    assert problems == ["node: no log line for 2m00s from a running container"]
    stopped = replace(VIEW, log=LogView(waiting="stopped", detail="container is exited"))
    assert health_problems(CONFIG, (stopped,), HEAD, last_evaluation_age=1.0) == []
    broken = replace(VIEW, log=LogView(waiting="docker", detail="cannot reach the Docker Engine"))
    assert health_problems(CONFIG, (broken,), HEAD, last_evaluation_age=1.0) == [
        "node: cannot reach the Docker Engine"
    ]
    # Between attaches (the stream ended, the next inspect has not answered yet), a log that
    # brought nothing for longer than LOG_SILENCE_TIMEOUT is as blind as an attached one.
    between = replace(VIEW, log=LogView(detail="following", last_line_age=120.0))
    assert health_problems(CONFIG, (between,), HEAD, last_evaluation_age=1.0) == [
        "node: no log line for 2m00s from a running container"
    ]
    fresh = replace(VIEW, log=LogView(detail="following", last_line_age=0.5))
    assert health_problems(CONFIG, (fresh,), HEAD, last_evaluation_age=1.0) == []
    # A log that fell silent stays the reason while the follower re-attaches.
    silent = replace(
        VIEW,
        log=LogView(attached=True, waiting="silent", detail="no log line for 60s; re-attaching"),
    )
    assert health_problems(CONFIG, (silent,), HEAD, last_evaluation_age=1.0) == [
        "node: no log line for 60s; re-attaching"
    ]
    old = HeadView(last_poll_age=60.0, last_ok_age=60.0)
    assert health_problems(CONFIG, (), old, last_evaluation_age=None) == [
        "the decision task has not evaluated recently",
        "the head poller has not polled recently",
    ]


def test_take_builds_the_snapshot_from_a_supervisor() -> None:
    supervisor = Supervisor(CONFIG)
    supervisor.watch("node", 0.0)
    events = (RunStarted("run-1", -100.0), LogCaughtUp(), BlockImported(1000))
    supervisor.handle(ContainerEvents("node", events), 1.0)
    supervisor.handle(HeadPolled(HeadSample(1004)), 2.0)
    supervisor.tick(2.0)
    snapshot = take(supervisor, now=5.0, wall=1_700_000_000.0, logs={}, head=HeadView(1.0, 1.0))
    view = snapshot.container("node")
    assert view is not None
    assert (view.best, view.head, view.lag, view.run_age) == (1000, 1004, 4, 105.0)
    assert view.decision is not None
    assert (view.decision.action, view.decision.why, view.decision.age) == ("hold", "cooldown", 3.0)
    assert view.cooldown_left == 300.0 - 105.0
    assert snapshot.healthy


def test_no_import_cycle_inside_the_package() -> None:
    """Module imports form a DAG: each module's azwatch imports, followed, never return to it."""
    package = Path(__file__).parent.parent / "azwatch"
    graph: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        name = path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports: set[str] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("azwatch")
            ):
                imports.add(node.module.removeprefix("azwatch").lstrip(".") or "__init__")
                if node.module == "azwatch":
                    imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                imports.update(
                    alias.name.removeprefix("azwatch.")
                    for alias in node.names
                    if alias.name.startswith("azwatch.")
                )
        graph[name] = {module for module in imports if module != name}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for module in graph.get(start, ()):
            if module == target or (
                module not in seen and reaches(module, target, seen | {module})
            ):
                return True
        return False

    cycles = sorted(name for name in graph if name != "__init__" and reaches(name, name, set()))
    assert cycles == []
