"""A read-only snapshot of what the watcher sees: frozen values, built on request.

``/status``, ``/healthz`` and ``/metrics`` show a :class:`Snapshot` and know nothing of the
watcher that built it, so each has tests of its own with hand-built snapshots. The watcher
builds one with :func:`take` from its supervisor and the state of its followers and poller;
nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from azwatch.config import Config
from azwatch.crashloop import exit_words
from azwatch.history import ChartPoint
from azwatch.policy import Restart, cooldown_anchor, effective_cooldown
from azwatch.progress import format_duration
from azwatch.state import signals_of
from azwatch.supervisor import Book, Supervisor


@dataclass(frozen=True, slots=True)
class LogView:
    """What a log follower is doing."""

    attached: bool = False
    #: Why the follower is not attached (or, for "docker" and "silent", not seeing lines):
    #: "stopped", "missing", "docker", "driver", "silent"; or None.
    waiting: str | None = None
    detail: str = "starting"
    lines: int = 0
    lines_cut: int = 0
    attaches: int = 0
    silences: int = 0
    last_line_age: float | None = None
    attached_age: float | None = None
    #: Seconds since no container has the watched name (``None``: one has).
    missing_age: float | None = None


#: A watched name that matches no container is a health problem after this long (or two
#: ``CHECK_INTERVAL``, if longer): a misspelled ``CONTAINER_NAME`` must not stay green.
MISSING_GRACE = 60.0


def missing_grace(config: Config) -> float:
    """How long a watched name may match no container before ``/healthz`` says so."""
    return max(MISSING_GRACE, 2 * config.check_interval)


@dataclass(frozen=True, slots=True)
class DecisionView:
    """The latest decision about a container."""

    #: "restart", "hold", or "paused" (a restart the operator's pause did not carry out).
    action: str
    #: The rule of a restart, or the reason of a hold.
    why: str
    detail: str
    age: float | None
    catch_up_rate: float | None


@dataclass(frozen=True, slots=True)
class RestartView:
    """One of the watcher's latest restarts (or dry-run decisions) and whether it helped."""

    #: Unix time of the decision.
    time: float
    rule: str
    detail: str
    dry_run: bool
    #: ``yes…``, ``not yet…``, ``no…``, ``unknown…``, ``restart failed: …``; ``None``: not
    #: judged yet.
    verdict: str | None = None


@dataclass(frozen=True, slots=True)
class PauseView:
    """A maintenance pause in force (Unix times)."""

    since: float
    until: float
    #: Seconds until it ends by itself.
    left: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SignalView:
    """One signal the rules read: its value, the channel that gave it and how old it is.

    ``channel`` and ``age`` are ``None`` when no channel gives it fresh (``value`` is then
    the log's last word, or ``None``).
    """

    name: str
    value: int | bool | None
    channel: str | None
    age: float | None


@dataclass(frozen=True, slots=True)
class NodeChannelView:
    """The node channel of one container (its own RPC and metrics), when one is set."""

    rpc: bool
    metrics: bool
    #: Seconds since the latest sample; why the latest poll gave none.
    last_sample_age: float | None
    error: str | None
    #: Whether decisions now run on it alone (log-less mode).
    log_less: bool
    #: Failed polls so far: (interface, kind, count).
    errors: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerView:
    """One watched container."""

    name: str
    running: bool
    status: str
    run_id: str | None
    run_age: float
    log_live: bool
    best: int | None
    best_advanced_age: float | None
    finalized: int | None
    major_sync: bool
    producing: bool
    session: int | None
    peers: int | None
    fatal: str | None
    head: int | None
    lag: int | None
    restarts: int
    restarts_by_rule: tuple[tuple[str, int], ...]
    failed_restarts: int
    unhelped_restarts: int
    restart_in_flight: bool
    effective_cooldown: float
    #: Seconds until the cooldown ends (0 once it has).
    cooldown_left: float
    #: Unix time of the watcher's latest restart (or dry-run decision).
    last_restart_time: float | None
    decision: DecisionView | None
    log: LogView
    #: The node's chain (short genesis hash), and reference endpoints serving another one.
    genesis: str | None = None
    wrong_chain: tuple[str, ...] = ()
    #: Best, head and lag at each head poll of the last hours, oldest first; Unix times.
    history: tuple[ChartPoint, ...] = ()
    #: The latest restarts, oldest first.
    recent_restarts: tuple[RestartView, ...] = ()
    #: The operator's maintenance pause, while it holds.
    pause: PauseView | None = None
    #: Each signal with the channel that gave it (``/status`` "signals").
    signals: tuple[SignalView, ...] = ()
    #: The node channel, when ``NODE_RPC_URL`` or ``NODE_METRICS_URL`` is set (or it told).
    node: NodeChannelView | None = None
    #: The container keeps exiting by itself (azwatch.crashloop): no restart by azwatch.
    crash_loop: bool = False
    #: Exits by itself seen so far, and the latest one in words (``None``: none yet).
    crashes: int = 0
    last_exit: str | None = None

    @property
    def paused(self) -> bool:
        return self.pause is not None


@dataclass(frozen=True, slots=True)
class EndpointProblem:
    """A reference endpoint's failure in the latest poll round (no URL, no secrets)."""

    endpoint: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class HeadView:
    """The reference endpoints."""

    last_poll_age: float | None
    last_ok_age: float | None
    failures: tuple[EndpointProblem, ...] = ()
    #: Failed polls so far: (endpoint, kind, count).
    errors: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the endpoint and the metrics show, at one moment."""

    #: Unix time when it was taken.
    time: float
    dry_run: bool
    head: HeadView
    containers: tuple[ContainerView, ...]
    #: Why the watcher is not working right now (empty: it is).
    problems: tuple[str, ...]

    @property
    def healthy(self) -> bool:
        return not self.problems

    def container(self, name: str) -> ContainerView | None:
        return next((view for view in self.containers if view.name == name), None)


def take(
    supervisor: Supervisor,
    *,
    now: float,
    wall: float,
    logs: Mapping[str, LogView],
    head: HeadView,
    events_problem: str | None = None,
    node_errors: Mapping[str, tuple[tuple[str, str, int], ...]] | None = None,
    discover_problem: str | None = None,
) -> Snapshot:
    """The snapshot of *supervisor* at monotonic *now* (Unix time *wall*).

    *logs* gives each follower's view, *head* the poller's, *events_problem* why Docker's
    event stream is down (``None``: it is not), *discover_problem* why the list of labelled
    containers failed (``None``: it did not), *node_errors* each node channel's failed polls so
    far.
    """
    config = supervisor.config
    errors = node_errors or {}
    containers = tuple(
        _container(book, now, wall, logs.get(name, LogView()), errors.get(name, ()))
        for name, book in sorted(supervisor.books.items())
    )
    problems = health_problems(
        config,
        containers,
        head,
        last_evaluation_age=age(now, supervisor.last_evaluation_at),
        events_problem=events_problem,
        discover_problem=discover_problem,
    )
    return Snapshot(
        time=wall,
        dry_run=config.dry_run,
        head=head,
        containers=containers,
        problems=tuple(problems),
    )


def _container(
    book: Book,
    now: float,
    wall: float,
    log: LogView,
    node_errors: tuple[tuple[str, str, int], ...] = (),
) -> ContainerView:
    state, run, decision = book.state, book.state.run, book.decision
    signals = signals_of(run, now, book.config)
    fallback: dict[str, int | bool | None] = {
        "best": run.best,
        "finalized": run.finalized,
        "peers": run.peers,
        "major_sync": run.major_sync,
        "ready": None,
        "producing": run.producing(now),
        "session": run.session,
    }
    signal_views = tuple(
        SignalView(name, fallback[name], None, None)
        if reading is None
        else SignalView(name, reading.value, str(reading.channel), age(now, reading.at))
        for name, reading in signals.named()
    )
    # Each signal's value across channels (the log's last word where none is fresh).
    shown = {view.name: view.value for view in signal_views}
    best = shown["best"] if isinstance(shown["best"], int) else None
    finalized = shown["finalized"]
    peers = shown["peers"]
    config = book.config
    node: NodeChannelView | None = None
    if config.node_rpc_url or config.node_metrics_url or run.node_seen_at is not None:
        node = NodeChannelView(
            rpc=bool(config.node_rpc_url),
            metrics=bool(config.node_metrics_url),
            last_sample_age=age(now, run.node_seen_at),
            error=run.node_error,
            log_less=signals.log_less,
            errors=node_errors,
        )
    view: DecisionView | None = None
    if decision is not None:
        is_restart = isinstance(decision, Restart)
        view = DecisionView(
            action="restart" if is_restart else "hold",
            why=str(decision.rule) if isinstance(decision, Restart) else str(decision.reason),
            detail=decision.detail,
            age=age(now, book.decided_at),
            catch_up_rate=_finite(decision.facts.catch_up_rate),
        )
        if is_restart and book.paused_restart_at == book.decided_at:
            view = replace(view, action="paused")  # the pause made it a non-restart
    cooldown = effective_cooldown(state, book.config)
    restarted = book.last_restart_at
    return ContainerView(
        name=book.name,
        running=state.running,
        status=state.status,
        run_id=run.run_id,
        run_age=max(0.0, now - run.started_at),
        log_live=run.log_live,
        best=best,
        best_advanced_age=age(now, run.best_advanced_at),
        finalized=finalized if isinstance(finalized, int) else None,
        major_sync=bool(shown["major_sync"]),
        producing=run.producing(now),
        session=run.session,
        peers=peers if isinstance(peers, int) else None,
        fatal=run.fatal,
        genesis=run.genesis,
        wrong_chain=state.wrong_chain,
        head=state.head,
        lag=None if state.head is None or best is None else state.head - best,
        restarts=state.restarts,
        restarts_by_rule=tuple(sorted(book.restarts_by_rule.items())),
        failed_restarts=book.failed_restarts,
        unhelped_restarts=state.unhelped_restarts,
        restart_in_flight=state.restart_in_flight,
        effective_cooldown=cooldown,
        cooldown_left=max(0.0, cooldown_anchor(state) + cooldown - now),
        last_restart_time=None if restarted is None else wall - (now - restarted),
        decision=view,
        log=log,
        history=_history(book, now, wall),
        recent_restarts=tuple(
            RestartView(wall - (now - r.at), r.rule, r.detail, r.dry_run, r.verdict)
            for r in book.restart_log.records()
        ),
        pause=_pause(book, now, wall),
        signals=signal_views,
        node=node,
        crash_loop=book.crashes.loop is not None,
        crashes=book.crashes.total,
        last_exit=_last_exit(book),
    )


def _last_exit(book: Book) -> str | None:
    last = book.crashes.last
    if last is None:
        return None
    fatal = f"; last fatal line: {last.fatal}" if last.fatal else ""
    return exit_words(last.code) + fatal


def _history(book: Book, now: float, wall: float) -> tuple[ChartPoint, ...]:
    if book.chart is None:
        return ()
    shift = wall - now
    return tuple(ChartPoint(p.at + shift, p.best, p.head, p.lag) for p in book.chart)


def _pause(book: Book, now: float, wall: float) -> PauseView | None:
    pause = book.pause
    if pause is None or now >= pause.until:
        return None
    shift = wall - now
    return PauseView(pause.since + shift, pause.until + shift, pause.until - now, pause.reason)


def health_problems(
    config: Config,
    containers: tuple[ContainerView, ...],
    head: HeadView,
    *,
    last_evaluation_age: float | None,
    events_problem: str | None = None,
    discover_problem: str | None = None,
) -> list[str]:
    """Why the watcher is not working (empty: it is).

    An unhealthy *node* is not an unhealthy watcher: a stalled node watched by a working
    azwatch is healthy here; the problems are a log stream that brings nothing from a
    running container, a Docker Engine that cannot be reached (or whose event stream does
    not open, or, in label mode, that does not list the labelled containers), a poller or a
    decision task that stopped. A log that cannot be read or stays silent is no problem while
    decisions run on the node channel (log-less mode).
    """
    problems: list[str] = []
    if last_evaluation_age is None or last_evaluation_age > 2 * config.check_interval + 5:
        problems.append("the decision task has not evaluated recently")
    polled = head.last_poll_age
    if polled is None or polled > 2 * config.rpc_poll_interval + config.rpc_timeout + 5:
        problems.append("the head poller has not polled recently")
    if events_problem is not None:
        problems.append(f"Docker events: {events_problem}")
    if discover_problem is not None:
        problems.append(discover_problem)
    for view in containers:
        if view.node is not None and view.node.log_less:
            continue  # deciding from the node channel: a log that brings nothing is no outage
        problem = _follow_problem(view, config.log_silence_timeout)
        if problem is not None:
            problems.append(f"{view.name}: {problem}")
        missing = view.log.missing_age
        # In label mode a container is watched because it exists; only a name can be wrong.
        named = view.name in config.container_names
        if named and missing is not None and missing > missing_grace(config):
            problems.append(
                f"{view.name}: no container has this name for {format_duration(missing)} "
                "(is CONTAINER_NAME right?)"
            )
    return problems


def _follow_problem(view: ContainerView, silence: float) -> str | None:
    log = view.log
    if view.restart_in_flight:
        return None  # the node is being restarted: silence is expected
    if log.waiting in ("stopped", "missing"):
        return None  # waiting for a container the operator stopped
    if log.waiting is not None:
        return log.detail  # Docker failed or hangs, or the log fell silent
    # A live aleph-node prints at least every 20 s; LOG_SILENCE_TIMEOUT without a line from
    # a running container means the stream (or the node, or the daemon) is stuck, attached
    # or between attaches.
    quiet = log.last_line_age if log.last_line_age is not None else log.attached_age
    if quiet is not None and quiet > silence:
        return f"no log line for {format_duration(quiet)} from a running container"
    return None


def document(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as the JSON of ``/status``."""
    head = snapshot.head
    return {
        "time": snapshot.time,
        "dry_run": snapshot.dry_run,
        "head": {
            "last_poll_age": head.last_poll_age,
            "last_ok_age": head.last_ok_age,
            "failures": [
                {"endpoint": f.endpoint, "kind": f.kind, "detail": f.detail} for f in head.failures
            ],
        },
        "containers": {view.name: _container_document(view) for view in snapshot.containers},
        "healthy": snapshot.healthy,
        "problems": list(snapshot.problems),
    }


def _container_document(view: ContainerView) -> dict[str, Any]:
    decision = view.decision
    last: dict[str, Any] | None = None
    if decision is not None:
        last = {
            "action": decision.action,
            "rule" if decision.action in ("restart", "paused") else "reason": decision.why,
            "detail": decision.detail,
            "age": decision.age,
            "catch_up_rate": decision.catch_up_rate,
        }
    log = view.log
    return {
        "running": view.running,
        "status": view.status,
        "run": {
            "id": view.run_id,
            "age": view.run_age,
            "log_live": view.log_live,
            "best": view.best,
            "best_advanced_age": view.best_advanced_age,
            "finalized": view.finalized,
            "major_sync": view.major_sync,
            "producing": view.producing,
            "session": view.session,
            "peers": view.peers,
            "fatal": view.fatal,
            "genesis": view.genesis,
        },
        "signals": {
            signal.name: {"value": signal.value, "channel": signal.channel, "age": signal.age}
            for signal in view.signals
        },
        "node_channel": None
        if view.node is None
        else {
            "rpc": view.node.rpc,
            "metrics": view.node.metrics,
            "last_sample_age": view.node.last_sample_age,
            "error": view.node.error,
            "log_less": view.node.log_less,
            "errors": [
                {"interface": interface, "kind": kind, "count": count}
                for interface, kind, count in view.node.errors
            ],
        },
        "references_on_another_chain": list(view.wrong_chain),
        "crash_loop": view.crash_loop,
        "crashes": view.crashes,
        "last_exit": view.last_exit,
        "head": view.head,
        "lag": view.lag,
        "restarts": view.restarts,
        "restarts_by_rule": dict(view.restarts_by_rule),
        "failed_restarts": view.failed_restarts,
        "unhelped_restarts": view.unhelped_restarts,
        "effective_cooldown": view.effective_cooldown,
        "cooldown_left": round(view.cooldown_left, 3),
        "last_restart_time": view.last_restart_time,
        "decision": last,
        "paused": view.paused,
        "pause": None
        if view.pause is None
        else {
            "since": view.pause.since,
            "until": view.pause.until,
            "left": round(view.pause.left, 3),
            "reason": view.pause.reason,
        },
        "recent_restarts": [
            {
                "time": r.time,
                "rule": r.rule,
                "detail": r.detail,
                "dry_run": r.dry_run,
                "verdict": r.verdict,
            }
            for r in view.recent_restarts
        ],
        "log": {
            "attached": log.attached,
            "waiting": log.waiting,
            "detail": log.detail,
            "lines": log.lines,
            "lines_cut": log.lines_cut,
            "attaches": log.attaches,
            "silences": log.silences,
            "last_line_age": log.last_line_age,
            "missing_age": log.missing_age,
        },
    }


def age(now: float, then: float | None) -> float | None:
    """Seconds from *then* to *now* (never negative), rounded to a millisecond; ``None`` stays."""
    return None if then is None else round(max(0.0, now - then), 3)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
