"""Supervisor behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/supervisor.py that the older tests let
survive. The supervisor's output is what an operator reads and what the shell carries out,
so these tests compare whole effects: a log record's level, container, event name (the JSON
logs' ``event``), text and numbers; a notice's key, title, body and level; a report's
container, time and pause flag. What the status page shows is read from a snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from test_supervisor import CONFIG, MAINNET, NAME, TESTNET, Drive, polled, sample

from azwatch.effects import Effect, LogRecord, Reported, RestartContainer, SendNotice
from azwatch.events import (
    BlockImported,
    BlockPrepared,
    BlockPreSealed,
    ContainerStatus,
    Event,
    FatalKind,
    FatalLine,
    HeadSample,
    LogCaughtUp,
    MajorSyncChanged,
    PeersReported,
    RestartFinished,
    RunStarted,
    SessionStarted,
    SyncStatus,
)
from azwatch.policy import Restart, Rule, decide
from azwatch.snapshot import ContainerView, HeadView, RestartView, take
from azwatch.state import NodeState, apply_all, initial_state
from azwatch.supervisor import (
    CHAIN_UNKNOWN_AFTER,
    ContainerEvents,
    HeadPolled,
    LabelsSeen,
    Pause,
    RestartDone,
    Resume,
    restart_helped,
)

LAGGING = replace(CONFIG, catch_up_rate=0.0)  # no catch-up guard: a lag of 500 restarts
NO_HEAD = HeadView(last_poll_age=None, last_ok_age=None)
NUMBERS_AT_RESTART = {
    "lag": 500,
    "best": 1000,
    "head": 1500,
    "finalized": 990,
    "major_sync": True,
    "producing": True,
    "session": 7,
    "peers": 12,
    "catch_up_rate": None,
    "cooldown": 60.0,
}
DETAIL = "lag 500 > BLOCK_LAG_100=100"
#: How a notice names the restart of the busy node below and its facts.
RESTART_WORDS = (
    f"rule severe_lag: {DETAIL}\nlag 500, best #1000, head #1500, major sync yes, producing yes"
)


def said(effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    """Every effect as a comparable tuple, with all that the shell and the operator see."""
    out: list[tuple[Any, ...]] = []
    for effect in effects:
        match effect:
            case LogRecord(level, container, event, message, fields):
                name = logging.getLevelName(level)
                out.append(("log", name, container, event, message, dict(fields)))
            case SendNotice(notice):
                out.append(("notice", notice.key, notice.title, notice.body, notice.level))
            case Reported(name, at, decision, paused):
                why = decision.rule if isinstance(decision, Restart) else decision.reason
                out.append(("reported", name, at, str(why), paused))
            case RestartContainer(name, decision, stop_timeout, dry_run):
                out.append(("restart", name, str(decision.rule), stop_timeout, dry_run))
    return out


def of(event: str, effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    """The log records named *event* among *effects*, whole."""
    return [s for s in said(effects) if s[0] == "log" and s[3] == event]


def notices(effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    return [s for s in said(effects) if s[0] == "notice"]


def reports(effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    return [s for s in said(effects) if s[0] == "reported"]


def view(drive: Drive, at: float) -> ContainerView:
    """What the status page shows of the container at *at* (wall time = supervisor time)."""
    snapshot = take(drive.supervisor, now=at, wall=at, logs={}, head=NO_HEAD)
    container = snapshot.container(NAME)
    assert container is not None
    return container


def busy_node_lagging_at(drive: Drive, at: float) -> list[Effect]:
    """A node in major sync that produces blocks in session 7 with 12 peers, best #1000
    (finalized #990), and a head of #1500 at *at*: a severe lag restarts it all the same."""
    drive.events(
        at,
        MajorSyncChanged(True),
        PeersReported(12),
        SessionStarted(7),
        BlockPrepared(1000),
        BlockPreSealed(1000),
        SyncStatus(1000, 990, 1000),
    )
    return drive.head(at, 1500)


def unhelped_restarts(drive: Drive, at: float, count: int) -> float:
    """*count* severe-lag restarts 60 s apart from *at*, each done and its run attached;
    the lag never falls. Returns when the next one would be."""
    for _ in range(count):
        drive.events(at, BlockImported(1000))
        drive.head(at, 1500)
        drive.done(at + 1)
        drive.events(at + 1, RunStarted(f"run-{at}", at + 1), LogCaughtUp())
        at += 60
    return at


# --- a restart, its report and its verdict --------------------------------------------------


def assert_judged(
    drive: Drive, out: list[Effect], verdict: str, title: str, level: str, *, dry_run: bool = False
) -> None:
    """The restart decided at 60 was judged by *out* at 120: its notice, and the page's row."""
    key = f"restart:node:severe_lag:{verdict.split(':')[0]}"
    body = f"{RESTART_WORDS}\nhelped: {verdict}"
    assert notices(out) == [("notice", key, title, body, level)]
    assert view(drive, 120).recent_restarts == (
        RestartView(60, "severe_lag", DETAIL, dry_run, verdict),
    )


def test_a_restart_says_every_fact_and_is_judged_at_the_first_check_after_it() -> None:
    drive = Drive(LAGGING)
    out = busy_node_lagging_at(drive, 60)  # on a check: the verdict is due one check later
    assert of("restart", out) == [
        (
            "log",
            "WARNING",
            NAME,
            "restart",
            f"node: restarting: severe_lag: {DETAIL} (best #1000, head #1500, major sync yes, "
            "producing yes, session 7, peers 12; run age 17m40s, cooldown 1m00s)",
            {"rule": "severe_lag", "dry_run": False, **NUMBERS_AT_RESTART},
        )
    ]
    assert [s for s in said(out) if s[0] in ("reported", "restart")] == [
        ("reported", NAME, 60, "severe_lag", False),
        ("restart", NAME, "severe_lag", CONFIG.stop_timeout, False),
    ]
    shown = view(drive, 60)
    assert (shown.restarts_by_rule, shown.last_restart_time) == ((("severe_lag", 1),), 60)
    assert shown.recent_restarts == (RestartView(60, "severe_lag", DETAIL, False, None),)

    done = drive.supervisor.handle(RestartDone(NAME, RestartFinished(True, "took 2s")), 61)
    assert said(done) == [("log", "INFO", NAME, "restart_done", "node: restart done: took 2s", {})]
    assert drive.supervisor.next_wake() == float("-inf")  # the outcome is decided on at once
    drive.tick(61)
    drive.events(62, RunStarted("run-2", 61.5), LogCaughtUp(), BlockImported(1600))
    drive.head(119, 1650)
    assert drive.tick(119.9) == []
    out = drive.tick(120)
    verdict = "yes: lag 50 <= BLOCK_LAG_100=100"
    assert of("restart_verdict", out) == [
        ("log", "INFO", NAME, "restart_verdict", f"node: restart helped: {verdict}", {})
    ]
    assert_judged(drive, out, verdict, "azwatch: restarted node (severe_lag)", "info")


def test_a_dry_run_restart_that_did_not_help_is_judged_as_one_that_would_have_been() -> None:
    """The lag stays: by the verdict's patience at the latest, "no", as a warning."""
    drive = Drive(replace(LAGGING, dry_run=True, cooldown=600.0, max_cooldown=1200.0))
    out = busy_node_lagging_at(drive, 60)
    assert of("restart", out)[0][4].startswith("node: would restart (dry run):")
    assert of("restart", out)[0][5]["dry_run"] is True
    drive.done(61, detail="dry run: container not touched")
    judged: list[Effect] = []
    for at in range(119, 420, 60):  # the same run, its log and the head fresh at every check
        drive.events(at, BlockImported(1000))
        drive.head(at, 1600)
        judged += drive.tick(at + 1)
    verdict = "no: lag 600, was 500"
    title = "azwatch: would have restarted (dry run) node (severe_lag)"
    assert_judged(drive, judged, verdict, title, "warning", dry_run=True)


def test_a_failed_restart_is_said_whole_and_every_failure_is_counted() -> None:
    drive = Drive(LAGGING)
    busy_node_lagging_at(drive, 10)
    out = drive.done(11, ok=False, detail="Docker answered 500: boom")
    text = (
        "restart failed: Docker answered 500: boom; the rules will decide again after the cooldown"
    )
    assert of("restart_failed", out) == [
        ("log", "ERROR", NAME, "restart_failed", f"node: {text}", {})
    ]
    assert notices(out) == [
        (
            "notice",
            "restart_failed:node",
            "azwatch: restart of node failed",
            f"{RESTART_WORDS}\n{text}",
            "failure",
        )
    ]
    drive.events(12, RunStarted("run-2", 11.5), LogCaughtUp())
    busy_node_lagging_at(drive, 310)  # after the cooldown, the next one fails too
    drive.done(311, ok=False, detail="Docker answered 500: boom")
    shown = view(drive, 320)
    assert (shown.failed_restarts, shown.restarts_by_rule) == (2, (("severe_lag", 2),))
    assert shown.recent_restarts[0].verdict == "restart failed: Docker answered 500: boom"


def test_a_failure_reported_without_a_restart_pending_is_said_without_a_decision() -> None:
    drive = Drive()
    out = drive.supervisor.handle(RestartDone(NAME, RestartFinished(False, "gone")), 5)
    text = "restart failed: gone; the rules will decide again after the cooldown"
    assert notices(out) == [
        ("notice", "restart_failed:node", "azwatch: restart of node failed", text, "failure")
    ]


def test_the_backoff_cap_is_said_whole_and_again_after_a_recovery() -> None:
    config = replace(LAGGING, cooldown=10.0, max_cooldown=40.0, recovery_period=30.0)
    drive = Drive(config)

    drive.tick(60)  # a check before any restart
    at = unhelped_restarts(drive, 70, 4)
    text = (
        "2 restart(s) in a row have not helped; the cooldown is now capped at "
        "MAX_COOLDOWN=40s. Restarts rarely fix a wrong clock, an outdated binary or a "
        "corrupt database."
    )
    capped = ("log", "WARNING", NAME, "backoff_capped", f"node: {text}", {})
    notice = (
        "notice",
        "capped:node",
        "azwatch: restarts of node are not helping",
        text,
        "warning",
    )
    assert (of("backoff_capped", drive.effects), notices(drive.effects).count(notice)) == (
        [capped],
        1,
    )
    # Healthy for RECOVERY_PERIOD: k is back to 0, and a later cap is news again.
    for second in range(int(at), int(at) + 200, 10):
        drive.events(second, BlockImported(2000 + second))
        drive.head(second, 2000 + second)
    assert view(drive, at + 200).unhelped_restarts == 0
    unhelped_restarts(drive, at + 200, 4)
    assert of("backoff_capped", drive.effects) == [capped, capped]
    assert notices(drive.effects).count(notice) == 2


def test_no_cap_is_said_when_the_cooldown_cannot_grow() -> None:
    drive = Drive(replace(LAGGING, cooldown=40.0, max_cooldown=40.0))
    unhelped_restarts(drive, 10, 4)
    assert len(drive.restarts()) == 4
    assert of("backoff_capped", drive.effects) == []


# --- what "helped" says, rule by rule ----------------------------------------------------------

STALLED = Restart(
    Rule.STALL,
    "best #1000 has not advanced",
    decide(apply_all(initial_state(0.0), [BlockImported(1000)], 0.0, CONFIG), 0.0, CONFIG).facts,
)


def after_restart(events: list[Event], head: int | None, *, live: bool) -> NodeState:
    """The state of the new run at 100: its log read (or not), a fresh head (or none)."""
    timed: list[Event] = [RunStarted("run-2", 90.0), *events]
    if live:
        timed.append(LogCaughtUp())
    if head is not None:
        timed.append(HeadSample(head))
    return apply_all(initial_state(0.0), timed, 100.0, CONFIG)


def lag_restart(rule: Rule, lag: int | None) -> Restart:
    return Restart(rule, "lag", replace(STALLED.facts, lag=lag))


@pytest.mark.parametrize(
    ("decision", "events", "head", "live", "helped"),
    [
        pytest.param(STALLED, [BlockImported(1001)], None, True, "yes: best #1001, past #1000"),
        pytest.param(STALLED, [BlockImported(1000)], None, True, "no: best still #1000"),
        pytest.param(
            STALLED,
            [BlockImported(1001)],
            None,
            False,
            "unknown (no local best seen since the restart)",
            id="stall-tail-not-read",
        ),
        pytest.param(STALLED, [], None, True, "unknown (no local best seen since the restart)"),
        pytest.param(
            lag_restart(Rule.SEVERE_LAG, 500),
            [BlockImported(1000)],
            1100,
            True,
            "yes: lag 100 <= BLOCK_LAG_100=100",
        ),
        pytest.param(
            lag_restart(Rule.MODERATE_LAG, 50),
            [BlockImported(1000)],
            1020,
            True,
            "yes: lag 20 <= BLOCK_LAG_20=20",
        ),
        pytest.param(
            lag_restart(Rule.FALLING_BEHIND, 50),
            [BlockImported(1000)],
            1021,
            True,
            "not yet: lag 21, down from 50",
        ),
        pytest.param(
            lag_restart(Rule.MODERATE_LAG, 50),
            [BlockImported(1000)],
            1050,
            True,
            "no: lag 50, was 50",
            id="lag-unchanged",
        ),
        pytest.param(
            lag_restart(Rule.MODERATE_LAG, None),
            [BlockImported(1000)],
            1050,
            True,
            "no: lag 50",
            id="lag-before-unknown",
        ),
        pytest.param(
            lag_restart(Rule.MODERATE_LAG, 50),
            [BlockImported(1000)],
            None,
            True,
            "unknown (no fresh lag)",
        ),
    ],
)
def test_restart_helped_says_what_its_rule_was_about(
    decision: Restart, events: list[Event], head: int | None, live: bool, helped: str
) -> None:
    state = after_restart(events, head, live=live)
    assert restart_helped(decision, state, 100.0, CONFIG) == helped


# --- the operator's pause ------------------------------------------------------------------


def test_a_pause_without_a_reason_is_said_whole_and_so_is_what_it_holds_back() -> None:
    drive = Drive(LAGGING)
    out = drive.supervisor.handle(Pause(NAME, 3601, ""), 1)
    assert said(out) == [
        (
            "log",
            "WARNING",
            NAME,
            "paused",
            "node: paused by the operator for 1h00m00s; restarts the rules decide are "
            "logged, not carried out, until it ends (a restart of azwatch ends it too)",
            {"pause_seconds": 3600, "reason": ""},
        ),
        (
            "notice",
            "pause:node",
            "azwatch: node paused for 1h00m00s",
            "paused by the operator; no reason given",
            "warning",
        ),
    ]
    drive.events(10, BlockImported(1000))
    out = drive.head(10, 1500)
    held_back = (
        "log",
        "WARNING",
        NAME,
        "paused_restart",
        f"node: paused: would restart: severe_lag: {DETAIL} "
        "(best #1000, head #1500; paused for another 59m51s)",
        {
            "rule": "severe_lag",
            "paused": True,
            "pause_left": 3591,
            **NUMBERS_AT_RESTART,
            "finalized": None,
            "major_sync": False,
            "producing": False,
            "session": None,
            "peers": None,
        },
    )
    assert said(out) == [held_back, ("reported", NAME, 10, "severe_lag", True)]
    assert view(drive, 10).decision.action == "paused"  # type: ignore[union-attr]


def test_the_held_back_restart_is_said_again_once_a_check_interval_has_passed() -> None:
    drive = Drive(replace(LAGGING, check_interval=100.0))
    drive.supervisor.handle(Pause(NAME, 3601, "db"), 1)
    said_at = []
    supervisor = drive.supervisor
    for at in (10, 105, 110):  # a log line and a head poll, then one decision
        supervisor.handle(ContainerEvents(NAME, (BlockImported(1000),)), at)
        supervisor.handle(HeadPolled(HeadSample(1500)), at)
        if of("paused_restart", supervisor.tick(at)):
            said_at.append(at)
    assert said_at == [10, 110]


def test_a_held_back_restart_at_a_check_is_reported_once() -> None:
    drive = Drive(LAGGING)
    drive.supervisor.handle(Pause(NAME, 3601, "db"), 1)
    drive.supervisor.handle(ContainerEvents(NAME, (BlockImported(1000),)), 60)
    drive.supervisor.handle(HeadPolled(HeadSample(1500)), 60)
    assert reports(drive.supervisor.tick(60)) == [("reported", NAME, 60, "severe_lag", True)]


def test_resume_pause_over_and_unknown_containers_are_said_whole() -> None:
    drive = Drive()
    handle = drive.supervisor.handle
    handle(Pause(NAME, 3601, ""), 1)
    text = "resumed by the operator after 1m39s; restarts allowed again"
    assert said(handle(Resume(NAME), 100)) == [
        ("log", "INFO", NAME, "resumed", f"node: {text}", {}),
        ("notice", "pause:node", "azwatch: node resumed", text, "info"),
    ]
    assert said(handle(Resume(NAME), 101)) == [
        ("log", "INFO", NAME, "resumed", "node: resume: was not paused", {})
    ]
    assert said(handle(Pause(NAME, 102, "late"), 102)) == [
        ("log", "WARNING", NAME, "pause_ignored", "node: pause already over", {})
    ]
    assert view(drive, 102).pause is None
    assert said(handle(Pause("other", 500, "x"), 103)) == [
        ("log", "WARNING", None, "pause_ignored", "other: not watched; pause ignored", {})
    ]
    assert said(handle(Resume("other"), 104)) == [
        ("log", "WARNING", None, "resume_ignored", "other: not watched; resume ignored", {})
    ]


def test_a_pause_that_ends_by_itself_is_said_and_decided_on_at_once() -> None:
    drive = Drive()
    drive.supervisor.watch("second", 0)
    drive.supervisor.handle(ContainerEvents("second", (RunStarted("r", -100), LogCaughtUp())), 0)
    drive.supervisor.handle(Pause("second", 50, "db"), 10)  # the first container is not paused
    drive.tick(20)
    out = drive.tick(50)
    text = "pause ended: its 40s are up; restarts allowed again"
    assert [s for s in said(out) if s[3:4] == ("pause_ended",) or s[0] == "notice"] == [
        ("log", "INFO", "second", "pause_ended", f"second: {text}", {}),
        ("notice", "pause:second", "azwatch: pause of second ended", text, "info"),
    ]
    snapshot = take(drive.supervisor, now=50, wall=50, logs={}, head=NO_HEAD)
    second = snapshot.container("second")
    assert second is not None
    assert second.decision is not None
    assert second.decision.age == 0  # decided on at the pause's end, not at the next check


# --- labels, forgetting, holds and wake-ups ------------------------------------------------


def test_labels_are_said_whole_and_decided_on_at_once() -> None:
    drive = Drive()
    drive.tick(1)
    labels = (
        ("azwatch.block_lag_100", "200"),
        ("azwatch.block_lag_20", "30"),
        ("azwatch.rpc_url", "http://x"),
    )
    out = drive.supervisor.handle(LabelsSeen(NAME, labels), 2)
    (ignored,) = of("label_ignored", out)
    assert ignored[:4] == ("log", "WARNING", NAME, "label_ignored")
    assert ignored[4].startswith("node: ")
    assert ignored[4].endswith("; ignored")
    assert of("label_overrides", out) == [
        (
            "log",
            "INFO",
            NAME,
            "label_overrides",
            "node: settings from labels: BLOCK_LAG_100=200, BLOCK_LAG_20=30",
            {},
        )
    ]
    assert drive.supervisor.next_wake() == float("-inf")


def test_forgetting_is_said_once_and_an_unknown_name_is_no_error() -> None:
    drive = Drive()
    assert said(drive.supervisor.forget(NAME)) == [
        ("log", "INFO", NAME, "forgotten", "node: removed; no longer watched", {})
    ]
    assert drive.supervisor.forget(NAME) == []


def test_a_healthy_hold_is_a_debug_record_and_others_are_info() -> None:
    drive = Drive()
    drive.events(1, BlockImported(1000))
    out = drive.head(2, 1000)
    (healthy,) = of("hold", out)
    assert healthy[:5] == (
        "log",
        "DEBUG",
        NAME,
        "hold",
        "node: holding: healthy: lag 0 within thresholds",
    )
    assert healthy[5]["reason"] == "healthy"
    assert (healthy[5]["lag"], healthy[5]["best"], healthy[5]["head"]) == (0, 1000, 1000)
    assert reports(out) == [("reported", NAME, 2, "healthy", False)]
    out = drive.events(3, ContainerStatus(False, "exited (exit code 1)", seen_at=3))
    assert [s[1:4] for s in of("hold", out)] == [("INFO", NAME, "hold")]


def test_a_new_hold_at_a_check_is_reported_once() -> None:
    drive = Drive()
    drive.events(59, BlockImported(1000))
    out = drive.head(60, 1000)
    assert reports(out) == [("reported", NAME, 60, "healthy", False)]


def test_a_cooldown_hold_wakes_the_supervisor_when_it_ends() -> None:
    drive = Drive(replace(LAGGING, check_interval=600.0))
    drive.events(10, BlockImported(1000))
    drive.head(10, 1500)
    drive.done(11)
    assert drive.supervisor.next_wake() == 10 + 2 * LAGGING.cooldown


def test_a_container_not_seen_yet_says_so_in_its_summary() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    assert said(drive.tick(60)) == [
        (
            "log",
            "INFO",
            NAME,
            "summary",
            "node: lag unknown (the container has not been seen yet)",
            {},
        )
    ]


# --- the reference, the container, the node -------------------------------------------------


def test_a_lost_reference_counts_from_its_last_answer_and_is_said_whole() -> None:
    drive = Drive()
    drive.head(0, 1000)
    drive.head(50, 1050)  # the last answer
    for at in range(60, 240, 10):
        drive.head(at, None)
    text = "reference RPC lost for 3m00s: refused; no restart will be decided until it answers"
    lost = [
        ("log", "WARNING", None, "rpc_lost", text, {}),
        ("notice", "rpc", "azwatch: reference RPC lost", text, "warning"),
    ]
    assert [s for s in said(drive.effects) if "rpc" in s[1:4] or s[3:4] == ("rpc_lost",)] == lost
    out = drive.head(350, 1300)
    back = "reference RPC answers again after 5m00s"
    assert [s for s in said(out) if s[0] == "notice" or s[3] == "rpc_recovered"] == [
        ("log", "INFO", None, "rpc_recovered", back, {}),
        ("notice", "rpc", "azwatch: reference RPC recovered", back, "info"),
    ]


def test_a_reference_that_never_answered_is_lost_from_its_first_failure() -> None:
    drive = Drive()
    for at in range(10, 200, 10):
        drive.head(at, None)
    (lost,) = of("rpc_lost", drive.effects)
    assert lost[4].startswith("reference RPC lost for 3m00s: refused")
    assert [s[2] for s in reports(drive.effects)][-1:] == [180]  # said at 10 + 3 min, no sooner


def test_a_fatal_line_is_said_and_notified_whole() -> None:
    drive = Drive()
    out = drive.events(1, FatalLine(FatalKind.ESSENTIAL_TASK, "Essential task `txpool` failed"))
    assert [s for s in said(out) if s[0] == "notice" or s[3] == "node_fatal"] == [
        (
            "log",
            "ERROR",
            NAME,
            "node_fatal",
            "node: node reported: Essential task `txpool` failed",
            {},
        ),
        (
            "notice",
            "fatal:node",
            "azwatch: node reported a fatal error",
            "Essential task `txpool` failed",
            "failure",
        ),
    ]


def test_a_container_down_and_back_is_said_whole_and_the_attach_with_every_fact() -> None:
    drive = Drive()
    drive.tick(1)
    out = drive.events(5, ContainerStatus(False, "exited (exit code 1)", seen_at=5))
    gone = "container is exited (exit code 1); left alone until it runs again"
    assert of("container_gone", out) == [
        ("log", "WARNING", NAME, "container_gone", f"node: {gone}", {})
    ]
    assert notices(drive.tick(34.9)) == []
    assert notices(drive.tick(35)) == [
        ("notice", "container:node", "azwatch: node is not running", gone, "warning")
    ]
    out = drive.events(
        100,
        RunStarted("run-2", 99),
        MajorSyncChanged(True),
        PeersReported(3),
        SessionStarted(4),
        BlockPrepared(5),
        BlockPreSealed(5),
        SyncStatus(900, 880, 900),
        LogCaughtUp(),
    )
    assert [s for s in said(out) if s[0] == "notice" or s[3] in ("attached", "container_back")] == [
        (
            "log",
            "INFO",
            NAME,
            "attached",
            "node: attached: run started 1s ago, best #900, finalized #880, major sync on, "
            "producing yes, session 4, peers 3",
            {
                "best": 900,
                "finalized": 880,
                "major_sync": True,
                "producing": True,
                "session": 4,
                "peers": 3,
                "run_age": 1,
                "restarts": 0,
            },
        ),
        ("log", "INFO", NAME, "container_back", "node: container is running", {}),
        (
            "notice",
            "container:node",
            "azwatch: node is running again",
            "The container runs again; azwatch follows it.",
            "info",
        ),
    ]
    # Down again: a new outage is news again after DOWN_NOTICE_AFTER.
    drive.events(200, ContainerStatus(False, "exited (exit code 1)", seen_at=200))
    assert notices(drive.tick(229)) == []
    assert len(notices(drive.tick(230))) == 1


def test_transitions_carry_their_flag() -> None:
    drive = Drive()
    out = drive.events(1, MajorSyncChanged(True))
    assert of("major_sync", out) == [
        ("log", "INFO", NAME, "major_sync", "node: major sync on", {"major_sync": True})
    ]
    drive.events(4, SessionStarted(7), BlockPrepared(10))
    out = drive.events(5, BlockPreSealed(10))
    assert of("producing", out) == [
        ("log", "INFO", NAME, "producing", "node: producing blocks", {"producing": True})
    ]
    drive.events(6, SessionStarted(8))
    out = drive.tick(6 + 61)
    assert of("producing", out) == [
        (
            "log",
            "INFO",
            NAME,
            "producing",
            "node: no longer producing blocks",
            {"producing": False},
        )
    ]


def test_a_stopped_container_with_a_live_log_says_no_transition() -> None:
    drive = Drive()
    drive.events(5, ContainerStatus(False, "exited (exit code 0)", seen_at=5))
    drive.events(6, MajorSyncChanged(True))
    assert of("major_sync", drive.effects) == []


def test_a_wrong_chain_is_said_whole_and_an_unknown_chain_after_exactly_three_minutes() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    drive.events(10, RunStarted("run-1", 10.0), LogCaughtUp(), BlockImported(1000))
    polled(drive, 10 + CHAIN_UNKNOWN_AFTER - 0.5, sample(5000, ("rpc", 5000, MAINNET)))
    assert of("node_chain_unknown", drive.effects) == []
    out = polled(drive, 10 + CHAIN_UNKNOWN_AFTER, sample(5000, ("rpc", 5000, MAINNET)))
    assert of("node_chain_unknown", out) == [
        (
            "log",
            "WARNING",
            NAME,
            "node_chain_unknown",
            "node: the node has not named its chain in 3m00s (no 'Network status report' "
            "line): azwatch holds until it does (CHECK_CHAIN=false trusts every reference "
            "instead)",
            {},
        )
    ]
    drive.events(200, PeersReported(10, MAINNET), BlockImported(1000))
    out = polled(drive, 201, sample(1000, ("main", 1000, MAINNET), ("test", 9000, TESTNET)))
    text = (
        f"reference test serves another chain (genesis {TESTNET}) than the node ({MAINNET}): "
        "it is not used for this node. Check RPC_URL: is it the node's network (mainnet or "
        "testnet)?"
    )
    assert [s for s in said(out) if s[0] == "notice" or s[3] == "reference_wrong_chain"] == [
        (
            "log",
            "ERROR",
            NAME,
            "reference_wrong_chain",
            f"node: {text}",
            {"endpoint": "test", "endpoint_genesis": TESTNET, "node_genesis": MAINNET},
        ),
        (
            "notice",
            "wrong_chain:node:test",
            "azwatch: a reference serves another chain than node",
            text,
            "failure",
        ),
    ]


def test_a_container_not_seen_yet_is_shown_with_the_age_of_its_book() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    assert view(drive, 5).run_age == 5


def test_the_attach_counts_production_of_the_previous_session_within_its_grace() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    tail = (SessionStarted(7), BlockPrepared(5), BlockPreSealed(5), SessionStarted(8))
    drive.events(0, RunStarted("run-1", -600), *tail)
    (attached,) = of("attached", drive.events(1, LogCaughtUp()))
    assert attached[5]["producing"] is True


# --- verdict timing, and what every check says -------------------------------------------------


def restarted_at(drive: Drive, at: float) -> None:
    """A severe lag restart at *at*, done a second later; the new run's log is read."""
    drive.events(at, BlockImported(1000))
    drive.head(at, 1500)
    drive.done(at + 1)
    drive.events(at + 2, RunStarted("run-2", at + 1.5), LogCaughtUp(), BlockImported(1600))


def test_a_verdict_waits_for_the_first_check_a_check_interval_after_the_restart() -> None:
    drive = Drive(LAGGING)
    restarted_at(drive, 10)
    drive.head(59, 1610)
    assert of("restart_verdict", drive.tick(60)) == []  # only 50 s after the restart
    drive.head(119, 1620)
    assert len(of("restart_verdict", drive.tick(120))) == 1


def test_an_unknown_verdict_is_given_at_exactly_its_patience() -> None:
    drive = Drive(LAGGING)
    restarted_at(drive, 60)  # due at 120; patience VERDICT_PATIENCE_CHECKS checks later
    for at in range(120, 420, 60):
        assert of("restart_verdict", drive.tick(at)) == [], at
    assert [s[4] for s in of("restart_verdict", drive.tick(420))] == [
        "node: restart helped: unknown (no fresh lag)"
    ]


def test_every_check_says_the_progress_with_its_numbers_and_the_hold_reason() -> None:
    drive = Drive()
    drive.events(30, BlockImported(1000))
    drive.head(59, 1010)
    first = of("summary", drive.tick(60))
    assert first == [
        (
            "log",
            "INFO",
            NAME,
            "summary",
            "node: lag 10 blocks (best #1000, head #1010); healthy",
            {
                "lag": 10,
                "best": 1000,
                "head": 1010,
                "caught_up": None,
                "sync_rate": None,
                "time_to_catch_up": None,
            },
        )
    ]
    drive.events(119, BlockImported(1120))
    drive.head(119, 1130)
    out = drive.tick(120)
    assert of("summary", out) == [
        (
            "log",
            "INFO",
            NAME,
            "summary",
            "node: lag 10 blocks (best #1120, head #1130), caught up 0 blocks since the last "
            "check, sync rate 2.00 blocks/s, time to catch up unknown (lag not shrinking); "
            "healthy",
            {
                "lag": 10,
                "best": 1120,
                "head": 1130,
                "caught_up": 0,
                "sync_rate": 2.0,
                "time_to_catch_up": None,
            },
        )
    ]
    assert reports(out) == [("reported", NAME, 120, "healthy", False)]
    lagging = Drive(LAGGING)
    lagging.events(59, BlockImported(1000))
    (restart_check,) = of("summary", lagging.head(60, 1500))  # a restart: no hold reason
    assert restart_check[4] == "node: lag 500 blocks (best #1000, head #1500)"


def test_the_cap_is_said_once_while_restarts_go_on_not_helping() -> None:
    """A cap reached at the first restart that did not help is not said again at the next."""
    config = replace(LAGGING, cooldown=10.0, max_cooldown=20.0)
    drive = Drive(config)
    unhelped_restarts(drive, 10, 4)
    assert len(drive.restarts()) == 4
    assert len(of("backoff_capped", drive.effects)) == 1


def test_a_shrinking_lag_says_when_it_will_be_caught_up() -> None:
    drive = Drive()
    drive.events(59, BlockImported(1000))
    drive.head(59, 1015)
    drive.tick(60)
    drive.events(119, BlockImported(1125))
    drive.head(119, 1130)
    (summary,) = of("summary", drive.tick(120))
    assert summary[5]["time_to_catch_up"] is not None
    assert summary[5]["caught_up"] == 10
