"""The supervisor: every effect it can ask for, as tables of messages in, effects out.

No Docker, no network, no clock: each case drives one :class:`Supervisor` through messages
at chosen instants and reads the effects it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

import pytest

from azwatch.config import Config
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
    HeadUnavailable,
    LogCaughtUp,
    LogUnreadable,
    MajorSyncChanged,
    PeersReported,
    ReferenceAnswer,
    RestartFinished,
    RunStarted,
    SessionStarted,
)
from azwatch.policy import Hold, HoldReason, Restart, Rule
from azwatch.supervisor import (
    DOWN_NOTICE_AFTER,
    RPC_LOST_AFTER,
    ContainerEvents,
    HeadPolled,
    LabelsSeen,
    RestartDone,
    Supervisor,
)

NAME = "node"
CONFIG = Config(container_names=(NAME,), cooldown=60.0, max_cooldown=600.0)


class Drive:
    """One supervisor watching NAME, and every effect it returned so far."""

    def __init__(self, config: Config = CONFIG, *, started_at: float = -1000.0) -> None:
        self.config = config
        self.supervisor = Supervisor(config)
        self.supervisor.watch(NAME, 0.0)
        self.effects: list[Effect] = []
        if started_at is not None:
            self.events(0.0, RunStarted("run-1", started_at), LogCaughtUp())

    def events(self, at: float, *events: Event) -> list[Effect]:
        out = self.supervisor.handle(ContainerEvents(NAME, events), at)
        out += self.supervisor.tick(at)
        self.effects += out
        return out

    def head(self, at: float, head: int | None) -> list[Effect]:
        event = HeadSample(head) if head is not None else HeadUnavailable("refused")
        out = self.supervisor.handle(HeadPolled(event), at)
        out += self.supervisor.tick(at)
        self.effects += out
        return out

    def done(self, at: float, ok: bool = True, detail: str = "") -> list[Effect]:
        out = self.supervisor.handle(RestartDone(NAME, RestartFinished(ok, detail)), at)
        out += self.supervisor.tick(at)
        self.effects += out
        return out

    def tick(self, at: float) -> list[Effect]:
        out = self.supervisor.tick(at)
        self.effects += out
        return out

    def steady(self, start: float, end: float, *, best: int, head: int, rise: int = 0) -> None:
        """Every 10 s from *start* to *end*: a log line at *best* (+rise/10 s), a head sample."""
        at = start
        while at <= end:
            self.events(at, BlockImported(best))
            self.head(at + 1, head)
            best, head = best + rise, head + 10
            at += 10

    def logs(self, event: str, effects: Iterable[Effect] | None = None) -> list[str]:
        source = self.effects if effects is None else effects
        return [e.message for e in source if isinstance(e, LogRecord) and e.event == event]

    def notices(self, effects: Iterable[Effect] | None = None) -> list[str]:
        source = self.effects if effects is None else effects
        return [e.notice.title for e in source if isinstance(e, SendNotice)]

    def restarts(self) -> list[RestartContainer]:
        return [e for e in self.effects if isinstance(e, RestartContainer)]


def restart_now(drive: Drive, at: float, *, lag: int = 500) -> RestartContainer:
    """Bring the node to a severe lag at *at* and return the restart it decides."""
    drive.events(at, BlockImported(1000))
    out = drive.head(at, 1000 + lag)
    restarts = [e for e in out if isinstance(e, RestartContainer)]
    assert len(restarts) == 1, out
    return restarts[0]


# --- restarts and their verdicts ----------------------------------------------------------


def test_a_restart_says_why_once_and_asks_the_shell() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart = restart_now(drive, 10)
    assert (restart.name, restart.decision.rule, restart.dry_run) == (NAME, Rule.SEVERE_LAG, False)
    assert restart.stop_timeout == CONFIG.stop_timeout
    (line,) = drive.logs("restart")
    assert line.startswith("node: restarting: severe_lag: lag 500 > BLOCK_LAG_100=100")
    assert "best #1000, head #1500" in line
    reported = [e for e in drive.effects if isinstance(e, Reported)]
    assert isinstance(reported[-1].decision, Restart)


def test_dry_run_says_would_restart_and_applies_the_cooldown() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0, dry_run=True))
    restart = restart_now(drive, 10)
    assert restart.dry_run
    assert drive.logs("restart")[0].startswith("node: would restart (dry run): severe_lag")
    drive.done(11, detail="dry run: container not touched")
    drive.head(20, 1600)
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.COOLDOWN


@pytest.mark.parametrize(
    ("rule_config", "after", "helped"),
    [
        # A stall restart is judged by the best advancing again, not by the lag.
        ({"block_lag_100": 100_000, "block_lag_20": 50_000}, [BlockImported(1001)], "yes"),
        ({"block_lag_100": 100_000, "block_lag_20": 50_000}, [BlockImported(1000)], "no"),
    ],
    ids=["stall-best-advanced", "stall-best-still"],
)
def test_a_stall_restart_helped_when_the_best_advances(
    rule_config: dict[str, int], after: list[Event], helped: str
) -> None:
    config = replace(CONFIG, stall_timeout=30.0, catch_up_rate=0.0, **rule_config)
    drive = Drive(config)
    drive.events(1, BlockImported(1000))
    for at in range(5, 60, 5):
        drive.events(at, BlockImported(1000))  # a stalled node still prints its status line
        drive.head(at, 1000 + at)
    (restart,) = drive.restarts()
    assert restart.decision.rule is Rule.STALL
    decided_at = 55
    drive.done(decided_at + 1)
    drive.events(decided_at + 2, RunStarted("run-2", decided_at + 1.5), LogCaughtUp(), *after)
    drive.tick(decided_at + 200)  # past the check after which the verdict is due
    if helped != "yes":  # a no waits VERDICT_PATIENCE_CHECKS checks for a yes
        assert drive.logs("restart_verdict") == []
        drive.tick(decided_at + 400)
    (verdict,) = drive.logs("restart_verdict")
    assert verdict.startswith(f"node: restart helped: {helped}"), verdict
    assert any(title.startswith("azwatch: restarted node (stall)") for title in drive.notices())


@pytest.mark.parametrize(
    ("lag_after", "helped"),
    [(100, "yes"), (101, "not yet"), (600, "no")],
    ids=["at-threshold", "above-but-shrinking", "worse"],
)
def test_a_severe_lag_restart_helped_when_the_lag_is_back_under_its_threshold(
    lag_after: int, helped: str
) -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart_now(drive, 10, lag=500)
    drive.done(11)
    drive.events(12, RunStarted("run-2", 11.5), LogCaughtUp(), BlockImported(2000))
    drive.head(119, 2000 + lag_after)
    drive.tick(120)  # the first check (every 60 s from 0) after restart + CHECK_INTERVAL
    if helped != "yes":  # anything but a yes waits VERDICT_PATIENCE_CHECKS for a yes
        assert drive.logs("restart_verdict") == []
        drive.head(399, 2000 + lag_after)
        drive.tick(400)
    (verdict,) = drive.logs("restart_verdict")
    assert verdict.startswith(f"node: restart helped: {helped}"), verdict


def test_a_lag_restart_judged_no_at_first_turns_yes_once_the_node_catches_up() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart_now(drive, 10, lag=500)
    drive.done(11)
    drive.events(12, RunStarted("run-2", 11.5), LogCaughtUp(), BlockImported(2000))
    drive.head(119, 2500)  # still 500 behind at the first check
    drive.tick(120)
    drive.events(170, BlockImported(2490))
    drive.head(179, 2500)
    drive.tick(180)
    (verdict,) = drive.logs("restart_verdict")
    assert verdict.startswith("node: restart helped: yes: lag 10"), verdict


def test_a_verdict_without_a_fresh_head_is_unknown() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart_now(drive, 10)
    drive.done(11)
    drive.events(12, RunStarted("run-2", 11.5), LogCaughtUp(), BlockImported(2000))
    drive.tick(120)
    assert drive.logs("restart_verdict") == []  # it waits a few checks for a fresh lag
    drive.tick(400)  # VERDICT_PATIENCE_CHECKS checks later it says what it knows
    assert drive.logs("restart_verdict") == ["node: restart helped: unknown (no fresh lag)"]


def test_a_failed_restart_is_logged_and_notified_with_its_reason() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart_now(drive, 10)
    out = drive.done(12, ok=False, detail="Docker answered 500: boom")
    (line,) = drive.logs("restart_failed", out)
    assert "restart failed: Docker answered 500: boom" in line
    (notice,) = [e.notice for e in out if isinstance(e, SendNotice)]
    assert (notice.title, notice.level) == ("azwatch: restart of node failed", "failure")
    assert notice.body.startswith("rule severe_lag: lag 500 > BLOCK_LAG_100=100")
    assert drive.supervisor.books[NAME].failed_restarts == 1
    drive.tick(200)
    assert drive.logs("restart_verdict") == []  # a failed restart gets no verdict


def test_no_second_restart_while_one_is_in_flight_even_with_no_cooldown() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0, cooldown=0.0))
    restart_now(drive, 10)
    drive.head(11, 1600)
    drive.tick(30)
    assert len(drive.restarts()) == 1
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.RESTART_IN_FLIGHT


def test_backoff_capped_is_said_once_until_the_node_recovers() -> None:
    config = replace(CONFIG, catch_up_rate=0.0, cooldown=10.0, max_cooldown=40.0)
    drive = Drive(config)
    at = 10.0
    for run in range(2, 7):
        restart_now(drive, at)
        drive.done(at + 1)
        drive.events(at + 1, RunStarted(f"run-{run}", at + 1), LogCaughtUp())
        at += 60
    assert len(drive.restarts()) == 5
    capped = drive.logs("backoff_capped")
    assert len(capped) == 1
    assert "in a row have not helped" in capped[0]
    assert drive.notices().count("azwatch: restarts of node are not helping") == 1


# --- the reference, the container, the node -----------------------------------------------


def test_reference_lost_and_back_are_said_once_each() -> None:
    drive = Drive()
    drive.head(0, 1000)
    for at in range(10, int(RPC_LOST_AFTER) + 40, 10):
        drive.head(at, None)
    (lost,) = drive.logs("rpc_lost")
    assert lost.startswith("reference RPC lost for 3m00s: refused")
    drive.head(300, 1300)
    (back,) = drive.logs("rpc_recovered")
    assert back.startswith("reference RPC answers again after")
    assert drive.notices() == ["azwatch: reference RPC lost", "azwatch: reference RPC recovered"]


def test_a_short_reference_outage_is_not_news() -> None:
    drive = Drive()
    drive.head(0, 1000)
    drive.head(10, None)
    drive.head(20, 1020)
    assert drive.logs("rpc_lost") == drive.logs("rpc_recovered") == []


def test_container_down_is_logged_at_once_and_notified_when_it_stays_down() -> None:
    drive = Drive()
    drive.tick(1)
    drive.events(5, ContainerStatus(False, "exited (exit code 1)", seen_at=5))
    assert drive.logs("container_gone") == [
        "node: container is exited (exit code 1); left alone until it runs again"
    ]
    assert drive.notices() == []
    assert drive.supervisor.next_wake() == 5 + DOWN_NOTICE_AFTER
    drive.tick(5 + DOWN_NOTICE_AFTER)
    assert drive.notices() == ["azwatch: node is not running"]
    drive.events(100, RunStarted("run-2", 99), LogCaughtUp())
    assert drive.logs("container_back") == ["node: container is running"]
    assert drive.notices()[-1] == "azwatch: node is running again"


def test_a_quick_stop_and_start_is_not_notified() -> None:
    drive = Drive()
    drive.tick(1)
    drive.events(5, ContainerStatus(False, "exited (exit code 0)", seen_at=5))
    drive.events(10, RunStarted("run-2", 9.5), LogCaughtUp())
    drive.tick(60)
    assert drive.notices() == []
    assert drive.logs("container_back") == ["node: container is running"]


def test_a_fatal_line_is_said_and_notified_once_per_text() -> None:
    drive = Drive()
    fatal = FatalLine(FatalKind.ESSENTIAL_TASK, "Essential task `txpool` failed")
    drive.events(1, fatal)
    drive.events(2, fatal)
    assert drive.logs("node_fatal") == ["node: node reported: Essential task `txpool` failed"]
    assert drive.notices() == ["azwatch: node reported a fatal error"]


def test_transitions_are_logged_once_each() -> None:
    drive = Drive()
    drive.events(1, MajorSyncChanged(True))
    drive.events(2, MajorSyncChanged(True))
    drive.events(3, MajorSyncChanged(False))
    assert drive.logs("major_sync") == ["node: major sync on", "node: major sync off"]
    drive.events(4, SessionStarted(7), BlockPrepared(10))
    drive.events(5, BlockPreSealed(10))
    drive.events(6, SessionStarted(8))
    drive.tick(6 + 61)  # the previous session's grace is over
    assert drive.logs("producing") == ["node: producing blocks", "node: no longer producing blocks"]


def test_the_tail_is_history_summarised_once_not_replayed_as_news() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    history = (MajorSyncChanged(True), BlockImported(500), MajorSyncChanged(False))
    drive.events(0, RunStarted("run-1", -180), *history, BlockImported(900))
    assert drive.logs("major_sync") == []
    drive.events(0.5, LogCaughtUp())
    (attached,) = drive.logs("attached")
    assert attached == (
        "node: attached: run started 3m00s ago, best #900, finalized unknown, "
        "major sync off, producing no, session unknown, peers unknown"
    )
    assert drive.logs("major_sync") == []
    drive.events(1, LogCaughtUp())  # a re-attach within the same run says nothing new
    assert len(drive.logs("attached")) == 1
    drive.events(2, MajorSyncChanged(True))
    assert drive.logs("major_sync") == ["node: major sync on"]


def test_nothing_is_decided_before_docker_has_reported_on_the_container() -> None:
    """At start-up, no "cooldown: 0s since run start" for a node that has run for hours."""
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    drive.head(1, 1000)
    assert drive.logs("hold") == []
    assert drive.supervisor.books[NAME].decision is None
    drive.events(2, RunStarted("run-1", -7200), LogCaughtUp(), BlockImported(1000))
    holds = drive.logs("hold")
    assert holds
    assert not any(h.startswith("node: holding: cooldown") for h in holds)


def test_holds_while_the_tail_is_read() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0), started_at=None)  # type: ignore[arg-type]
    drive.events(0, RunStarted("run-1", -3600), BlockImported(1000))
    drive.head(1, 1500)  # a lag of 500 against a best from the start of the tail
    assert drive.restarts() == []
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.LOG_HISTORY


# --- labels and the summary ---------------------------------------------------------------


def test_label_overrides_are_applied_and_bad_labels_said_once() -> None:
    drive = Drive()
    labels = (("azwatch.block_lag_100", "200"), ("azwatch.rpc_url", "http://x"))
    out = drive.supervisor.handle(LabelsSeen(NAME, labels), 1)
    assert drive.supervisor.books[NAME].config.block_lag_100 == 200
    assert drive.logs("label_overrides", out) == ["node: settings from labels: BLOCK_LAG_100=200"]
    assert len(drive.logs("label_ignored", out)) == 1
    again = drive.supervisor.handle(LabelsSeen(NAME, labels), 2)
    assert again == []


def test_the_summary_comes_every_check_interval() -> None:
    drive = Drive()
    drive.events(1, BlockImported(1000))
    drive.head(59, 1005)
    drive.tick(60)
    drive.events(61, BlockImported(1060))
    drive.head(119, 1060)
    drive.tick(120)
    summaries = drive.logs("summary")
    assert summaries[0].startswith("node: lag 5 blocks (best #1000, head #1005)")
    assert summaries[1].startswith("node: fully caught up at #1060 (head #1060)")


def test_the_summary_never_says_caught_up_on_a_stale_head() -> None:
    drive = Drive()
    drive.events(1, BlockImported(1000))
    drive.head(2, 1000)
    drive.events(59, BlockImported(1000))
    drive.tick(60)  # the head is 58 s old: twice the poll interval is 20 s
    (summary,) = drive.logs("summary")
    assert "caught up" not in summary
    assert summary.startswith("node: lag unknown (latest network head is 58s old")


def test_user_facing_text_never_says_none() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    restart_now(drive, 10)
    drive.done(11, ok=False, detail="boom")
    drive.tick(200)
    texts = [e.message for e in drive.effects if isinstance(e, LogRecord)]
    texts += [e.notice.body for e in drive.effects if isinstance(e, SendNotice)]
    assert texts
    assert not [text for text in texts if "None" in text]


def test_next_wake_names_the_earliest_due_instant() -> None:
    drive = Drive()
    drive.tick(0)
    assert drive.supervisor.next_wake() == CONFIG.check_interval
    drive.supervisor.handle(ContainerEvents(NAME, (BlockImported(5),)), 1)
    assert drive.supervisor.next_wake() == float("-inf")  # something changed: decide now


def test_forget_drops_the_container() -> None:
    drive = Drive()
    out = drive.supervisor.forget(NAME)
    assert [e.message for e in out if isinstance(e, LogRecord)] == [
        "node: removed; no longer watched"
    ]
    assert drive.supervisor.handle(ContainerEvents(NAME, (BlockImported(5),)), 1) == []
    assert logging.getLevelName(out[0].level) == "INFO"  # type: ignore[union-attr]


def test_an_unreadable_log_holds_for_want_of_a_best_and_says_why() -> None:
    drive = Drive(started_at=None)  # type: ignore[arg-type]
    why = "log driver 'none' cannot be read through the Engine API"
    drive.events(0, RunStarted("run-1", -3600), LogUnreadable(why))
    drive.head(1, 1500)
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold)
    assert (decision.reason, decision.detail) == (HoldReason.NO_BEST, f"no local best block: {why}")


@pytest.mark.parametrize("stall_timeout", [30.0, 90.0], ids=["stall-below-silence", "stall-above"])
def test_a_stream_that_stops_delivering_is_unknown_data_not_a_stall(stall_timeout: float) -> None:
    """json-file rotation can stop a follow without ending it: the node goes on printing,
    azwatch sees nothing until the follower re-attaches (LOG_SILENCE_TIMEOUT) and the cursor
    brings the lines it missed. With the catch-up guard off, nothing is restarted meanwhile."""
    config = replace(
        CONFIG, stall_timeout=stall_timeout, log_silence_timeout=60.0, catch_up_rate=0.0
    )
    drive = Drive(config)
    for at in range(1, 101):  # healthy: a block a second, the head polled every 10 s
        drive.events(at, BlockImported(1000 + at))
        if at % 10 == 0:
            drive.head(at + 0.5, 1000 + at)
    for at in range(110, 161, 10):  # the stream delivers nothing; the chain moves on
        drive.head(at + 0.5, 1000 + at)
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold)
    assert decision.reason is HoldReason.LOG_SILENT
    # The re-attach brings the 60 lines the stream missed, as one batch.
    drive.events(161, *(BlockImported(1000 + at) for at in range(101, 162)))
    for at in range(162, 400):
        drive.events(at, BlockImported(1000 + at))
        if at % 10 == 0:
            drive.head(at + 0.5, 1000 + at)
    assert drive.restarts() == []


def test_started_beside_a_healthy_node_with_a_long_tail_and_the_guard_off() -> None:
    """The tail's first lines are minutes old; a head sample read meanwhile is the present."""
    config = replace(CONFIG, cooldown=60.0, catch_up_rate=0.0)
    drive = Drive(config, started_at=None)  # type: ignore[arg-type]
    drive.events(0, RunStarted("run-1", -180.0))
    for chunk in range(0, 180, 30):  # the tail arrives in bursts, oldest first
        drive.events(0.1, *(BlockImported(1000 + n) for n in range(chunk, chunk + 30)))
        drive.head(0.1, 1180)  # lag 150 against a best from the start of the tail
    drive.events(0.2, LogCaughtUp())
    for at in range(1, 120):
        drive.events(at, BlockImported(1180 + at))
        if at % 10 == 0:
            drive.head(at + 0.5, 1180 + at)
    assert drive.restarts() == []
    assert drive.logs("attached")


# --- the right chain ----------------------------------------------------------------------

MAINNET = "0x7025…344e"
TESTNET = "0x05d5…60c5"


def sample(head: int, *answers: tuple[str, int, str | None]) -> HeadSample:
    sources = tuple(
        ReferenceAnswer(endpoint, number, genesis) for endpoint, number, genesis in answers
    )
    return HeadSample(head, len(sources), sources)


def polled(drive: Drive, at: float, event: HeadSample) -> list[Effect]:
    out = drive.supervisor.handle(HeadPolled(event), at)
    out += drive.supervisor.tick(at)
    drive.effects += out
    return out


def decision_of(drive: Drive) -> Hold:
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold), decision
    return decision


def test_a_node_takes_its_head_from_the_references_of_its_own_chain() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    drive.events(1, PeersReported(10, MAINNET), BlockImported(1000))
    # A testnet endpoint far "ahead": the node's head is the mainnet endpoints' median.
    polled(
        drive,
        2,
        sample(
            5000, ("main-a", 1000, MAINNET), ("test", 90000, TESTNET), ("main-b", 1002, MAINNET)
        ),
    )
    state = drive.supervisor.books[NAME].state
    assert (state.head, state.wrong_chain) == (1000, ("test",))
    assert drive.restarts() == []
    (error,) = drive.logs("reference_wrong_chain")
    assert (
        "reference test serves another chain (genesis 0x05d5…60c5) than the node (0x7025…344e)"
        in error
    )
    polled(drive, 12, sample(5000, ("main-a", 1010, MAINNET), ("test", 90010, TESTNET)))
    assert len(drive.logs("reference_wrong_chain")) == 1  # said once
    assert drive.notices().count("azwatch: a reference serves another chain than node") == 1


def test_no_reference_of_the_nodes_chain_holds_and_says_exactly_that() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    drive.events(1, PeersReported(10, TESTNET), BlockImported(1000))
    polled(drive, 2, sample(105_000_000, ("rpc.azero.dev", 105_000_000, MAINNET)))
    decision = decision_of(drive)
    assert decision.reason is HoldReason.WRONG_CHAIN
    assert decision.detail == (
        "no reference endpoint serves the node's chain 0x05d5…60c5 "
        "(rpc.azero.dev serves 0x7025…344e)"
    )
    assert drive.restarts() == []


def test_a_node_whose_chain_is_not_known_yet_is_held_and_said_after_a_while() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0), started_at=None)  # type: ignore[arg-type]
    drive.events(0, RunStarted("run-1", 0.0), LogCaughtUp())
    for at in range(1, 400, 10):
        drive.events(at, BlockImported(1000))
        polled(drive, at, sample(5000, ("rpc", 5000, MAINNET)))
    assert decision_of(drive).reason is HoldReason.CHAIN_UNKNOWN
    assert drive.restarts() == []
    (said,) = drive.logs("node_chain_unknown")
    assert said.startswith("node: the node has not named its chain in 3m")
    # The first status report names it; the references of that chain count at once.
    drive.events(401, PeersReported(5, MAINNET), BlockImported(1000))
    polled(drive, 402, sample(5000, ("rpc", 5000, MAINNET)))
    assert len(drive.restarts()) == 1


def test_check_chain_off_trusts_every_reference() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0, check_chain=False))
    drive.events(1, PeersReported(10, TESTNET), BlockImported(1000))
    polled(drive, 2, sample(5000, ("rpc", 5000, MAINNET)))
    assert [r.decision.rule for r in drive.restarts()] == [Rule.SEVERE_LAG]
