"""The probe watcher: ``RESTART_VIA=kubelet``, azwatch as a sidecar in the node's pod.

In a pod there is no Docker socket and the kubelet, not azwatch, restarts containers. So this
watcher opens no Docker client at all. It sees the node through the node channel (the node's
own RPC, ``NODE_RPC_URL``, on 127.0.0.1: the pod's containers share the network) and the
network through the reference poller, and hands both to the same pure
:class:`~azwatch.supervisor.Supervisor` the Docker watcher uses. When the supervisor asks for
a restart (a :class:`~azwatch.effects.RestartContainer` effect), nothing is restarted: the
decision becomes the :class:`~azwatch.probe.Verdict` that ``GET /livez`` serves, 503 with the
rule and its numbers, and the node container's ``livenessProbe`` lets the kubelet restart it.
The verdict stays until :class:`~azwatch.probe.RunTracker` sees the new run begin.

One anyio task group owns every task, as in :mod:`azwatch.watcher`: the reference poller, the
node poller, the HTTP endpoint, the notifier, and the decision task, the only caller of the
supervisor (and the only writer of the tracker and the verdict), fed through one bounded
memory object stream.

The kubelet's back-off replaces azwatch's: ``BACKOFF_FACTOR`` is taken as 1 here, so each run
gets ``COOLDOWN`` to start before the rules judge it, and the kubelet spaces the restarts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import anyio

from azwatch.config import Config
from azwatch.control import ControlAccess, is_loopback
from azwatch.effects import Effect, LogRecord, Reported, RestartContainer, SendNotice
from azwatch.events import LogUnreadable, NodeSample, RestartFinished, RunStarted
from azwatch.follower import loop_time
from azwatch.head import HeadPoller, PollResult
from azwatch.http import LIVEZ_PATH, Control, serve
from azwatch.inbox import Inbox
from azwatch.nodepoll import NodeFailure, NodePoller
from azwatch.notify import Notifier
from azwatch.probe import NewRun, RunTracker, Verdict
from azwatch.progress import format_duration
from azwatch.redaction import endpoint_label, redact_url
from azwatch.snapshot import LogView, Snapshot, take
from azwatch.supervisor import (
    ContainerEvents,
    Message,
    NodePolled,
    Pause,
    RestartDone,
    Resume,
    Supervisor,
)
from azwatch.watcher import (
    QUEUE_SIZE,
    ControlRequest,
    decide_forever,
    head_view,
    poll_reference,
    reference_poller,
    submit_control,
    write_log,
)

logger = logging.getLogger("azwatch.probewatch")

#: The node's name in logs, metrics and ``/status`` when ``CONTAINER_NAME`` is not set.
DEFAULT_NODE_NAME = "node"
#: Why the log is not read, as the state model and ``/status`` say it.
NOT_READ = "not read with RESTART_VIA=kubelet: the node's RPC gives its signals"
NO_LOG = LogView(detail=NOT_READ)
#: Probe periods a 503 may last with no new run before azwatch says the kubelet does not act.
UNHEEDED_PERIODS = 30


@dataclass(frozen=True, slots=True)
class _NodePolled:
    """One poll of the node channel ended with this sample or this failure."""

    outcome: NodeSample | NodeFailure


class ProbeWatcher:
    """Decides for the pod's node and serves the verdict at ``/livez`` until cancelled.

    Tests may read :attr:`started`, :attr:`http_address`, :attr:`verdict` and call
    :meth:`snapshot`; everything else is internal.
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = loop_time) -> None:
        # The kubelet's back-off replaces azwatch's (module docstring).
        self.config = replace(config, backoff_factor=1.0)
        self.name = config.container_names[0] if config.container_names else DEFAULT_NODE_NAME
        self.clock = clock
        self.supervisor = Supervisor(self.config)
        self.tracker = RunTracker(config.probe_period)
        self.verdict = Verdict()
        self.started = anyio.Event()
        self.notifier = Notifier(config.notify_urls, clock=clock)
        self.poller: HeadPoller | None = None
        #: (host, port) of the HTTP endpoint once it listens.
        self.http_address: tuple[str, int] | None = None
        self._last_poll: PollResult | None = None
        self._inbox: Inbox[Message | _NodePolled | ControlRequest] | None = None
        self.node_poller: NodePoller | None = None
        self._unheeded_said = False

    def snapshot(self) -> Snapshot:
        """What the watcher sees now, as frozen values (``/status``, ``/metrics``)."""
        now = self.clock()
        head = head_view(self.supervisor, self._last_poll, self.poller, now)
        node = self.node_poller
        errors = () if node is None else node.error_counts()
        return take(
            self.supervisor,
            now=now,
            wall=time.time(),
            logs={self.name: NO_LOG},
            head=head,
            node_errors={self.name: errors},
        )

    def livez(self) -> dict[str, Any]:
        """The verdict as ``/livez`` serves it."""
        return self.verdict.document(self.clock())

    async def run(self) -> None:
        """Decide and serve until cancelled."""
        config = self.config
        inbox = Inbox[Message | _NodePolled | ControlRequest](QUEUE_SIZE)
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            self._inbox = inbox
            self.poller = reference_poller(session, config)
            self.node_poller = node = NodePoller(
                session,
                rpc_url=config.node_rpc_url,
                metrics_url=config.node_metrics_url,
                timeout=config.rpc_timeout,
            )
            self.supervisor.watch(self.name, self.clock())
            logger.info(
                "azwatch in probe mode (RESTART_VIA=kubelet): no Docker; watching %s through "
                "its RPC %s; reference %s; a decided restart is served at %s for the kubelet, "
                "whose back-off replaces azwatch's (BACKOFF_FACTOR and MAX_COOLDOWN unused); "
                "%s",
                self.name,
                endpoint_label(config.node_rpc_url),
                ", ".join(redact_url(url) for url in config.rpc_urls),
                LIVEZ_PATH,
                "DRY RUN: /livez stays 200" if config.dry_run else "restarts enabled",
                extra={
                    "event": "start",
                    "fields": {"config": config.redacted(), "mode": "kubelet"},
                },
            )
            if is_loopback(config.http_host):
                logger.warning(
                    "HTTP_HOST=%s is a loopback address: the kubelet probes the pod's IP and "
                    "cannot reach %s there (every probe fails, and the node is killed); set "
                    "HTTP_HOST=0.0.0.0",
                    config.http_host,
                    LIVEZ_PATH,
                    extra={"event": "livez_unreachable"},
                )
            async with anyio.create_task_group() as group:
                group.start_soon(self._decide_forever, inbox, name="azwatch.decide")
                group.start_soon(self._poll_head, self.poller, name="azwatch.head")
                group.start_soon(self._poll_node, node, name="azwatch.node")
                if self.notifier.enabled:
                    group.start_soon(self.notifier.run, name="azwatch.notify")
                assert config.http_port is not None  # required in kubelet mode
                access = ControlAccess(config.http_host, config.control_token)
                self.http_address = await group.start(
                    serve,
                    self.snapshot,
                    config.http_host,
                    config.http_port,
                    Control(self._submit, self.clock, access),
                    self.livez,
                    name="azwatch.http",
                )
                self.started.set()

    # --- sources --------------------------------------------------------------------------

    async def _poll_head(self, poller: HeadPoller) -> None:
        assert self._inbox is not None
        await poll_reference(poller, self._inbox, self._seen, self.config.rpc_poll_interval)

    def _seen(self, result: PollResult) -> None:
        self._last_poll = result

    async def _poll_node(self, poller: NodePoller) -> None:
        async def polled(outcome: NodeSample | NodeFailure) -> None:
            assert self._inbox is not None
            await self._inbox.send(_NodePolled(outcome))

        await poller.run(polled, interval=self.config.rpc_poll_interval)

    # --- the decision task ----------------------------------------------------------------

    async def _decide_forever(self, inbox: Inbox[Message | _NodePolled | ControlRequest]) -> None:
        def ticked(effects: list[Effect]) -> None:
            now = self.clock()
            self._carry_out(effects, now)
            self._say_if_unheeded(now)

        await decide_forever(
            self.supervisor,
            inbox,
            self._take,
            ticked,
            clock=self.clock,
            check_interval=self.config.check_interval,
        )

    async def _submit(self, message: Pause | Resume) -> None:
        assert self._inbox is not None
        await submit_control(self._inbox, message)

    def _take(self, message: Message | _NodePolled | ControlRequest) -> None:
        now = self.clock()
        if isinstance(message, ControlRequest):
            self._carry_out(self.supervisor.handle(message.message, now), now)
            message.applied.set()
            return
        if not isinstance(message, _NodePolled):
            self._carry_out(self.supervisor.handle(message, now), now)
            return
        outcome = message.outcome
        if isinstance(outcome, NodeFailure):
            self.tracker = self.tracker.unreachable(now)
            polled = NodePolled(self.name, outcome.event())
        else:
            self.tracker, run = self.tracker.answered(outcome.best, now)
            if run is not None:
                self._new_run(run, now)
            polled = NodePolled(self.name, outcome)
        self._carry_out(self.supervisor.handle(polled, now), now)

    def _new_run(self, run: NewRun, now: float) -> None:
        """The kubelet (or a crash) started the node again: the verdict served is over."""
        if not self.verdict.alive:
            decided = self.verdict.since if self.verdict.since is not None else now
            detail = f"the kubelet restarted it {format_duration(now - decided)} after the verdict"
            done = RestartDone(self.name, RestartFinished(True, detail))
            self._carry_out(self.supervisor.handle(done, now), now)
        self.verdict, self._unheeded_said = Verdict(), False
        logger.info(
            "%s: new run: %s",
            self.name,
            run.reason,
            extra={"container": self.name, "event": "new_run", "fields": {"run": run.number}},
        )
        # Without Docker there is no log to read: the node channel alone gives the signals.
        started = ContainerEvents(
            self.name, (RunStarted(run.run_id, run.started_at), LogUnreadable(NOT_READ))
        )
        self._carry_out(self.supervisor.handle(started, now), now)

    def _carry_out(self, effects: Iterable[Effect], now: float) -> None:
        for effect in effects:
            match effect:
                case LogRecord():
                    write_log(logger, effect)
                case SendNotice(notice):
                    self.notifier.post(notice)
                case RestartContainer(name, decision, _stop_timeout, dry_run):
                    if dry_run:
                        # Decided and logged; /livez stays 200 and the run goes on.
                        done = RestartDone(name, RestartFinished(True, "dry run: /livez stays 200"))
                        self._carry_out(self.supervisor.handle(done, now), now)
                    else:
                        self.verdict = self.verdict.decided(decision, now)
                case Reported():
                    pass  # the log records above already tell the operator

    def _say_if_unheeded(self, now: float) -> None:
        """A 503 that lasts with no new run: the livenessProbe is probably not wired."""
        since = self.verdict.since
        limit = UNHEEDED_PERIODS * self.config.probe_period
        if since is None or self._unheeded_said or now - since < limit:
            return
        self._unheeded_said = True
        logger.warning(
            "%s: %s has answered 503 for %s and the node has not restarted: does the node "
            "container's livenessProbe get port %s, path %s, every PROBE_PERIOD=%gs?",
            self.name,
            LIVEZ_PATH,
            format_duration(now - since),
            self.config.http_port,
            LIVEZ_PATH,
            self.config.probe_period,
            extra={"container": self.name, "event": "verdict_unheeded"},
        )


async def watch_via_kubelet(config: Config) -> None:
    """The probe mode until cancelled: ``await ProbeWatcher(config).run()``."""
    await ProbeWatcher(config).run()
