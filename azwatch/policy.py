"""The decision rules: ``decide(state, now, config)`` → :class:`Restart` or :class:`Hold`.

Pure and total. The rules (README "How it decides") are tried in order and the first whose
condition holds names the restart:

0. cooldown: nothing is evaluated until the run is older than the effective cooldown;
1. severe lag: ``lag > BLOCK_LAG_100``, unless the node is catching up;
2. stall: no local progress for ``STALL_TIMEOUT`` while the network head rose, not producing;
3. falling behind: the lag rose bucket after bucket over ``TREND_WINDOW``, not producing;
4. finality lag: the node's finalized block has not advanced for ``FINALITY_TIMEOUT`` while the
   reference's rose by ``FINALITY_MIN_RISE``, not in major sync;
5. moderate lag: ``lag > BLOCK_LAG_20``, not in major sync, not producing, not catching up.

Every rule needs known, fresh data. With no head sample, a stale one, or no local best yet,
the answer is a hold that says why: unknown data never restarts a node. The signals come from
whichever channel (log, node) is fresh (:func:`azwatch.state.signals_of`); a rule that needs
one only the log gives (block production) holds without it and names it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from azwatch.channels import Channel, Reading, Signals
from azwatch.config import Config
from azwatch.state import NodeState, Run, log_is_fresh, log_stale_after, signals_of

_V = TypeVar("_V", int, bool)
_W = TypeVar("_W")

#: Seconds between a healthy node's lines; beyond it, each second of silence may hide a block.
LINE_GRACE = 1.0


class Rule(StrEnum):
    """The rule that names a restart."""

    SEVERE_LAG = "severe_lag"
    STALL = "stall"
    FALLING_BEHIND = "falling_behind"
    FINALITY_LAG = "finality_lag"
    MODERATE_LAG = "moderate_lag"


class HoldReason(StrEnum):
    """Why no restart was decided."""

    NOT_RUNNING = "container_not_running"
    RESTART_IN_FLIGHT = "restart_in_progress"
    #: The container keeps exiting by itself (azwatch.crashloop): restarting never helps.
    CRASH_LOOP = "crash_loop"
    COOLDOWN = "cooldown"
    LOG_HISTORY = "reading_log_history"
    LOG_SILENT = "log_silent"
    NO_BEST = "no_local_best"
    NO_HEAD = "no_head_sample"
    HEAD_STALE = "head_stale"
    CATCHING_UP = "catching_up"
    CATCH_UP_UNKNOWN = "catch_up_rate_unknown"
    CHAIN_HALTED = "chain_halted"
    CHAIN_UNKNOWN = "node_chain_unknown"
    WRONG_CHAIN = "reference_wrong_chain"
    PRODUCING = "producing_blocks"
    MAJOR_SYNC = "major_sync"
    #: A rule's condition holds but it needs a signal no fresh channel gives (the detail
    #: names it): block production without the log, the reference's finalized block, …
    SIGNAL_UNKNOWN = "signal_unknown"
    #: The node's finality stopped, and the reference's too: the whole chain's finality.
    FINALITY_HALTED = "chain_finality_halted"
    HEALTHY = "healthy"


#: Hold reasons that mean "azwatch cannot see enough to judge" (``azwatch check`` exits 3).
BLIND_REASONS = frozenset(
    {
        HoldReason.NOT_RUNNING,
        HoldReason.LOG_HISTORY,
        HoldReason.LOG_SILENT,
        HoldReason.NO_BEST,
        HoldReason.NO_HEAD,
        HoldReason.HEAD_STALE,
        HoldReason.CHAIN_UNKNOWN,
        HoldReason.WRONG_CHAIN,
        HoldReason.SIGNAL_UNKNOWN,
    }
)


@dataclass(frozen=True, slots=True)
class Facts:
    """The numbers behind a decision, as reported in logs, replay output and ``/status``."""

    lag: int | None
    best: int | None
    head: int | None
    finalized: int | None
    major_sync: bool
    producing: bool
    session: int | None
    peers: int | None
    #: Net blocks/s by which the lag shrank over the trend window (``None``: unknown).
    catch_up_rate: float | None
    #: The effective cooldown (seconds) after back-off.
    cooldown: float
    #: Seconds since the current run started.
    run_age: float
    #: The reference's finalized block, when known.
    head_finalized: int | None = None
    #: ``alephNode_ready`` from the node channel (``None``: not offered, or no channel).
    ready: bool | None = None
    #: Whether block production is known (only a fresh, live log tells it).
    production_known: bool = True
    #: Each signal's fresh reading with its channel and time (provenance, not a value).
    signals: Signals = field(default=Signals(), compare=False)


@dataclass(frozen=True, slots=True)
class Restart:
    """Restart the container: *rule* says why, *detail* gives the numbers in words."""

    rule: Rule
    detail: str
    facts: Facts


@dataclass(frozen=True, slots=True)
class Hold:
    """Do not restart: *reason* says why.

    ``until`` is the earliest time at which the rules could decide differently with no new
    event (the cooldown ends, a stall timeout is reached), so the caller can wake up then.
    """

    reason: HoldReason
    detail: str
    facts: Facts
    until: float | None = None


Decision = Restart | Hold


def effective_cooldown(state: NodeState, config: Config) -> float:
    """``COOLDOWN × BACKOFF_FACTOR^k``, capped at ``MAX_COOLDOWN``."""
    # Cap the exponent first: k grows without bound on a node that never recovers.
    cooldown = config.cooldown
    for _ in range(state.unhelped_restarts):
        cooldown *= config.backoff_factor
        if cooldown >= config.max_cooldown:
            return config.max_cooldown
    return min(cooldown, config.max_cooldown)


def cooldown_anchor(state: NodeState) -> float:
    """When the current cooldown began: the run's start or the watcher's latest restart."""
    if state.restart_at is None:
        return state.run.started_at
    return max(state.run.started_at, state.restart_at)


def head_is_fresh(state: NodeState, now: float, config: Config) -> bool:
    """A head sample younger than twice the poll interval."""
    return state.head_at is not None and now - state.head_at < 2 * config.rpc_poll_interval


def catch_up_rate(state: NodeState, now: float, config: Config) -> float | None:
    """Net blocks/s by which the lag shrank over the last ``TREND_WINDOW`` (or the run so far).

    Positive while catching up, negative while falling behind, ``None`` with fewer than two
    samples to compare.
    """
    horizon = now - config.trend_window
    lags = state.run.lags
    first = next((sample for sample in lags if sample.at >= horizon), None)
    if first is None:
        return None
    last = lags[-1]
    if last.at <= first.at:
        return None
    return (first.lag - last.lag) / (last.at - first.at)


def bucket_averages(state: NodeState, now: float, config: Config) -> list[float | None]:
    """Average lag in each of ``TREND_BUCKETS`` equal buckets of the last ``TREND_WINDOW``."""
    buckets = config.trend_buckets
    width = config.trend_window / buckets
    start = now - config.trend_window
    sums = [0.0] * buckets
    counts = [0] * buckets
    last = buckets - 1
    for sample in state.run.lags:  # run for every decision: kept to plain arithmetic
        at = sample.at
        if start <= at <= now:
            index = int((at - start) / width)
            if index > last:
                index = last
            sums[index] += sample.lag
            counts[index] += 1
    return [total / count if count else None for total, count in zip(sums, counts, strict=True)]


def _lags_span(run: Run) -> int:
    """Highest minus lowest of the run's lag samples (0 without any)."""
    lags = [sample.lag for sample in run.lags]
    return max(lags) - min(lags) if lags else 0


def _value(reading: Reading[_V] | None, otherwise: _W) -> _V | _W:
    return otherwise if reading is None else reading.value


def facts_of(state: NodeState, now: float, config: Config) -> Facts:
    """The numbers a decision about *state* at *now* reports.

    Each is the combined fresh value (:func:`azwatch.state.signals_of`); where no channel is
    fresh, the log's last word, as it was before the node channel existed.
    """
    run = state.run
    signals = signals_of(run, now, config)
    best = _value(signals.best, run.best)
    return Facts(
        lag=None if state.head is None or best is None else state.head - best,
        best=best,
        head=state.head,
        finalized=_value(signals.finalized, run.finalized),
        major_sync=_value(signals.major_sync, run.major_sync),
        producing=_value(signals.producing, run.producing(now)),
        session=_value(signals.session, run.session),
        peers=_value(signals.peers, run.peers),
        catch_up_rate=catch_up_rate(state, now, config),
        cooldown=effective_cooldown(state, config),
        run_age=max(0.0, now - run.started_at),
        head_finalized=state.head_finalized,
        ready=_value(signals.ready, None),
        production_known=signals.producing is not None,
        signals=signals,
    )


#: Polls between two questions for the reference's finalized block (see
#: :mod:`azwatch.head`); it counts as fresh for twice that many polls.
FINALITY_POLL_EVERY = 6


def reference_finalized_is_fresh(state: NodeState, now: float, config: Config) -> bool:
    """The reference's finalized block was told within two of its polling periods."""
    at = state.head_finalized_at
    return at is not None and now - at < 2 * FINALITY_POLL_EVERY * config.rpc_poll_interval


def decide(state: NodeState, now: float, config: Config) -> Decision:
    """Decide whether to restart the container of *state* at monotonic time *now*."""
    facts = facts_of(state, now, config)
    run = state.run

    def hold(reason: HoldReason, detail: str, until: float | None = None) -> Hold:
        return Hold(reason, detail, facts, until)

    if state.restart_in_flight:
        return hold(HoldReason.RESTART_IN_FLIGHT, "waiting for the restart to finish")
    if not state.running:
        return hold(HoldReason.NOT_RUNNING, f"container is {state.status}; left alone")
    anchor = cooldown_anchor(state)
    cooldown_end = anchor + facts.cooldown
    if now < cooldown_end:
        since = "run start" if anchor == run.started_at else "the last restart"
        return hold(
            HoldReason.COOLDOWN,
            f"{now - anchor:.0f}s since {since}, cooldown {facts.cooldown:.0f}s",
            cooldown_end,
        )
    signals = facts.signals
    best = signals.best
    if best is None or run.best_advanced_at is None:
        blind = _blind(state, now, config)
        return hold(blind.reason, blind.detail + _node_note(state, now, config))
    if state.chain_problem is not None:
        reason = HoldReason.CHAIN_UNKNOWN if run.genesis is None else HoldReason.WRONG_CHAIN
        return hold(reason, state.chain_problem)
    if state.head is None or state.head_at is None:
        why = state.head_error or "no answer yet"
        return hold(HoldReason.NO_HEAD, f"no network head from the reference RPC ({why})")
    if not head_is_fresh(state, now, config):
        why = f"; {state.head_error}" if state.head_error else ""
        return hold(
            HoldReason.HEAD_STALE,
            f"latest network head is {now - state.head_at:.0f}s old{why}",
        )

    # The best is as old as the reading that told it, and the node may have imported about a
    # block a second since: the lag counted is the least the node can have.
    best_age = now - best.at
    unseen = int(max(0.0, best_age - LINE_GRACE))
    lag = state.head - best.value - unseen
    # Said with the lag, so the number in a detail never looks unlike head minus best.
    since = "log line" if best.channel is Channel.LOG else "node sample"
    unseen_text = (
        f" (head #{state.head} - best #{best.value}, less {unseen} block(s) the "
        f"{best_age:.0f}s since the latest {since} may hide)"
        if unseen
        else ""
    )
    production = signals.producing
    producing = production is not None and production.value
    major = signals.major_sync
    rate = facts.catch_up_rate
    guard = config.catch_up_rate > 0
    catching_up = guard and rate is not None and rate >= config.catch_up_rate
    rate_unknown = guard and rate is None
    blocked: list[tuple[HoldReason, str]] = []
    wake_ups: list[float] = []

    def catching_up_hold(rule_text: str) -> tuple[HoldReason, str] | None:
        if catching_up:
            return (
                HoldReason.CATCHING_UP,
                f"{rule_text}, but the lag shrinks at {rate:.1f} blocks/s "
                f">= CATCH_UP_RATE={config.catch_up_rate:g}",
            )
        if rate_unknown:
            return (
                HoldReason.CATCH_UP_UNKNOWN,
                f"{rule_text}; measuring whether the node is catching up",
            )
        return None

    # Rule 1: severe lag, whatever the sync state or production.
    if lag > config.block_lag_100:
        text = f"lag {lag}{unseen_text} > BLOCK_LAG_100={config.block_lag_100}"
        guard_hold = catching_up_hold(text)
        if guard_hold is None:
            return Restart(Rule.SEVERE_LAG, text, facts)
        blocked.append(guard_hold)

    # Rule 2: stall; the head must have risen meanwhile, or the whole chain halted.
    # Only time in which a channel told the best counts: a silent stream is not a stalled node.
    stalled_for = best.at - run.best_advanced_at
    if stalled_for >= config.stall_timeout:
        text = (
            f"best #{best.value} has not advanced for {stalled_for:.0f}s "
            f">= STALL_TIMEOUT={config.stall_timeout:g}"
        )
        seen = run.heads_since_advance
        if seen is None or seen[1] <= seen[0]:
            blocked.append((HoldReason.CHAIN_HALTED, f"{text}, but the network head did not rise"))
        elif producing:
            blocked.append((HoldReason.PRODUCING, f"{text}, but the node is producing blocks"))
        else:
            return Restart(
                Rule.STALL, f"{text} while the head rose #{seen[0]} -> #{seen[1]}", facts
            )
    elif run.best_advanced_at + config.stall_timeout > now:
        # Lines that arrive in time make the stall; a wake-up then looks again.
        wake_ups.append(run.best_advanced_at + config.stall_timeout)

    # Rule 3: falling behind: the average lag rose bucket after bucket.
    if now - run.started_at < config.trend_window:
        wake_ups.append(run.started_at + config.trend_window)
    elif _lags_span(run) >= config.falling_behind_min_rise:
        # (Each bucket's average lies within the samples' span: a narrower span cannot rise
        # by the minimum, and at idle it never does, so the buckets are not even counted.)
        averages = bucket_averages(state, now, config)
        if all(average is not None for average in averages):
            values = [average for average in averages if average is not None]
            rising = all(later > earlier for earlier, later in itertools.pairwise(values))
            rise = values[-1] - values[0]
            if rising and rise >= config.falling_behind_min_rise:
                text = (
                    f"lag rose in each of {len(values)} buckets over "
                    f"{config.trend_window:g}s, by {rise:.1f} blocks "
                    f">= FALLING_BEHIND_MIN_RISE={config.falling_behind_min_rise}"
                )
                if producing:
                    blocked.append((HoldReason.PRODUCING, f"{text}, but producing blocks"))
                else:
                    return Restart(Rule.FALLING_BEHIND, text, facts)

    # Rule 4: finality lag: the node's finality stopped while the chain's went on.
    finality = _finality(state, signals, now, config)
    if finality is not None:
        verdict, text = finality
        if isinstance(verdict, Rule):
            return Restart(verdict, text, facts)
        blocked.append((verdict, text))
    if signals.finalized is not None and run.finalized_advanced_at is not None:
        due = run.finalized_advanced_at + config.finality_timeout
        if due > now:
            wake_ups.append(due)

    # Rule 5: moderate lag, for a node that is neither syncing nor producing.
    if lag > config.block_lag_20:
        text = f"lag {lag}{unseen_text} > BLOCK_LAG_20={config.block_lag_20}"
        if major is None:
            blocked.append(
                (HoldReason.SIGNAL_UNKNOWN, f"{text}, but whether it is in major sync is unknown")
            )
        elif major.value:
            blocked.append((HoldReason.MAJOR_SYNC, f"{text}, but the node is in major sync"))
        elif production is None:
            blocked.append(
                (
                    HoldReason.SIGNAL_UNKNOWN,
                    f"{text}, but block production is unknown: only the log tells it, and "
                    "the log gives nothing fresh",
                )
            )
        elif producing:
            blocked.append(
                (HoldReason.PRODUCING, f"{text}, but the node is producing blocks this session")
            )
        else:
            guard_hold = catching_up_hold(text)
            if guard_hold is None:
                return Restart(Rule.MODERATE_LAG, text, facts)
            blocked.append(guard_hold)

    until = min(wake_ups) if wake_ups else None
    if blocked:
        reason, detail = blocked[0]
        return hold(reason, detail, until)
    return hold(HoldReason.HEALTHY, f"lag {lag} within thresholds", until)


@dataclass(frozen=True, slots=True)
class _Blind:
    reason: HoldReason
    detail: str


def _blind(state: NodeState, now: float, config: Config) -> _Blind:
    """Why no channel gives a fresh best: the log's reason, as it was before the node channel."""
    run = state.run
    if run.log_unreadable is not None:
        return _Blind(HoldReason.NO_BEST, f"no local best block: {run.log_unreadable}")
    if not run.log_live:
        return _Blind(
            HoldReason.LOG_HISTORY,
            "reading the run's log up to the present; its lines are history until then",
        )
    if run.best is None or run.log_seen_at is None:
        return _Blind(HoldReason.NO_BEST, "no local best block seen in this run yet")
    if not log_is_fresh(run, now, config):
        return _Blind(
            HoldReason.LOG_SILENT,
            f"no log line for {now - run.log_seen_at:.0f}s (> {log_stale_after(config):g}s) "
            "from a running container: its best is unknown until the follower brings lines "
            "again",
        )
    return _Blind(HoldReason.NO_BEST, "no local best block seen in this run yet")


def _node_note(state: NodeState, now: float, config: Config) -> str:
    """What the node channel says about why it cannot stand in for the log (if it is used)."""
    run = state.run
    if run.node_error is not None:
        return f"; node channel: {run.node_error}"
    if run.node_seen_at is not None:
        if run.node.best is None:
            return "; node channel: its samples carry no best block"
        return f"; node channel: latest sample {now - run.node_seen_at:.0f}s old"
    return ""


def _finality(
    state: NodeState, signals: Signals, now: float, config: Config
) -> tuple[Rule | HoldReason, str] | None:
    """Rule 4: its rule (restart) or the hold that stops it, with the words; ``None`` when
    the condition does not hold.

    The node's finalized block must be known and fresh, and must not have advanced for
    ``FINALITY_TIMEOUT`` (counting only time in which a channel told it); the reference's
    finalized block must have risen by ``FINALITY_MIN_RISE`` meanwhile (else the whole chain's
    finality stopped, and no restart helps); and the node must not be in major sync.
    """
    run = state.run
    finalized, advanced_at = signals.finalized, run.finalized_advanced_at
    if finalized is None or advanced_at is None:
        return None  # unknown or stale: nothing to say about it
    still_for = finalized.at - advanced_at
    if still_for < config.finality_timeout:
        return None
    text = (
        f"finalized #{finalized.value} has not advanced for {still_for:.0f}s "
        f">= FINALITY_TIMEOUT={config.finality_timeout:g}"
    )
    seen = run.reference_finalized_since_advance
    if seen is None or not reference_finalized_is_fresh(state, now, config):
        return (
            HoldReason.SIGNAL_UNKNOWN,
            f"{text}, but the reference's finalized block is unknown or stale",
        )
    rise = seen[1] - seen[0]
    if rise < config.finality_min_rise:
        return (
            HoldReason.FINALITY_HALTED,
            f"{text}, but the reference's finalized block rose only {rise} block(s) "
            f"(#{seen[0]} -> #{seen[1]}) < FINALITY_MIN_RISE={config.finality_min_rise}: "
            "finality stopped chain-wide, a restart cannot help",
        )
    major = signals.major_sync
    if major is None:
        return (HoldReason.SIGNAL_UNKNOWN, f"{text}, but whether it is in major sync is unknown")
    if major.value:
        return (HoldReason.MAJOR_SYNC, f"{text}, but the node is in major sync")
    return (
        Rule.FINALITY_LAG,
        f"{text} while the reference's finalized rose #{seen[0]} -> #{seen[1]} "
        f"(+{rise} >= FINALITY_MIN_RISE={config.finality_min_rise})",
    )
