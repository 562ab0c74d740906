"""Docker events: notice at once when a watched container starts, dies, is removed or renamed.

One ``GET /events`` stream per watcher, run as a task of the watcher's own task group (never
aiodocker's auto-spawned task, whose failure breaks ``Docker.close()``). When the stream ends
or fails it is re-opened with back-off, and every follower is woken to re-inspect its
container, since events may have been missed meanwhile.

The stream asks the daemon only for the events of the watched containers (the *narrowing*
filters, e.g. their names and ids, or the label), so other containers on a busy daemon cost
nothing; the daemon's ``container`` filter matches name *prefixes*, so names are still
compared exactly by the handler. When the narrowing changes (a new container took a watched
name), :meth:`EventStream.refilter` reopens the stream ``since`` the moment the previous one
closed, so the events in between are delivered all the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import anyio

from azwatch.containers import DOCKER_TRANSIENT, EngineTimeout, describe_error

logger = logging.getLogger("azwatch.events")

#: The container actions azwatch reacts to.
ACTIONS = (
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "destroy",
    "rename",
    "pause",
    "unpause",
    "oom",
)
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
#: How often, while a connection opens, to look whether its response has arrived.
OPEN_POLL = 0.05
#: Seconds before a refilter's close that the reopened stream replays: events already sent
#: but not yet read when the old stream closed come again (handling one twice is harmless).
REPLAY_MARGIN = 1.0


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    """One container event from the Engine."""

    action: str
    name: str
    id: str
    time_ns: int
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerEvent | None:
        """Build from a decoded event; ``None`` if it is not a container event."""
        if data.get("Type", "container") != "container":
            return None
        actor = data.get("Actor") or {}
        attributes = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        action = str(data.get("Action") or data.get("status") or "")
        # "exec_start: sh -c …" and "health_status: healthy" carry details after a colon.
        action = action.split(":", 1)[0].strip()
        time_ns = data.get("timeNano")
        return cls(
            action=action,
            name=attributes.get("name", "").lstrip("/"),
            id=str(actor.get("ID") or data.get("id") or ""),
            time_ns=time_ns if isinstance(time_ns, int) else 0,
            attributes=attributes,
        )


Handler = Callable[[ContainerEvent], Awaitable[None]]
#: Filters added to the stream's own, each key's values ORed (Docker's ``filters`` query).
Narrowing = Callable[[], Mapping[str, Sequence[str]]]


class EventStream:
    """Delivers the Engine's container events to *handler*, reconnecting for ever.

    *on_reconnect* runs before every reconnection, so the caller can reconcile its containers
    with whatever happened while the stream was down. A connection whose response has not
    begun within *open_within* seconds is given up (the daemon took it and hangs).
    *narrowing* gives the filters that limit the stream to the watched containers, read at
    each connection.
    """

    def __init__(
        self,
        docker: aiodocker.Docker,
        handler: Handler,
        *,
        open_within: float,
        on_reconnect: Callable[[], None] = lambda: None,
        narrowing: Narrowing = dict,
    ) -> None:
        self.docker = docker
        self.handler = handler
        self.on_reconnect = on_reconnect
        self.open_within = open_within
        self.narrowing = narrowing
        self.received = 0
        #: Why the stream is down, from its latest failure until it opens again (``/healthz``).
        self.problem: str | None = None
        #: The filters of the latest connection (once it opened: see :attr:`connected`).
        self.filters: dict[str, list[str]] = {}
        self._connection: anyio.CancelScope | None = None
        self._refilter = False
        self._refiltered_at = 0.0

    def refilter(self) -> None:
        """The narrowing changed: reopen the stream with it, missing no event."""
        self._refilter, self._refiltered_at = True, time.time()
        if self._connection is not None:
            self._connection.cancel()

    @property
    def connected(self) -> bool:
        """Whether the event stream is open right now (for ``/healthz``)."""
        return self.docker.events.json_stream is not None

    async def run(self) -> None:
        """Follow events until cancelled."""
        failures = 0
        failing: str | None = None
        since: float | None = None
        while True:
            error = await self._stream_once(since)
            since = None
            if self._refilter and error is None:
                # Closed on purpose: open again at once, replaying from where this one ended.
                self._refilter, since = False, self._refiltered_at - REPLAY_MARGIN
                continue
            failures = failures + 1 if error is not None else 0
            detail = describe_error(error) if error is not None else "event stream ended"
            if error is not None:
                self.problem = detail
            if detail != failing:
                logger.warning(
                    "Docker events: %s; reconnecting", detail, extra={"event": "events_lost"}
                )
                failing = detail
            await anyio.sleep(min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** min(failures, 16)))
            self.on_reconnect()

    async def _stream_once(self, since: float | None) -> BaseException | None:
        """One connection (replaying from *since*, a Unix time, if given): deliver events
        until it ends; return its error, if any."""
        self._refilter = False
        filters = {
            **{key: list(values) for key, values in self.narrowing().items()},
            "type": ["container"],
            "event": list(ACTIONS),
        }
        self.filters = filters
        params: dict[str, Any] = {"filters": filters}
        if since is not None:
            params["since"] = f"{since:.9f}"
        failure: BaseException | None = None
        subscriber = self.docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]

        async def pump() -> None:
            nonlocal failure
            try:
                await self.docker.events.run(**params)
            except DOCKER_TRANSIENT as error:
                failure = error

        async def opened() -> None:
            # aiodocker's stream has no deadline, and a daemon that accepts the connection but
            # never answers would hold it for ever. Its JSON stream exists once the headers
            # came; aiodocker sets no event for that, so look for it.
            nonlocal failure
            with anyio.move_on_after(self.open_within):
                while self.docker.events.json_stream is None:  # noqa: ASYNC110
                    await anyio.sleep(OPEN_POLL)
                self.problem = None
                return
            failure = EngineTimeout("an events request", self.open_within)
            group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            self._connection = group.cancel_scope
            group.start_soon(pump)
            group.start_soon(opened)
            # run() publishes None to subscribers when the stream ends, however it ends.
            while (data := await subscriber.get()) is not None:
                event = ContainerEvent.from_json(data) if isinstance(data, dict) else None
                if event is not None:
                    self.received += 1
                    await self.handler(event)
            group.cancel_scope.cancel()
        self._connection = None
        return failure
