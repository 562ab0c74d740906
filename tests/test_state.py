"""The reducer: apply(state, event, now, config) for one run of the container and across runs."""

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
    Run,
    _copied,
    apply,
    initial_state,
)

CONFIG = Config(container_names=("node",))


def fold(timed: Iterable[tuple[float, Event]], state: NodeState | None = None) -> NodeState:
    """*state* (by default a run whose log is live from 0) after the *timed* events."""
    if state is None:
        state = apply(initial_state(0.0, "run-1"), LogCaughtUp(), 0.0, CONFIG)
    for now, event in timed:
        state = apply(state, event, now, CONFIG)
    return state


def test_best_is_the_highest_block_seen_and_forks_do_not_move_it() -> None:
    """Forks repeat numbers; best is the highest N and advances only when it grows."""
    state = fold([(1, BlockImported(10)), (2, BlockImported(12)), (3, BlockImported(11))])
    assert state.run.best == 12
    assert state.run.best_advanced_at == 2
    state = fold([(4, BlockImported(12))], state)
    assert state.run.best_advanced_at == 2


def test_status_line_and_highest_known_block_feed_best_and_finalized() -> None:
    """The start-up line and the 20 s status line count as local best; finalized comes too."""
    state = fold([(1, HighestKnownBlock(500)), (2, SyncStatus(503, 501, 503))])
    assert (state.run.best, state.run.finalized) == (503, 501)


def test_major_sync_latest_wins() -> None:
    """Switched/No longer: the latest line wins."""
    on = fold([(1, MajorSyncChanged(True))])
    assert on.run.major_sync
    assert not fold([(2, MajorSyncChanged(False))], on).run.major_sync


def test_production_needs_both_lines_since_the_latest_session() -> None:
    """Producing = 🎁 and 🔖 since the latest `Running session`; a new session resets it."""
    state = fold([(1, SessionStarted(7)), (2, BlockPrepared(5))])
    assert not state.run.producing(2)
    state = fold([(3, BlockPreSealed(5))], state)
    assert state.run.producing(3)
    assert state.run.session == 7
    state = fold([(4, SessionStarted(8))], state)
    assert not state.run.produced_this_session
    assert state.run.session == 8


def test_production_carries_over_briefly_into_a_new_session() -> None:
    """A validator that produced last session is still producing until its next slot."""
    state = fold(
        [
            (1, SessionStarted(7)),
            (2, BlockPrepared(5)),
            (2, BlockPreSealed(5)),
            (100, SessionStarted(8)),
        ]
    )
    assert state.run.producing(100 + SESSION_GRACE - 0.001)
    assert not state.run.producing(100 + SESSION_GRACE)
    idle = fold([(1, SessionStarted(7)), (100, SessionStarted(8))])
    assert not idle.run.producing(101)


def test_a_repeated_session_line_keeps_production() -> None:
    """The same session announced twice does not forget the blocks already produced."""
    state = fold(
        [
            (1, SessionStarted(7)),
            (2, BlockPrepared(5)),
            (2, BlockPreSealed(5)),
            (3, SessionStarted(7)),
        ]
    )
    assert state.run.produced_this_session


def test_production_counts_from_run_start_without_a_session_line() -> None:
    """Without any session line, production counts since the run began."""
    assert fold([(1, BlockPrepared(5)), (2, BlockPreSealed(5))]).run.producing(3)


def test_peers_and_fatal_lines_are_recorded() -> None:
    """Peers and the last fatal line are kept for reports."""
    state = fold(
        [
            (1, PeersReported(0)),
            (2, FatalLine(FatalKind.ESSENTIAL_TASK, "Essential task `x` failed")),
        ]
    )
    assert state.run.peers == 0
    assert state.run.fatal == "Essential task `x` failed"


def test_a_new_run_resets_per_run_state_but_keeps_head_and_ledger() -> None:
    """A start event resets best, major sync, session and production; not the head or k."""
    state = fold(
        [
            (1, BlockImported(10)),
            (1, MajorSyncChanged(True)),
            (1, SessionStarted(3)),
            (1, BlockPrepared(9)),
            (1, BlockPreSealed(9)),
            (2, HeadSample(12)),
            (3, RestartIssued()),
            (4, RestartFinished(ok=True)),
            (5, RunStarted("run-2", 4.5)),
        ]
    )
    run = state.run
    assert (run.run_id, run.started_at) == ("run-2", 4.5)
    assert (
        run.best,
        run.major_sync,
        run.session,
        run.producing(5),
    ) == (None, False, None, False)
    assert run.lags == ()
    assert state.head == 12
    assert (state.restarts, state.unhelped_restarts, state.restart_at) == (1, 1, 3)


def test_seeing_the_same_run_again_changes_nothing() -> None:
    """Re-attaching to the same run (same id) keeps everything learnt about it."""
    state = fold([(1, BlockImported(10)), (2, RunStarted("run-1", 0.0))])
    assert state.run.best == 10


def test_run_start_in_the_future_is_clamped_to_now() -> None:
    """A start time after now (clock skew) counts as now."""
    state = fold([(5, RunStarted("run-2", 99.0))])
    assert state.run.started_at == 5


def test_the_first_banner_belongs_to_the_known_run() -> None:
    """The banner right after a start event does not restart the cooldown."""
    state = fold([(10, RunStarted("run-2", 8.0)), (10.5, NodeBanner()), (11, BlockImported(5))])
    assert (state.run.run_id, state.run.started_at, state.run.best) == ("run-2", 8.0, 5)


def test_a_banner_after_other_lines_is_a_new_run() -> None:
    """A banner after node lines means the node restarted: a new run begins at that line."""
    state = fold([(1, BlockImported(10)), (50, NodeBanner())])
    assert (state.run.started_at, state.run.best) == (50, None)


def test_a_silent_log_records_no_lag() -> None:
    """A head sample against a best from a log fallen silent measures the silence: no sample."""
    state = fold([(0, BlockImported(100)), (1, HeadSample(103)), (300, HeadSample(400))])
    assert state.run.lags == (LagSample(1, 3),)
    assert state.head == 400


def test_head_samples_record_lag_and_its_window() -> None:
    """Each head sample with a known best records a lag sample; old ones leave the window."""
    state = fold(
        [
            (0, BlockImported(100)),
            (1, HeadSample(103)),
            (399, BlockImported(100)),
            (400, HeadSample(110)),
        ]
    )
    assert (LagSample(400, 10),) == state.run.lags
    assert (state.head, state.head_at) == (110, 400)


def test_head_without_best_records_no_lag() -> None:
    """Without a local best the head is kept but no lag is measured."""
    state = fold([(1, HeadSample(103))])
    assert (state.head, state.run.lags) == (103, ())
    assert state.lag is None


def test_head_failure_keeps_the_last_sample_for_staleness() -> None:
    """A failed poll does not erase the previous head; it goes stale with time."""
    state = fold([(1, HeadSample(103)), (2, HeadUnavailable("timeout"))])
    assert (state.head, state.head_at, state.head_error) == (103, 1, "timeout")
    assert fold([(3, HeadSample(104))], state).head_error is None


def test_heads_since_the_best_last_advanced() -> None:
    """The stall rule's evidence: first and highest head since best last advanced."""
    state = fold(
        [(0, BlockImported(100)), (1, HeadSample(101)), (2, HeadSample(105)), (3, HeadSample(104))]
    )
    assert state.run.heads_since_advance == (101, 105)
    assert fold([(4, BlockImported(101))], state).run.heads_since_advance is None


def test_container_status() -> None:
    """A stopped container is marked not running, with the reason."""
    state = fold([(1, ContainerStatus(False, "exited (code 0)"))])
    assert (state.running, state.status) == (False, "exited (code 0)")
    assert fold([(2, ContainerStatus(True, "running"))], state).running


def test_backoff_counts_restarts_that_did_not_help() -> None:
    """k counts each watcher restart from the moment it is made: the node has not recovered
    yet, so the run that restart starts already has the backed-off cooldown."""
    state = fold([(0, RestartIssued()), (0, RestartFinished(ok=True))])
    assert (state.unhelped_restarts, state.restart_in_flight) == (1, False)
    state = fold([(300, RestartIssued()), (300, RestartFinished(ok=False, detail="boom"))], state)
    assert (state.unhelped_restarts, state.restart_in_flight) == (2, False)
    state = fold([(900, RestartIssued())], state)
    assert (state.unhelped_restarts, state.restart_in_flight) == (3, True)


def test_recovery_resets_the_backoff_after_the_recovery_period() -> None:
    """lag <= BLOCK_LAG_20 held for RECOVERY_PERIOD resets k; a lag spike restarts the clock."""
    state = fold(
        [
            (0, RestartIssued()),
            (1, RestartIssued()),
            (2, RunStarted("run-2", 2)),
            (2, LogCaughtUp()),
        ]
    )
    assert state.unhelped_restarts == 2
    state = fold([(3, BlockImported(100)), (10, HeadSample(105))], state)
    assert state.healthy_since == 10
    state = fold(
        [(299, BlockImported(100)), (300, HeadSample(150))], state
    )  # lag 50: the streak breaks
    assert state.healthy_since is None
    state = fold([(301, BlockImported(150)), (310, HeadSample(150))], state)
    state = fold([(908, BlockImported(150)), (909, HeadSample(150))], state)
    assert state.unhelped_restarts == 2  # 599 s: not yet
    state = fold([(910, HeadSample(151))], state)  # the line at 908 is still fresh
    assert state.unhelped_restarts == 0


def test_a_late_stop_report_about_the_previous_run_is_ignored() -> None:
    """Docker's "die" for a restart can arrive after the new run began: it changes nothing."""
    state = fold([(10, RunStarted("run-2", 9.0)), (11, BlockImported(5))])
    late = fold([(11.5, ContainerStatus(False, "exited (exit code 137)", seen_at=8.9))], state)
    assert late.running
    current = fold([(12, ContainerStatus(False, "exited (exit code 0)", seen_at=11.8))], state)
    assert not current.running


def test_a_copied_run_and_state_equal_what_replace_makes() -> None:
    """The hot path's copy is dataclasses.replace, field for field, and as strict."""
    run = Run("r1", 5.0, best=10, lags=(LagSample(4.0, 2),))
    changes: dict[str, object] = {"best": 11, "log_seen_at": 6.0, "has_lines": True}
    copied = _copied(run, changes)
    assert copied == replace(run, **changes)  # type: ignore[arg-type]
    assert run.best == 10  # the original is untouched
    node = initial_state(0.0)
    assert _copied(node, {"run": copied}) == replace(node, run=copied)
    with pytest.raises(AttributeError):
        _copied(run, {"no_such_field": 1})
