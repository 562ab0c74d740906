"""The decision rules: one case per rule, per hold reason, and per boundary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from azwatch.config import Config
from azwatch.policy import (
    Hold,
    HoldReason,
    Restart,
    Rule,
    bucket_averages,
    catch_up_rate,
    decide,
    effective_cooldown,
)
from azwatch.state import LagSample, NodeState, Run, median_head

CONFIG = Config(container_names=("node",))
T = 10_000.0  # "now" in these tables: well after the run started at 0


def state(
    *,
    best: int | None = 1000,
    head: int | None = 1000,
    head_age: float = 1.0,
    stalled_for: float = 1.0,
    heads_since: tuple[int, int] | None = None,
    lags: tuple[LagSample, ...] = (),
    started_at: float = 0.0,
    log_age: float = 0.0,
    **run_fields: object,
) -> NodeState:
    """A running node at time T, described by the few facts a case cares about."""
    run = Run(
        run_id="r",
        started_at=started_at,
        has_lines=True,
        log_live=True,
        log_seen_at=T - log_age,
        best=best,
        best_advanced_at=None if best is None else T - stalled_for,
        heads_since_advance=heads_since,
        lags=lags,
    )
    run = replace(run, **run_fields)  # type: ignore[arg-type]
    return NodeState(run=run, head=head, head_at=None if head is None else T - head_age)


def steady_lags(lag: int, *, every: float = 10.0, span: float = 300.0) -> tuple[LagSample, ...]:
    """Lag samples holding at *lag* over the last *span* seconds."""
    count = int(span / every)
    return tuple(LagSample(T - span + i * every, lag) for i in range(count + 1))


def shrinking_lags(
    lag_now: int, rate: float, *, every: float = 10.0, span: float = 300.0
) -> tuple[LagSample, ...]:
    """Lag samples shrinking at *rate* blocks/s, ending at *lag_now* at T."""
    count = int(span / every)
    return tuple(
        LagSample(T - span + i * every, round(lag_now + rate * (span - i * every)))
        for i in range(count + 1)
    )


def restart_rule(decision: Restart | Hold) -> Rule:
    assert isinstance(decision, Restart), decision
    return decision.rule


def hold_reason(decision: Restart | Hold) -> HoldReason:
    assert isinstance(decision, Hold), decision
    return decision.reason


# --- each hold reason ----------------------------------------------------------------------


def test_container_not_running_is_left_alone() -> None:
    """A stopped container is never restarted, whatever the lag."""
    s = replace(state(head=5000, lags=steady_lags(4000)), running=False, status="exited")
    decision = decide(s, T, CONFIG)
    assert hold_reason(decision) == HoldReason.NOT_RUNNING
    assert "exited" in decision.detail


def test_restart_in_flight_holds() -> None:
    """Nothing is decided while our own restart is running."""
    s = replace(state(head=5000, lags=steady_lags(4000)), restart_in_flight=True)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.RESTART_IN_FLIGHT


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(299.999, HoldReason.COOLDOWN, id="just-inside-cooldown"),
        pytest.param(300.0, Rule.SEVERE_LAG, id="exactly-at-cooldown-end"),
    ],
)
def test_cooldown_boundary(age: float, expected: HoldReason | Rule) -> None:
    """Rule 0: nothing else is evaluated until the run is as old as the cooldown."""
    s = state(head=5000, lags=steady_lags(4000, span=age - 1), started_at=T - age)
    decision = decide(s, T, CONFIG)
    if isinstance(expected, HoldReason):
        assert expected == hold_reason(decision)
        assert T - age + 300 == decision.until
    else:
        assert expected == restart_rule(decision)


def test_cooldown_counts_from_the_watchers_last_restart_in_dry_run() -> None:
    """A dry-run decision starts the cooldown although the run did not restart."""
    s = replace(state(head=5000, lags=steady_lags(4000)), restart_at=T - 10)
    decision = decide(s, T, CONFIG)
    assert hold_reason(decision) == HoldReason.COOLDOWN
    assert "since the last restart" in decision.detail


def test_no_local_best_holds() -> None:
    """Unknown local best: hold, never restart."""
    assert hold_reason(decide(state(best=None, head=5000), T, CONFIG)) == HoldReason.NO_BEST


def test_no_head_holds_and_says_why() -> None:
    """RPC down from the start: hold with the reason of the failure."""
    s = replace(state(head=None), head_error="refused")
    decision = decide(s, T, CONFIG)
    assert hold_reason(decision) == HoldReason.NO_HEAD
    assert "refused" in decision.detail


@pytest.mark.parametrize(
    ("head_age", "fresh"),
    [
        pytest.param(19.999, True, id="younger-than-two-polls"),
        pytest.param(20.0, False, id="exactly-two-polls"),
    ],
)
def test_head_freshness_boundary(head_age: float, fresh: bool) -> None:
    """A head sample is fresh while younger than twice RPC_POLL_INTERVAL."""
    s = state(head=5000, head_age=head_age, lags=steady_lags(4000))
    decision = decide(s, T, CONFIG)
    if fresh:
        assert restart_rule(decision) == Rule.SEVERE_LAG
    else:
        assert hold_reason(decision) == HoldReason.HEAD_STALE


# --- rule 1: severe lag ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lag", "expected"),
    [
        pytest.param(100, HoldReason.HEALTHY, id="lag-equal-to-threshold"),
        pytest.param(101, Rule.SEVERE_LAG, id="lag-one-above"),
    ],
)
def test_severe_lag_boundary(lag: int, expected: HoldReason | Rule) -> None:
    """Rule 1 fires on lag > BLOCK_LAG_100 (a producing node is held from rule 4 here)."""
    s = state(head=1000 + lag, lags=steady_lags(lag), prepared=True, presealed=True)
    decision = decide(s, T, CONFIG)
    if isinstance(expected, Rule):
        assert expected == restart_rule(decision)
    else:
        assert hold_reason(decision) == HoldReason.PRODUCING


def test_severe_lag_ignores_sync_state_and_production() -> None:
    """Rule 1 restarts whatever the sync state or production."""
    s = state(head=1500, lags=steady_lags(500), major_sync=True, prepared=True, presealed=True)
    decision = decide(s, T, CONFIG)
    assert restart_rule(decision) == Rule.SEVERE_LAG
    assert decision.facts.lag == 500
    assert decision.facts.major_sync
    assert decision.facts.producing


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        pytest.param(2.0, HoldReason.CATCHING_UP, id="rate-equal-to-catch-up-rate"),
        pytest.param(1.9, Rule.SEVERE_LAG, id="rate-just-below"),
    ],
)
def test_catching_up_guard_boundary(rate: float, expected: HoldReason | Rule) -> None:
    """A lag shrinking at >= CATCH_UP_RATE blocks/s is not interrupted."""
    s = state(head=6000, lags=shrinking_lags(5000, rate), major_sync=True)
    decision = decide(s, T, CONFIG)
    if isinstance(expected, Rule):
        assert expected == restart_rule(decision)
    else:
        assert expected == hold_reason(decision)


def test_catch_up_guard_off_restarts_a_catching_up_node() -> None:
    """CATCH_UP_RATE=0 turns the guard off, as in the original tool."""
    s = state(head=6000, lags=shrinking_lags(5000, 200.0), major_sync=True)
    off = replace(CONFIG, catch_up_rate=0.0)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.CATCHING_UP
    assert restart_rule(decide(s, T, off)) == Rule.SEVERE_LAG


def test_catch_up_rate_unknown_holds_with_a_single_sample() -> None:
    """With one lag sample the rate is unknown: hold until the next poll measures it."""
    s = state(head=6000, lags=(LagSample(T - 1, 5000),))
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.CATCH_UP_UNKNOWN


def test_catch_up_is_measured_over_the_run_when_younger_than_the_window() -> None:
    """A run younger than TREND_WINDOW measures the rate over the whole run."""
    s = state(head=6000, lags=shrinking_lags(5000, 100.0, span=100.0), started_at=T - 310)
    assert pytest.approx(catch_up_rate(s, T, CONFIG)) == 100.0
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.CATCHING_UP


# --- rule 2: stall --------------------------------------------------------------------------

STALL_CONFIG = replace(CONFIG, block_lag_100=100_000, block_lag_20=90_000)


@pytest.mark.parametrize(
    ("stalled_for", "expected"),
    [
        pytest.param(179.999, HoldReason.HEALTHY, id="just-under-stall-timeout"),
        pytest.param(180.0, Rule.STALL, id="exactly-stall-timeout"),
    ],
)
def test_stall_boundary(stalled_for: float, expected: HoldReason | Rule) -> None:
    """Rule 2 fires once best has not advanced for >= STALL_TIMEOUT while the head rose."""
    s = state(head=1180, stalled_for=stalled_for, heads_since=(1005, 1180), lags=steady_lags(100))
    decision = decide(s, T, STALL_CONFIG)
    if isinstance(expected, Rule):
        assert expected == restart_rule(decision)
        assert "#1005 -> #1180" in decision.detail
    else:
        assert expected == hold_reason(decision)
        assert T - stalled_for + 180 == decision.until


def test_stall_while_the_whole_chain_halted_holds() -> None:
    """No local progress, but the head did not rise either: not this node's fault."""
    s = state(head=1000, stalled_for=3600, heads_since=(1000, 1000), lags=steady_lags(0))
    assert hold_reason(decide(s, T, STALL_CONFIG)) == HoldReason.CHAIN_HALTED


def test_stall_of_a_producing_node_holds() -> None:
    """A node authoring blocks is not restarted for a stall."""
    s = state(head=1180, stalled_for=200, heads_since=(1005, 1180), prepared=True, presealed=True)
    assert hold_reason(decide(s, T, STALL_CONFIG)) == HoldReason.PRODUCING


def test_stall_restarts_even_in_major_sync() -> None:
    """Major sync does not protect a stalled node."""
    s = state(head=1180, stalled_for=200, heads_since=(1005, 1180), major_sync=True)
    assert restart_rule(decide(s, T, STALL_CONFIG)) == Rule.STALL


# --- rule 3: falling behind -----------------------------------------------------------------


def rising_lags(start: float, rise: float) -> tuple[LagSample, ...]:
    """Lag rising linearly by *rise* over the 300 s window, sampled every 10 s."""
    return tuple(LagSample(T - 300 + i * 10, round(start + rise * i / 30)) for i in range(31))


def test_falling_behind_restarts() -> None:
    """Average lag strictly rising in every bucket, by >= FALLING_BEHIND_MIN_RISE."""
    s = state(head=1015, lags=rising_lags(5, 10), major_sync=True)
    decision = decide(s, T, CONFIG)
    assert restart_rule(decision) == Rule.FALLING_BEHIND


def test_falling_behind_rise_boundary() -> None:
    """The last bucket must exceed the first by at least FALLING_BEHIND_MIN_RISE."""
    lags = tuple(LagSample(T - 300 + i * 60 + 30, 5 + i * 1.25) for i in range(5))
    s = state(head=1010, lags=lags, major_sync=True)  # type: ignore[arg-type]
    assert bucket_averages(s, T, CONFIG) == [5.0, 6.25, 7.5, 8.75, 10.0]
    assert restart_rule(decide(s, T, CONFIG)) == Rule.FALLING_BEHIND
    lower = tuple(replace(sample, lag=sample.lag - i * 0.01) for i, sample in enumerate(lags))
    assert (
        hold_reason(decide(state(head=1010, lags=lower, major_sync=True), T, CONFIG))
        == HoldReason.HEALTHY
    )


def test_falling_behind_needs_strict_rise_in_every_bucket() -> None:
    """A flat bucket in between means no consistent rise."""
    lags = tuple(LagSample(T - 300 + i * 60 + 30, lag) for i, lag in enumerate((5, 8, 8, 12, 15)))
    s = state(head=1015, lags=lags, major_sync=True)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.HEALTHY


def test_falling_behind_holds_when_a_bucket_is_empty() -> None:
    """A bucket without samples (RPC hiccup) means the trend is unknown."""
    lags = tuple(sample for sample in rising_lags(5, 10) if not T - 180 <= sample.at < T - 120)
    s = state(head=1015, lags=lags, major_sync=True)
    assert None in bucket_averages(s, T, CONFIG)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.HEALTHY


def test_falling_behind_holds_for_a_run_younger_than_the_window() -> None:
    """The run must cover the whole window; the hold names when it will."""
    s = state(head=1015, lags=rising_lags(5, 10), major_sync=True, started_at=T - 299)
    cooldown_off = replace(CONFIG, cooldown=0.0)
    decision = decide(s, T, cooldown_off)
    assert hold_reason(decision) == HoldReason.HEALTHY
    assert decision.until == T + 1


def test_falling_behind_of_a_producing_node_holds() -> None:
    """A producing node is not restarted for falling behind."""
    s = state(head=1015, lags=rising_lags(5, 10), prepared=True, presealed=True)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.PRODUCING


# --- rule 4: moderate lag -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lag", "expected"),
    [
        pytest.param(20, HoldReason.HEALTHY, id="lag-equal-to-threshold"),
        pytest.param(21, Rule.MODERATE_LAG, id="lag-one-above"),
    ],
)
def test_moderate_lag_boundary(lag: int, expected: HoldReason | Rule) -> None:
    """Rule 4 fires on lag > BLOCK_LAG_20 for a node neither syncing nor producing."""
    decision = decide(state(head=1000 + lag, lags=steady_lags(lag)), T, CONFIG)
    if isinstance(expected, Rule):
        assert expected == restart_rule(decision)
    else:
        assert expected == hold_reason(decision)


def test_moderate_lag_in_major_sync_holds() -> None:
    """A node in major sync is left to sync."""
    s = state(head=1050, lags=steady_lags(50), major_sync=True)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.MAJOR_SYNC


def test_moderate_lag_of_a_producing_validator_holds() -> None:
    """A committee validator producing blocks this session is not restarted."""
    s = state(head=1050, lags=steady_lags(50), prepared=True, presealed=True, session=9)
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.PRODUCING


def test_moderate_lag_needs_both_production_lines() -> None:
    """Preparing without pre-sealing is not producing."""
    s = state(head=1050, lags=steady_lags(50), prepared=True)
    assert restart_rule(decide(s, T, CONFIG)) == Rule.MODERATE_LAG


def test_moderate_lag_while_catching_up_holds() -> None:
    """The catch-up guard protects rule 4 too."""
    s = state(head=1050, lags=shrinking_lags(50, 3.0))
    assert hold_reason(decide(s, T, CONFIG)) == HoldReason.CATCHING_UP


def test_rules_are_tried_in_order() -> None:
    """A node that is both severely lagging and stalled is restarted for severe lag."""
    s = state(head=1500, stalled_for=600, heads_since=(1000, 1500), lags=steady_lags(500))
    assert restart_rule(decide(s, T, CONFIG)) == Rule.SEVERE_LAG


def test_healthy_node_holds_with_its_numbers() -> None:
    """An in-sync node: hold 'healthy' with the lag in the facts."""
    decision = decide(state(head=1002, lags=steady_lags(2)), T, CONFIG)
    assert hold_reason(decision) == HoldReason.HEALTHY
    assert (decision.facts.lag, decision.facts.best, decision.facts.head) == (2, 1000, 1002)


# --- cooldown and back-off ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unhelped", "expected"),
    [(0, 300), (1, 600), (2, 1200), (3, 2400), (4, 3600), (5, 3600), (10_000, 3600)],
)
def test_backoff_doubles_up_to_the_cap(unhelped: int, expected: float) -> None:
    """COOLDOWN × BACKOFF_FACTOR^k, capped at MAX_COOLDOWN, for any k."""
    s = replace(state(), unhelped_restarts=unhelped)
    assert expected == effective_cooldown(s, CONFIG)


def test_backoff_factor_one_is_the_original_fixed_cooldown() -> None:
    """BACKOFF_FACTOR=1 keeps 300 s whatever k."""
    s = replace(state(), unhelped_restarts=7)
    assert effective_cooldown(s, replace(CONFIG, backoff_factor=1.0)) == 300


def test_median_head_is_the_lower_median() -> None:
    """Several endpoints give their median; an even count takes the lower middle."""
    assert median_head([100, 103, 101]) == 101
    assert median_head([103, 100]) == 100
    assert median_head([7]) == 7
