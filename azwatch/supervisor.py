"""The supervisor: azwatch's judgement of every watched container, pure.

The shell hands it what happened (a :data:`Message`) with the moment it happened (``now``,
monotonic seconds), and carries out what it answers: a list of
:mod:`~azwatch.effects` (restart this container for these facts, send this notice, write this
log record). :meth:`Supervisor.next_wake` says when to call :meth:`Supervisor.tick` if nothing
else happens. No I/O, no clock, no asyncio: the live watcher drives it in real time and
``azwatch replay`` in virtual time, so a replay is what the live watcher would have done.

Around :func:`azwatch.policy.decide` it keeps the bookkeeping an operator reads: whether a
restart helped (judged by what its rule was about), a lost reference and its return, a
container that stays down, the back-off reaching its cap, fatal lines, a container's exits
by itself and the crash loop they make (:mod:`azwatch.crashloop`: no restart while it
lasts), a misconfigured container (its entrypoint's errors), the transitions of
sync mode and block production (once the log is live: a run's tail is history, summarised
once when the follower reaches the present), label overrides, and the summary line of every
``CHECK_INTERVAL``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from azwatch.config import Config, with_label_overrides
from azwatch.control import PAUSE_MAX
from azwatch.crashloop import (
    CRASH_LOOP_WINDOW,
    Crashes,
    Exit,
    count_exit,
    end_loop,
    exit_words,
    loop_ends_at,
)
from azwatch.effects import Effect, LogRecord, Notice, Reported, RestartContainer, SendNotice
from azwatch.events import (
    ContainerExited,
    ContainerStatus,
    EntrypointError,
    Event,
    FatalLine,
    HeadSample,
    HeadUnavailable,
    LogCaughtUp,
    NodeSample,
    NodeUnavailable,
    ReferenceFinalized,
    RestartFinished,
    RestartIssued,
    RunStarted,
)
from azwatch.history import Chart, ChartPoint, RestartLog, RestartRecord
from azwatch.policy import (
    Decision,
    Facts,
    Hold,
    HoldReason,
    Restart,
    Rule,
    decide,
    effective_cooldown,
    head_is_fresh,
)
from azwatch.progress import (
    Checkpoint,
    describe,
    format_block,
    format_duration,
    format_value,
    sync_progress,
)
from azwatch.state import NodeState, Run, apply, apply_all, initial_state, signals_of

#: How long every reference may fail before it is reported as a lost reference.
RPC_LOST_AFTER = 180.0
#: How long a container must stay down before the operator is notified.
DOWN_NOTICE_AFTER = 30.0
#: How long a run may go without naming its chain (its first network status report comes
#: about 20 s after start) before that is said.
CHAIN_UNKNOWN_AFTER = 180.0
#: Latest runs kept, so an exit reported late is put down to the run it ended.
RUNS_KEPT = 4

# --- messages: what the shell reports -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerEvents:
    """Events about one container: parsed log lines, Docker's reports, a caught-up log."""

    name: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class LabelsSeen:
    """The container's labels, from an inspect: they may carry per-container settings."""

    name: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class HeadPolled:
    """One poll round of the reference endpoints ended with this sample, or without one."""

    event: HeadSample | HeadUnavailable


@dataclass(frozen=True, slots=True)
class NodePolled:
    """One poll of container *name*'s node channel (its own RPC or metrics) ended so."""

    name: str
    event: NodeSample | NodeUnavailable


@dataclass(frozen=True, slots=True)
class FinalityPolled:
    """The reference endpoints told their finalized block (every few head polls)."""

    event: ReferenceFinalized


@dataclass(frozen=True, slots=True)
class RestartDone:
    """The restart of *name* asked for by a :class:`~azwatch.effects.RestartContainer` ended."""

    name: str
    result: RestartFinished


@dataclass(frozen=True, slots=True)
class Pause:
    """The operator pauses restarts of *name* until *until* (the supervisor's clock).

    While paused the rules still decide and a restart they name is logged ("paused: would
    restart …") and reported, never carried out; it consumes no cooldown. A new pause
    replaces the old one; the pause ends by itself at *until* (at most ``PAUSE_MAX`` ahead).
    """

    name: str
    until: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Resume:
    """The operator ends the pause of *name* now."""

    name: str


Message = (
    ContainerEvents
    | LabelsSeen
    | HeadPolled
    | NodePolled
    | FinalityPolled
    | RestartDone
    | Pause
    | Resume
)

# --- bookkeeping --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingVerdict:
    """A restart whose effect is judged (and notified) at the first check after ``due``."""

    decision: Restart
    due: float
    dry_run: bool
    #: Until when an "unknown" (the new run's log still read, no fresh head) waits for a
    #: later check rather than being the verdict.
    patience: float = 0.0


#: Checks a verdict may wait for the facts to judge it by.
VERDICT_PATIENCE_CHECKS = 5


@dataclass(frozen=True, slots=True)
class ActivePause:
    """A maintenance pause in force: since when, until when, and the operator's words."""

    since: float
    until: float
    reason: str


@dataclass
class Book:
    """What the supervisor keeps about one container (mutable; the supervisor's alone)."""

    name: str
    state: NodeState
    #: The settings for this container: the watcher's, with its label overrides applied.
    config: Config
    next_summary: float
    labels: tuple[tuple[str, str], ...] | None = None
    #: Docker has reported on the container (a run or a status): until then, nothing is
    #: decided, so a node that has run for hours is not held for a cooldown "since now".
    known: bool = False
    dirty: bool = True
    decision: Decision | None = None
    decided_at: float | None = None
    wake_at: float | None = None
    checkpoint: Checkpoint | None = None
    verdict: PendingVerdict | None = None
    capped_notified: bool = False
    restarts_by_rule: dict[str, int] = field(default_factory=dict)
    failed_restarts: int = 0
    #: The latest restart failure's detail and how many in a row failed with it (a refusal
    #: that stays, e.g. a proxy's 403, is said in full once).
    failing: tuple[str, int] | None = None
    last_restart_at: float | None = None
    #: Since when the container is down, and whether the operator was told.
    down_since: float | None = None
    down_notified: bool = False
    #: The run whose caught-up log was summarised (so it is summarised once).
    attached_run: tuple[str | None, float] | None = None
    # What was last reported, so each transition is logged once.
    shown_running: bool | None = None
    shown_major_sync: bool | None = None
    shown_producing: bool | None = None
    shown_reason: HoldReason | None = None
    shown_fatal: str | None = None
    #: Reference endpoints said to serve another chain than this node's.
    shown_wrong_chain: frozenset[str] = frozenset()
    #: The run whose unknown chain was said.
    shown_chain_unknown: tuple[str | None, float] | None = None
    #: Which channel the decisions last ran on, as said: "log", "node" (log-less) or None.
    shown_channel: str | None = None
    #: The container's exits by itself, and the crash loop they make (azwatch.crashloop).
    crashes: Crashes = field(default_factory=Crashes)
    #: The latest runs, oldest first (with what their log said).
    runs: tuple[Run, ...] = ()
    #: Runs whose entrypoint error was reported (a misconfigured container, said once a run).
    shown_misconfigured: tuple[str, ...] = ()
    # --- what the status page shows, and the maintenance pause (in memory only) ---
    #: Best, head and lag at each head poll (bounded; made at the first poll).
    chart: Chart | None = None
    #: The latest restarts with their rule and verdict (bounded).
    restart_log: RestartLog = field(default_factory=RestartLog)
    pause: ActivePause | None = None
    #: When the pause last turned a restart into a non-restart (``decided_at`` then).
    paused_restart_at: float | None = None
    #: The rule and time of the latest "paused: would restart" line.
    paused_said: tuple[str, float] | None = None


@dataclass
class ReferenceBook:
    """The reference endpoints as the supervisor saw them, shared by every container."""

    last_poll_at: float | None = None
    last_ok_at: float | None = None
    lost_since: float | None = None
    lost_reported: bool = False
    last_event: HeadSample | HeadUnavailable | None = None


class Supervisor:
    """Decides for every watched container; see the module's docstring.

    The shell may read :attr:`books`, :attr:`reference` and :attr:`last_evaluation_at` (to
    build a snapshot) and must change nothing.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.books: dict[str, Book] = {}
        self.reference = ReferenceBook()
        self.last_evaluation_at: float | None = None
        self._out: list[Effect] = []

    # --- the shell's calls --------------------------------------------------------------

    def watch(self, name: str, now: float) -> None:
        """Start keeping a book for container *name* (once)."""
        if name not in self.books:
            self.books[name] = Book(
                name=name,
                state=initial_state(now),
                config=self.config,
                next_summary=now + self.config.check_interval,
            )

    def forget(self, name: str) -> list[Effect]:
        """Stop watching *name* (label mode: the container was removed)."""
        if self.books.pop(name, None) is not None:
            self._log(logging.INFO, name, "forgotten", "removed; no longer watched")
        return self._effects()

    def handle(self, message: Message, now: float) -> list[Effect]:
        """Take in *message*, which happened at *now*; decisions wait for :meth:`tick`."""
        match message:
            case HeadPolled(event):
                self._on_head(event, now)
            case ContainerEvents(name, events):
                book = self.books.get(name)
                if book is not None:
                    self._on_events(book, events, now)
            case NodePolled(name, event):
                book = self.books.get(name)
                if book is not None:
                    book.state = apply(book.state, event, now, book.config)
                    book.dirty = True
            case FinalityPolled(event):
                for book in self.books.values():
                    book.state = apply(book.state, event, now, book.config)
                    book.dirty = True
            case RestartDone(name, result):
                book = self.books.get(name)
                if book is not None:
                    self._on_restart_done(book, result, now)
            case LabelsSeen(name, labels):
                book = self.books.get(name)
                if book is not None and labels != book.labels:
                    self._on_labels(book, labels)
            case Pause() | Resume():
                self._on_control(message, now)
        return self._effects()

    def tick(self, now: float) -> list[Effect]:
        """Decide for every container whose state changed or whose wake-up is due."""
        self.last_evaluation_at = now
        self._end_pauses(now)
        for book in list(self.books.values()):
            summary_due = now >= book.next_summary
            due = book.wake_at is not None and now >= book.wake_at
            reported = False
            if book.known and (book.dirty or due or summary_due):
                reported = self._evaluate(book, now)
            elif book.known:
                self._log_transitions(book, now)  # a down notice may be due
            if summary_due:
                self._summary(book, now, report=not reported)
                book.next_summary = now + self.config.check_interval
        return self._effects()

    def next_wake(self) -> float:
        """When :meth:`tick` has work to do without a new message (``-inf``: now)."""
        wake = math.inf
        for book in self.books.values():
            if book.dirty and book.known:
                return -math.inf
            wake = min(wake, book.next_summary)
            if book.wake_at is not None:
                wake = min(wake, book.wake_at)
            if book.down_since is not None and not book.down_notified:
                wake = min(wake, book.down_since + DOWN_NOTICE_AFTER)
            if book.pause is not None:
                wake = min(wake, book.pause.until)
        return wake

    # --- messages -----------------------------------------------------------------------

    def _on_events(self, book: Book, events: tuple[Event, ...], now: float) -> None:
        # Lines read together happened at one instant: applied as one.
        before = book.state
        book.state = apply_all(book.state, events, now, book.config)
        book.dirty = True
        self._keep_run(book, before.run)
        self._keep_run(book, book.state.run)
        for event in events:
            if isinstance(event, RunStarted | ContainerStatus):
                book.known = True
            elif isinstance(event, FatalLine):
                self._fatal(book, event)
            elif isinstance(event, EntrypointError):
                self._misconfigured(book, event, _run_key(book.state.run))
            elif isinstance(event, ContainerExited):
                self._on_exit(book, event, now, in_flight=before.restart_in_flight)
            elif isinstance(event, LogCaughtUp):
                self._on_caught_up(book, now)

    def _fatal(self, book: Book, event: FatalLine) -> None:
        """A fatal line of the node: said once (until another one comes)."""
        if event.text == book.shown_fatal:
            return
        book.shown_fatal = event.text
        self._log(logging.ERROR, book.name, "node_fatal", f"node reported: {event.text}")
        self._notify(
            f"fatal:{book.name}",
            f"azwatch: {book.name} reported a fatal error",
            event.text,
            "failure",
        )

    def _misconfigured(self, book: Book, event: EntrypointError, run_key: str) -> None:
        """The image's entrypoint stopped before the node started: said once per run."""
        if run_key in book.shown_misconfigured:
            return
        book.shown_misconfigured = (*book.shown_misconfigured, run_key)[-RUNS_KEPT:]
        text = (
            f"misconfigured container: {event.text} (the image's entrypoint stopped before "
            f"starting the node: {event.variable} is not set). Restarting never fixes this: "
            "set it in the container's environment"
        )
        self._log(logging.ERROR, book.name, "misconfigured", text, variable=event.variable)
        self._notify(
            f"misconfigured:{book.name}:{event.variable}",
            f"azwatch: {book.name} is misconfigured",
            text,
            "failure",
        )

    def _keep_run(self, book: Book, run: Run) -> None:
        """Remember *run* (its latest form) among the latest runs."""
        runs = book.runs
        if runs and runs[-1] is run:
            return  # already the latest: the usual case, a batch of lines of the same run
        if runs and _run_key(runs[-1]) == _run_key(run):
            book.runs = (*runs[:-1], run)
            return
        runs = tuple(r for r in runs if _run_key(r) != _run_key(run))
        book.runs = (*runs, run)[-RUNS_KEPT:]

    def _run_at(self, book: Book, run_id: str | None, at: float | None) -> Run | None:
        """The run *run_id*, else the latest run that had started by *at*."""
        for run in reversed(book.runs):
            if run_id is not None and run.run_id == run_id:
                return run
            if run_id is None and (at is None or run.started_at <= at):
                return run
        return None

    def _on_exit(self, book: Book, event: ContainerExited, now: float, *, in_flight: bool) -> None:
        """A run ended by itself: count it once; three within the window make a crash loop."""
        if in_flight or book.state.restart_in_flight:
            return  # the exit azwatch's own restart causes
        run = self._run_at(book, event.run_id, event.seen_at)
        run_id = event.run_id
        if run_id is None and run is not None:
            run_id = run.run_id
        fatal = run.fatal if run is not None else None
        for word in event.last_words:
            fatal = word.text
            if isinstance(word, EntrypointError):
                self._misconfigured(book, word, run_id or _run_key(book.state.run))
            else:
                self._fatal(book, word)
        at = now if event.seen_at is None else min(event.seen_at, now)
        exit = Exit(at, event.exit_code, run_id, fatal)
        crashes, new = count_exit(book.crashes, exit)
        if not new:
            book.crashes = crashes  # it may have told the fatal line the first report lacked
            return
        was_looping, book.crashes = book.crashes.loop is not None, crashes
        window = format_duration(CRASH_LOOP_WINDOW)
        self._log(
            logging.WARNING,
            book.name,
            "container_exited",
            f"the container exited by itself: {exit_words(exit.code)}; "
            f"{len(crashes.recent)} exit(s) in the last {window}"
            + (f"; last fatal line: {fatal}" if fatal else ""),
            exit_code=exit.code,
            exits_in_window=len(crashes.recent),
            fatal=fatal,
        )
        if crashes.loop is None or was_looping:
            return
        text = (
            f"crash loop: {len(crashes.recent)} exits within {window}, the last with "
            f"{exit_words(exit.code)}; last fatal line: {fatal or 'none seen'}. Docker's "
            "restart policy starts it again and restarting more never helps: azwatch "
            "restarts nothing until it has run for a full cooldown"
        )
        self._log(
            logging.ERROR,
            book.name,
            "crash_loop",
            text,
            exit_code=exit.code,
            exits_in_window=len(crashes.recent),
            fatal=fatal,
        )
        self._notify(
            f"crash_loop:{book.name}", f"azwatch: {book.name} is crash looping", text, "failure"
        )

    def _crash_loop_hold(self, book: Book, decision: Decision, now: float) -> Decision:
        """In a crash loop no restart is decided, until a run has lasted a full cooldown."""
        crashes, state = book.crashes, book.state
        loop = crashes.loop
        if loop is None or state.restart_in_flight:
            return decision
        cooldown = effective_cooldown(state, book.config)
        ends = loop_ends_at(crashes, state.run.started_at, cooldown)
        assert ends is not None
        if state.running and now >= ends:
            book.crashes = end_loop(crashes)
            text = f"crash loop over: running for {format_duration(cooldown)} since the last exit"
            self._log(logging.INFO, book.name, "crash_loop_over", text)
            self._notify(f"crash_loop_over:{book.name}", f"azwatch: {book.name} runs again", text)
            return decision
        last = loop.last
        detail = (
            f"the container keeps exiting by itself ({len(crashes.recent)} exits within "
            f"{format_duration(CRASH_LOOP_WINDOW)}, the last with {exit_words(last.code)}; "
            f"last fatal line: {last.fatal or 'none seen'}): restarting never helps; no "
            f"restart until it has run for {format_duration(cooldown)}"
        )
        return Hold(HoldReason.CRASH_LOOP, detail, decision.facts, ends if state.running else None)

    def _on_caught_up(self, book: Book, now: float) -> None:
        """The tail is read: say once what it showed, instead of replaying it as news."""
        state, run = book.state, book.state.run
        key = (run.run_id, run.started_at)
        if book.attached_run == key:
            return
        book.attached_run = key
        producing = run.producing(now)
        book.shown_major_sync, book.shown_producing = run.major_sync, producing
        self._log(
            logging.INFO,
            book.name,
            "attached",
            f"attached: run started {format_duration(now - run.started_at)} ago, "
            f"best {format_block(run.best)}, finalized {format_block(run.finalized)}, "
            f"major sync {_on(run.major_sync)}, producing {_yes(producing)}, "
            f"session {format_value(run.session)}, peers {format_value(run.peers)}",
            best=run.best,
            finalized=run.finalized,
            major_sync=run.major_sync,
            producing=producing,
            session=run.session,
            peers=run.peers,
            run_age=now - run.started_at,
            restarts=state.restarts,
        )

    def _on_head(self, event: HeadSample | HeadUnavailable, now: float) -> None:
        reference = self.reference
        reference.last_poll_at, reference.last_event = now, event
        for book in self.books.values():
            book.state = apply(book.state, event, now, book.config)
            book.dirty = True
            if isinstance(event, HeadSample):
                self._check_chain(book, event, now)
            self._chart_point(book, event, now)
        if isinstance(event, HeadSample):
            if reference.lost_reported and reference.lost_since is not None:
                text = (
                    "reference RPC answers again after "
                    f"{format_duration(now - reference.lost_since)}"
                )
                self._log(logging.INFO, None, "rpc_recovered", text)
                self._notify("rpc", "azwatch: reference RPC recovered", text)
            reference.last_ok_at, reference.lost_since = now, None
            reference.lost_reported = False
            return
        if reference.lost_since is None:
            reference.lost_since = reference.last_ok_at if reference.last_ok_at is not None else now
        if not reference.lost_reported and now - reference.lost_since >= RPC_LOST_AFTER:
            reference.lost_reported = True
            text = (
                f"reference RPC lost for {format_duration(now - reference.lost_since)}: "
                f"{event.reason}; no restart will be decided until it answers"
            )
            self._log(logging.WARNING, None, "rpc_lost", text)
            self._notify("rpc", "azwatch: reference RPC lost", text, "warning")

    def _check_chain(self, book: Book, sample: HeadSample, now: float) -> None:
        """Say once each endpoint that serves another chain, and a chain that stays unknown."""
        state, run = book.state, book.state.run
        wrong = frozenset(state.wrong_chain)
        for answer in sample.sources:
            if answer.endpoint in wrong and answer.endpoint not in book.shown_wrong_chain:
                text = (
                    f"reference {answer.endpoint} serves another chain (genesis "
                    f"{answer.genesis}) than the node ({run.genesis}): it is not used for "
                    "this node. Check RPC_URL: is it the node's network (mainnet or testnet)?"
                )
                self._log(
                    logging.ERROR,
                    book.name,
                    "reference_wrong_chain",
                    text,
                    endpoint=answer.endpoint,
                    endpoint_genesis=answer.genesis,
                    node_genesis=run.genesis,
                )
                self._notify(
                    f"wrong_chain:{book.name}:{answer.endpoint}",
                    f"azwatch: a reference serves another chain than {book.name}",
                    text,
                    "failure",
                )
        book.shown_wrong_chain = wrong
        key = (run.run_id, run.started_at)
        if (
            run.genesis is None
            and book.config.check_chain
            and sample.sources
            and run.log_live
            and now - run.started_at >= CHAIN_UNKNOWN_AFTER
            and book.shown_chain_unknown != key
        ):
            book.shown_chain_unknown = key
            self._log(
                logging.WARNING,
                book.name,
                "node_chain_unknown",
                f"the node has not named its chain in {format_duration(now - run.started_at)} "
                "(no 'Network status report' line): azwatch holds until it does "
                "(CHECK_CHAIN=false trusts every reference instead)",
            )

    def _on_restart_done(self, book: Book, result: RestartFinished, now: float) -> None:
        book.state = apply(book.state, result, now, book.config)
        book.dirty = True
        if result.ok:
            book.failing = None
            self._log(logging.INFO, book.name, "restart_done", f"restart done: {result.detail}")
            return
        book.failed_restarts += 1
        book.restart_log.judge(f"restart failed: {result.detail}")
        verdict, book.verdict = book.verdict, None
        failing = book.failing
        if failing is not None and failing[0] == result.detail:
            book.failing = (result.detail, failing[1] + 1)
            text = f"restart failed again, as before ({failing[1] + 1} in a row): {result.detail}"
            self._log(logging.WARNING, book.name, "restart_failed_again", text)
            return
        book.failing = (result.detail, 1)
        text = f"restart failed: {result.detail}; the rules will decide again after the cooldown"
        self._log(logging.ERROR, book.name, "restart_failed", text)
        body = text if verdict is None else f"{_restart_words(verdict.decision)}\n{text}"
        self._notify(
            f"restart_failed:{book.name}",
            f"azwatch: restart of {book.name} failed",
            body,
            "failure",
        )

    def _on_labels(self, book: Book, labels: tuple[tuple[str, str], ...]) -> None:
        """Per-container settings from ``azwatch.<setting>`` labels (logged once per change)."""
        book.labels = labels
        config, applied, ignored = with_label_overrides(self.config, dict(labels))
        for line in ignored:
            self._log(logging.WARNING, book.name, "label_ignored", f"{line}; ignored")
        if config != book.config:
            book.config = config
            book.dirty = True
            if applied:
                shown = ", ".join(f"{key}={value}" for key, value in applied.items())
                self._log(
                    logging.INFO, book.name, "label_overrides", f"settings from labels: {shown}"
                )

    # --- decisions ----------------------------------------------------------------------

    def _evaluate(self, book: Book, now: float) -> bool:
        """Decide for *book*; return whether the decision was reported."""
        book.dirty = False
        decision = self._crash_loop_hold(book, decide(book.state, now, book.config), now)
        book.decision, book.decided_at = decision, now
        self._log_transitions(book, now)
        if isinstance(decision, Restart):
            if book.pause is not None and now < book.pause.until:
                self._paused_restart(book, decision, now)
                return True
            book.wake_at = None
            self._restart(book, decision, now)
            return True
        # A wake-up that is not in the future would only spin.
        book.wake_at = (
            decision.until if decision.until is not None and decision.until > now else None
        )
        if decision.reason == book.shown_reason:
            return False
        book.shown_reason = decision.reason
        level = logging.DEBUG if decision.reason is HoldReason.HEALTHY else logging.INFO
        self._log(
            level,
            book.name,
            "hold",
            f"holding: {decision.reason}: {decision.detail}",
            reason=str(decision.reason),
            **_numbers(decision.facts),
        )
        self._out.append(Reported(book.name, now, decision))
        return True

    def _restart(self, book: Book, decision: Restart, now: float) -> None:
        facts, config = decision.facts, book.config
        book.state = apply(book.state, RestartIssued(), now, config)
        book.restarts_by_rule[decision.rule] = book.restarts_by_rule.get(decision.rule, 0) + 1
        book.last_restart_at = now
        book.shown_reason = None
        record = RestartRecord(now, str(decision.rule), decision.detail, config.dry_run)
        book.restart_log.add(record)
        verb = "would restart (dry run)" if config.dry_run else "restarting"
        self._log(
            logging.WARNING,
            book.name,
            "restart",
            f"{verb}: {decision.rule}: {decision.detail} "
            f"(best {format_block(facts.best)}, head {format_block(facts.head)}, "
            f"major sync {_yes(facts.major_sync)}, producing {_yes(facts.producing)}, "
            f"session {format_value(facts.session)}, peers {format_value(facts.peers)}; "
            f"run age {format_duration(facts.run_age)}, "
            f"cooldown {format_duration(facts.cooldown)})",
            rule=str(decision.rule),
            dry_run=config.dry_run,
            **_numbers(facts),
        )
        self._out.append(Reported(book.name, now, decision))
        due = now + config.check_interval
        patience = due + VERDICT_PATIENCE_CHECKS * config.check_interval
        book.verdict = PendingVerdict(decision, due, config.dry_run, patience)
        cooldown = effective_cooldown(book.state, config)
        if cooldown >= config.max_cooldown > config.cooldown and not book.capped_notified:
            book.capped_notified = True
            text = (
                f"{book.state.unhelped_restarts} restart(s) in a row have not helped; the "
                f"cooldown is now capped at MAX_COOLDOWN={format_duration(config.max_cooldown)}. "
                "Restarts rarely fix a wrong clock, an outdated binary or a corrupt database."
            )
            self._log(logging.WARNING, book.name, "backoff_capped", text)
            self._notify(
                f"capped:{book.name}",
                f"azwatch: restarts of {book.name} are not helping",
                text,
                "warning",
            )
        self._out.append(RestartContainer(book.name, decision, config.stop_timeout, config.dry_run))

    def _summary(self, book: Book, now: float, *, report: bool) -> None:
        """The line of every ``CHECK_INTERVAL``; a due restart verdict comes first."""
        verdict = book.verdict
        if verdict is not None and now >= verdict.due and not book.state.restart_in_flight:
            helped = restart_helped(verdict.decision, book.state, now, book.config)
            # "yes" is final at once; "no", "not yet" and "unknown" may still turn into a
            # "yes" while the node catches up (or a head from before the restart ages out).
            if helped.startswith("yes") or now >= verdict.patience:
                book.verdict = None
                self._judge(book, verdict, helped)
        if book.state.unhelped_restarts == 0:
            book.capped_notified = False  # recovered: a later cap is news again
        decision = book.decision
        if report and decision is not None:
            paused = book.paused_restart_at == book.decided_at  # decided_at is set here
            self._out.append(Reported(book.name, now, decision, paused=paused))
        state = book.state
        # The best from the freshest channel: the node channel's in log-less mode.
        best = signals_of(state.run, now, book.config).best
        progress = None
        if best is not None and head_is_fresh(state, now, book.config):
            progress = sync_progress(book.checkpoint, state, now, best.value)
        if progress is None:
            book.checkpoint = None
            text = "lag unknown"
            if decision is not None:
                text += f" ({decision.detail})"
            elif not book.known:
                text += " (the container has not been seen yet)"
            self._log(logging.INFO, book.name, "summary", text)
            return
        book.checkpoint = progress.checkpoint(now, state.run.run_id)
        why = f"; {decision.reason}" if isinstance(decision, Hold) else ""
        self._log(
            logging.INFO,
            book.name,
            "summary",
            describe(progress) + why,
            lag=progress.lag,
            best=progress.best,
            head=progress.head,
            caught_up=progress.caught_up,
            sync_rate=progress.sync_rate,
            time_to_catch_up=progress.time_to_catch_up,
        )

    def _judge(self, book: Book, verdict: PendingVerdict, helped: str) -> None:
        """Tell the operator about a restart and whether it *helped* by this check."""
        book.restart_log.judge(helped)
        verb = "would have restarted (dry run)" if verdict.dry_run else "restarted"
        self._log(logging.INFO, book.name, "restart_verdict", f"restart helped: {helped}")
        self._notify(
            f"restart:{book.name}:{verdict.decision.rule}:{helped.split(':')[0]}",
            f"azwatch: {verb} {book.name} ({verdict.decision.rule})",
            f"{_restart_words(verdict.decision)}\nhelped: {helped}",
            "warning" if helped.startswith("no") else "info",
        )

    def _log_transitions(self, book: Book, now: float) -> None:
        state = book.state
        if state.restart_in_flight:
            return  # stopping and starting is what a restart does; its outcome is logged
        if state.running != book.shown_running:
            if book.shown_running is not None or not state.running:
                if state.running:
                    self._log(logging.INFO, book.name, "container_back", "container is running")
                    if book.down_notified:
                        self._notify(
                            f"container:{book.name}",
                            f"azwatch: {book.name} is running again",
                            "The container runs again; azwatch follows it.",
                        )
                    book.down_since, book.down_notified = None, False
                else:
                    text = f"container is {state.status}; left alone until it runs again"
                    self._log(logging.WARNING, book.name, "container_gone", text)
                    book.down_since = now
            book.shown_running = state.running
        if (
            not state.running
            and not book.down_notified
            and book.down_since is not None
            and now - book.down_since >= DOWN_NOTICE_AFTER
        ):
            # Only a container that stays down is news: a restart by the operator is not.
            book.down_notified = True
            self._notify(
                f"container:{book.name}",
                f"azwatch: {book.name} is not running",
                f"container is {state.status}; left alone until it runs again",
                "warning",
            )
        if state.running:
            self._say_channel(book, now)
        if not state.running or not state.run.log_live:
            return  # the tail is history: _on_caught_up summarises it once
        major = state.run.major_sync
        if major != book.shown_major_sync:
            if book.shown_major_sync is not None:
                text = "major sync on" if major else "major sync off"
                self._log(logging.INFO, book.name, "major_sync", text, major_sync=major)
            book.shown_major_sync = major
        producing = state.run.producing(now)
        if producing != book.shown_producing:
            if book.shown_producing is not None or producing:
                text = "producing blocks" if producing else "no longer producing blocks"
                self._log(logging.INFO, book.name, "producing", text, producing=producing)
            book.shown_producing = producing

    def _say_channel(self, book: Book, now: float) -> None:
        """Say once when decisions go on from the node channel alone (log-less), and back."""
        run = book.state.run
        if run.node_seen_at is None:
            return  # no node channel: the log's holds say everything
        signals = signals_of(run, now, book.config)
        if signals.best is None:
            return  # blind: the hold says why
        channel = "node" if signals.log_less else "log"
        if channel == book.shown_channel:
            return
        if channel == "node":
            why = run.log_unreadable or (
                "its tail is still being read" if not run.log_live else "it is silent"
            )
            text = (
                f"log-less mode: the log gives nothing fresh ({why}); deciding from the node "
                "channel (best, finalized, peers, major sync). Block production and session "
                "only the log tells: moderate lag holds while they are unknown"
            )
            self._log(logging.WARNING, book.name, "channel_node", text, channel=channel)
        elif book.shown_channel is not None:
            text = "the log brings fresh lines again; deciding from the log and the node channel"
            self._log(logging.INFO, book.name, "channel_log", text, channel=channel)
        book.shown_channel = channel

    # --- the maintenance pause and the status page's history -----------------------------

    def _on_control(self, message: Pause | Resume, now: float) -> None:
        """The operator pauses or resumes restarts of one container."""
        book = self.books.get(message.name)
        verb = "pause" if isinstance(message, Pause) else "resume"
        if book is None:
            text = f"{message.name}: not watched; {verb} ignored"
            self._log(logging.WARNING, None, f"{verb}_ignored", text)
            return
        book.dirty, book.paused_said = True, None
        if isinstance(message, Pause):
            until = min(message.until, now + PAUSE_MAX)
            if until <= now:
                self._log(logging.WARNING, book.name, "pause_ignored", "pause already over")
                return
            book.pause = ActivePause(now, until, message.reason)
            why = f": {message.reason}" if message.reason else ""
            length = format_duration(until - now)
            text = (
                f"paused by the operator for {length}{why}; restarts the rules decide are "
                "logged, not carried out, until it ends (a restart of azwatch ends it too)"
            )
            self._log(
                logging.WARNING,
                book.name,
                "paused",
                text,
                pause_seconds=until - now,
                reason=message.reason,
            )
            self._notify(
                f"pause:{book.name}",
                f"azwatch: {book.name} paused for {length}",
                message.reason or "paused by the operator; no reason given",
                "warning",
            )
            return
        pause, book.pause = book.pause, None
        if pause is None:
            self._log(logging.INFO, book.name, "resumed", "resume: was not paused")
            return
        text = (
            f"resumed by the operator after {format_duration(now - pause.since)}; "
            "restarts allowed again"
        )
        self._log(logging.INFO, book.name, "resumed", text)
        self._notify(f"pause:{book.name}", f"azwatch: {book.name} resumed", text)

    def _end_pauses(self, now: float) -> None:
        """Pauses whose time is up end by themselves."""
        for book in self.books.values():
            pause = book.pause
            if pause is None or now < pause.until:
                continue
            book.pause, book.dirty, book.paused_said = None, True, None
            text = (
                f"pause ended: its {format_duration(pause.until - pause.since)} are up; "
                "restarts allowed again"
            )
            self._log(logging.INFO, book.name, "pause_ended", text)
            self._notify(f"pause:{book.name}", f"azwatch: pause of {book.name} ended", text)

    def _paused_restart(self, book: Book, decision: Restart, now: float) -> None:
        """The rules name a restart while the operator's pause holds: say so, do nothing.

        No cooldown is consumed and no restart is counted: when the pause ends, a node
        that still needs a restart gets it at once.
        """
        pause = book.pause
        assert pause is not None
        book.wake_at = pause.until
        book.paused_restart_at = now
        said, rule = book.paused_said, str(decision.rule)
        if (
            said is not None
            and said[0] == rule
            and now - said[1] < book.config.check_interval
            and book.shown_reason is None
        ):
            return  # said within this CHECK_INTERVAL, with nothing else said since
        book.paused_said = (rule, now)
        book.shown_reason = None
        facts = decision.facts
        why = f": {pause.reason}" if pause.reason else ""
        self._log(
            logging.WARNING,
            book.name,
            "paused_restart",
            f"paused: would restart: {rule}: {decision.detail} "
            f"(best {format_block(facts.best)}, head {format_block(facts.head)}; "
            f"paused for another {format_duration(pause.until - now)}{why})",
            rule=rule,
            paused=True,
            pause_left=pause.until - now,
            **_numbers(facts),
        )
        self._out.append(Reported(book.name, now, decision, paused=True))

    def _chart_point(self, book: Book, event: HeadSample | HeadUnavailable, now: float) -> None:
        """One point of the status page's chart per head poll (bounded)."""
        if book.chart is None:
            book.chart = Chart(self.config.rpc_poll_interval)
        state, run = book.state, book.state.run
        sampled = isinstance(event, HeadSample)
        # The tail read on attaching is history: its best is not the present one; a fresh
        # node channel's is (log-less mode).
        fresh = signals_of(run, now, book.config).best
        best = fresh.value if fresh is not None else run.best if run.log_live else None
        head = state.head if sampled else None
        lag = None if head is None or best is None else head - best
        book.chart.add(ChartPoint(now, best, head, lag))

    # --- output -------------------------------------------------------------------------

    def _log(self, level: int, container: str | None, event: str, text: str, **fields: Any) -> None:
        message = text if container is None else f"{container}: {text}"
        self._out.append(LogRecord(level, container, event, message, fields))

    def _notify(self, key: str, title: str, body: str, level: str = "info") -> None:
        self._out.append(SendNotice(Notice(key, title, body, level)))

    def _effects(self) -> list[Effect]:
        out, self._out = self._out, []
        return out


def restart_helped(decision: Restart, state: NodeState, now: float, config: Config) -> str:
    """Whether *decision*'s restart helped, judged by what its rule was about.

    A stall helped once the best advances past where it stood; a lag restart once the lag is
    at or below the rule's threshold (``BLOCK_LAG_100`` for severe lag, ``BLOCK_LAG_20`` for
    moderate lag and falling behind); a finality lag once the finalized block advances past
    where it stood. Starts with ``yes``, ``not yet``, ``no`` or ``unknown``.
    """
    before = decision.facts
    run = state.run
    signals = signals_of(run, now, config)
    # The log's best once its tail is read (fresh or not, as before the node channel), or
    # else the node channel's fresh one.
    best = run.best if run.log_live and run.best is not None else None
    if best is None and signals.best is not None:
        best = signals.best.value
    if decision.rule is Rule.STALL:
        if best is None:
            return "unknown (no local best seen since the restart)"
        if before.best is not None and best > before.best:
            return f"yes: best {format_block(best)}, past {format_block(before.best)}"
        return f"no: best still {format_block(best)}"
    if decision.rule is Rule.FINALITY_LAG:
        finalized = signals.finalized
        if finalized is None:
            return "unknown (no fresh finalized block since the restart)"
        if before.finalized is not None and finalized.value > before.finalized:
            return (
                f"yes: finalized {format_block(finalized.value)}, "
                f"past {format_block(before.finalized)}"
            )
        return f"no: finalized still {format_block(finalized.value)}"
    fresh = head_is_fresh(state, now, config)
    lag = None if not fresh or best is None or state.head is None else state.head - best
    if lag is None:
        return "unknown (no fresh lag)"
    if decision.rule is Rule.SEVERE_LAG:
        threshold, name = config.block_lag_100, "BLOCK_LAG_100"
    else:
        threshold, name = config.block_lag_20, "BLOCK_LAG_20"
    if lag <= threshold:
        return f"yes: lag {lag} <= {name}={threshold}"
    if before.lag is not None and lag < before.lag:
        return f"not yet: lag {lag}, down from {before.lag}"
    return f"no: lag {lag}" + (f", was {before.lag}" if before.lag is not None else "")


def _restart_words(decision: Restart) -> str:
    facts = decision.facts
    return (
        f"rule {decision.rule}: {decision.detail}\n"
        f"lag {format_value(facts.lag)}, best {format_block(facts.best)}, "
        f"head {format_block(facts.head)}, "
        f"major sync {_yes(facts.major_sync)}, producing {_yes(facts.producing)}"
    )


def _numbers(facts: Facts) -> dict[str, Any]:
    return {
        "lag": facts.lag,
        "best": facts.best,
        "head": facts.head,
        "finalized": facts.finalized,
        "major_sync": facts.major_sync,
        "producing": facts.producing,
        "session": facts.session,
        "peers": facts.peers,
        "catch_up_rate": facts.catch_up_rate,
        "cooldown": facts.cooldown,
    }


def _run_key(run: Run) -> str:
    """Names a run: its id, or its start when Docker has not named it."""
    return run.run_id if run.run_id is not None else f"@{run.started_at}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _on(flag: bool) -> str:
    return "on" if flag else "off"
