"""Reducer behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/state.py that the older tests let
survive: an event that is silently dropped, a flag that is not raised, a boundary moved by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from azwatch.config import Config
from azwatch.events import (
    BlockImported,
    BlockPrepared,
    BlockPreSealed,
    ContainerStatus,
    EntrypointError,
    Event,
    FatalKind,
    FatalLine,
    HeadSample,
    HeadUnavailable,
    HighestKnownBlock,
    LogCaughtUp,
    MajorSyncChanged,
    NodeBanner,
    PeersReported,
    ReferenceAnswer,
    RestartFinished,
    RestartIssued,
    RunStarted,
    SessionStarted,
    SyncStatus,
)
from azwatch.state import (
    SESSION_GRACE,
    LagSample,
    NodeState,
    apply,
    apply_all,
    initial_state,
    log_is_fresh,
    log_stale_after,
)

CONFIG = Config(container_names=("node",))


def live_run() -> NodeState:
    """A run whose log the follower has read up to the present at 0."""
    return apply(initial_state(0.0, "run-1"), LogCaughtUp(), 0.0, CONFIG)


def fold(timed: Iterable[tuple[float, Event]], state: NodeState | None = None) -> NodeState:
    """Apply each (now, event) in order, one event at a time."""
    state = state if state is not None else live_run()
    for now, event in timed:
        state = apply(state, event, now, CONFIG)
    return state


def burst(events: Iterable[Event], now: float, state: NodeState | None = None) -> NodeState:
    """Apply *events* as one burst read at *now* (the watcher's path)."""
    state = state if state is not None else live_run()
    return apply_all(state, events, now, CONFIG)


# --- local best -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "best", "advanced_at"),
    [
        pytest.param([(1, HighestKnownBlock(500))], 500, 1, id="highest-known-alone"),
        pytest.param(
            [(1, BlockImported(400)), (2, HighestKnownBlock(500))],
            500,
            2,
            id="highest-known-raises",
        ),
        pytest.param(
            [(1, HighestKnownBlock(500)), (2, HighestKnownBlock(499))], 500, 1, id="never-lowers"
        ),
        pytest.param([(3, SyncStatus(42, 40, 42))], 42, 3, id="status-line-alone"),
    ],
)
def test_each_best_source_alone_sets_best(
    events: list[tuple[float, Event]], best: int, advanced_at: float
) -> None:
    """`📦 Highest known block` and the status line each set best without any other line."""
    state = fold(events)
    assert (state.run.best, state.run.best_advanced_at) == (best, advanced_at)
    assert state.run.has_lines


def test_highest_known_block_alone_sets_best_in_a_burst() -> None:
    """The same through apply_all: a burst holding only the start-up line."""
    state = burst([PeersReported(3), HighestKnownBlock(500)], now=7)
    assert (state.run.best, state.run.best_advanced_at, state.run.peers) == (500, 7, 3)


def test_every_commuting_line_is_recorded_in_one_burst() -> None:
    """A burst of one of each commuting line leaves each of their marks on the run."""
    state = burst(
        [
            BlockImported(10),
            SyncStatus(12, 9, 12),
            MajorSyncChanged(True),
            PeersReported(4),
            BlockPrepared(12),
            BlockPreSealed(12),
            FatalLine(FatalKind.PANIC, "Thread 'x' panicked at y"),
            BlockImported(11),
        ],
        now=5,
    )
    run = state.run
    assert (run.best, run.best_advanced_at, run.finalized) == (12, 5, 9)
    assert (run.major_sync, run.peers, run.prepared, run.presealed) == (True, 4, True, True)
    assert run.fatal == "Thread 'x' panicked at y"


def test_a_burst_that_changes_nothing_returns_the_same_state() -> None:
    """A fork block below the best, at a later instant, changes only when a line was last
    seen; an empty burst keeps the state object as is."""
    state = burst([BlockImported(10), PeersReported(4)], now=1)
    later = burst([BlockImported(9), PeersReported(4)], now=2, state=state)
    assert later.run == replace(state.run, log_seen_at=2)
    assert burst([], now=3, state=state) is state


def test_a_new_best_forgets_the_heads_seen_since_the_last_advance() -> None:
    """The stall evidence restarts whenever best advances, also from a status line."""
    state = fold([(0, BlockImported(100)), (1, HeadSample(101)), (2, HeadSample(105))])
    assert state.run.heads_since_advance == (101, 105)
    assert fold([(3, SyncStatus(101, 99, 101))], state).run.heads_since_advance is None
    assert fold([(3, HighestKnownBlock(101))], state).run.heads_since_advance is None


# --- major sync -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "major_sync"),
    [
        pytest.param([MajorSyncChanged(True)], True, id="on"),
        pytest.param([MajorSyncChanged(True), MajorSyncChanged(False)], False, id="on-off"),
        pytest.param([MajorSyncChanged(False), MajorSyncChanged(True)], True, id="off-on"),
    ],
)
def test_major_sync_latest_line_wins_within_a_burst(lines: list[Event], major_sync: bool) -> None:
    """Within one burst the latest major-sync line wins, as one at a time."""
    assert burst(lines, now=1).run.major_sync is major_sync
    assert fold((1, line) for line in lines).run.major_sync is major_sync


# --- block production -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "producing"),
    [
        pytest.param([], False, id="none"),
        pytest.param([BlockPrepared(5)], False, id="prepared-only"),
        pytest.param([BlockPreSealed(5)], False, id="presealed-only"),
        pytest.param([BlockPrepared(5), BlockPreSealed(5)], True, id="both"),
        pytest.param([BlockPreSealed(5), BlockPrepared(6)], True, id="both-any-order"),
    ],
)
def test_producing_needs_both_markers(lines: list[Event], producing: bool) -> None:
    """🎁 Prepared and 🔖 Pre-sealed are both needed, one at a time or in one burst."""
    one_by_one = fold((1, line) for line in lines)
    assert one_by_one.run.produced_this_session is producing
    assert one_by_one.run.producing(2) is producing
    at_once = burst(lines, now=1)
    assert at_once.run.produced_this_session is producing
    assert at_once.run.producing(2) is producing


@pytest.mark.parametrize(
    ("previous", "producing_in_grace"),
    [
        pytest.param([BlockPrepared(5), BlockPreSealed(5)], True, id="produced"),
        pytest.param([BlockPrepared(5)], False, id="prepared-only"),
        pytest.param([BlockPreSealed(5)], False, id="presealed-only"),
    ],
)
def test_only_full_production_carries_into_the_next_session(
    previous: list[Event], producing_in_grace: bool
) -> None:
    """The session grace applies to a node that produced, not one that only half did."""
    state = fold(
        [(1, SessionStarted(7)), *((2, line) for line in previous), (100, SessionStarted(8))]
    )
    assert state.run.produced_previous_session is producing_in_grace
    assert state.run.producing(100) is producing_in_grace
    assert state.run.producing(100 + SESSION_GRACE / 2) is producing_in_grace
    assert not state.run.producing(100 + SESSION_GRACE)


def test_a_new_session_records_when_it_started() -> None:
    """The grace counts from the session line's arrival, and the line counts as a node line."""
    state = fold([(0, RunStarted("run-2", 0.0)), (30, SessionStarted(8))])
    assert (state.run.session, state.run.session_started_at, state.run.has_lines) == (8, 30, True)
    # Having lines, the next banner is a new run.
    assert fold([(40, NodeBanner())], state).run.started_at == 40


# --- runs -------------------------------------------------------------------------------------


def test_the_start_event_of_the_known_run_marks_it_running() -> None:
    """running=False, then a start event with the same run id: running again, state kept."""
    stopped = fold([(1, BlockImported(10)), (2, ContainerStatus(False, "paused", seen_at=2.0))])
    assert (stopped.running, stopped.status) == (False, "paused")
    state = fold([(3, RunStarted("run-1", 0.0))], stopped)
    assert (state.running, state.status) == (True, "running")
    assert (state.run.run_id, state.run.best, state.run.started_at) == ("run-1", 10, 0.0)


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(RunStarted("run-2", 40.0), id="start-event"),
        pytest.param(NodeBanner(), id="banner-after-lines"),
    ],
)
def test_a_new_run_resets_health_and_marks_the_container_running(start: Event) -> None:
    """A new run forgets healthy_since (the recovery streak) and is running."""
    state = fold([(1, BlockImported(100)), (10, HeadSample(105)), (20, HeadSample(106))])
    assert state.healthy_since == 10
    state = fold([(30, ContainerStatus(False, "exited (code 1)", seen_at=30.0))], state)
    state = fold([(41, start)], state)
    assert state.healthy_since is None
    assert (state.running, state.status) == (True, "running")
    assert (state.run.best, state.run.lags) == (None, ())
    # The next healthy sample starts a new streak there, not at the old one.
    state = fold([(42, LogCaughtUp()), (42, BlockImported(200)), (50, HeadSample(201))], state)
    assert state.healthy_since == 50


def test_a_start_in_the_past_keeps_its_start_time() -> None:
    """State.StartedAt before now is the run's start (the cooldown counts from it)."""
    state = fold([(100, RunStarted("run-2", 40.0))])
    assert (state.run.run_id, state.run.started_at, state.run.has_lines) == ("run-2", 40.0, False)


def test_a_late_stop_report_without_a_time_counts() -> None:
    """A stop report that does not say when it was seen applies to the current run."""
    state = fold([(10, RunStarted("run-2", 9.0)), (11, ContainerStatus(False, "missing"))])
    assert (state.running, state.status) == (False, "missing")


def test_a_stop_report_seen_exactly_at_the_run_start_counts() -> None:
    """Only reports seen strictly before the run started are about the previous run."""
    state = fold([(10, RunStarted("run-2", 9.0)), (11, ContainerStatus(False, "exited", 9.0))])
    assert (state.running, state.status) == (False, "exited")


# --- restarts ---------------------------------------------------------------------------------


def test_restart_issued_is_in_flight_until_it_finishes() -> None:
    """RestartIssued raises restart_in_flight and records the attempt; RestartFinished clears."""
    state = fold([(0, BlockImported(100)), (5, RestartIssued())])
    assert (state.restart_in_flight, state.restart_at, state.restarts) == (True, 5, 1)
    for ok in (True, False):
        done = fold([(6, RestartFinished(ok=ok, detail="x"))], state)
        assert (done.restart_in_flight, done.restart_at, done.restarts) == (False, 5, 1)
    again = fold([(6, RestartFinished(ok=True)), (400, RestartIssued())], state)
    assert (again.restart_in_flight, again.restart_at, again.restarts) == (True, 400, 2)


def test_restart_issued_breaks_the_healthy_streak() -> None:
    """A restart starts the recovery clock anew."""
    state = fold([(0, BlockImported(100)), (10, HeadSample(100)), (20, RestartIssued())])
    assert state.healthy_since is None


# --- head samples and recovery ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "healthy_since"),
    [
        pytest.param(100 + 19, 10, id="lag-below"),
        pytest.param(100 + 20, 10, id="lag-equal-to-BLOCK_LAG_20"),
        pytest.param(100 + 21, None, id="lag-one-above"),
    ],
)
def test_recovery_boundary_is_lag_block_lag_20(head: int, healthy_since: float | None) -> None:
    """lag <= BLOCK_LAG_20 counts as healthy for recovery; one more does not."""
    state = fold([(0, BlockImported(100)), (10, HeadSample(head))])
    assert state.healthy_since == healthy_since
    assert state.lag == head - 100


def test_recovery_at_lag_block_lag_20_resets_the_backoff() -> None:
    """A node holding lag == BLOCK_LAG_20 for RECOVERY_PERIOD has recovered: k is 0 again.

    Two restarts that did not help raise k whichever way the back-off counts them.
    """
    state = fold(
        [
            (0, RestartIssued()),
            (1, RestartFinished(ok=True)),
            (400, RestartIssued()),
            (401, RestartFinished(ok=True)),
            (402, RunStarted("run-2", 402.0)),
            (402, LogCaughtUp()),
            (403, BlockImported(100)),
            (410, HeadSample(120)),
        ]
    )
    assert state.unhelped_restarts > 0
    end = 410 + CONFIG.recovery_period
    state = fold([(end - 2, BlockImported(100))], state)  # the log is still fresh
    assert fold([(end - 1, HeadSample(120))], state).unhelped_restarts
    state = fold([(end, HeadSample(120))], state)
    assert (state.unhelped_restarts, state.healthy_since) == (0, 410)


def test_head_samples_keep_lags_exactly_one_window_old() -> None:
    """A lag sample exactly TREND_WINDOW old stays; an older one leaves."""
    window = CONFIG.trend_window
    state = fold(
        [
            (0, BlockImported(100)),
            (10, HeadSample(103)),
            (10 + window - 1, BlockImported(100)),
            (10 + window, HeadSample(104)),
        ]
    )
    assert state.run.lags == (LagSample(10, 3), LagSample(10 + window, 4))
    state = fold([(10 + window + 0.5, HeadSample(105))], state)
    assert state.run.lags == (LagSample(10 + window, 4), LagSample(10 + window + 0.5, 5))


def test_head_samples_track_first_and_highest_head_since_the_advance() -> None:
    """A lower later head keeps the highest; the first stays the first."""
    state = fold(
        [(0, BlockImported(100)), (1, HeadSample(110)), (2, HeadSample(104)), (3, HeadSample(107))]
    )
    assert state.run.heads_since_advance == (110, 110)
    assert (state.head, state.head_at, state.head_error) == (107, 3, None)


def test_a_head_sample_clears_the_poll_error_once_best_is_known() -> None:
    """The error of a failed poll is forgotten at the next sample, with or without a best."""
    state = fold([(0, BlockImported(100)), (1, HeadUnavailable("timeout"))])
    assert state.head_error == "timeout"
    state = fold([(2, HeadSample(101))], state)
    assert (state.head, state.head_at, state.head_error) == (101, 2, None)


# --- sessions and banners ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_new_session", "producing"),
    [
        pytest.param([], False, id="nothing-yet"),
        pytest.param([BlockPrepared(9)], False, id="prepared-only"),
        pytest.param([BlockPreSealed(9)], False, id="presealed-only"),
        pytest.param([BlockPrepared(9), BlockPreSealed(9)], True, id="both-again"),
    ],
)
def test_a_new_session_forgets_both_markers(
    after_new_session: list[Event], producing: bool
) -> None:
    """Markers of the previous session never complete a pair in the new one."""
    state = fold(
        [
            (1, SessionStarted(7)),
            (2, BlockPrepared(5)),
            (2, BlockPreSealed(5)),
            (100, SessionStarted(8)),
            *((101, line) for line in after_new_session),
        ]
    )
    assert state.run.produced_this_session is producing
    # Past the grace, only this session's production counts.
    assert state.run.producing(100 + SESSION_GRACE) is producing


def test_producing_is_a_bool_across_sessions() -> None:
    """Facts and /status report producing as true or false, never as null."""
    state = fold([(1, SessionStarted(7)), (2, SessionStarted(8)), (3, BlockPrepared(9))])
    assert state.run.produced_this_session is False
    assert state.run.produced_previous_session is False
    assert state.run.producing(4) is False
    assert state.run.producing(4 + SESSION_GRACE) is False


def test_the_first_banner_is_a_line_of_the_run() -> None:
    """After the banner of the known run, a second banner means the node restarted."""
    state = fold([(10, RunStarted("run-2", 8.0)), (10.5, NodeBanner())])
    assert (state.run.run_id, state.run.started_at, state.run.has_lines) == ("run-2", 8.0, True)
    state = fold([(60, NodeBanner())], state)
    assert (state.run.run_id, state.run.started_at, state.run.has_lines) == (None, 60, True)


def test_a_banner_is_a_line_of_the_run_it_starts() -> None:
    """A banner that starts a new run counts as its first line: another banner is a new run."""
    state = fold([(1, BlockImported(10)), (50, NodeBanner())])
    assert (state.run.started_at, state.run.has_lines) == (50, True)
    state = fold([(90, NodeBanner())], state)
    assert (state.run.started_at, state.run.has_lines) == (90, True)


# --- pinned after the engine (the supervisor, the log's freshness, the chain check) ----------


def test_every_line_that_is_not_an_instant_marks_the_log_seen() -> None:
    """A session line and banners say the log is alive, like any other node line."""
    assert fold([(5, SessionStarted(7))]).run.log_seen_at == 5
    first = fold([(10, RunStarted("run-2", 8.0)), (10.5, LogCaughtUp()), (11, NodeBanner())])
    assert (first.run.has_lines, first.run.log_seen_at) == (True, 11)
    again = fold([(20, NodeBanner())], first)
    assert (again.run.run_id, again.run.log_seen_at, again.run.log_live) == (None, 20, True)


def test_an_entrypoint_error_is_the_runs_fatal_line() -> None:
    state = fold([(1, BlockImported(10)), (2, EntrypointError("CHAIN", "CHAIN: unbound"))])
    assert state.run.fatal == "CHAIN: unbound"
    assert (state.run.best, state.running) == (10, live_run().running)


def test_catching_up_with_the_log_starts_its_freshness_and_forgets_the_tail() -> None:
    """The lag samples and heads seen while the tail was read measure the reading."""
    tail = apply_all(
        initial_state(0.0, "run-1"),
        [BlockImported(100), HeadSample(150)],
        1.0,
        CONFIG,
    )
    tail = fold([(2, BlockImported(100)), (3, HeadSample(160))], tail)
    assert tail.run.log_live is False
    live = apply(tail, LogCaughtUp(), 30.0, CONFIG)
    assert (live.run.log_live, live.run.log_seen_at) == (True, 30.0)
    assert (live.run.lags, live.run.heads_since_advance) == ((), None)


def test_the_log_is_fresh_up_to_exactly_its_staleness_bound() -> None:
    state = fold([(10, BlockImported(100))])
    bound = log_stale_after(CONFIG)
    assert log_is_fresh(state.run, 10 + bound, CONFIG)
    assert not log_is_fresh(state.run, 10 + bound + 0.001, CONFIG)


def test_a_head_sample_without_a_best_clears_the_poll_error() -> None:
    state = fold([(1, HeadUnavailable("timeout")), (2, HeadSample(101))])
    assert (state.head, state.head_at, state.head_error) == (101, 2, None)


MAIN = "0x7025…344e"
TEST = "0x05d5…60c5"


def polled(head: int, *answers: tuple[str, str | None]) -> HeadSample:
    sources = tuple(ReferenceAnswer(endpoint, head, genesis) for endpoint, genesis in answers)
    return HeadSample(head, len(sources), sources)


def test_the_chain_check_says_each_problem_and_forgets_it_when_it_is_gone() -> None:
    unknown = fold([(1, HeadUnavailable("timeout")), (2, polled(500, ("a", MAIN)))])
    assert unknown.chain_problem == (
        "the node's chain is not known yet: waiting for its first network status report "
        "(about 20 s after it starts), which names its genesis"
    )
    assert (unknown.wrong_chain, unknown.head_error) == ((), None)

    named = fold([(3, PeersReported(10, MAIN)), (3, BlockImported(400))], unknown)
    wrong = fold(
        [(4, HeadUnavailable("timeout")), (5, polled(9000, ("t", TEST), ("n", None)))], named
    )
    assert wrong.chain_problem == (
        f"no reference endpoint serves the node's chain {MAIN} "
        f"(t serves {TEST}; n serves a chain it has not told yet)"
    )
    assert (wrong.wrong_chain, wrong.head_error) == (("t",), None)

    unknown_again = fold([(6, polled(500, ("a", MAIN), ("t", TEST)))], wrong)
    assert unknown_again.wrong_chain == ("t",)
    trusted = apply(unknown_again, HeadSample(501), 7.0, replace(CONFIG, check_chain=False))
    assert (trusted.chain_problem, trusted.wrong_chain, trusted.head) == (None, (), 501)
    off = fold([(8, polled(502, ("t", TEST)))], wrong)
    assert off.chain_problem is not None
    no_sources = apply(off, HeadSample(503), 9.0, CONFIG)
    assert (no_sources.chain_problem, no_sources.wrong_chain) == (None, ())


def test_a_node_whose_chain_is_not_known_forgets_the_wrong_chains_said_before() -> None:
    named = fold([(1, PeersReported(10, MAIN)), (1, BlockImported(400))])
    wrong = fold([(2, polled(500, ("a", MAIN), ("t", TEST)))], named)
    assert wrong.wrong_chain == ("t",)
    restarted = fold([(3, NodeBanner()), (4, NodeBanner())], wrong)  # a new run: chain unknown
    assert restarted.run.genesis is None
    assert fold([(5, polled(500, ("a", MAIN), ("t", TEST)))], restarted).wrong_chain == ()


def test_a_head_sample_against_a_silent_log_clears_the_poll_error() -> None:
    state = fold([(1, BlockImported(100)), (100, HeadUnavailable("timeout"))])
    state = fold([(101, HeadSample(150))], state)  # the log is silent: no lag sample
    assert (state.head, state.head_error, state.run.lags) == (150, None, ())
