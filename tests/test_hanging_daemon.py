"""A Docker daemon that hangs: it accepts the connection and never answers.

The daemon is the tests' own (tests/fakeengine.py: aiohttp on a unix socket under the test's
tmp_path, one scripted aleph-node), hanging on demand on inspect, logs (at attach or
mid-stream), events and restart; the reference is the fake RPC on 127.0.0.1, its head the
node's best plus a lag the test sets. Deadlines are scaled (``DOCKER_TIMEOUT=0.5``), and each
test asserts what azwatch tells the operator (one log line per failure, ``/healthz`` naming
what it cannot observe, healthy again when the daemon answers) and what it does to the node
(the requests the fake daemon received: no restart on stale data, none twice).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from fakeengine import FakeEngine, Hang
from fakerpc import FakeRpc
from watchkit import eventually, running, scaled

from azwatch.commands import EXIT_BLIND, LOG_READ_ANSWERS, check_once
from azwatch.config import Config
from azwatch.policy import Hold, HoldReason
from azwatch.watcher import Watcher

NAME = "aleph-node"
#: Deadline of every Engine call that answers at once, scaled down from 15 s.
DOCKER_TIMEOUT = 0.5
#: Seconds without a log line before the follower re-attaches (and the rules hold sooner).
SILENCE = 2.0


@dataclass
class Lag:
    """The lag the reference shows: its head is the node's best plus :attr:`blocks`."""

    blocks: int = 0


def config_for(
    engine: FakeEngine, rpc: FakeRpc, names: tuple[str, ...] = (NAME,), **overrides: Any
) -> Config:
    """Scaled settings against *engine* and *rpc*, with the catch-up guard off (it would
    hold some restarts by luck: these tests must see the rules' own judgement)."""
    settings: dict[str, Any] = {
        "docker_host": engine.docker_host,
        "docker_timeout": DOCKER_TIMEOUT,
        "log_silence_timeout": SILENCE,
        "check_interval": 0.5,
        "cooldown": 1.0,
        "stop_timeout": 0,
        "catch_up_rate": 0,
        "http_port": 0,
    }
    settings.update(overrides)
    return scaled(names, rpc.url, **settings)


@asynccontextmanager
async def watching(
    engine: FakeEngine, rpc: FakeRpc, lag: Lag, **overrides: Any
) -> AsyncIterator[Watcher]:
    """Run a watcher against *engine*, the reference's head at the node's best plus *lag*."""

    async def move_head() -> None:
        while True:
            rpc.head = engine.node.best + lag.blocks
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as group:
        group.start_soon(move_head)
        async with running(config_for(engine, rpc, **overrides)) as watcher:
            yield watcher
        group.cancel_scope.cancel()


async def health(watcher: Watcher) -> tuple[int, list[str]]:
    """``GET /healthz``: its status and the problems it names."""
    assert watcher.http_address is not None
    host, port = watcher.http_address
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"http://{host}:{port}/healthz") as reply,
    ):
        body = await reply.json()
    return reply.status, list(body.get("problems", []))


async def healthy_within(watcher: Watcher, seconds: float) -> None:
    deadline = anyio.current_time() + seconds
    while True:
        status, problems = await health(watcher)
        if status == 200:
            return
        if anyio.current_time() > deadline:
            msg = f"not healthy within {seconds}s: {problems}"
            raise AssertionError(msg)
        await anyio.sleep(0.1)


async def unhealthy_within(watcher: Watcher, seconds: float, *words: str) -> str:
    """Wait until ``/healthz`` answers 503 with a problem containing every one of *words*;
    return that problem."""
    deadline = anyio.current_time() + seconds
    while True:
        status, problems = await health(watcher)
        named = [p for p in problems if all(word in p for word in words)]
        if status == 503 and named:
            return named[0]
        if anyio.current_time() > deadline:
            msg = f"no problem naming {words} within {seconds}s (status {status}: {problems})"
            raise AssertionError(msg)
        await anyio.sleep(0.1)


async def answers_again(
    engine: FakeEngine,
    watcher: Watcher,
    caplog: pytest.LogCaptureFixture,
    endpoint: Hang,
    *,
    within: float = 3.0,
) -> None:
    """Stop *endpoint* hanging: lines arrive, /healthz says 200 within *within* seconds, and
    the log's return is said once."""
    engine.hanging.discard(endpoint)
    lines = lines_seen(watcher)
    await eventually(lambda: lines_seen(watcher) > lines, within=8, what="lines again")
    await healthy_within(watcher, within)
    assert said(caplog, "follow_attached") == [f"{NAME}: following the log again"]


def said(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    """The messages of the log records of *event*."""
    return [r.getMessage() for r in caplog.records if getattr(r, "event", None) == event]


def hold_reason(watcher: Watcher) -> HoldReason | None:
    decision = watcher.supervisor.books[NAME].decision
    return decision.reason if isinstance(decision, Hold) else None


def lines_seen(watcher: Watcher) -> int:
    return watcher.followers[NAME].status.lines


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="azwatch")
    return caplog


@pytest.mark.parametrize("tty", [False, True], ids=["multiplexed", "tty"])
async def test_fake_engine_serves_what_azwatch_reads(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture, tty: bool
) -> None:
    """The fake daemon is good enough to watch, in both log formats: attach, follow, see a
    restart, stay healthy."""
    async with FakeEngine(tmp_path, tty=tty) as engine, FakeRpc() as rpc:
        async with watching(engine, rpc, Lag(3)) as watcher:
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=10, what="healthy"
            )
            await healthy_within(watcher, 2)
            best = watcher.supervisor.books[NAME].state.run.best
            assert best is not None
            assert abs(best - engine.node.best) <= 10
            run_before = watcher.supervisor.books[NAME].state.run.run_id
            engine.restart_container()  # as by the operator: a new run, seen at once
            await eventually(
                lambda: watcher.supervisor.books[NAME].state.run.run_id != run_before,
                within=5,
                what="the new run",
            )
            assert watcher.events is not None
            assert watcher.events.received >= 2
        assert engine.requests["restart"] == 0
        assert engine.requests["version"] >= 1  # aiodocker asks the API version first


async def test_inspect_that_hangs_is_a_named_problem_said_once(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """Inspect hangs from the start: each attempt ends at DOCKER_TIMEOUT, the failure is said
    once, /healthz names the container's unknown state until the daemon answers, and
    nothing is restarted meanwhile (the lag would call for it)."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        engine.hanging.add("inspect")
        async with watching(engine, rpc, Lag(500)) as watcher:
            problem = await unhealthy_within(watcher, DOCKER_TIMEOUT + 2, NAME, "inspect")
            assert "container state unknown" in problem
            assert f"within {DOCKER_TIMEOUT:g}s" in problem
            await eventually(
                lambda: engine.requests["inspect"] >= 3, within=6, what="three inspects"
            )
            assert engine.parked["inspect"] >= 1  # the daemon holds them: azwatch gave up
            assert len(said(caplog_info, "follow_docker")) == 1
            assert (await health(watcher))[0] == 503
            assert engine.requests["restart"] == 0  # blind: a lag of 500 is not news
            await answers_again(engine, watcher, caplog_info, "inspect")


async def test_log_request_that_hangs_at_attach_is_said_once(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """The log request hangs before its headers: every attach ends at DOCKER_TIMEOUT, the
    failure is said once (no "following again" between attempts), /healthz names the log
    until lines arrive, and nothing is restarted on a lag it cannot see."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        engine.hanging.add("logs")
        async with watching(engine, rpc, Lag(500)) as watcher:
            problem = await unhealthy_within(watcher, DOCKER_TIMEOUT + 2, NAME, "log request")
            assert problem == (
                f"{NAME}: log stream failed: Docker did not answer a log request within "
                f"{DOCKER_TIMEOUT:g}s"
            )
            await eventually(lambda: engine.requests["logs"] >= 3, within=6, what="3 attaches")
            assert (await health(watcher))[0] == 503
            assert said(caplog_info, "follow_docker") == [problem]
            assert said(caplog_info, "follow_attached") == []
            assert engine.requests["restart"] == 0
            assert hold_reason(watcher) is not HoldReason.HEALTHY
            await answers_again(engine, watcher, caplog_info, "logs")


async def test_log_stream_that_hangs_mid_stream_restarts_nothing_while_blind(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """The follow stops delivering while the node keeps printing and the head keeps rising.

    Before the hang the lag is just under ``BLOCK_LAG_20`` and the node imports 5 blocks/s:
    the best the log last showed falls further behind the head every second, and the stall
    rule sees a best that does not advance while the head rises. Neither may restart: the
    rules hold (``log_silent``) while the log is silent, /healthz names the silent log,
    the silence is said once however many re-attaches it takes, and once the daemon
    answers again the missed lines come in once each and all is well.
    """
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        lag = Lag(8)
        async with watching(engine, rpc, lag, block_lag_20=20, stall_timeout=3.0) as watcher:
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=10, what="healthy"
            )
            await healthy_within(watcher, 3)
            before = lines_seen(watcher)
            engine.hanging.add("logs_stream")
            problem = await unhealthy_within(watcher, SILENCE + 2, NAME, "log")
            assert "no log line" in problem
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.LOG_SILENT, within=3, what="log_silent"
            )
            # Blind for four silences while the head rises 5 blocks/s.
            blind_until = anyio.current_time() + 4 * SILENCE
            while anyio.current_time() < blind_until:
                assert engine.requests["restart"] == 0
                assert hold_reason(watcher) in (HoldReason.LOG_SILENT, None)
                assert (await health(watcher))[0] == 503
                await anyio.sleep(0.2)
            assert watcher.followers[NAME].status.silences >= 2
            assert len(said(caplog_info, "follow_silent")) == 1
            stuck_at = lines_seen(watcher)
            assert stuck_at == before  # nothing came through the hung streams
            await answers_again(engine, watcher, caplog_info, "logs_stream", within=2 * SILENCE + 3)
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=5, what="healthy"
            )
        assert engine.requests["restart"] == 0
        run = watcher.supervisor.books[NAME].state.run
        # The missed lines came in once each: the best is the node's, not beyond it.
        assert run.best is not None
        assert engine.node.best - 10 <= run.best <= engine.node.best
        printed = len(engine.container.log)
        assert printed - 10 <= lines_seen(watcher) <= printed


async def test_event_stream_that_hangs_is_a_named_problem_said_once(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """``GET /events`` is accepted and never answered: each attempt ends at DOCKER_TIMEOUT,
    the loss is said once over the reconnections, /healthz names Docker events until the
    stream opens, and the log is followed all along."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        engine.hanging.add("events")
        async with watching(engine, rpc, Lag(3)) as watcher:
            problem = await unhealthy_within(watcher, DOCKER_TIMEOUT + 2, "Docker events")
            assert problem == (
                f"Docker events: Docker did not answer an events request within {DOCKER_TIMEOUT:g}s"
            )
            await eventually(lambda: engine.requests["events"] >= 3, within=8, what="retries")
            assert said(caplog_info, "events_lost") == [
                f"Docker events: {problem.removeprefix('Docker events: ')}; reconnecting"
            ]
            following = lines_seen(watcher)
            await eventually(
                lambda: lines_seen(watcher) > following, within=3, what="the log followed"
            )
            assert (await health(watcher))[0] == 503
            engine.hanging.discard("events")
            await healthy_within(watcher, 10)
        assert engine.requests["restart"] == 0


async def test_event_stream_that_hangs_mid_stream_misses_no_restart_of_the_node(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """An event stream that opened and then brings nothing cannot be told from a quiet
    daemon; what it would have said still arrives: a restart by someone else ends the log
    stream, and the follower's inspect finds the new run."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        async with watching(engine, rpc, Lag(3)) as watcher:
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=10, what="healthy"
            )
            engine.hanging.add("events_stream")
            run_before = watcher.supervisor.books[NAME].state.run.run_id
            received = watcher.events.received if watcher.events is not None else 0
            engine.restart_container()
            await eventually(
                lambda: watcher.supervisor.books[NAME].state.run.run_id != run_before,
                within=5,
                what="the new run",
            )
            assert watcher.events is not None
            assert watcher.events.received == received
            await healthy_within(watcher, 5)
        assert engine.requests["restart"] == 0


async def test_restart_that_hangs_fails_at_its_deadline_and_is_not_retried_at_once(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """A severe lag calls for a restart; the daemon takes the call and never answers, and
    does nothing. The call fails at ``STOP_TIMEOUT + DOCKER_TIMEOUT``, is said once, and is
    not asked again before the backed-off cooldown; once the daemon answers, the next
    attempt restarts the node, once."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        lag = Lag(500)
        engine.on_restart = lambda node: setattr(lag, "blocks", 2)
        engine.hanging.add("restart")
        cooldown = 4.0
        async with watching(engine, rpc, lag, cooldown=cooldown) as watcher:
            await eventually(lambda: engine.requests["restart"] == 1, within=10, what="restart")
            asked_at = anyio.current_time()
            failed = await eventually(
                lambda: said(caplog_info, "restart_failed") or None, within=3, what="the failure"
            )
            assert anyio.current_time() - asked_at < DOCKER_TIMEOUT + 1
            assert failed == [
                f"{NAME}: restart failed: Docker did not answer the restart within "
                f"{DOCKER_TIMEOUT:g}s; the rules will decide again after the cooldown"
            ]
            # The cooldown counts from the attempt and is backed off (x2): no tight loop.
            while anyio.current_time() < asked_at + 2 * cooldown - 1:
                assert engine.requests["restart"] == 1
                await anyio.sleep(0.1)
            assert engine.parked["restart"] == 1
            assert engine.restarts == 0
            engine.hanging.discard("restart")
            await eventually(lambda: engine.restarts == 1, within=6, what="the real restart")
            await eventually(
                lambda: said(caplog_info, "restart_done") or None, within=3, what="restart done"
            )
            await healthy_within(watcher, 5)
            await anyio.sleep(3)
        assert (engine.requests["restart"], engine.restarts) == (2, 1)
        assert len(said(caplog_info, "restart_failed")) == 1


async def test_restart_whose_answer_is_lost_is_done_once(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """The daemon restarts the node but never answers the call: the inspect after the
    deadline finds the new run, the restart is reported done (saying the answer was lost),
    and the node, healthy again, is not restarted a second time."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        lag = Lag(500)
        engine.on_restart = lambda node: setattr(lag, "blocks", 2)
        engine.hanging.add("restart")
        engine.restart_while_hanging = True
        cooldown = 2.0
        async with watching(engine, rpc, lag, cooldown=cooldown) as watcher:
            await eventually(lambda: engine.restarts == 1, within=10, what="the restart")
            (done,) = await eventually(
                lambda: said(caplog_info, "restart_done") or None, within=3, what="restart done"
            )
            assert "running again since" in done
            assert f"Docker did not answer the restart within {DOCKER_TIMEOUT:g}s" in done
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=10, what="healthy"
            )
            await healthy_within(watcher, 5)
            await anyio.sleep(2 * cooldown)  # past any cooldown: healthy is why it holds
            assert hold_reason(watcher) is HoldReason.HEALTHY
        assert (engine.requests["restart"], engine.restarts) == (1, 1)
        assert said(caplog_info, "restart_failed") == []


async def test_daemon_that_hangs_on_everything_restarts_nothing_and_recovers(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """After a healthy while the whole daemon hangs: the streams open stop delivering, and
    inspect, new log requests, events and restart are taken and never answered. Once the
    log has fallen silent the head runs 500 blocks ahead: azwatch, blind, restarts nothing;
    once the daemon answers again it sees the lag on live lines and restarts once."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        lag = Lag(3)
        engine.on_restart = lambda node: setattr(lag, "blocks", 2)
        async with watching(engine, rpc, lag) as watcher:
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.HEALTHY, within=10, what="healthy"
            )
            engine.hanging.update(("inspect", "logs", "logs_stream", "events_stream", "restart"))
            await unhealthy_within(watcher, SILENCE + 2, NAME)
            await eventually(
                lambda: hold_reason(watcher) is HoldReason.LOG_SILENT, within=3, what="log_silent"
            )
            lag.blocks = 500  # the head runs away while azwatch cannot see the node
            blind_until = anyio.current_time() + 3 * SILENCE
            while anyio.current_time() < blind_until:
                assert engine.requests["restart"] == 0
                assert (await health(watcher))[0] == 503
                await anyio.sleep(0.2)
            assert hold_reason(watcher) is HoldReason.LOG_SILENT
            assert engine.parked["inspect"] + engine.parked["logs"] >= 1
            engine.hanging.clear()
            await eventually(lambda: engine.restarts == 1, within=15, what="the restart")
            await healthy_within(watcher, 5)
            await anyio.sleep(2)
        assert (engine.requests["restart"], engine.restarts) == (1, 1)
        (restart,) = said(caplog_info, "restart")
        assert "severe_lag" in restart


@pytest.mark.parametrize(
    ("endpoint", "call", "allowed"),
    [("inspect", "an inspect", 1), ("logs", "a log request", LOG_READ_ANSWERS)],
)
async def test_check_against_a_hanging_daemon_says_which_call_did_not_answer(
    tmp_path: Path, endpoint: Hang, call: str, allowed: int
) -> None:
    """``azwatch check`` is a probe: against a daemon that hangs it ends at the call's
    deadline with exit code 3 and names the call."""
    async with FakeEngine(tmp_path) as engine, FakeRpc() as rpc:
        engine.hanging.add(endpoint)
        began = anyio.current_time()
        (result,) = await check_once(config_for(engine, rpc, http_port=None))
        took = anyio.current_time() - began
        seconds = allowed * DOCKER_TIMEOUT
        assert result.exit_code == EXIT_BLIND
        assert result.problem is not None
        assert result.problem.startswith(f"Docker did not answer {call} within {seconds:g}s")
        assert took < seconds + 1.5


async def test_label_list_that_hangs_is_a_named_problem_asked_again_soon(
    tmp_path: Path, caplog_info: pytest.LogCaptureFixture
) -> None:
    """Label mode: the list of labelled containers hangs. azwatch, blind to the containers
    it should watch, says so once and in /healthz, asks again after DOCKER_TIMEOUT (not a
    minute later), and follows the container as soon as the list answers."""
    label = "azwatch.enable=true"
    async with FakeEngine(tmp_path, labels={"azwatch.enable": "true"}) as engine, FakeRpc() as rpc:
        engine.hanging.add("list")
        async with watching(engine, rpc, Lag(3), names=(), container_label=label) as watcher:
            problem = await unhealthy_within(watcher, DOCKER_TIMEOUT + 2, label)
            assert problem == (
                f"cannot list containers labelled {label}: Docker did not answer a container "
                f"list within {DOCKER_TIMEOUT:g}s"
            )
            await eventually(lambda: engine.requests["list"] >= 3, within=5, what="retries")
            assert said(caplog_info, "discover_failed") == [problem]
            assert watcher.followers == {}
            engine.hanging.discard("list")
            await eventually(lambda: NAME in watcher.followers, within=3, what="the follower")
            await eventually(lambda: lines_seen(watcher) > 0, within=5, what="lines")
            await healthy_within(watcher, 3)
