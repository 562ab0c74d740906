"""The live watcher: ``await watch(config)``.

The shell around the pure :class:`~azwatch.supervisor.Supervisor`. One anyio task group owns
every task:

* a :class:`~azwatch.follower.LogFollower` per watched container, streaming its log;
* one :class:`~azwatch.dockerevents.EventStream`, waking followers when Docker reports a
  start, death, removal or rename (and, with ``CONTAINER_LABEL``, adding new containers);
* one :class:`~azwatch.head.HeadPoller` for the reference endpoints, shared by all containers;
* the decision task, the **only caller of the supervisor**: it hands it every message in
  order, calls its ``tick`` when something changed or a wake-up is due, and carries out the
  effects it returns (log records, notices, restarts);
* a task per restart in flight, so a slow restart never blocks the other containers.

The sources talk to the decision task through one bounded :class:`~azwatch.inbox.Inbox`,
which gives back-pressure instead of unbounded queues. ``watch()`` installs no signal
handler, configures no logging and leaves nothing behind when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import aiodocker
import aiohttp
import anyio
import anyio.abc
import anyio.lowlevel

from azwatch.config import Config
from azwatch.containers import (
    DOCKER_TRANSIENT,
    ContainerInfo,
    describe_error,
    list_labelled,
    on_loop_clock,
    open_docker,
)
from azwatch.control import ControlAccess
from azwatch.dockerevents import ContainerEvent, EventStream
from azwatch.effects import Effect, LogRecord, Reported, RestartContainer, SendNotice
from azwatch.events import ContainerExited, ContainerStatus, Event, NodeSample
from azwatch.follower import FollowStatus, LogFollower, loop_time
from azwatch.head import HeadPoller, PollResult
from azwatch.http import Control, serve
from azwatch.inbox import Inbox
from azwatch.nodepoll import NodePoller
from azwatch.notify import Notifier
from azwatch.policy import FINALITY_POLL_EVERY
from azwatch.progress import format_duration
from azwatch.redaction import redact_url
from azwatch.restarter import DockerRestarter, DryRunRestarter, Restarter, longest_restart
from azwatch.snapshot import EndpointProblem, HeadView, LogView, Snapshot, age, take
from azwatch.supervisor import (
    ContainerEvents,
    FinalityPolled,
    HeadPolled,
    LabelsSeen,
    Message,
    NodePolled,
    Pause,
    RestartDone,
    Resume,
    Supervisor,
)

logger = logging.getLogger("azwatch.watcher")

#: Messages waiting for the decision task before the sources block.
QUEUE_SIZE = 256

_Message = TypeVar("_Message")


@dataclass(frozen=True, slots=True)
class _Forget:
    """Label mode: container *name* was removed; stop following it."""

    name: str


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """The operator's *message* from the HTTP control endpoint; *applied* is set once the
    decision task has handed it to the supervisor."""

    message: Pause | Resume
    applied: anyio.Event


#: Label mode: seconds between lists of the labelled containers (events add them at once).
DISCOVER_INTERVAL = 60.0

#: Seconds the control endpoint waits for the decision task to apply a message.
CONTROL_DEADLINE = 5.0
#: How long after a ``kill`` event (``docker stop``, ``docker restart``, azwatch's restart) a
#: ``die`` is the end that was asked for, not an exit by itself.
ASKED_STOP_WINDOW = 900.0


class Watcher:
    """Watches the configured containers until cancelled. ``watch()`` is the usual door.

    Tests and embedding hosts may call :meth:`snapshot` and read :attr:`started` and
    :attr:`http_address`; everything else is internal.
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
        self.supervisor = Supervisor(config)
        self.followers: dict[str, LogFollower] = {}
        self.started = anyio.Event()
        self.notifier = Notifier(config.notify_urls, clock=clock)
        self.events: EventStream | None = None
        self.poller: HeadPoller | None = None
        #: (host, port) of the HTTP endpoint once it listens (``HTTP_PORT``).
        self.http_address: tuple[str, int] | None = None
        self._restarter = restarter
        self._scopes: dict[str, anyio.CancelScope] = {}
        #: When each container was last sent a signal through Docker (its ``kill`` event).
        self._killed_at: dict[str, float] = {}
        #: The id of each watched container as last inspected (for the events' filter).
        self._ids: dict[str, str] = {}
        self._last_poll: PollResult | None = None
        #: Label mode: why the latest list of labelled containers failed (``/healthz``).
        self.discover_problem: str | None = None
        self._docker: aiodocker.Docker | None = None
        self._session: aiohttp.ClientSession | None = None
        #: Each container's node-channel poller, while it has one (for the snapshot).
        self.node_pollers: dict[str, NodePoller] = {}
        self._node_urls: dict[str, tuple[str, str]] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._inbox: Inbox[Message | _Forget | ControlRequest] | None = None

    def snapshot(self) -> Snapshot:
        """What the watcher sees now, as frozen values (``/status``, ``/metrics``)."""
        now = self.clock()
        head = head_view(self.supervisor, self._last_poll, self.poller, now)
        logs = {name: _log_view(follower.status, now) for name, follower in self.followers.items()}
        events = None if self.events is None else self.events.problem
        node_errors = {name: poller.error_counts() for name, poller in self.node_pollers.items()}
        return take(
            self.supervisor,
            now=now,
            wall=time.time(),
            logs=logs,
            head=head,
            events_problem=events,
            node_errors=node_errors,
            discover_problem=self.discover_problem,
        )

    async def run(self) -> None:
        """Watch until cancelled."""
        config = self.config
        inbox = Inbox[Message | _Forget | ControlRequest](QUEUE_SIZE)
        async with contextlib.AsyncExitStack() as stack:
            docker = open_docker(config)
            stack.push_async_callback(_close_docker, docker)
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self._docker, self._inbox, self._session = docker, inbox, session
            restarter = self._restarter or DockerRestarter(docker, config.docker_timeout)
            self.poller = reference_poller(session, config)
            self.events = EventStream(
                docker,
                self._on_docker_event,
                open_within=config.docker_timeout,
                on_reconnect=self._wake_all,
                narrowing=self._narrowing,
            )
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
                group.start_soon(self._decide_forever, inbox, restarter, name="azwatch.decide")
                group.start_soon(self.events.run, name="azwatch.events")
                group.start_soon(self._poll_forever, self.poller, name="azwatch.head")
                for name in config.container_names:
                    self._add(name)
                if config.container_label:
                    group.start_soon(self._discover, name="azwatch.discover")
                if self.notifier.enabled:
                    group.start_soon(self.notifier.run, name="azwatch.notify")
                if config.http_port is not None:
                    control = Control(
                        self._submit,
                        self.clock,
                        ControlAccess(config.http_host, config.control_token),
                    )
                    self.http_address = await group.start(
                        serve,
                        self.snapshot,
                        config.http_host,
                        config.http_port,
                        control,
                        name="azwatch.http",
                    )
                self.started.set()

    # --- sources ------------------------------------------------------------------------------

    def _add(self, name: str) -> None:
        """Start following container *name* (once)."""
        if name in self.followers or self._group is None or self._docker is None:
            return
        follower = LogFollower(
            self._docker,
            name,
            self.config,
            self._emit,
            clock=self.clock,
            on_inspect=self._inspected,
        )
        self.followers[name] = follower
        self._scopes[name] = scope = anyio.CancelScope()
        self.supervisor.watch(name, self.clock())
        self._group.start_soon(self._follow, name, follower, scope, name=f"azwatch.follow.{name}")

    async def _follow(self, name: str, follower: LogFollower, scope: anyio.CancelScope) -> None:
        """Follow one container's log and poll its node channel, until it is forgotten."""
        with scope:
            async with anyio.create_task_group() as group:
                group.start_soon(self._poll_node_forever, name, name=f"azwatch.node.{name}")
                await self._run_follower(name, follower)

    async def _run_follower(self, name: str, follower: LogFollower) -> None:
        """Run one follower; a bug in it never stops the other containers."""
        while True:
            try:
                await follower.run()
            except Exception:
                logger.exception(
                    "%s: log follower crashed; restarting it",
                    name,
                    extra={"container": name, "event": "follower_crash"},
                )
                await anyio.sleep(5)

    async def _emit(self, name: str, events: Sequence[Event]) -> None:
        assert self._inbox is not None
        message = ContainerEvents(name, tuple(events))
        # The usual case costs no checkpoint; a full inbox waits (back-pressure), and that
        # wait is never cut short: the follower's cursor is past these lines already.
        if not self._inbox.offer(message):
            with anyio.CancelScope(shield=True):
                await self._inbox.send(message)

    async def _inspected(self, name: str, info: ContainerInfo) -> None:
        assert self._inbox is not None
        if self._ids.get(name) != info.id:
            self._ids[name] = info.id
            if self.events is not None and self.config.container_label is None:
                self.events.refilter()  # the events filter names the ids
        await self._inbox.send(LabelsSeen(name, tuple(sorted(info.labels.items()))))

    async def _poll_forever(self, poller: HeadPoller) -> None:
        assert self._inbox is not None
        await poll_reference(poller, self._inbox, self._seen, self.config.rpc_poll_interval)

    def _seen(self, result: PollResult) -> None:
        self._last_poll = result

    async def _poll_node_forever(self, name: str) -> None:
        """Poll container *name*'s node channel every ``RPC_POLL_INTERVAL``, while one is set.

        The URLs are the container's settings (a label may set them), read each round, so a
        label seen later starts the channel and a changed one moves it.
        """
        assert self._session is not None
        assert self._inbox is not None
        poller: NodePoller | None = None
        interval = self.config.rpc_poll_interval
        next_round = anyio.current_time()
        while True:
            book = self.supervisor.books.get(name)
            config = self.config if book is None else book.config
            urls = (config.node_rpc_url, config.node_metrics_url)
            if not any(urls):
                poller = None
                self.node_pollers.pop(name, None)
            else:
                if poller is None or self._node_urls.get(name) != urls:
                    poller = NodePoller(
                        self._session,
                        rpc_url=urls[0],
                        metrics_url=urls[1],
                        timeout=config.rpc_timeout,
                    )
                    self._node_urls[name] = urls
                    self.node_pollers[name] = poller
                    logger.info(
                        "%s: node channel %s",
                        name,
                        ", ".join(redact_url(url) for url in urls if url),
                        extra={"container": name, "event": "node_channel"},
                    )
                try:
                    outcome = await poller.poll()
                except Exception:  # a bug in the channel never stops the watcher
                    logger.exception(
                        "%s: node channel poll crashed",
                        name,
                        extra={"container": name, "event": "node_channel_crash"},
                    )
                else:
                    event = outcome if isinstance(outcome, NodeSample) else outcome.event()
                    await self._inbox.send(NodePolled(name, event))
            next_round = max(next_round + interval, anyio.current_time())
            await anyio.sleep_until(next_round)

    async def _submit(self, message: Pause | Resume) -> None:
        assert self._inbox is not None
        await submit_control(self._inbox, message)

    def _narrowing(self) -> dict[str, list[str]]:
        """The daemon-side filter for the watched containers' events: others cost nothing."""
        config = self.config
        if config.container_label is None:
            # By name, and by id: a container renamed away keeps its id, not its name.
            return {"container": [*config.container_names, *self._ids.values()]}
        if not config.container_names:
            return {"label": [config.container_label]}  # labels survive a rename
        return {}  # names and a label: Docker cannot OR two filters, so take every event

    def _wake_all(self) -> None:
        for follower in self.followers.values():
            follower.wake()

    async def _discover(self) -> None:
        """Label mode: follow every running container with the label, now and later."""
        label = self.config.container_label
        assert label is not None
        assert self._docker is not None
        seconds = self.config.docker_timeout
        while True:
            try:
                for name in await list_labelled(self._docker, label, seconds=seconds):
                    self._add(name)
                self.discover_problem = None
            except DOCKER_TRANSIENT as error:
                if self.discover_problem is None:
                    logger.warning(
                        "cannot list containers labelled %s: %s",
                        label,
                        describe_error(error),
                        extra={"event": "discover_failed"},
                    )
                self.discover_problem = (
                    f"cannot list containers labelled {label}: {describe_error(error)}"
                )
            # Docker events add new containers at once; this catches what events missed,
            # and a failed list is asked again soon: until it answers, azwatch is blind to
            # new containers.
            await anyio.sleep(DISCOVER_INTERVAL if self.discover_problem is None else seconds)

    async def _on_docker_event(self, event: ContainerEvent) -> None:
        if self._matches_label(event) and event.action in ("start", "create", "rename"):
            self._add(event.name)
        if event.action == "kill":
            self._killed_at[event.name] = self.clock()
        by_itself = event.action == "die" and self._exited_by_itself(event.name)
        names = {event.name}
        old_name = event.attributes.get("oldName", "").lstrip("/")
        if event.action == "rename" and old_name:
            names.add(old_name)
        for name in names:
            follower = self.followers.get(name)
            if follower is None:
                continue
            status = _status_after(event, renamed_away=name == old_name)
            if status is not None:
                # Docker reports events with a delay; place this one on our clock.
                seen_at = on_loop_clock(event.time_ns, self.clock())
                events: list[Event] = [replace(status, seen_at=seen_at)]
                if by_itself and name == event.name:
                    code = exit_code(event.attributes.get("exitCode"))
                    events.append(ContainerExited(code, seen_at=seen_at))
                await self._emit(name, events)
            if (
                event.action == "destroy"
                and self.config.container_label
                and (name not in self.config.container_names)
            ):
                assert self._inbox is not None
                await self._inbox.send(_Forget(name))
                continue
            follower.wake()

    def _exited_by_itself(self, name: str) -> bool:
        """A ``die`` no ``kill`` asked for shortly before: the run ended by itself."""
        killed_at = self._killed_at.pop(name, None)
        return killed_at is None or self.clock() - killed_at > ASKED_STOP_WINDOW

    def _matches_label(self, event: ContainerEvent) -> bool:
        watched = self.config.watches_label
        if watched is None:
            return False
        key, value = watched
        return key in event.attributes and (value is None or event.attributes[key] == value)

    # --- the decision task ----------------------------------------------------------------

    async def _decide_forever(
        self,
        inbox: Inbox[Message | _Forget | ControlRequest],
        restarter: Restarter,
    ) -> None:
        await decide_forever(
            self.supervisor,
            inbox,
            lambda message: self._take(message, restarter),
            lambda effects: self._carry_out(effects, restarter),
            clock=self.clock,
            check_interval=self.config.check_interval,
        )

    def _take(self, message: Message | _Forget | ControlRequest, restarter: Restarter) -> None:
        if isinstance(message, ControlRequest):
            self._carry_out(self.supervisor.handle(message.message, self.clock()), restarter)
            message.applied.set()
            return
        if isinstance(message, _Forget):
            scope = self._scopes.pop(message.name, None)
            if scope is not None:
                scope.cancel()
            self.followers.pop(message.name, None)
            self._ids.pop(message.name, None)
            self.node_pollers.pop(message.name, None)
            self._node_urls.pop(message.name, None)
            self._carry_out(self.supervisor.forget(message.name), restarter)
            return
        self._carry_out(self.supervisor.handle(message, self.clock()), restarter)

    def _carry_out(self, effects: Iterable[Effect], restarter: Restarter) -> None:
        for effect in effects:
            match effect:
                case LogRecord():
                    write_log(logger, effect)
                case SendNotice(notice):
                    self.notifier.post(notice)
                case RestartContainer(name, _decision, stop_timeout, dry_run):
                    assert self._group is not None
                    self._group.start_soon(
                        self._run_restart,
                        name,
                        DryRunRestarter() if dry_run else restarter,
                        stop_timeout,
                        name=f"azwatch.restart.{name}",
                    )
                case Reported():
                    pass  # the log records above already tell the operator

    async def _run_restart(self, name: str, restarter: Restarter, stop_timeout: float) -> None:
        finished = stopping = False
        began = self.clock()

        async def say_if_stopped() -> None:
            # The restart itself is shielded: a watcher told to stop waits for it.
            try:
                await anyio.sleep_forever()
            finally:
                if not finished:
                    nonlocal stopping
                    stopping = True
                    longest = longest_restart(stop_timeout, self.config.docker_timeout)
                    left = longest - (self.clock() - began)
                    logger.warning(
                        "%s: stopping while its restart is in flight: waiting up to %s for "
                        "Docker to finish it (Docker completes a restart even when azwatch is "
                        "killed meanwhile, so the node is not left stopped)",
                        name,
                        format_duration(max(0.0, left)),
                        extra={"container": name, "event": "stop_waits_for_restart"},
                    )

        async with anyio.create_task_group() as group:
            group.start_soon(say_if_stopped)
            result = await restarter.restart(name, stop_timeout=stop_timeout)
            finished = True
            group.cancel_scope.cancel()
        if stopping:  # the decision task is gone: say here how it ended
            logger.warning(
                "%s: restart %s while azwatch was stopping: %s",
                name,
                "done" if result.ok else "failed",
                result.detail,
                extra={"container": name, "event": "restart_done_while_stopping"},
            )
        assert self._inbox is not None
        await self._inbox.send(RestartDone(name, result))


async def decide_forever(
    supervisor: Supervisor,
    inbox: Inbox[_Message],
    take: Callable[[_Message], None],
    carry_out: Callable[[list[Effect]], None],
    *,
    clock: Callable[[], float],
    check_interval: float,
) -> None:
    """The decision task: hand each message to *take*, and tick the supervisor when one
    arrived or a wake-up is due (at least every *check_interval*); its effects go to
    *carry_out*. Runs until cancelled.

    *clock* runs at the event loop's pace (it is the loop's own by default): a wake-up at
    *clock* time ``t`` is waited for until loop time ``t`` plus their offset at the start.
    """
    offset = asyncio.get_running_loop().time() - clock()
    try:
        while True:
            now = clock()
            wake = supervisor.next_wake()
            if wake == math.inf:
                wake = now + check_interval  # nothing watched yet: look again meanwhile
            if wake > now:
                # Waits whenever the inbox is empty, which lets the sources run. With books
                # the wake-up is at the latest the next summary, a fixed time: the inbox
                # keeps one timer for it across the messages that arrive meanwhile.
                message = await inbox.receive_until(wake + offset)
                if message is not None:
                    take(message)
            else:
                await anyio.lowlevel.checkpoint()  # due now: let the sources run first
            # Whatever else arrived meanwhile is taken in now, without waiting again.
            for _ in range(QUEUE_SIZE):
                if (message := inbox.take()) is None:
                    break
                take(message)
            carry_out(supervisor.tick(clock()))
    finally:
        inbox.close()


def reference_poller(session: aiohttp.ClientSession, config: Config) -> HeadPoller:
    """The reference endpoints' poller, asking their finalized block every few rounds."""
    return HeadPoller(
        session, config.rpc_urls, timeout=config.rpc_timeout, finality_every=FINALITY_POLL_EVERY
    )


async def poll_reference(
    poller: HeadPoller,
    send: Inbox[Any],
    seen: Callable[[PollResult], None],
    interval: float,
) -> None:
    """Poll the reference endpoints every *interval* until cancelled; each round is *seen*,
    then handed to the decision task with the finalized block it told, if it asked."""

    async def polled(result: PollResult) -> None:
        seen(result)
        await send.send(HeadPolled(result.event()))
        finality = result.finality_event()
        if finality is not None:
            await send.send(FinalityPolled(finality))

    await poller.run(polled, interval=interval)


async def submit_control(send: Inbox[Any], message: Pause | Resume) -> None:
    """Hand the operator's *message* to the decision task; return once it is applied."""
    applied = anyio.Event()
    with anyio.fail_after(CONTROL_DEADLINE):
        await send.send(ControlRequest(message, applied))
        await applied.wait()


def write_log(to: logging.Logger, record: LogRecord) -> None:
    """Write the supervisor's log *record* with its event and numbers (for JSON logs)."""
    extra = {"container": record.container, "event": record.event, "fields": dict(record.fields)}
    to.log(record.level, "%s", record.message, extra=extra)


def head_view(
    supervisor: Supervisor, poll: PollResult | None, poller: HeadPoller | None, now: float
) -> HeadView:
    """The reference poller as ``/status`` and ``/metrics`` show it."""
    failures = () if poll is None else poll.failures
    errors = {} if poller is None else poller.errors
    return HeadView(
        last_poll_age=age(now, supervisor.reference.last_poll_at),
        last_ok_age=age(now, supervisor.reference.last_ok_at),
        failures=tuple(EndpointProblem(f.endpoint, str(f.kind), f.detail) for f in failures),
        errors=tuple(
            (endpoint, str(kind), count) for (endpoint, kind), count in sorted(errors.items())
        ),
    )


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
        code = exit_code(event.attributes.get("exitCode"))
        return ContainerStatus(False, f"exited (exit code {'unknown' if code is None else code})")
    if event.action == "pause":
        return ContainerStatus(False, "paused")
    if event.action == "destroy":
        return ContainerStatus(False, "removed")
    return None


def exit_code(value: str | None) -> int | None:
    """The ``die`` event's ``exitCode``; ``None`` when Docker gave none that is a number."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _log_view(status: FollowStatus, now: float) -> LogView:
    return LogView(
        attached=status.attached,
        waiting=status.waiting,
        detail=status.detail,
        lines=status.lines,
        lines_cut=status.lines_cut,
        attaches=status.attaches,
        silences=status.silences,
        last_line_age=age(now, status.last_line_at),
        attached_age=age(now, status.attached_at),
        missing_age=age(now, status.missing_since),
    )
