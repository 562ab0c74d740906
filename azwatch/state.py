"""The node state model: what azwatch knows about one watched container.

:func:`apply` is the reducer: ``apply(state, event, now, config) -> state``. It is pure (no
I/O, no clock: ``now`` is monotonic seconds supplied by the caller) and total (every event in
every state gives a state; nothing raises).

State is kept per **run** of the container (:class:`Run`): a new run, announced by a start
event, a new ``State.StartedAt``, or an ``Aleph Node`` banner after other lines, resets best,
major sync, session and block production. What survives runs lives on :class:`NodeState`:
the network head, the container's status and the restart ledger behind the back-off.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Any, TypeVar

from azwatch.channels import Channel, Reading, Signals, highest, latest
from azwatch.config import Config
from azwatch.events import (
    BlockImported,
    BlockPrepared,
    BlockPreSealed,
    ContainerExited,
    ContainerStatus,
    EntrypointError,
    Event,
    FatalLine,
    HeadSample,
    HeadUnavailable,
    HighestKnownBlock,
    LogCaughtUp,
    LogUnreadable,
    MajorSyncChanged,
    NodeBanner,
    NodeSample,
    NodeUnavailable,
    PeersReported,
    ReferenceFinalized,
    RestartFinished,
    RestartIssued,
    RunStarted,
    SessionStarted,
    SyncStatus,
)


def median_head(answers: Sequence[int]) -> int:
    """The head to use from several endpoints' answers: the lower median.

    The lower of the two middle values for an even count, so a disagreement between two
    endpoints can only make the lag look smaller, never larger.
    """
    return statistics.median_low(answers)


_V = TypeVar("_V", int, bool)

#: Seconds into a new session during which production in the previous one still counts.
SESSION_GRACE = 60.0
#: Seconds without a node line after which the log's signals are unknown. A live node prints
#: a status line every 20 s even when stalled, so this is two of those and a margin.
LOG_STALE_AFTER = 45.0


@dataclass(frozen=True, slots=True)
class LagSample:
    """The lag (network head minus local best) measured when a head sample arrived."""

    at: float
    lag: int


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the container, from its start to its end."""

    #: Identifies the run (container id and start time); ``None`` before the first inspect.
    run_id: str | None
    #: When the run started (monotonic seconds; may be long before the watcher started).
    started_at: float
    #: Whether any node line has been applied in this run (a banner after them is a new run).
    has_lines: bool = False
    #: Whether the follower has read this run's log up to the present (:class:`LogCaughtUp`).
    #: Until then the lines applied are history, and the log's signals do not count.
    log_live: bool = False
    #: Why this run's log cannot be read at all (``None``: it can, or it is not known yet).
    log_unreadable: str | None = None
    #: When the latest node line of this run arrived (or the log was last read to the
    #: present): what the log says is only as fresh as this.
    log_seen_at: float | None = None
    best: int | None = None
    #: When ``best`` last increased.
    best_advanced_at: float | None = None
    finalized: int | None = None
    major_sync: bool = False
    session: int | None = None
    #: When the latest ``Running session`` line arrived.
    session_started_at: float | None = None
    #: ``🎁 Prepared`` / ``🔖 Pre-sealed`` seen since the latest ``Running session`` line.
    prepared: bool = False
    presealed: bool = False
    #: Whether the node produced blocks in the session before the current one.
    produced_previous_session: bool = False
    peers: int | None = None
    #: The node channel's latest sample in this run (all ``None`` before the first), when it
    #: arrived, and why the latest poll gave none (``None`` once a sample arrives).
    node: NodeSample = field(default_factory=NodeSample)
    node_seen_at: float | None = None
    node_error: str | None = None
    #: The highest best and finalized blocks any channel told in this run; ``best_advanced_at``
    #: and ``finalized_advanced_at`` are when these last increased.
    highest_best: int | None = None
    highest_finalized: int | None = None
    finalized_advanced_at: float | None = None
    #: (first, highest) finalized block of the reference taken since the node's finalized
    #: block last advanced: how far the chain finalized while this node did not.
    reference_finalized_since_advance: tuple[int, int] | None = None
    #: The node's chain: its genesis hash in the short form of its network status report.
    genesis: str | None = None
    #: The last fatal line of this run, for reports.
    fatal: str | None = None
    #: Lag samples of this run, oldest first, no older than ``TREND_WINDOW``.
    lags: tuple[LagSample, ...] = ()
    #: (first, highest) head sample taken since ``best`` last advanced.
    heads_since_advance: tuple[int, int] | None = None

    @property
    def produced_this_session(self) -> bool:
        """Both halves of authoring a block were seen in the current session."""
        return self.prepared and self.presealed

    def producing(self, now: float) -> bool:
        """The node authors blocks: in this session, or in the previous one if this is new.

        A committee validator gets its first slot of a session only after up to
        committee-size seconds, so for :data:`SESSION_GRACE` seconds after a ``Running
        session`` line a validator that produced in the previous session still counts.
        """
        if self.produced_this_session:
            return True
        return (
            self.produced_previous_session
            and self.session_started_at is not None
            and now - self.session_started_at < SESSION_GRACE
        )


@dataclass(frozen=True, slots=True)
class NodeState:
    """Everything the decision rules read about one container."""

    run: Run
    running: bool = True
    #: Why the container is not running ("exited", "paused", "missing", …), or "running".
    status: str = "running"
    head: int | None = None
    head_at: float | None = None
    #: Why the latest poll round gave no sample; ``None`` once a sample arrives.
    head_error: str | None = None
    #: Why the latest head sample could not be used for this node's chain (``CHECK_CHAIN``).
    chain_problem: str | None = None
    #: Reference endpoints whose genesis is not this node's, in the latest poll round.
    wrong_chain: tuple[str, ...] = ()
    #: The watcher's latest restart attempt (or dry-run decision): the cooldown counts from it.
    restart_at: float | None = None
    restart_in_flight: bool = False
    #: Restart attempts by the watcher, dry-run decisions included.
    restarts: int = 0
    #: ``k`` of the back-off: consecutive watcher restarts after which the node did not recover.
    #: A restart counts from the moment it is made: the node cannot have recovered yet.
    unhelped_restarts: int = 0
    #: Since when ``lag <= BLOCK_LAG_20`` has held without interruption.
    healthy_since: float | None = None
    #: The reference's finalized block (median of the endpoints asked) and when it came.
    head_finalized: int | None = None
    head_finalized_at: float | None = None

    @property
    def lag(self) -> int | None:
        """Latest head minus local best, when both are known (freshness is the rules' concern)."""
        if self.head is None or self.run.best is None:
            return None
        return self.head - self.run.best


def initial_state(now: float, run_id: str | None = None) -> NodeState:
    """The state of a container first seen at *now*, its run assumed to start then."""
    return NodeState(run=Run(run_id=run_id, started_at=now))


def apply(state: NodeState, event: Event, now: float, config: Config) -> NodeState:
    """Return the state after *event* happened at *now*."""
    instant = _Instant()
    if instant.take(event):
        return instant.applied_to(state, now)
    run = state.run
    match event:
        case SessionStarted(session):
            if session == run.session:
                return state
            return replace(
                state,
                run=replace(
                    run,
                    session=session,
                    session_started_at=now,
                    prepared=False,
                    presealed=False,
                    produced_previous_session=run.produced_this_session,
                    has_lines=True,
                    log_seen_at=now,
                ),
            )
        case NodeBanner():
            if not run.has_lines:
                # The first line of the run we already know about (from its start event).
                return replace(state, run=replace(run, has_lines=True, log_seen_at=now))
            # The node process started again in the same stream: its lines are live already.
            return _new_run(
                state,
                Run(
                    run_id=None,
                    started_at=now,
                    has_lines=True,
                    log_live=run.log_live,
                    log_seen_at=now,
                ),
            )
        case RunStarted(run_id, started_at):
            if run_id == run.run_id:
                return replace(state, running=True, status="running")
            return _new_run(state, Run(run_id=run_id, started_at=min(started_at, now)))
        case ContainerStatus(running, detail, seen_at):
            if not running and seen_at is not None and seen_at < run.started_at:
                return state  # a late report about the previous run (e.g. our restart's "die")
            return replace(state, running=running, status=detail)
        case ContainerExited():
            return state  # counted by the supervisor (azwatch.crashloop); its status comes too
        case HeadSample():
            return _with_sample(state, event, now, config)
        case HeadUnavailable(reason):
            return replace(state, head_error=reason)
        case NodeSample():
            return _with_node_sample(state, event, now)
        case NodeUnavailable(kind, detail):
            return replace(state, run=replace(run, node_error=f"{kind}: {detail}"))
        case ReferenceFinalized(number):
            return _with_reference_finalized(state, number, now)
        case RestartIssued():
            return replace(
                state,
                restart_at=now,
                restart_in_flight=True,
                restarts=state.restarts + 1,
                unhelped_restarts=state.unhelped_restarts + 1,
                healthy_since=None,
            )
        case RestartFinished():
            return replace(state, restart_in_flight=False)
        case LogUnreadable(reason):
            if run.log_unreadable == reason:
                return state
            return replace(state, run=replace(run, log_unreadable=reason))
        case EntrypointError(text=text):
            # Printed before the node starts: not a node line, but why this run will end.
            return replace(state, run=replace(run, fatal=text))
        case LogCaughtUp():
            if run.log_live:
                return state
            # The lag samples taken while the tail was read compare an old best with the
            # current head: they measure the reading, not the node.
            return replace(
                state,
                run=replace(run, log_live=True, log_seen_at=now, lags=(), heads_since_advance=None),
            )
    return state  # pragma: no cover - every event type is matched above


def apply_all(state: NodeState, events: Iterable[Event], now: float, config: Config) -> NodeState:
    """Apply *events* in order, all at *now*: the state :func:`apply` gives one at a time.

    A burst of log lines read at once happens at one instant, and at one instant most log
    events commute (see :class:`_Instant`). Each run of them between the events that do not
    is applied as one change, so a burst of hundreds of lines costs a few state copies
    instead of one per line.
    """
    instant = _Instant()
    for event in events:
        if instant.take(event):
            continue
        state = instant.applied_to(state, now)
        state = apply(state, event, now, config)
    return instant.applied_to(state, now)


class _Instant:
    """Commuting log events seen at one instant, reduced to their joint effect on the run.

    The best block is the highest any of them named; the finalized block, the peer count,
    the sync mode and the fatal line are the latest ones; production flags only turn on.
    The other events depend on what came before them (:meth:`take` refuses them): a banner
    (a new run or not, depending on earlier lines), a session start (which closes the
    production of the previous session), and every watcher event.
    """

    __slots__ = (
        "best",
        "fatal",
        "finalized",
        "genesis",
        "highest_finalized",
        "lines",
        "major_sync",
        "peers",
        "prepared",
        "presealed",
    )

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.lines = False
        self.best: int | None = None
        self.finalized: int | None = None
        self.highest_finalized: int | None = None
        self.major_sync: bool | None = None
        self.peers: int | None = None
        self.genesis: str | None = None
        self.prepared = False
        self.presealed = False
        self.fatal: str | None = None

    def take(self, event: Event) -> bool:
        """Add *event*; ``False`` (and nothing added) if it is not a commuting log event."""
        # Exact type tests, most frequent first: this runs for every event of a burst.
        if type(event) is BlockImported or type(event) is HighestKnownBlock:
            self._best(event.number)
        elif type(event) is PeersReported:
            self.peers = event.peers
            if event.genesis is not None:
                self.genesis = event.genesis
        elif type(event) is SyncStatus:
            self._best(event.imported)
            self.finalized = event.finalized
            self.highest_finalized = _top(self.highest_finalized, event.finalized)
        elif type(event) is BlockPrepared:
            self.prepared = True
        elif type(event) is BlockPreSealed:
            self.presealed = True
        elif type(event) is MajorSyncChanged:
            self.major_sync = event.active
        elif type(event) is FatalLine:
            self.fatal = event.text
        else:
            return False
        self.lines = True
        return True

    def _best(self, number: int) -> None:
        if self.best is None or number > self.best:
            self.best = number

    def applied_to(self, state: NodeState, now: float) -> NodeState:
        """*state* after these events at *now*; the instant is then empty again."""
        if not self.lines:
            return state
        run = state.run
        # Run fields and their new values: a line arrived, whatever it says.
        changes: dict[str, Any] = {"has_lines": True, "log_seen_at": now}
        if self.best is not None and (run.best is None or self.best > run.best):
            changes["best"] = self.best
            if _rises(self.best, run.highest_best):
                changes.update(
                    highest_best=self.best, best_advanced_at=now, heads_since_advance=None
                )
        if self.finalized is not None:
            changes["finalized"] = self.finalized
        if self.highest_finalized is not None and _rises(
            self.highest_finalized, run.highest_finalized
        ):
            changes.update(
                highest_finalized=self.highest_finalized,
                finalized_advanced_at=now,
                reference_finalized_since_advance=None,
            )
        if self.major_sync is not None:
            changes["major_sync"] = self.major_sync
        if self.peers is not None:
            changes["peers"] = self.peers
        if self.genesis is not None:
            changes["genesis"] = self.genesis
        if self.prepared:
            changes["prepared"] = True
        if self.presealed:
            changes["presealed"] = True
        if self.fatal is not None:
            changes["fatal"] = self.fatal
        self._clear()
        if all(getattr(run, name) == value for name, value in changes.items()):
            return state  # e.g. a fork block below the best: nothing new
        return _copied(state, {"run": _copied(run, changes)})


_Value = TypeVar("_Value", Run, NodeState)
#: Reads every slot of a run or a state at once, in slot order.
_SLOT_VALUES = {kind: attrgetter(*kind.__slots__) for kind in (Run, NodeState)}


def _copied(value: _Value, changes: dict[str, Any]) -> _Value:
    """``dataclasses.replace(value, **changes)`` for the run and the state, at about half its
    cost: their slots are copied as they are instead of passing each field through
    ``__init__`` again. Every batch of live lines makes both copies."""
    copy = object.__new__(type(value))
    put = object.__setattr__  # looked up once: this loop is the copy's whole cost
    # The slots and their reader come from one tuple (_SLOT_VALUES): same length, same order.
    for name, field_value in zip(value.__slots__, _SLOT_VALUES[type(value)](value)):  # noqa: B905
        put(copy, name, field_value)
    for name, field_value in changes.items():
        put(copy, name, field_value)  # a name that is not a field: AttributeError
    return copy


def _new_run(state: NodeState, run: Run) -> NodeState:
    return replace(state, run=run, running=True, status="running", healthy_since=None)


def _with_sample(state: NodeState, sample: HeadSample, now: float, config: Config) -> NodeState:
    """A head sample, taken from the endpoints that serve this node's chain when known."""
    sources = sample.sources
    if not config.check_chain or not sources:
        return _with_head(
            replace(state, chain_problem=None, wrong_chain=()), sample.head, now, config
        )
    node = state.run.genesis
    if node is None:
        problem = (
            "the node's chain is not known yet: waiting for its first network status report "
            "(about 20 s after it starts), which names its genesis"
        )
        return replace(state, chain_problem=problem, wrong_chain=(), head_error=None)
    same = [answer.head for answer in sources if answer.genesis == node]
    wrong = tuple(a.endpoint for a in sources if a.genesis is not None and a.genesis != node)
    if not same:
        others = "; ".join(
            f"{answer.endpoint} serves {answer.genesis or 'a chain it has not told yet'}"
            for answer in sources
        )
        problem = f"no reference endpoint serves the node's chain {node} ({others})"
        return replace(state, chain_problem=problem, wrong_chain=wrong, head_error=None)
    state = replace(state, chain_problem=None, wrong_chain=wrong)
    return _with_head(state, median_head(same), now, config)


def _with_head(state: NodeState, head: int, now: float, config: Config) -> NodeState:
    run = state.run
    best = signals_of(run, now, config).best
    if best is None:
        # Against a best from the log's history, or from a channel fallen silent, the lag
        # measures the reading, not the node: no lag sample.
        return replace(state, head=head, head_at=now, head_error=None)
    lag = head - best.value
    horizon = now - config.trend_window
    lags = (*(sample for sample in run.lags if sample.at >= horizon), LagSample(now, lag))
    seen = run.heads_since_advance
    seen = (head, head) if seen is None else (seen[0], max(seen[1], head))
    healthy_since = state.healthy_since
    unhelped = state.unhelped_restarts
    if lag <= config.block_lag_20:
        healthy_since = now if healthy_since is None else healthy_since
        if now - healthy_since >= config.recovery_period:
            unhelped = 0
    else:
        healthy_since = None
    return replace(
        state,
        run=replace(run, lags=lags, heads_since_advance=seen),
        head=head,
        head_at=now,
        head_error=None,
        healthy_since=healthy_since,
        unhelped_restarts=unhelped,
    )


def log_stale_after(config: Config) -> float:
    """Seconds without a node line after which what the log said no longer counts.

    Never longer than ``LOG_SILENCE_TIMEOUT``, after which the follower re-attaches anyway.
    """
    return min(LOG_STALE_AFTER, config.log_silence_timeout)


def log_is_fresh(run: Run, now: float, config: Config) -> bool:
    """The log brought a line recently enough for its signals to count."""
    return run.log_seen_at is not None and now - run.log_seen_at <= log_stale_after(config)


def _top(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _rises(value: int, top: int | None) -> bool:
    """*value* is above every value seen so far (or the first one)."""
    return top is None or value > top


def _with_node_sample(state: NodeState, sample: NodeSample, now: float) -> NodeState:
    """A node-channel sample: its values, and whether best or finalized rose with it."""
    run = state.run
    changes: dict[str, Any] = {"node": sample, "node_seen_at": now, "node_error": None}
    if sample.best is not None and _rises(sample.best, run.highest_best):
        changes.update(highest_best=sample.best, best_advanced_at=now, heads_since_advance=None)
    if sample.finalized is not None and _rises(sample.finalized, run.highest_finalized):
        changes.update(
            highest_finalized=sample.finalized,
            finalized_advanced_at=now,
            reference_finalized_since_advance=None,
        )
    if sample.genesis is not None and run.genesis is None:
        changes["genesis"] = sample.genesis
    return replace(state, run=replace(run, **changes))


def _with_reference_finalized(state: NodeState, number: int, now: float) -> NodeState:
    """The reference's finalized block: kept, and its rise since the node's last advance."""
    run = state.run
    if run.highest_finalized is not None:
        seen = run.reference_finalized_since_advance
        seen = (number, number) if seen is None else (seen[0], max(seen[1], number))
        run = replace(run, reference_finalized_since_advance=seen)
    return replace(state, run=run, head_finalized=number, head_finalized_at=now)


def node_stale_after(config: Config) -> float:
    """Seconds after which the node channel's latest sample no longer counts: two polls."""
    return 2 * config.rpc_poll_interval


def node_is_fresh(run: Run, now: float, config: Config) -> bool:
    """The node channel answered recently enough for its values to count."""
    return run.node_seen_at is not None and now - run.node_seen_at < node_stale_after(config)


def signals_of(run: Run, now: float, config: Config) -> Signals:
    """The run's signals at *now*, each from the freshest channel that gives it.

    The log's count once it is live (its tail read), readable and fresh; the node channel's
    while its latest sample is fresh. See :mod:`azwatch.channels` for how they combine.
    """
    log_at = run.log_seen_at
    log = (
        _log_signals(run, now, log_at)
        if log_at is not None
        and run.log_live
        and run.log_unreadable is None
        and log_is_fresh(run, now, config)
        else _UNKNOWN
    )
    node_at = run.node_seen_at
    if node_at is None or not node_is_fresh(run, now, config):
        return log  # one channel at most: nothing to combine (no NODE_RPC_URL, the usual case)
    node, by_node = run.node, Channel.NODE
    return Signals(
        best=highest((log.best, _reading(node.best, by_node, node_at))),
        finalized=highest((log.finalized, _reading(node.finalized, by_node, node_at))),
        # A fresh log restates its peer count every 20 s: as the primary channel, its count
        # stands as of its latest line.
        peers=latest((log.peers, _reading(node.peers, by_node, node_at))),
        major_sync=latest((log.major_sync, _reading(node.syncing, by_node, node_at))),
        ready=_reading(node.ready, by_node, node_at),
        producing=log.producing,
        session=log.session,
    )


#: No channel gives anything fresh.
_UNKNOWN = Signals()


def _log_signals(run: Run, now: float, log_at: float) -> Signals:
    """What a fresh, live log tells, as of its latest line (the session as of its start)."""
    by_log = Channel.LOG
    return Signals(
        best=_reading(run.best, by_log, log_at),
        finalized=_reading(run.finalized, by_log, log_at),
        peers=_reading(run.peers, by_log, log_at),
        major_sync=_reading(run.major_sync, by_log, log_at),
        producing=_reading(run.producing(now), by_log, log_at),
        session=_reading(run.session, by_log, run.session_started_at),
    )


def _reading(value: _V | None, channel: Channel, at: float | None) -> Reading[_V] | None:
    """*channel*'s reading of *value* as of *at*; ``None`` when either is not known."""
    return None if value is None or at is None else Reading(value, channel, at)
