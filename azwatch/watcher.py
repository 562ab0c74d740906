"""The live watcher: ``await watch(config)``.

One anyio task group owns every task:

* a :class:`~azwatch.follower.LogFollower` per watched container, streaming its log;
* one :class:`~azwatch.dockerevents.EventStream`, waking followers when Docker reports a
  start, death, removal or rename (and, with ``CONTAINER_LABEL``, adding new containers);
* one :class:`~azwatch.head.HeadPoller` for the reference endpoints, shared by all containers;
* the decision task, the **only writer of the state**: it applies events in order, decides
  after every change and at least every ``CHECK_INTERVAL``, and logs what it sees;
* a task per restart in flight, so a slow restart never blocks the other containers.

The sources talk to the decision task through one bounded memory object stream, which gives
back-pressure instead of unbounded queues. ``watch()`` installs no signal handler, configures
no logging and leaves nothing behind when cancelled.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiodocker
import aiohttp
import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from azwatch.config import Config, with_label_overrides
from azwatch.containers import (
    DOCKER_TRANSIENT,
    ContainerInfo,
    describe_error,
    list_labelled,
    on_loop_clock,
    open_docker,
)
from azwatch.dockerevents import ContainerEvent, EventStream
from azwatch.events import (
    ContainerStatus,
    Event,
    FatalLine,
    HeadUnavailable,
    RestartFinished,
    RestartIssued,
)
from azwatch.follower import LogFollower, loop_time
from azwatch.head import HeadPoller, PollResult
from azwatch.http import serve
from azwatch.notify import Notice, Notifier
from azwatch.policy import (
    Decision,
    Hold,
    HoldReason,
    Restart,
    decide,
    effective_cooldown,
    head_is_fresh,
)
from azwatch.progress import Checkpoint, describe, format_duration, sync_progress
from azwatch.redaction import redact_url
from azwatch.restarter import DockerRestarter, DryRunRestarter, Restarter
from azwatch.state import NodeState, apply, apply_all, initial_state

logger = logging.getLogger("azwatch.watcher")

#: Messages waiting for the decision task before the sources block.
QUEUE_SIZE = 256
#: How long every reference may fail before it is reported as a lost reference.
RPC_LOST_AFTER = 180.0
#: How long a container must stay down before the operator is notified.
DOWN_NOTICE_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class ContainerUpdate:
    """Events about one container, from its follower or from Docker events."""

    name: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class RestartOutcome:
    """What the restarter reported for *name*."""

    name: str
    result: RestartFinished


@dataclass(frozen=True, slots=True)
class Inspected:
    """The follower inspected *name*; its labels may carry per-container settings."""

    name: str
    labels: tuple[tuple[str, str], ...]


Message = ContainerUpdate | PollResult | RestartOutcome | Inspected


@dataclass(frozen=True, slots=True)
class PendingVerdict:
    """A restart whose effect is judged (and notified) at the first check after ``due``."""

    decision: Restart
    due: float
    dry_run: bool


@dataclass
class Tracked:
    """One watched container as the decision task sees it (mutable; decision task only)."""

    name: str
    follower: LogFollower
    state: NodeState
    #: The settings for this container: the watcher's, with its label overrides applied.
    config: Config
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    labels: tuple[tuple[str, str], ...] | None = None
    verdict: PendingVerdict | None = None
    capped_notified: bool = False
    #: Since when the container is down, and whether the operator was told.
    down_since: float | None = None
    down_notified: bool = False
    decision: Decision | None = None
    decided_at: float | None = None
    wake_at: float | None = None
    next_summary: float = 0.0
    checkpoint: Checkpoint | None = None
    dirty: bool = True
    restarts_by_rule: dict[str, int] = field(default_factory=dict)
    failed_restarts: int = 0
    last_restart_wall: float | None = None
    # What was last reported, so each transition is logged once.
    shown_running: bool | None = None
    shown_major_sync: bool | None = None
    shown_producing: bool | None = None
    shown_reason: HoldReason | None = None
    shown_fatal: str | None = None


@dataclass
class HeadStatus:
    """The reference head as last polled (decision task only)."""

    last_poll_at: float | None = None
    last_ok_at: float | None = None
    lost_since: float | None = None
    lost_reported: bool = False
    last_result: PollResult | None = None


class Watcher:
    """Watches the configured containers until cancelled. ``watch()`` is the usual door.

    Tests and embedding hosts may read :attr:`tracked`, :attr:`head` and
    :attr:`last_evaluation_at`; everything else is internal.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = loop_time,
        restarter: Restarter | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.tracked: dict[str, Tracked] = {}
        self.head = HeadStatus()
        self.last_evaluation_at: float | None = None
        self.started = anyio.Event()
        self._restarter = restarter
        self._docker: aiodocker.Docker | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._send: MemoryObjectSendStream[Message] | None = None
        self.events: EventStream | None = None
        self.poller: HeadPoller | None = None
        self.notifier = Notifier(config.notify_urls, clock=clock)
        #: (host, port) of the HTTP endpoint once it listens (``HTTP_PORT``).
        self.http_address: tuple[str, int] | None = None

    async def run(self) -> None:
        """Watch until cancelled."""
        config = self.config
        send, receive = anyio.create_memory_object_stream[Message](max_buffer_size=QUEUE_SIZE)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(send)
            await stack.enter_async_context(receive)
            docker = open_docker(config)
            stack.push_async_callback(_close_docker, docker)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self._docker, self._send = docker, send
            restarter = self._restarter or DockerRestarter(docker)
            self.poller = HeadPoller(session, config.rpc_urls, timeout=config.rpc_timeout)
            self.events = EventStream(docker, self._on_docker_event, on_reconnect=self._wake_all)
            logger.info(
                "azwatch watching %s; reference %s; %s",
                ", ".join(config.container_names)
                or f"containers labelled {config.container_label}",
                ", ".join(redact_url(url) for url in config.rpc_urls),
                "DRY RUN: no container will be touched" if config.dry_run else "restarts enabled",
                extra={"event": "start", "fields": {"config": config.redacted()}},
            )
            async with anyio.create_task_group() as group:
                self._group = group
                group.start_soon(self._decide_forever, receive, restarter, name="azwatch.decide")
                group.start_soon(self.events.run, name="azwatch.events")
                group.start_soon(self._poll_forever, self.poller, name="azwatch.head")
                for name in config.container_names:
                    self._add(name)
                if config.container_label:
                    group.start_soon(self._discover, name="azwatch.discover")
                if self.notifier.enabled:
                    group.start_soon(self.notifier.run, name="azwatch.notify")
                if config.http_port is not None:
                    self.http_address = await group.start(
                        serve, self, config.http_host, config.http_port, name="azwatch.http"
                    )
                self.started.set()

    # --- sources ------------------------------------------------------------------------------

    def _add(self, name: str) -> None:
        """Start following container *name* (once)."""
        if name in self.tracked or self._group is None or self._docker is None:
            return
        follower = LogFollower(
            self._docker,
            name,
            self.config,
            self._emit,
            clock=self.clock,
            on_inspect=self._inspected,
        )
        tracked = Tracked(
            name=name,
            follower=follower,
            state=initial_state(self.clock()),
            config=self.config,
            next_summary=self.clock() + self.config.check_interval,
        )
        self.tracked[name] = tracked
        self._group.start_soon(self._follow, tracked, name=f"azwatch.follow.{name}")

    async def _follow(self, tracked: Tracked) -> None:
        """Run one follower; a bug in it never stops the other containers."""
        with tracked.scope:
            while True:
                try:
                    await tracked.follower.run()
                except Exception:
                    logger.exception(
                        "%s: log follower crashed; restarting it",
                        tracked.name,
                        extra={"container": tracked.name, "event": "follower_crash"},
                    )
                    await anyio.sleep(5)

    async def _emit(self, name: str, events: Sequence[Event]) -> None:
        assert self._send is not None
        await self._send.send(ContainerUpdate(name, tuple(events)))

    async def _inspected(self, name: str, info: ContainerInfo) -> None:
        assert self._send is not None
        await self._send.send(Inspected(name, tuple(sorted(info.labels.items()))))

    async def _poll_forever(self, poller: HeadPoller) -> None:
        assert self._send is not None
        await poller.run(self._send.send, interval=self.config.rpc_poll_interval)

    def _wake_all(self) -> None:
        for tracked in self.tracked.values():
            tracked.follower.wake()

    async def _discover(self) -> None:
        """Label mode: follow every running container with the label, now and later."""
        label = self.config.container_label
        assert label is not None
        assert self._docker is not None
        failing = False
        while True:
            try:
                for name in await list_labelled(self._docker, label):
                    self._add(name)
                failing = False
            except DOCKER_TRANSIENT as error:
                if not failing:
                    logger.warning(
                        "cannot list containers labelled %s: %s",
                        label,
                        describe_error(error),
                        extra={"event": "discover_failed"},
                    )
                failing = True
            # Docker events add new containers at once; this catches what events missed.
            await anyio.sleep(60)

    async def _on_docker_event(self, event: ContainerEvent) -> None:
        if self._matches_label(event) and event.action in ("start", "create", "rename"):
            self._add(event.name)
        names = {event.name}
        old_name = event.attributes.get("oldName", "").lstrip("/")
        if event.action == "rename" and old_name:
            names.add(old_name)
        for name in names:
            tracked = self.tracked.get(name)
            if tracked is None:
                continue
            status = _status_after(event, renamed_away=name == old_name)
            if status is not None:
                # Docker reports events with a delay; place this one on our clock.
                seen_at = on_loop_clock(event.time_ns, self.clock())
                await self._emit(name, [replace(status, seen_at=seen_at)])
            if (
                event.action == "destroy"
                and self.config.container_label
                and (name not in self.config.container_names)
            ):
                await self._forget(name)
                continue
            tracked.follower.wake()

    def _matches_label(self, event: ContainerEvent) -> bool:
        watched = self.config.watches_label
        if watched is None:
            return False
        key, value = watched
        return key in event.attributes and (value is None or event.attributes[key] == value)

    async def _forget(self, name: str) -> None:
        tracked = self.tracked.pop(name, None)
        if tracked is not None:
            tracked.scope.cancel()
            logger.info(
                "%s: removed; no longer watched",
                name,
                extra={"container": name, "event": "forgotten"},
            )

    # --- the decision task ----------------------------------------------------------------

    async def _decide_forever(
        self, receive: MemoryObjectReceiveStream[Message], restarter: Restarter
    ) -> None:
        while True:
            now = self.clock()
            with anyio.move_on_after(max(0.0, self._next_wake(now) - now)):
                message = await receive.receive()
                self._handle(message)
                for _ in range(QUEUE_SIZE):
                    try:
                        self._handle(receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
            self._evaluate_all(self.clock(), restarter)

    def _next_wake(self, now: float) -> float:
        wake = now + self.config.check_interval
        for tracked in self.tracked.values():
            wake = min(wake, tracked.next_summary)
            if tracked.wake_at is not None:
                wake = min(wake, tracked.wake_at)
        return wake

    def _handle(self, message: Message) -> None:
        now = self.clock()
        if isinstance(message, PollResult):
            self._on_poll(message, now)
            return
        tracked = self.tracked.get(message.name)
        if tracked is None:
            return
        if isinstance(message, RestartOutcome):
            self._on_restart_outcome(tracked, message.result, now)
            return
        if isinstance(message, Inspected):
            if message.labels != tracked.labels:
                self._apply_labels(tracked, message.labels)
            return
        # A batch of log lines arrived together: one instant, applied as one.
        tracked.state = apply_all(tracked.state, message.events, now, tracked.config)
        for event in message.events:
            if isinstance(event, FatalLine) and event.text != tracked.shown_fatal:
                tracked.shown_fatal = event.text
                _log(logging.ERROR, tracked.name, "node_fatal", f"node reported: {event.text}")
                self.notifier.post(
                    Notice(
                        f"fatal:{tracked.name}",
                        f"azwatch: {tracked.name} reported a fatal error",
                        event.text,
                        "failure",
                    )
                )
        tracked.dirty = True

    def _on_poll(self, result: PollResult, now: float) -> None:
        head = self.head
        head.last_poll_at, head.last_result = now, result
        event = result.event()
        for tracked in self.tracked.values():
            tracked.state = apply(tracked.state, event, now, tracked.config)
            tracked.dirty = True
        if result.heads:
            if head.lost_reported and head.lost_since is not None:
                text = f"reference RPC answers again after {format_duration(now - head.lost_since)}"
                logger.info(text, extra={"event": "rpc_recovered"})
                self.notifier.post(Notice("rpc", "azwatch: reference RPC recovered", text))
            head.last_ok_at, head.lost_since, head.lost_reported = now, None, False
            return
        if head.lost_since is None:
            head.lost_since = head.last_ok_at if head.last_ok_at is not None else now
        if not head.lost_reported and now - head.lost_since >= RPC_LOST_AFTER:
            head.lost_reported = True
            why = event.reason if isinstance(event, HeadUnavailable) else "no answer"
            text = (
                f"reference RPC lost for {format_duration(now - head.lost_since)}: {why}; "
                "no restart will be decided until it answers"
            )
            logger.warning(text, extra={"event": "rpc_lost"})
            self.notifier.post(Notice("rpc", "azwatch: reference RPC lost", text, "warning"))

    def _on_restart_outcome(self, tracked: Tracked, result: RestartFinished, now: float) -> None:
        tracked.state = apply(tracked.state, result, now, tracked.config)
        tracked.dirty = True
        if result.ok:
            _log(logging.INFO, tracked.name, "restart_done", f"restart done: {result.detail}")
            return
        tracked.failed_restarts += 1
        text = f"restart failed: {result.detail}; the rules will decide again after the cooldown"
        _log(logging.ERROR, tracked.name, "restart_failed", text)
        verdict, tracked.verdict = tracked.verdict, None
        body = text if verdict is None else f"{_restart_words(verdict.decision)}\n{text}"
        self.notifier.post(
            Notice(
                f"restart_failed:{tracked.name}",
                f"azwatch: restart of {tracked.name} failed",
                body,
                "failure",
            )
        )

    def _apply_labels(self, tracked: Tracked, labels: tuple[tuple[str, str], ...]) -> None:
        """Per-container settings from ``azwatch.<setting>`` labels (logged once per change)."""
        tracked.labels = labels
        config, applied, ignored = with_label_overrides(self.config, dict(labels))
        for line in ignored:
            _log(logging.WARNING, tracked.name, "label_ignored", f"{line}; ignored")
        if config != tracked.config:
            tracked.config = config
            tracked.dirty = True
            if applied:
                shown = ", ".join(f"{key}={value}" for key, value in applied.items())
                _log(
                    logging.INFO, tracked.name, "label_overrides", f"settings from labels: {shown}"
                )

    def _evaluate_all(self, now: float, restarter: Restarter) -> None:
        self.last_evaluation_at = now
        for tracked in list(self.tracked.values()):
            due = tracked.wake_at is not None and now >= tracked.wake_at
            if tracked.dirty or due or now >= tracked.next_summary:
                self._evaluate(tracked, now, restarter)
            if now >= tracked.next_summary:
                self._summary(tracked, now)
                tracked.next_summary = now + self.config.check_interval

    def _evaluate(self, tracked: Tracked, now: float, restarter: Restarter) -> None:
        tracked.dirty = False
        decision = decide(tracked.state, now, tracked.config)
        tracked.decision, tracked.decided_at = decision, now
        self._log_transitions(tracked, now)
        if isinstance(decision, Restart):
            tracked.wake_at = None
            self._restart(tracked, decision, now, restarter)
            return
        tracked.wake_at = decision.until
        if decision.reason != tracked.shown_reason:
            level = logging.DEBUG if decision.reason is HoldReason.HEALTHY else logging.INFO
            _log(
                level,
                tracked.name,
                "hold",
                f"holding: {decision.reason}: {decision.detail}",
                reason=str(decision.reason),
                **_numbers(decision),
            )
            tracked.shown_reason = decision.reason

    def _restart(
        self, tracked: Tracked, decision: Restart, now: float, restarter: Restarter
    ) -> None:
        facts = decision.facts
        dry_run = tracked.config.dry_run
        tracked.state = apply(tracked.state, RestartIssued(), now, tracked.config)
        tracked.restarts_by_rule[decision.rule] = tracked.restarts_by_rule.get(decision.rule, 0) + 1
        tracked.last_restart_wall = time.time()
        tracked.shown_reason = None
        verb = "would restart (dry run)" if dry_run else "restarting"
        _log(
            logging.WARNING,
            tracked.name,
            "restart",
            f"{verb}: {decision.rule}: {decision.detail} "
            f"(best #{facts.best}, head #{facts.head}, major sync {_yes(facts.major_sync)}, "
            f"producing {_yes(facts.producing)}, session {facts.session}, peers {facts.peers}; "
            f"run age {format_duration(facts.run_age)}, "
            f"cooldown {format_duration(facts.cooldown)})",
            rule=str(decision.rule),
            dry_run=dry_run,
            **_numbers(decision),
        )
        tracked.verdict = PendingVerdict(decision, now + tracked.config.check_interval, dry_run)
        config = tracked.config
        if effective_cooldown(tracked.state, config) >= config.max_cooldown > config.cooldown:
            if not tracked.capped_notified:
                tracked.capped_notified = True
                text = (
                    f"{tracked.state.restarts} restart(s) have not helped; the cooldown is now "
                    f"capped at MAX_COOLDOWN={format_duration(config.max_cooldown)}. Restarts "
                    "rarely fix a wrong clock, an outdated binary or a corrupt database."
                )
                _log(logging.WARNING, tracked.name, "backoff_capped", text)
                self.notifier.post(
                    Notice(
                        f"capped:{tracked.name}",
                        f"azwatch: restarts of {tracked.name} are not helping",
                        text,
                        "warning",
                    )
                )
        elif tracked.state.unhelped_restarts == 0:
            tracked.capped_notified = False
        if dry_run:
            restarter = DryRunRestarter()
        assert self._group is not None
        self._group.start_soon(self._run_restart, tracked.name, restarter, config.stop_timeout)

    async def _run_restart(self, name: str, restarter: Restarter, stop_timeout: int) -> None:
        result = await restarter.restart(name, stop_timeout=stop_timeout)
        assert self._send is not None
        await self._send.send(RestartOutcome(name, result))

    def _summary(self, tracked: Tracked, now: float) -> None:
        verdict = tracked.verdict
        if verdict is not None and now >= verdict.due and not tracked.state.restart_in_flight:
            tracked.verdict = None
            self._judge(tracked, verdict)
        state = tracked.state
        progress = sync_progress(tracked.checkpoint, state, now)
        decision = tracked.decision
        why = f"; {decision.reason}" if isinstance(decision, Hold) else ""
        if progress is None:
            tracked.checkpoint = None
            text = "lag unknown"
            if decision is not None:
                text += f" ({decision.detail})"
            _log(logging.INFO, tracked.name, "summary", text)
            return
        tracked.checkpoint = progress.checkpoint(now, state.run.run_id)
        _log(
            logging.INFO,
            tracked.name,
            "summary",
            describe(progress) + why,
            lag=progress.lag,
            best=progress.best,
            head=progress.head,
            caught_up=progress.caught_up,
            sync_rate=progress.sync_rate,
            time_to_catch_up=progress.time_to_catch_up,
        )

    def _judge(self, tracked: Tracked, verdict: PendingVerdict) -> None:
        """Tell the operator about a restart and whether it helped by this check."""
        before = verdict.decision.facts.lag
        lag = (
            tracked.state.lag
            if head_is_fresh(tracked.state, self.clock(), tracked.config)
            else None
        )
        if lag is None:
            helped = "unknown (no fresh network head)"
        elif lag <= tracked.config.block_lag_20:
            helped = f"yes: lag {lag}"
        elif before is not None and lag < before:
            helped = f"not yet: lag {lag}, down from {before}"
        else:
            helped = f"no: lag {lag}" + (f", was {before}" if before is not None else "")
        verb = "would have restarted (dry run)" if verdict.dry_run else "restarted"
        body = f"{_restart_words(verdict.decision)}\nhelped: {helped}"
        _log(logging.INFO, tracked.name, "restart_verdict", f"restart helped: {helped}")
        self.notifier.post(
            Notice(
                f"restart:{tracked.name}:{verdict.decision.rule}:{helped.split(':')[0]}",
                f"azwatch: {verb} {tracked.name} ({verdict.decision.rule})",
                body,
                "warning" if helped.startswith("no") else "info",
            )
        )

    def _log_transitions(self, tracked: Tracked, now: float) -> None:
        state = tracked.state
        if state.restart_in_flight:
            return  # stopping and starting is what a restart does; its outcome is logged
        if state.running != tracked.shown_running:
            if tracked.shown_running is not None or not state.running:
                if state.running:
                    _log(logging.INFO, tracked.name, "container_back", "container is running")
                    if tracked.down_notified:
                        self.notifier.post(
                            Notice(
                                f"container:{tracked.name}",
                                f"azwatch: {tracked.name} is running again",
                                "The container runs again; azwatch follows it.",
                            )
                        )
                    tracked.down_since, tracked.down_notified = None, False
                else:
                    text = f"container is {state.status}; left alone until it runs again"
                    _log(logging.WARNING, tracked.name, "container_gone", text)
                    tracked.down_since = now
            tracked.shown_running = state.running
        if (
            not state.running
            and not tracked.down_notified
            and tracked.down_since is not None
            and now - tracked.down_since >= DOWN_NOTICE_AFTER
        ):
            # Only a container that stays down is news: a restart by the operator is not.
            tracked.down_notified = True
            self.notifier.post(
                Notice(
                    f"container:{tracked.name}",
                    f"azwatch: {tracked.name} is not running",
                    f"container is {state.status}; left alone until it runs again",
                    "warning",
                )
            )
        if not state.running:
            return
        major = state.run.major_sync
        if major != tracked.shown_major_sync:
            if tracked.shown_major_sync is not None:
                text = "major sync on" if major else "major sync off"
                _log(logging.INFO, tracked.name, "major_sync", text, major_sync=major)
            tracked.shown_major_sync = major
        producing = state.run.producing(now)
        if producing != tracked.shown_producing:
            if tracked.shown_producing is not None or producing:
                text = "producing blocks" if producing else "no longer producing blocks"
                _log(logging.INFO, tracked.name, "producing", text, producing=producing)
            tracked.shown_producing = producing


async def watch(config: Config) -> None:
    """Watch the containers of *config* until cancelled.

    Runs beside other tasks in the caller's event loop (asyncio). Installs no signal handler,
    configures no logging, and closes every session, socket and task it opened when cancelled.
    """
    await Watcher(config).run()


async def _close_docker(docker: aiodocker.Docker) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        await docker.close()


def _status_after(event: ContainerEvent, *, renamed_away: bool) -> ContainerStatus | None:
    """What an event says about the container at once, before the follower re-inspects."""
    if renamed_away:
        return ContainerStatus(False, f"renamed to {event.name}")
    if event.action == "die":
        code = event.attributes.get("exitCode")
        return ContainerStatus(False, f"exited (exit code {code})" if code else "exited")
    if event.action == "pause":
        return ContainerStatus(False, "paused")
    if event.action == "destroy":
        return ContainerStatus(False, "removed")
    return None


def _restart_words(decision: Restart) -> str:
    facts = decision.facts
    return (
        f"rule {decision.rule}: {decision.detail}\n"
        f"lag {facts.lag}, best #{facts.best}, head #{facts.head}, "
        f"major sync {_yes(facts.major_sync)}, producing {_yes(facts.producing)}"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _numbers(decision: Decision) -> dict[str, Any]:
    facts = decision.facts
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


def _log(level: int, container: str, event: str, message: str, **fields: Any) -> None:
    logger.log(
        level,
        "%s: %s",
        container,
        message,
        extra={"container": container, "event": event, "fields": fields},
    )
