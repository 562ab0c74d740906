"""A fake Docker Engine for tests: aiohttp on a unix socket, one scripted aleph-node, hangs
on demand.

It speaks the part of the Engine API azwatch uses, as aiodocker sends it: ``GET /_ping`` and
``GET /version`` unversioned (aiodocker asks the API version first, then prefixes every call
with ``/v1.43/``), ``GET /containers/json``, ``GET /containers/{id}/json``, ``GET
/containers/{id}/logs`` (``since``, ``tail``, ``follow``, ``timestamps``; multiplexed frames,
or the raw stream for a TTY container), ``GET /events`` (JSON lines) and ``POST
/containers/{id}/restart``. The container's log is written by :class:`ScriptedNode` in
aleph-node's exact format (``tests/fakenode/fakenode.sh`` prints the same lines).

A test makes the daemon hang by adding names to :attr:`FakeEngine.hanging`:

* ``"list"``, ``"inspect"``, ``"logs"``, ``"events"``, ``"restart"``: the request is accepted
  and never answered (not even its headers);
* ``"logs_stream"``, ``"events_stream"``: the response begins (headers sent) and then
  brings nothing, both for streams already open and for new ones, while the node goes on
  printing: a follow that hangs mid-stream.

A request that hung stays hung when the name is removed (as a stuck connection does); new
requests are answered again. Everything hung is released when the engine stops::

    async with FakeEngine(tmp_path) as engine:
        engine.docker_host        # unix:///.../docker.sock
        engine.hanging.add("inspect")
        engine.node.best          # the node's best block
        engine.requests["restart"]
"""

from __future__ import annotations

import contextlib
import json
import struct
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self

import anyio
import anyio.abc
from aiohttp import web

Hang = Literal["list", "inspect", "logs", "logs_stream", "events", "events_stream", "restart"]

API_VERSION: Final = "1.43"
#: The node's chain in its status reports: Aleph Zero mainnet, short form.
GENESIS_SHORT: Final = "0x7025…344e"
#: Longest path of a unix socket (``sun_path`` is 108 bytes with its NUL).
SOCKET_PATH_MAX: Final = 107


def rfc3339_nano(ns: int) -> str:
    """Docker's log timestamp for *ns*: RFC 3339 in UTC, its fraction's trailing zeros cut."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def node_timestamp(ns: int) -> str:
    """aleph-node's own timestamp: local time to the millisecond (the image runs in UTC)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return (
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{fraction // 1_000_000:03d}"
    )


def short_hash(number: int, salt: int = 0) -> str:
    """A deterministic short block hash ``0xabcd…ef01``."""
    mixed = (number * 2_654_435_761 + salt * 40_503) & 0xFFFFFFFF
    return f"0x{mixed >> 16:04x}…{mixed & 0xFFFF:04x}"


def node_line(ns: int, thread: str, target: str, message: str) -> str:
    """One line as aleph-node prints it with ``--detailed-log-output`` (four trailing spaces)."""
    return f"{node_timestamp(ns)}  INFO {thread:>20} {target}: {message}    "


@dataclass
class LogEntry:
    """One line of the container's log: when Docker received it, and its stream (2: stderr)."""

    ns: int
    text: str
    stream: int = 2


@dataclass
class ScriptedNode:
    """The node inside the fake container: imports *step* blocks every *tick* seconds and
    prints the 20 s status reports every *status_every* seconds (scaled)."""

    best: int = 105_499_000
    step: int = 1
    tick: float = 0.2
    status_every: float = 1.0
    peers: int = 10
    #: Print nothing at all (the node still runs and imports).
    quiet: bool = False

    def banner(self, ns: int) -> list[str]:
        """What a run prints when it starts."""
        worker = "tokio-runtime-worker"
        return [
            node_line(ns, "main", "sc_cli::runner", "Aleph Node"),
            node_line(ns, "main", "sc_cli::runner", "✌️  version 15.1.0-f2a00c1dbd3"),
            node_line(ns, "main", "sc_cli::runner", "❤️  by Cardinal Cryptography, 2019-2025"),
            node_line(ns, "main", "sc_cli::runner", "📋 Chain specification: Aleph Zero"),
            node_line(ns, "main", "sc_cli::runner", "👤 Role: AUTHORITY"),
            node_line(ns, "main", "sc_service::builder", f"📦 Highest known block at #{self.best}"),
            node_line(ns, worker, "aleph-block-sync", "Switched to major sync state."),
            node_line(ns, worker, "aleph-party", f"Running session {self.best // 900}."),
            node_line(ns, worker, "aleph-block-sync", "No longer in major sync state."),
        ]

    def imported(self, ns: int) -> list[str]:
        """One tick's imports."""
        lines = []
        for _ in range(self.step):
            self.best += 1
            message = f"✨ Imported #{self.best} ({short_hash(self.best)})"
            lines.append(node_line(ns, "tokio-runtime-worker", "substrate", message))
        return lines

    def status_report(self, ns: int) -> list[str]:
        """The periodic reports: peers on both protocols, then the sync status line."""
        worker, best = "tokio-runtime-worker", self.best
        finalized = max(0, best - 2)
        sync = (
            f"Imported: #{best} ({short_hash(best)}), finalized: #{finalized} "
            f"({short_hash(finalized)}), favourite: #{best} ({short_hash(best)})."
        )
        return [
            node_line(
                ns,
                worker,
                "aleph-network",
                f"Network status report: /{GENESIS_SHORT}/sync/0 connected peers - {self.peers}; ",
            ),
            node_line(
                ns,
                worker,
                "aleph-network",
                f"Network status report: /{GENESIS_SHORT}/auth/0 connected peers - {self.peers}; ",
            ),
            node_line(ns, worker, "aleph-block-sync", sync),
        ]


@dataclass
class FakeContainer:
    """The one container of the fake engine."""

    name: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    tty: bool = False
    running: bool = True
    started_ns: int = 0
    finished_ns: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)

    def matches(self, filters: dict[str, list[str]]) -> bool:
        """Whether ``GET /containers/json``'s *filters* (label, status, name) keep it."""
        for wanted in filters.get("label", []):
            key, _, value = wanted.partition("=")
            if key not in self.labels or (value and self.labels[key] != value):
                return False
        status = "running" if self.running else "exited"
        if filters.get("status") and status not in filters["status"]:
            return False
        return all(name in self.name for name in filters.get("name", []))

    def inspect(self) -> dict[str, Any]:
        """``GET /containers/{id}/json`` as dockerd answers it (the fields azwatch reads and
        a few around them)."""
        return {
            "Id": self.id,
            "Created": rfc3339_nano(self.started_ns - 60_000_000_000),
            "Name": "/" + self.name,
            "RestartCount": 0,
            "State": {
                "Status": "running" if self.running else "exited",
                "Running": self.running,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": 4242 if self.running else 0,
                "ExitCode": 0,
                "Error": "",
                "StartedAt": rfc3339_nano(self.started_ns),
                "FinishedAt": "0001-01-01T00:00:00Z"
                if self.finished_ns is None
                else rfc3339_nano(self.finished_ns),
            },
            "Config": {
                "Hostname": self.id[:12],
                "Tty": self.tty,
                "Image": "public.ecr.aws/p6e8q1z1/aleph-node:r-15.1.0",
                "Labels": dict(self.labels),
            },
            "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {}}},
        }

    def summary(self) -> dict[str, Any]:
        """This container's entry in ``GET /containers/json``."""
        return {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": "public.ecr.aws/p6e8q1z1/aleph-node:r-15.1.0",
            "State": "running" if self.running else "exited",
            "Status": "Up" if self.running else "Exited (0)",
            "Labels": dict(self.labels),
        }


class FakeEngine:
    """The fake daemon; ``async with FakeEngine(tmp_path) as engine`` serves it.

    *started_ago* places the container's current run that many seconds in the past (with
    its banner then): a node running long before azwatch starts, so no cooldown holds.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "aleph-node",
        node: ScriptedNode | None = None,
        started_ago: float = 600.0,
        tty: bool = False,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.socket_path = directory / "docker.sock"
        if len(str(self.socket_path)) > SOCKET_PATH_MAX:
            msg = f"socket path too long for a unix socket: {self.socket_path}"
            raise ValueError(msg)
        self.node = node or ScriptedNode()
        self.container = FakeContainer(name, tty=tty, labels=dict(labels or {}))
        self.container.started_ns = time.time_ns() - int(started_ago * 1e9)
        #: Endpoints that hang now (see the module's docstring).
        self.hanging: set[Hang] = set()
        #: When ``"restart"`` hangs, whether the daemon restarts the container anyway (its
        #: answer is what is lost) or not at all.
        self.restart_while_hanging = False
        #: Requests received, by endpoint: "ping", "version", "list", "inspect", "logs",
        #: "events", "restart".
        self.requests: Counter[str] = Counter()
        #: Requests parked by a hang right now, by endpoint.
        self.parked: Counter[str] = Counter()
        #: Restarts the daemon carried out.
        self.restarts = 0
        #: Called after each restart the daemon carried out (the node's new behaviour).
        self.on_restart: Callable[[ScriptedNode], None] | None = None
        self._changed = anyio.Event()
        self._stopping = anyio.Event()
        self._event_queues: list[list[dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._print(self.node.banner(self.container.started_ns), self.container.started_ns)

    @property
    def docker_host(self) -> str:
        """The ``DOCKER_HOST`` that reaches this engine."""
        return f"unix://{self.socket_path}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/_ping", self._ping)
        app.router.add_get("/version", self._version)
        app.router.add_get("/v{version}/_ping", self._ping)
        app.router.add_get("/v{version}/version", self._version)
        app.router.add_get("/v{version}/containers/json", self._list)
        app.router.add_get("/v{version}/containers/{id}/json", self._inspect)
        app.router.add_get("/v{version}/containers/{id}/logs", self._logs)
        app.router.add_get("/v{version}/events", self._events)
        app.router.add_post("/v{version}/containers/{id}/restart", self._restart)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        try:
            await web.UnixSite(runner, str(self.socket_path)).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._run_node)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()  # release every parked request
        runner, self._runner = self._runner, None
        try:
            if self._group is not None:
                self._group.cancel_scope.cancel()
                await self._group.__aexit__(None, None, None)
        finally:
            if runner is not None:
                with anyio.CancelScope(shield=True):
                    await runner.cleanup()

    # --- the node -------------------------------------------------------------------------

    def _print(self, lines: list[str], ns: int | None = None) -> None:
        at = time.time_ns() if ns is None else ns
        self.container.log.extend(LogEntry(at, line) for line in lines)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _run_node(self) -> None:
        last_status = anyio.current_time()
        while True:
            await anyio.sleep(self.node.tick)
            if not self.container.running:
                continue
            ns = time.time_ns()
            lines = self.node.imported(ns)
            if anyio.current_time() - last_status >= self.node.status_every:
                lines += self.node.status_report(ns)
                last_status = anyio.current_time()
            if not self.node.quiet:
                self._print(lines)

    def restart_container(self) -> None:
        """What ``docker restart`` does to the container: the run ends, a new one starts."""
        container = self.container
        stopped = time.time_ns()
        container.running, container.finished_ns = False, stopped
        self._event("die", {"exitCode": "0"}, stopped)
        self._event("stop", {}, stopped)
        self._notify()  # a follow of the run that ended ends
        started = stopped + 1_000_000
        container.running, container.started_ns = True, started
        self.restarts += 1
        if self.on_restart is not None:
            self.on_restart(self.node)
        self._print(self.node.banner(started), started)
        self._event("start", {}, started)
        self._event("restart", {}, started)

    # --- hanging --------------------------------------------------------------------------

    async def _park(self, endpoint: str) -> None:
        """Never answer (until the engine stops)."""
        self.parked[endpoint] += 1
        try:
            await self._stopping.wait()
        finally:
            self.parked[endpoint] -= 1

    # --- handlers -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Api-Version": API_VERSION, "Server": "Docker/24.0.7 (linux)"}

    def _container_of(self, request: web.Request) -> FakeContainer | None:
        wanted = request.match_info["id"]
        container = self.container
        if wanted in (container.name, "/" + container.name) or (
            len(wanted) >= 3 and container.id.startswith(wanted)
        ):
            return container
        return None

    def _no_such(self, request: web.Request) -> web.Response:
        message = f"No such container: {request.match_info['id']}"
        return web.json_response({"message": message}, status=404, headers=self._headers())

    async def _ping(self, request: web.Request) -> web.Response:
        self.requests["ping"] += 1
        return web.Response(text="OK", headers=self._headers())

    async def _version(self, request: web.Request) -> web.Response:
        self.requests["version"] += 1
        body = {
            "Version": "24.0.7",
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.12",
            "Os": "linux",
            "Arch": "amd64",
        }
        return web.json_response(body, headers=self._headers())

    async def _list(self, request: web.Request) -> web.Response:
        self.requests["list"] += 1
        if "list" in self.hanging:
            await self._park("list")
        filters = json.loads(request.query.get("filters") or "{}")
        found = [self.container.summary()] if self.container.matches(filters) else []
        return web.json_response(found, headers=self._headers())

    async def _inspect(self, request: web.Request) -> web.Response:
        self.requests["inspect"] += 1
        if "inspect" in self.hanging:
            await self._park("inspect")
        container = self._container_of(request)
        if container is None:
            return self._no_such(request)
        return web.json_response(container.inspect(), headers=self._headers())

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        self.requests["logs"] += 1
        if "logs" in self.hanging:
            await self._park("logs")
        container = self._container_of(request)
        if container is None:
            return self._no_such(request)
        query = request.query
        follow = _flag(query.get("follow"))
        timestamps = _flag(query.get("timestamps"))
        since_ns = _since_ns(query.get("since"))
        entries = [entry for entry in container.log if entry.ns >= since_ns]
        tail = query.get("tail", "all")
        if tail != "all" and int(tail) >= 0:
            entries = entries[len(entries) - int(tail) :] if int(tail) else []
        content_type = (
            "application/vnd.docker.raw-stream"
            if container.tty
            else "application/vnd.docker.multiplexed-stream"
        )
        response = web.StreamResponse(headers={**self._headers(), "Content-Type": content_type})
        await response.prepare(request)  # the headers go out now
        with contextlib.suppress(ConnectionResetError):  # the client gave up: so be it
            await self._follow(response, container, entries, follow=follow, timestamps=timestamps)
        return response

    async def _follow(
        self,
        response: web.StreamResponse,
        container: FakeContainer,
        entries: list[LogEntry],
        *,
        follow: bool,
        timestamps: bool,
    ) -> None:
        run_started = container.started_ns
        sent = len(container.log)
        await self._write_entries(response, container, entries, timestamps)
        # A follow ends when the run it follows ends, after the lines the run printed.
        while follow:
            changed = self._changed
            if len(container.log) > sent:
                fresh, sent = container.log[sent:], len(container.log)
                if container.started_ns != run_started:  # not the next run's lines
                    fresh = [entry for entry in fresh if entry.ns < container.started_ns]
                await self._write_entries(response, container, fresh, timestamps)
                continue
            if not container.running or container.started_ns != run_started:
                break
            await changed.wait()
        await response.write_eof()

    async def _write_entries(
        self,
        response: web.StreamResponse,
        container: FakeContainer,
        entries: list[LogEntry],
        timestamps: bool,
    ) -> None:
        if "logs_stream" in self.hanging:
            await self._park("logs_stream")
        chunks = []
        for entry in entries:
            text = f"{rfc3339_nano(entry.ns)} {entry.text}\n" if timestamps else entry.text + "\n"
            payload = text.encode()
            if container.tty:
                chunks.append(payload)
            else:
                chunks.append(struct.pack(">BxxxL", entry.stream, len(payload)) + payload)
        if chunks:
            await response.write(b"".join(chunks))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        self.requests["events"] += 1
        if "events" in self.hanging:
            await self._park("events")
        response = web.StreamResponse(
            headers={**self._headers(), "Content-Type": "application/json"}
        )
        await response.prepare(request)
        queue: list[dict[str, Any]] = []
        self._event_queues.append(queue)
        with contextlib.suppress(ConnectionResetError):
            await self._stream_events(response, queue)
        return response

    async def _stream_events(
        self, response: web.StreamResponse, queue: list[dict[str, Any]]
    ) -> None:
        try:
            while True:
                if "events_stream" in self.hanging:
                    await self._park("events_stream")
                if not queue:
                    await self._changed.wait()
                    continue
                batch, queue[:] = list(queue), []
                await response.write(b"".join(json.dumps(e).encode() + b"\n" for e in batch))
        finally:
            self._event_queues.remove(queue)

    def _event(self, action: str, attributes: dict[str, str], ns: int) -> None:
        container = self.container
        event = {
            "status": action,
            "id": container.id,
            "from": "public.ecr.aws/p6e8q1z1/aleph-node:r-15.1.0",
            "Type": "container",
            "Action": action,
            "Actor": {
                "ID": container.id,
                "Attributes": {
                    "image": "public.ecr.aws/p6e8q1z1/aleph-node:r-15.1.0",
                    "name": container.name,
                    **container.labels,
                    **attributes,
                },
            },
            "scope": "local",
            "time": ns // 1_000_000_000,
            "timeNano": ns,
        }
        for queue in self._event_queues:
            queue.append(event)

    async def _restart(self, request: web.Request) -> web.Response:
        self.requests["restart"] += 1
        container = self._container_of(request)
        if container is None:
            return self._no_such(request)
        if "restart" in self.hanging:
            if self.restart_while_hanging:
                self.restart_container()
            await self._park("restart")
            return web.Response(status=503, text="shutting down", headers=self._headers())
        self.restart_container()
        return web.Response(status=204, headers=self._headers())


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _since_ns(value: str | None) -> int:
    """Docker's ``since``: Unix seconds with an optional nine-digit fraction."""
    if not value:
        return 0
    seconds, _, fraction = value.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])
