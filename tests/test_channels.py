"""How the log and the node channel combine, and the finality rule: tables, no Docker.

Each case is a run at time T described by what each channel last said and how long ago; the
decision (and the channel each signal came from) is what the case asserts.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from test_policy import hold_reason as reason
from test_policy import restart_rule as rule

from azwatch.channels import Channel
from azwatch.config import Config
from azwatch.effects import Effect, LogRecord
from azwatch.events import (
    BlockImported,
    HeadSample,
    LogCaughtUp,
    LogUnreadable,
    NodeSample,
    NodeUnavailable,
    ReferenceFinalized,
    RunStarted,
    SyncStatus,
)
from azwatch.metrics import registry_for
from azwatch.policy import FINALITY_POLL_EVERY, Hold, HoldReason, Rule, decide
from azwatch.snapshot import HeadView, LogView, document, take
from azwatch.state import NodeState, Run, apply, signals_of
from azwatch.supervisor import ContainerEvents, HeadPolled, NodePolled, Supervisor

CONFIG = Config(container_names=("node",))
#: Without the catch-up guard, which would measure a rate first (its own tests are elsewhere).
NO_GUARD = replace(CONFIG, catch_up_rate=0)
T = 10_000.0
STALE = 120.0  # older than both the log's 45 s and the node channel's 2 polls (20 s)
HEAD = 100_000


def run_at(
    *,
    log_best: int | None = None,
    log_age: float | None = None,
    node: NodeSample | None = None,
    node_age: float | None = None,
    advanced_ago: float = 1.0,
    **fields: object,
) -> Run:
    """A live run at T whose log last spoke *log_age* s ago and node channel *node_age* s ago."""
    run = Run(
        run_id="r",
        started_at=0.0,
        has_lines=log_age is not None,
        log_live=True,
        log_seen_at=None if log_age is None else T - log_age,
        best=log_best,
        best_advanced_at=T - advanced_ago,
    )
    if node is not None:
        assert node_age is not None
        run = replace(run, node=node, node_seen_at=T - node_age)
    return replace(run, **fields)  # type: ignore[arg-type]


def at(run: Run, *, head: int = HEAD, head_age: float = 1.0, **fields: object) -> NodeState:
    return NodeState(run=run, head=head, head_at=T - head_age, **fields)  # type: ignore[arg-type]


# --- which channel gives each signal ---------------------------------------------------------


@pytest.mark.parametrize(
    ("log_age", "node_age", "best_from", "best"),
    [
        pytest.param(1.0, None, Channel.LOG, 1000, id="log only"),
        pytest.param(None, 5.0, Channel.NODE, 1004, id="node only"),
        pytest.param(1.0, 5.0, Channel.NODE, 1004, id="both fresh: the highest best"),
        pytest.param(STALE, 5.0, Channel.NODE, 1004, id="log stale"),
        pytest.param(1.0, STALE, Channel.LOG, 1000, id="node stale"),
        pytest.param(STALE, STALE, None, None, id="both stale"),
    ],
)
def test_each_signal_takes_the_freshest_channel(
    log_age: float | None, node_age: float | None, best_from: Channel | None, best: int | None
) -> None:
    sample = NodeSample(best=1004, finalized=1002, peers=7, syncing=True, ready=False)
    run = run_at(
        log_best=1000 if log_age is not None else None,
        log_age=log_age,
        node=sample if node_age is not None else None,
        node_age=node_age,
        finalized=998,
        peers=26,
        prepared=True,
        presealed=True,
    )
    signals = signals_of(run, T, CONFIG)
    got = signals.best
    assert (None if got is None else (got.channel, got.value)) == (
        None if best_from is None else (best_from, best)
    )
    log_fresh = log_age is not None and log_age < 45
    node_fresh = node_age is not None and node_age < 20
    # Production only the log tells; readiness only the node.
    assert (signals.producing is not None) == log_fresh
    assert (signals.ready is not None) == node_fresh
    if log_fresh and node_fresh:
        # Peers and major sync: the latest reading, which here is the log's (1 s < 5 s).
        assert signals.peers is not None
        assert (signals.peers.channel, signals.peers.value) == (Channel.LOG, 26)
        assert signals.finalized is not None
        assert (signals.finalized.channel, signals.finalized.value) == (Channel.NODE, 1002)
    if node_fresh and not log_fresh:
        assert signals.log_less
        assert signals.major_sync is not None
        assert signals.major_sync.value is True
    else:
        assert not signals.log_less


def test_both_agreeing_give_the_latest_reading_of_the_same_best() -> None:
    run = run_at(log_best=1000, log_age=3.0, node=NodeSample(best=1000), node_age=1.0)
    best = signals_of(run, T, CONFIG).best
    assert best is not None
    assert (best.value, best.channel, best.at) == (1000, Channel.NODE, T - 1.0)


# --- decisions with each combination ----------------------------------------------------------


def test_log_only_decides_as_before() -> None:
    decision = decide(at(run_at(log_best=HEAD - 150, log_age=0.5)), T, NO_GUARD)
    assert rule(decision) is Rule.SEVERE_LAG
    assert decision.facts.signals.best is not None
    assert decision.facts.signals.best.channel is Channel.LOG


def test_node_only_severe_lag_restarts_with_an_unreadable_log() -> None:
    run = run_at(
        node=NodeSample(best=HEAD - 150, finalized=HEAD - 152, peers=3, syncing=False),
        node_age=2.0,
        log_unreadable="log driver none cannot be read",
    )
    decision = decide(at(run), T, NO_GUARD)
    assert rule(decision) is Rule.SEVERE_LAG
    # The best is a 2 s old sample: one block it may hide is not counted as lag.
    assert "less 1 block(s) the 2s since the latest node sample" in decision.detail
    assert decision.facts.best == HEAD - 150


def test_node_only_moderate_lag_holds_naming_production() -> None:
    run = run_at(node=NodeSample(best=HEAD - 50, syncing=False), node_age=1.0, log_age=STALE)
    decision = decide(at(run), T, CONFIG)
    assert reason(decision) is HoldReason.SIGNAL_UNKNOWN
    assert "block production is unknown" in decision.detail
    assert decision.facts.production_known is False


def test_node_only_moderate_lag_in_major_sync_holds_for_sync() -> None:
    run = run_at(node=NodeSample(best=HEAD - 50, syncing=True), node_age=1.0, log_age=STALE)
    assert reason(decide(at(run), T, CONFIG)) is HoldReason.MAJOR_SYNC


def test_node_only_stall_restarts() -> None:
    """Node samples keep telling the same best while the head rose: a stall, log silent."""
    run = run_at(
        node=NodeSample(best=HEAD - 30, syncing=False),
        node_age=1.0,
        log_age=STALE,
        advanced_ago=200.0,
        heads_since_advance=(HEAD - 30, HEAD),
    )
    decision = decide(at(run), T, replace(CONFIG, block_lag_100=1000))
    assert rule(decision) is Rule.STALL
    assert "has not advanced for 199s" in decision.detail


def test_both_agreeing_and_healthy() -> None:
    run = run_at(log_best=HEAD, log_age=0.5, node=NodeSample(best=HEAD, syncing=False), node_age=3)
    assert reason(decide(at(run), T, CONFIG)) is HoldReason.HEALTHY


def test_log_stale_and_node_fresh_decides_from_the_node() -> None:
    """The log's stale best is far behind; the node channel's fresh one is in sync."""
    run = run_at(
        log_best=HEAD - 500, log_age=STALE, node=NodeSample(best=HEAD, syncing=False), node_age=2
    )
    assert reason(decide(at(run), T, CONFIG)) is HoldReason.HEALTHY


def test_node_stale_and_log_fresh_decides_from_the_log() -> None:
    run = run_at(
        log_best=HEAD - 150, log_age=0.5, node=NodeSample(best=HEAD, syncing=False), node_age=STALE
    )
    assert rule(decide(at(run), T, NO_GUARD)) is Rule.SEVERE_LAG


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"log_age": STALE, "log_best": HEAD - 500}, HoldReason.LOG_SILENT),
        ({"log_age": 1.0, "log_live": False, "log_best": HEAD - 500}, HoldReason.LOG_HISTORY),
        ({"log_unreadable": "driver none"}, HoldReason.NO_BEST),
    ],
)
def test_both_unknown_hold_as_without_a_node_channel(
    fields: dict[str, object], expected: HoldReason
) -> None:
    """A stale node sample changes nothing: the log's hold, with the node channel's state."""
    run = run_at(node=NodeSample(best=HEAD - 500), node_age=STALE, **fields)  # type: ignore[arg-type]
    decision = decide(at(run), T, CONFIG)
    assert reason(decision) is expected
    assert f"node channel: latest sample {STALE:.0f}s old" in decision.detail
    failing = replace(run, node_error="refused: cannot connect: Connection refused")
    assert "node channel: refused" in decide(at(failing), T, CONFIG).detail


def test_a_silent_log_without_a_node_channel_says_nothing_of_one() -> None:
    decision = decide(at(run_at(log_best=HEAD - 500, log_age=STALE)), T, CONFIG)
    assert reason(decision) is HoldReason.LOG_SILENT
    assert "node channel" not in decision.detail


# --- state: node samples through apply --------------------------------------------------------


def test_node_samples_advance_the_best_and_the_finalized_block() -> None:
    state = NodeState(run=Run(run_id=None, started_at=0.0))
    state = apply(state, RunStarted("a", 0.0), 0.0, CONFIG)
    state = apply(state, NodeSample(best=10, finalized=8), 5.0, CONFIG)
    state = apply(state, NodeSample(best=10, finalized=8), 15.0, CONFIG)
    assert (state.run.best_advanced_at, state.run.finalized_advanced_at) == (5.0, 5.0)
    # The log telling the same numbers later is no advance either; a higher one is.
    state = apply(state, LogCaughtUp(), 16.0, CONFIG)
    state = apply(state, SyncStatus(10, 8, 10), 17.0, CONFIG)
    assert (state.run.best_advanced_at, state.run.finalized_advanced_at) == (5.0, 5.0)
    state = apply(state, BlockImported(11), 18.0, CONFIG)
    assert state.run.best_advanced_at == 18.0
    failed = apply(state, NodeUnavailable("refused", "cannot connect"), 25.0, CONFIG)
    assert failed.run.node_error == "refused: cannot connect"
    assert failed.run.node == state.run.node, "a failed poll keeps the last sample, aging"
    # A new run forgets the old run's node channel.
    fresh = apply(failed, RunStarted("b", 30.0), 30.0, CONFIG)
    assert (fresh.run.node, fresh.run.node_seen_at) == (NodeSample(), None)


def test_the_node_channel_names_the_chain_when_the_log_cannot() -> None:
    state = apply(NodeState(run=Run("a", 0.0)), LogUnreadable("none"), 1.0, CONFIG)
    state = apply(state, NodeSample(best=5, genesis="0x7025…344e"), 2.0, CONFIG)
    assert state.run.genesis == "0x7025…344e"


# --- the finality rule ------------------------------------------------------------------------


TIMEOUT = CONFIG.finality_timeout  # 900
RISE = CONFIG.finality_min_rise  # 20


def finality_state(
    *,
    still_for: float = TIMEOUT,
    reference: tuple[int, int] | None = (HEAD - 900, HEAD - 900 + RISE),
    reference_age: float = 10.0,
    syncing: bool = False,
    node_age: float = 1.0,
) -> NodeState:
    """In sync (lag 0), finalized standing still for *still_for* s while the reference's rose."""
    run = run_at(
        node=NodeSample(best=HEAD, finalized=HEAD - 950, syncing=syncing),
        node_age=node_age,
        log_age=STALE,
        finalized_advanced_at=T - node_age - still_for,
        reference_finalized_since_advance=reference,
    )
    return at(
        run,
        head_finalized=None if reference is None else reference[1],
        head_finalized_at=T - reference_age,
    )


def test_finality_lag_restarts_at_the_timeout_with_the_minimum_rise() -> None:
    decision = decide(finality_state(), T, CONFIG)
    assert rule(decision) is Rule.FINALITY_LAG
    assert f"has not advanced for 900s >= FINALITY_TIMEOUT={TIMEOUT:g}" in decision.detail
    assert f"(+{RISE} >= FINALITY_MIN_RISE={RISE})" in decision.detail


def test_finality_lag_restarts_past_each_threshold() -> None:
    decision = decide(finality_state(still_for=TIMEOUT + 600, reference=(0, 900)), T, CONFIG)
    assert rule(decision) is Rule.FINALITY_LAG


def test_finality_just_before_the_timeout_holds_and_wakes_at_it() -> None:
    assert reason(decide(finality_state(still_for=TIMEOUT - 1), T, CONFIG)) is HoldReason.HEALTHY
    early = decide(finality_state(still_for=TIMEOUT - 100), T, replace(CONFIG, stall_timeout=1e6))
    assert reason(early) is HoldReason.HEALTHY
    assert early.until == pytest.approx(T + 99)  # when the node's sample would make it 900 s


def test_a_chain_wide_finality_stall_holds() -> None:
    """The reference's finalized block rose one block less than the minimum: chain-wide."""
    decision = decide(finality_state(reference=(HEAD, HEAD + RISE - 1)), T, CONFIG)
    assert reason(decision) is HoldReason.FINALITY_HALTED
    assert f"rose only {RISE - 1} block(s)" in decision.detail
    stopped = decide(finality_state(reference=(HEAD, HEAD)), T, CONFIG)
    assert reason(stopped) is HoldReason.FINALITY_HALTED


@pytest.mark.parametrize(
    "case",
    [
        pytest.param({"reference": None}, id="reference finalized unknown"),
        pytest.param(
            {"reference_age": 2 * FINALITY_POLL_EVERY * CONFIG.rpc_poll_interval},
            id="reference finalized stale",
        ),
    ],
)
def test_finality_holds_when_the_reference_finalized_is_unknown_or_stale(
    case: dict[str, object],
) -> None:
    decision = decide(finality_state(**case), T, CONFIG)  # type: ignore[arg-type]
    assert reason(decision) is HoldReason.SIGNAL_UNKNOWN
    assert "reference's finalized block is unknown or stale" in decision.detail


def test_finality_says_nothing_when_the_node_finalized_is_stale() -> None:
    """The only finalized block is a stale node sample's: unknown, so the rule is silent."""
    state = finality_state(node_age=STALE)
    state = replace(state, run=replace(state.run, best=HEAD, log_seen_at=T - 0.5))
    decision = decide(state, T, CONFIG)
    assert reason(decision) is HoldReason.HEALTHY
    assert decision.facts.signals.finalized is None


def test_finality_lag_holds_in_major_sync() -> None:
    decision = decide(finality_state(syncing=True), T, CONFIG)
    assert reason(decision) is HoldReason.MAJOR_SYNC
    assert "finalized" in decision.detail


def test_the_reference_rise_counts_from_the_nodes_last_advance() -> None:
    """apply() keeps (first, highest) reference finalized since the node's finalized moved."""
    state = apply(NodeState(run=Run("a", 0.0)), NodeSample(best=50, finalized=40), 1.0, CONFIG)
    for when, number in ((10.0, 100), (70.0, 130), (130.0, 125)):
        state = apply(state, ReferenceFinalized(number), when, CONFIG)
    assert state.run.reference_finalized_since_advance == (100, 130)
    assert (state.head_finalized, state.head_finalized_at) == (125, 130.0)
    state = apply(state, NodeSample(best=51, finalized=41), 140.0, CONFIG)
    assert state.run.reference_finalized_since_advance is None


# --- the supervisor: log-less mode is said once -----------------------------------------------


def test_log_less_mode_is_said_once_and_its_end_too() -> None:
    config = replace(CONFIG, cooldown=0.0, catch_up_rate=0.0)
    supervisor = Supervisor(config)
    supervisor.watch("n", 0.0)
    records: list[LogRecord] = []

    def take(effects: list[Effect]) -> None:
        records.extend(e for e in effects if isinstance(e, LogRecord))

    # The run's log is read to the present at 0 s, and then says nothing.
    take(supervisor.handle(ContainerEvents("n", (RunStarted("a", 0.0), LogCaughtUp())), 0.0))
    for second in range(0, 110, 10):
        now = float(second)
        take(supervisor.handle(NodePolled("n", NodeSample(best=1000 + second)), now))
        take(supervisor.handle(HeadPolled(HeadSample(1000 + second)), now))
        take(supervisor.tick(now))
    said = [r.message for r in records if r.event == "channel_node"]
    assert said == [
        "n: log-less mode: the log gives nothing fresh (it is silent); deciding from the "
        "node channel (best, finalized, peers, major sync). Block production and session "
        "only the log tells: moderate lag holds while they are unknown"
    ]
    book = supervisor.books["n"]
    assert isinstance(book.decision, Hold)
    assert book.decision.reason is HoldReason.HEALTHY
    take(supervisor.handle(ContainerEvents("n", (BlockImported(1100),)), 110.0))
    take(supervisor.tick(110.0))
    assert [r.event for r in records].count("channel_log") == 1


def test_a_node_channel_failure_is_kept_and_the_next_sample_clears_it() -> None:
    supervisor = Supervisor(CONFIG)
    supervisor.watch("n", 0.0)
    supervisor.handle(NodePolled("n", NodeUnavailable("timeout", "no answer within 5s")), 1.0)
    assert supervisor.books["n"].state.run.node_error == "timeout: no answer within 5s"
    supervisor.handle(NodePolled("n", NodeSample(best=1)), 2.0)
    assert supervisor.books["n"].state.run.node_error is None


# --- /status and /metrics show the channels ---------------------------------------------------


def test_status_shows_each_signal_with_its_channel_and_age() -> None:
    config = replace(CONFIG, node_rpc_url="http://127.0.0.1:9944/?apikey=secret")
    supervisor = Supervisor(config)
    supervisor.watch("n", 0.0)
    supervisor.handle(ContainerEvents("n", (RunStarted("a", 0.0), LogCaughtUp())), 0.0)
    supervisor.handle(ContainerEvents("n", (SyncStatus(990, 980, 990),)), 1.0)
    supervisor.handle(NodePolled("n", NodeSample(best=1000, finalized=985, peers=9)), 4.0)
    supervisor.tick(4.0)
    errors = {"n": (("rpc", "timeout", 3),)}
    snapshot = take(
        supervisor, now=5.0, wall=1e9, logs={}, head=HeadView(None, None), node_errors=errors
    )
    view = document(snapshot)["containers"]["n"]
    assert view["signals"]["best"] == {"value": 1000, "channel": "node", "age": 1.0}
    assert view["signals"]["finalized"] == {"value": 985, "channel": "node", "age": 1.0}
    assert view["signals"]["producing"] == {"value": False, "channel": "log", "age": 4.0}
    assert view["signals"]["ready"] == {"value": None, "channel": None, "age": None}
    assert view["run"]["best"] == 1000
    assert view["node_channel"] == {
        "rpc": True,
        "metrics": False,
        "last_sample_age": 1.0,
        "error": None,
        "log_less": False,
        "errors": [{"interface": "rpc", "kind": "timeout", "count": 3}],
    }
    assert "secret" not in json.dumps(view)
    scraped = generate_latest(registry_for(lambda: snapshot)).decode()
    assert (
        'azwatch_node_channel_errors_total{container="n",interface="rpc",kind="timeout"} 3.0'
        in scraped
    )


def test_an_unreadable_log_is_no_watcher_problem_in_log_less_mode() -> None:
    supervisor = Supervisor(CONFIG)
    supervisor.watch("n", 0.0)
    supervisor.handle(ContainerEvents("n", (RunStarted("a", 0.0), LogCaughtUp())), 0.0)
    supervisor.handle(ContainerEvents("n", (LogUnreadable("log driver none"),)), 0.0)
    supervisor.tick(1.0)
    logs = {"n": LogView(waiting="driver", detail="log driver none cannot be read")}
    head = HeadView(last_poll_age=1.0, last_ok_age=1.0)

    def problems(now: float) -> tuple[str, ...]:
        return take(supervisor, now=now, wall=1e9, logs=logs, head=head).problems

    assert problems(1.0) == ("n: log driver none cannot be read",)
    supervisor.handle(NodePolled("n", NodeSample(best=5)), 2.0)
    supervisor.tick(2.0)
    assert problems(2.0) == ()
    # Once the node channel goes stale too, the log's problem is the watcher's again.
    supervisor.tick(40.0)
    assert problems(40.0) == ("n: log driver none cannot be read",)
