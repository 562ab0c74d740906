"""Decision behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/policy.py (or of the reducer feeding
it) that the older tests let survive: a guard switched off, a boundary moved by one, a sample
dropped, a wake-up time lost.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from azwatch.config import Config
from azwatch.events import BlockImported, HeadSample, LogCaughtUp, RestartFinished, RestartIssued
from azwatch.policy import (
    Decision,
    Hold,
    HoldReason,
    Restart,
    Rule,
    bucket_averages,
    catch_up_rate,
    cooldown_anchor,
    decide,
    effective_cooldown,
)
from azwatch.state import LagSample, NodeState, Run, apply, initial_state

CONFIG = Config(container_names=("node",))
T = 10_000.0  # "now" in these tables: well after the run started at 0


def node(
    *,
    best: int = 1000,
    head: int = 1000,
    stalled_for: float = 1.0,
    heads_since: tuple[int, int] | None = None,
    lags: tuple[LagSample, ...] = (),
    started_at: float = 0.0,
    **run_fields: object,
) -> NodeState:
    """A running node at time T with a fresh head, described by what a case cares about."""
    run = Run(
        run_id="r",
        started_at=started_at,
        has_lines=True,
        log_live=True,
        log_seen_at=T,  # a line just arrived: the log is live and fresh
        best=best,
        best_advanced_at=T - stalled_for,
        heads_since_advance=heads_since,
        lags=lags,
    )
    run = replace(run, **run_fields)  # type: ignore[arg-type]
    return NodeState(run=run, head=head, head_at=T - 1)


def lags_at(*samples: tuple[float, int]) -> tuple[LagSample, ...]:
    """Lag samples at the given offsets from T (negative: in the past)."""
    return tuple(LagSample(T + offset, lag) for offset, lag in samples)


def shrinking(lag_now: int, rate: float, span: float = 300.0) -> tuple[LagSample, ...]:
    """Lag samples every 10 s over *span* seconds, shrinking at *rate* blocks/s to *lag_now*."""
    count = int(span / 10)
    return tuple(
        LagSample(T - span + i * 10, round(lag_now + rate * (span - i * 10)))
        for i in range(count + 1)
    )


def outcome(decision: Decision) -> Rule | HoldReason:
    return decision.rule if isinstance(decision, Restart) else decision.reason


# --- restart in flight ------------------------------------------------------------------------

NO_COOLDOWN = replace(CONFIG, cooldown=0.0, catch_up_rate=0.0)


def test_a_restart_in_flight_holds_even_without_cooldown() -> None:
    """With COOLDOWN=0 nothing but the in-flight flag keeps a second restart from following."""
    config = NO_COOLDOWN
    state = apply(initial_state(0.0, "r"), LogCaughtUp(), 0.0, config)
    state = apply(state, BlockImported(1000), 0.0, config)
    state = apply(state, HeadSample(1500), 1.0, config)
    assert outcome(decide(state, 1.0, config)) == Rule.SEVERE_LAG
    state = apply(state, RestartIssued(), 1.0, config)
    for now in (1.0, 1.5, 5.0):
        decision = decide(state, now, config)
        assert isinstance(decision, Hold)
        assert (decision.reason, decision.until) == (HoldReason.RESTART_IN_FLIGHT, None)
    finished = apply(state, RestartFinished(ok=False, detail="boom"), 5.0, config)
    assert outcome(decide(finished, 5.0, config)) == Rule.SEVERE_LAG


# --- the catch-up guard -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "rate", "expected"),
    [
        pytest.param(0.5, 0.6, HoldReason.CATCHING_UP, id="0.5-faster"),
        pytest.param(0.5, 0.5, HoldReason.CATCHING_UP, id="0.5-equal"),
        pytest.param(0.5, 0.4, Rule.SEVERE_LAG, id="0.5-slower"),
        pytest.param(0.5, None, HoldReason.CATCH_UP_UNKNOWN, id="0.5-unknown"),
        pytest.param(1.0, 1.2, HoldReason.CATCHING_UP, id="1-faster"),
        pytest.param(0.0, 50.0, Rule.SEVERE_LAG, id="off-fast"),
        pytest.param(0.0, None, Rule.SEVERE_LAG, id="off-unknown"),
    ],
)
def test_catch_up_guard_for_rates_below_one(
    guard: float, rate: float | None, expected: Rule | HoldReason
) -> None:
    """Any CATCH_UP_RATE > 0 guards (0.5 too); only 0 switches the guard off."""
    lags = lags_at((-1, 5000)) if rate is None else shrinking(5000, rate)
    decision = decide(node(head=6000, lags=lags), T, replace(CONFIG, catch_up_rate=guard))
    assert outcome(decision) == expected
    if rate is not None:
        assert decision.facts.catch_up_rate == pytest.approx(rate, abs=0.01)


@pytest.mark.parametrize(
    ("guard", "rate", "expected"),
    [
        pytest.param(0.5, 0.6, HoldReason.CATCHING_UP, id="0.5-faster"),
        pytest.param(0.5, 0.1, Rule.MODERATE_LAG, id="0.5-slower"),
        pytest.param(0.5, None, HoldReason.CATCH_UP_UNKNOWN, id="0.5-unknown"),
        pytest.param(0.0, None, Rule.MODERATE_LAG, id="off-unknown"),
    ],
)
def test_catch_up_guard_protects_moderate_lag(
    guard: float, rate: float | None, expected: Rule | HoldReason
) -> None:
    """Rule 4 is guarded the same way."""
    lags = lags_at((-1, 50)) if rate is None else shrinking(50, rate, span=60)
    decision = decide(node(head=1050, lags=lags), T, replace(CONFIG, catch_up_rate=guard))
    assert outcome(decision) == expected


@pytest.mark.parametrize(
    ("lags", "rate"),
    [
        pytest.param(lags_at((-300, 600), (0, 0)), 2.0, id="first-exactly-one-window-old"),
        pytest.param(lags_at((-301, 9999), (-300, 600), (0, 0)), 2.0, id="older-ignored"),
        pytest.param(lags_at((-100, 0), (0, 300)), -3.0, id="falling-behind"),
        pytest.param(lags_at((-10, 5)), None, id="one-sample"),
        pytest.param(lags_at((-301, 5), (0, 5)), None, id="one-inside-the-window"),
        pytest.param((), None, id="none"),
    ],
)
def test_catch_up_rate_over_the_window(lags: tuple[LagSample, ...], rate: float | None) -> None:
    """The rate compares the oldest sample inside TREND_WINDOW (its edge included) with now."""
    assert catch_up_rate(node(lags=lags), T, CONFIG) == rate


# --- falling behind ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lags", "averages"),
    [
        pytest.param(
            lags_at((-290, 4), (-250, 6), (-200, 7), (-150, 8), (-90, 9), (-30, 10)),
            [5.0, 7.0, 8.0, 9.0, 10.0],
            id="two-in-the-first-bucket",
        ),
        pytest.param(
            lags_at((-270, 1), (-260, 2), (-250, 6), (-200, 7), (-150, 8), (-90, 9), (-30, 10)),
            [3.0, 7.0, 8.0, 9.0, 10.0],
            id="three-in-the-first-bucket",
        ),
        pytest.param(
            lags_at((-300, 5), (-200, 7), (-150, 8), (-90, 9), (0, 10)),
            [5.0, 7.0, 8.0, 9.0, 10.0],
            id="edges-of-the-window-included",
        ),
        pytest.param(
            lags_at((-300.5, 99), (-200, 7), (0.5, 99)),
            [None, 7.0, None, None, None],
            id="outside-the-window-ignored",
        ),
        pytest.param(
            lags_at((-240, 6), (-180, 7), (-120, 8), (-60, 9)),
            [None, 6.0, 7.0, 8.0, 9.0],
            id="bucket-starts-belong-to-their-bucket",
        ),
    ],
)
def test_bucket_averages(lags: tuple[LagSample, ...], averages: list[float | None]) -> None:
    """Each bucket averages its samples; samples at the window's start and at now count."""
    assert bucket_averages(node(lags=lags), T, CONFIG) == averages


@pytest.mark.parametrize(
    ("lags", "expected"),
    [
        # Averages 10, 11, 12, 13, 16: rising by 6. Summed, the first bucket would be 20.
        pytest.param(
            lags_at((-290, 10), (-250, 10), (-200, 11), (-150, 12), (-90, 13), (-30, 16)),
            Rule.FALLING_BEHIND,
            id="averaged-rising",
        ),
        # Averages 10, 11, 12, 13, 14.5: rising by 4.5 < 5. Summed, the last would be 29.
        pytest.param(
            lags_at((-290, 10), (-200, 11), (-150, 12), (-90, 13), (-50, 13), (-10, 16)),
            HoldReason.HEALTHY,
            id="two-in-the-last-bucket-rise-too-small",
        ),
        # The last bucket holds only the sample taken now; without it the trend is unknown.
        pytest.param(
            lags_at((-290, 10), (-200, 11), (-150, 12), (-90, 13), (0, 16)),
            Rule.FALLING_BEHIND,
            id="last-bucket-only-now",
        ),
        pytest.param(
            lags_at((-290, 10), (-250, 30), (-200, 11), (-150, 12), (-90, 13), (-30, 16)),
            HoldReason.HEALTHY,
            id="first-bucket-average-too-high",
        ),
    ],
)
def test_falling_behind_uses_bucket_averages(
    lags: tuple[LagSample, ...], expected: Rule | HoldReason
) -> None:
    """Rule 3 compares bucket averages, with the sample taken at now in the last bucket."""
    decision = decide(node(head=1016, lags=lags, major_sync=True), T, CONFIG)
    assert outcome(decision) == expected


# --- wake-up times of holds -------------------------------------------------------------------

STALL = replace(CONFIG, cooldown=0.0)


@pytest.mark.parametrize(
    ("case", "reason", "until"),
    [
        pytest.param(
            node(head=6000, lags=shrinking(5000, 3.0), stalled_for=30),
            HoldReason.CATCHING_UP,
            T - 30 + 180,
            id="catching-up-until-stall-timeout",
        ),
        pytest.param(
            node(head=6000, lags=lags_at((-1, 5000)), stalled_for=100, started_at=T - 250),
            HoldReason.CATCH_UP_UNKNOWN,
            T + 50,
            id="catch-up-unknown-until-window-covered",
        ),
        pytest.param(
            node(head=1000, stalled_for=3600, heads_since=(1000, 1000), started_at=T - 250),
            HoldReason.CHAIN_HALTED,
            T + 50,
            id="chain-halted-until-window-covered",
        ),
        pytest.param(
            node(head=1000, stalled_for=3600, heads_since=(1000, 1000)),
            HoldReason.CHAIN_HALTED,
            None,
            id="chain-halted-nothing-to-wait-for",
        ),
        pytest.param(
            node(head=1050, lags=lags_at((-10, 50), (0, 50)), stalled_for=100, major_sync=True),
            HoldReason.MAJOR_SYNC,
            T + 80,
            id="major-sync-until-stall-timeout",
        ),
        pytest.param(
            node(
                head=1050,
                lags=lags_at((-10, 50), (0, 50)),
                stalled_for=170,
                started_at=T - 200,
                prepared=True,
                presealed=True,
            ),
            HoldReason.PRODUCING,
            T + 10,
            id="producing-until-the-earlier-wake-up",
        ),
        pytest.param(
            node(head=1002, stalled_for=10, started_at=T - 295),
            HoldReason.HEALTHY,
            T + 5,
            id="healthy-until-the-earlier-wake-up",
        ),
    ],
)
def test_blocked_holds_carry_their_wake_up_time(
    case: NodeState, reason: HoldReason, until: float | None
) -> None:
    """A hold blocked by a guard still says when the rules could next decide differently."""
    decision = decide(case, T, STALL)
    assert isinstance(decision, Hold), decision
    assert (decision.reason, decision.until) == (reason, until)


def test_stalled_producing_node_holds_without_a_stall_wake_up() -> None:
    """Already stalled: the stall timeout is no longer a wake-up; the window still is."""
    case = node(
        head=1010,
        stalled_for=200,
        heads_since=(1005, 1010),
        started_at=T - 250,
        prepared=True,
        presealed=True,
    )
    decision = decide(case, T, STALL)
    assert isinstance(decision, Hold)
    assert (decision.reason, decision.until) == (HoldReason.PRODUCING, T + 50)


# --- cooldown anchor and back-off -------------------------------------------------------------


@pytest.mark.parametrize(
    ("restart_at", "started_at", "anchor"),
    [
        pytest.param(None, 50.0, 50.0, id="no-restart-yet"),
        pytest.param(80.0, 50.0, 80.0, id="our-restart-after-the-start"),
        pytest.param(20.0, 50.0, 50.0, id="operator-restart-after-ours"),
    ],
)
def test_cooldown_counts_from_the_later_of_run_start_and_our_restart(
    restart_at: float | None, started_at: float, anchor: float
) -> None:
    """The cooldown anchor is the run's start or our latest restart, whichever is later."""
    state = replace(node(started_at=started_at), restart_at=restart_at)
    assert cooldown_anchor(state) == anchor
    decision = decide(state, anchor + CONFIG.cooldown - 1, CONFIG)
    assert isinstance(decision, Hold)
    assert (decision.reason, decision.until) == (HoldReason.COOLDOWN, anchor + CONFIG.cooldown)


@pytest.mark.parametrize(
    ("cooldown", "factor", "cap", "unhelped", "expected"),
    [
        (100.0, 3.0, 1000.0, 2, 900.0),
        (100.0, 3.0, 900.0, 2, 900.0),
        (100.0, 3.0, 850.0, 2, 850.0),
        (100.0, 1.5, 1000.0, 1, 150.0),
        (0.0, 2.0, 400.0, 5, 0.0),
    ],
)
def test_effective_cooldown_table(
    cooldown: float, factor: float, cap: float, unhelped: int, expected: float
) -> None:
    """COOLDOWN × BACKOFF_FACTOR^k, never above MAX_COOLDOWN."""
    config = replace(CONFIG, cooldown=cooldown, backoff_factor=factor, max_cooldown=cap)
    state = replace(node(), unhelped_restarts=unhelped)
    assert effective_cooldown(state, config) == expected


# --- what a decision reports ------------------------------------------------------------------


def test_facts_report_the_runs_numbers() -> None:
    """Finalized block, peers, session and run age reach the decision's facts."""
    case = replace(
        node(head=1003, started_at=T - 0.5, finalized=998, peers=7, session=42),
        unhelped_restarts=1,
    )
    facts = decide(case, T, CONFIG).facts
    assert (facts.lag, facts.best, facts.head, facts.finalized) == (3, 1000, 1003, 998)
    assert (facts.peers, facts.session, facts.major_sync, facts.producing) == (7, 42, False, False)
    assert (facts.run_age, facts.cooldown, facts.catch_up_rate) == (0.5, 600.0, None)


def test_facts_run_age_is_never_negative() -> None:
    """A run that started after now (a late clock) is zero seconds old."""
    assert decide(node(started_at=T + 5), T, CONFIG).facts.run_age == 0.0


@pytest.mark.parametrize(
    ("restart_at", "detail"),
    [
        pytest.param(None, "120s since run start, cooldown 300s", id="run-start"),
        pytest.param(T - 30, "30s since the last restart, cooldown 300s", id="our-restart"),
    ],
)
def test_cooldown_hold_says_since_when(restart_at: float | None, detail: str) -> None:
    """The cooldown hold names its anchor and the seconds since it."""
    case = replace(node(started_at=T - 120), restart_at=restart_at)
    decision = decide(case, T, CONFIG)
    assert isinstance(decision, Hold)
    assert (decision.reason, decision.detail) == (HoldReason.COOLDOWN, detail)


def _without_best(state: NodeState) -> NodeState:
    return replace(state, run=replace(state.run, best=None, best_advanced_at=None))


FALLING = lags_at((-290, 10), (-200, 11), (-150, 12), (-90, 13), (0, 16))
STEADY_50 = lags_at((-300, 50), (0, 50))
SEVERE = "lag 500 > BLOCK_LAG_100=100"
STALLED = "best #1000 has not advanced for 200s >= STALL_TIMEOUT=180"
ROSE = "lag rose in each of 5 buckets over 300s, by 6.0 blocks >= FALLING_BEHIND_MIN_RISE=5"
MODERATE = "lag 50 > BLOCK_LAG_20=20"


@pytest.mark.parametrize(
    ("case", "expected", "detail"),
    [
        pytest.param(
            replace(node(), restart_in_flight=True),
            HoldReason.RESTART_IN_FLIGHT,
            "waiting for the restart to finish",
            id="in-flight",
        ),
        pytest.param(
            replace(node(), running=False, status="paused"),
            HoldReason.NOT_RUNNING,
            "container is paused; left alone",
            id="not-running",
        ),
        pytest.param(
            _without_best(node()),
            HoldReason.NO_BEST,
            "no local best block seen in this run yet",
            id="no-best",
        ),
        pytest.param(
            replace(node(), head=None, head_at=None),
            HoldReason.NO_HEAD,
            "no network head from the reference RPC (no answer yet)",
            id="no-head",
        ),
        pytest.param(
            replace(node(), head=None, head_at=None, head_error="HTTP 503"),
            HoldReason.NO_HEAD,
            "no network head from the reference RPC (HTTP 503)",
            id="no-head-with-error",
        ),
        pytest.param(
            replace(node(), head_at=T - 25),
            HoldReason.HEAD_STALE,
            "latest network head is 25s old",
            id="stale",
        ),
        pytest.param(
            replace(node(), head_at=T - 25, head_error="timeout"),
            HoldReason.HEAD_STALE,
            "latest network head is 25s old; timeout",
            id="stale-with-error",
        ),
        pytest.param(
            node(head=1500, lags=lags_at((-300, 500), (0, 500))),
            Rule.SEVERE_LAG,
            SEVERE,
            id="severe-lag",
        ),
        pytest.param(
            node(head=1500, lags=lags_at((-100, 800), (0, 500))),
            HoldReason.CATCHING_UP,
            SEVERE + ", but the lag shrinks at 3.0 blocks/s >= CATCH_UP_RATE=2",
            id="severe-lag-catching-up",
        ),
        pytest.param(
            node(head=1500, lags=lags_at((0, 500))),
            HoldReason.CATCH_UP_UNKNOWN,
            SEVERE + "; measuring whether the node is catching up",
            id="severe-lag-rate-unknown",
        ),
        pytest.param(
            node(head=1010, stalled_for=200, heads_since=(1002, 1010)),
            Rule.STALL,
            STALLED + " while the head rose #1002 -> #1010",
            id="stall",
        ),
        pytest.param(
            node(head=1000, stalled_for=200, heads_since=(1000, 1000)),
            HoldReason.CHAIN_HALTED,
            STALLED + ", but the network head did not rise",
            id="stall-chain-halted",
        ),
        pytest.param(
            node(
                head=1010, stalled_for=200, heads_since=(1002, 1010), prepared=True, presealed=True
            ),
            HoldReason.PRODUCING,
            STALLED + ", but the node is producing blocks",
            id="stall-producing",
        ),
        pytest.param(
            node(head=1016, lags=FALLING, major_sync=True),
            Rule.FALLING_BEHIND,
            ROSE,
            id="falling-behind",
        ),
        pytest.param(
            node(head=1016, lags=FALLING, prepared=True, presealed=True),
            HoldReason.PRODUCING,
            ROSE + ", but producing blocks",
            id="falling-behind-producing",
        ),
        pytest.param(node(head=1050, lags=STEADY_50), Rule.MODERATE_LAG, MODERATE, id="moderate"),
        pytest.param(
            node(head=1050, lags=STEADY_50, major_sync=True),
            HoldReason.MAJOR_SYNC,
            MODERATE + ", but the node is in major sync",
            id="moderate-major-sync",
        ),
        pytest.param(
            node(head=1050, lags=STEADY_50, prepared=True, presealed=True),
            HoldReason.PRODUCING,
            MODERATE + ", but the node is producing blocks this session",
            id="moderate-producing",
        ),
        pytest.param(
            node(head=1050, lags=lags_at((-10, 80), (0, 50))),
            HoldReason.CATCHING_UP,
            MODERATE + ", but the lag shrinks at 3.0 blocks/s >= CATCH_UP_RATE=2",
            id="moderate-catching-up",
        ),
        pytest.param(
            node(head=1050, lags=lags_at((0, 50))),
            HoldReason.CATCH_UP_UNKNOWN,
            MODERATE + "; measuring whether the node is catching up",
            id="moderate-rate-unknown",
        ),
        pytest.param(node(head=1003), HoldReason.HEALTHY, "lag 3 within thresholds", id="healthy"),
    ],
)
def test_every_decision_says_why_with_its_numbers(
    case: NodeState, expected: Rule | HoldReason, detail: str
) -> None:
    """Each restart and hold names its rule or reason and the numbers behind it, in words.

    These are the WARNING line of a restart and the reason `azwatch check` and /status give.
    """
    decision = decide(case, T, CONFIG)
    assert (outcome(decision), decision.detail) == (expected, detail)


# --- pinned after the engine (the log's freshness, the silence a lag allows for) -----------


def test_a_hold_for_the_logs_history_or_silence_says_so_whole() -> None:
    history = decide(node(log_live=False), T, CONFIG)
    assert (outcome(history), history.detail) == (
        HoldReason.LOG_HISTORY,
        "reading the run's log up to the present; its lines are history until then",
    )
    silent = decide(node(log_seen_at=T - 60), T, CONFIG)
    assert (outcome(silent), silent.detail) == (
        HoldReason.LOG_SILENT,
        "no log line for 60s (> 45s) from a running container: its best is unknown until "
        "the follower brings lines again",
    )


def test_a_lag_says_what_the_silence_since_the_latest_line_may_hide() -> None:
    lagging = node(best=1000, head=1500, log_seen_at=T - 2)
    decision = decide(lagging, T, replace(CONFIG, catch_up_rate=0.0))
    assert decision.detail == (
        "lag 499 (head #1500 - best #1000, less 1 block(s) the 2s since the latest log line "
        "may hide) > BLOCK_LAG_100=100"
    )


def test_a_stall_wake_up_due_now_gives_way_to_the_next_one() -> None:
    """At the instant a stall could begin, the next wake-up is the trend window's."""
    config = replace(CONFIG, stall_timeout=60.0, cooldown=0.0)
    young = node(started_at=T - 100, stalled_for=60.0, log_seen_at=T - 1)
    decision = decide(young, T, config)
    assert outcome(decision) is HoldReason.HEALTHY
    assert isinstance(decision, Hold)
    assert decision.until == T - 100 + config.trend_window
