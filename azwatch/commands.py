"""The live commands behind the CLI: ``azwatch run`` and ``azwatch check``.

``run`` is the process around :func:`azwatch.watch` (or, with ``RESTART_VIA=kubelet``, the
probe watcher of :mod:`azwatch.probewatch`, which needs no Docker): it checks that the Docker
socket is usable (one clear line and exit 3 if not), handles SIGTERM/SIGINT by cancelling the
watcher, and exits 0 once everything is closed. ``check`` takes one look at each container and the
reference head and answers with an exit code.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp
import anyio

from azwatch.config import Config
from azwatch.containers import (
    DOCKER_TRANSIENT,
    ContainerInfo,
    describe_error,
    docker_since,
    docker_url,
    engine_deadline,
    inspect,
    list_labelled,
    on_loop_clock,
    open_docker,
    redacted_docker_url,
    unix_socket_path,
)
from azwatch.events import ContainerStatus, Event, HeadUnavailable, LogCaughtUp, RunStarted
from azwatch.head import HeadPoller
from azwatch.logcursor import LogCursor, resume
from azwatch.logparse import LineAssembler, parse_line
from azwatch.policy import BLIND_REASONS, Decision, Hold, Restart, decide
from azwatch.probewatch import ProbeWatcher
from azwatch.progress import format_block, format_value
from azwatch.state import NodeState, apply, initial_state
from azwatch.watcher import Watcher

logger = logging.getLogger("azwatch")

EXIT_OK = 0
EXIT_WOULD_RESTART = 1
EXIT_BLIND = 3
#: ``check`` reads a run's whole tail in one answer: allowed this many DOCKER_TIMEOUTs.
LOG_READ_ANSWERS = 4


def docker_problem(config: Config) -> str | None:
    """Why the configured Docker socket cannot be used, in one line; ``None`` if it can.

    Only a local socket can be checked up front; a TCP address (a socket proxy) is tried by
    the watcher, which waits for it.
    """
    path = unix_socket_path(docker_url(config))
    if path is None:
        return None
    if not os.path.exists(path):
        return (
            f"the Docker socket {path} does not exist: mount it into the container "
            "(-v /var/run/docker.sock:/var/run/docker.sock) or set DOCKER_HOST "
            "(e.g. tcp://socket-proxy:2375)"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        owner = os.stat(path)
        gid = owner.st_gid
        return (
            f"no permission to use the Docker socket {path} (owned by uid {owner.st_uid}, "
            f"gid {gid}) as uid {os.getuid()} with groups "
            f"{sorted({os.getgid(), *os.getgroups()})}: set MONITOR_GID={gid} "
            f"(docker run --group-add {gid}, or --user {os.getuid()}:{gid}, or --user 0 "
            f"-e MONITOR_GID={gid} to let azwatch switch itself)"
        )
    return None


def drop_privileges(config: Config) -> str | None:
    """Started as root: become ``MONITOR_UID``:``MONITOR_GID`` before anything else.

    This is what the original image did with gosu, without a wrapper process in front of
    azwatch (so it still receives SIGTERM itself) and without chown-ing anything. It changes
    the whole process, so only the CLI calls it, and only when the variables are set. Returns
    why it could not, in one line; ``None`` when done or not needed.
    """
    if os.geteuid() != 0 or config.monitor_uid == 0:
        return None
    uid, gid = config.monitor_uid, config.monitor_gid
    try:
        os.setgroups([gid])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as error:
        return (
            f"cannot switch to MONITOR_UID={uid} MONITOR_GID={gid}: {error.strerror} "
            "(the container needs CAP_SETUID and CAP_SETGID to switch, or run it with "
            f"--user {uid}:{gid})"
        )
    return None


def run(config: Config) -> int:
    """``azwatch run``: watch until SIGTERM or SIGINT; return the exit code."""
    # The probe mode has no Docker: nothing to check up front.
    problem = None if config.restart_via == "kubelet" else docker_problem(config)
    if problem is not None:
        print(f"azwatch: {problem}", file=sys.stderr)
        return EXIT_BLIND
    try:
        anyio.run(_watch_until_signal, config, backend="asyncio")
    except KeyboardInterrupt:  # a second Ctrl+C while stopping
        return 130
    return EXIT_OK


async def _watch_until_signal(config: Config) -> None:
    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.info(
                        "received %s; stopping",
                        signal.Signals(signum).name,
                        extra={"event": "stop"},
                    )
                    group.cancel_scope.cancel()
                    return

        group.start_soon(stop_on_signal)
        if config.restart_via == "kubelet":
            await ProbeWatcher(config).run()
        else:
            await Watcher(config).run()
    logger.info("azwatch stopped", extra={"event": "stopped"})


# --- check ------------------------------------------------------------------------------------


def check_watcher(config: Config) -> int:
    """``azwatch check --watcher``: 0 if the running watcher's /healthz says it works, else 3.

    Exit 2 when ``HTTP_PORT`` is not set: there is no endpoint to ask.
    """
    if config.http_port is None:
        print("azwatch: check --watcher needs HTTP_PORT (the watcher's /healthz)", file=sys.stderr)
        return 2
    host = config.http_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # the wildcard address is not one to connect to
    url = f"http://{host}:{config.http_port}/healthz"

    async def ask() -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as reply:
            return reply.status, await reply.text()

    try:
        status, body = anyio.run(ask, backend="asyncio")
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        print(f"azwatch: no watcher answers at {url}: {type(error).__name__}", file=sys.stderr)
        return EXIT_BLIND
    print(body)
    return EXIT_OK if status == 200 else EXIT_BLIND


def check_permissions(config: Config, container: str | None = None) -> int:
    """``azwatch check --permissions``: what DOCKER_HOST lets azwatch do, one line per call;
    0 if all five calls work, 3 if not. Restarts and creates nothing (see
    :mod:`azwatch.permissions`); inspect and logs look at *container* when given."""
    from azwatch.permissions import probe_permissions

    problem = docker_problem(config)
    if problem is not None:
        print(f"azwatch: {problem}", file=sys.stderr)
        return EXIT_BLIND
    report = anyio.run(probe_permissions, config, container, backend="asyncio")
    for line in report.lines():
        print(line)
    return report.exit_code


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``check`` concluded about one container."""

    name: str
    decision: Decision | None
    problem: str | None = None
    #: Why no reference endpoint could be reached (``None``: one answered). Blind, whatever
    #: the decision: a cooldown hides it from the rules, not from the operator.
    unreachable: str | None = None

    @property
    def exit_code(self) -> int:
        if self.decision is None or self.unreachable is not None:
            return EXIT_BLIND
        if isinstance(self.decision, Restart):
            return EXIT_WOULD_RESTART
        return EXIT_BLIND if self.decision.reason in BLIND_REASONS else EXIT_OK

    def describe(self) -> str:
        if self.decision is None:
            return f"{self.name}: cannot observe: {self.problem}"
        if self.unreachable is not None and isinstance(self.decision, Hold):
            return (
                f"{self.name}: cannot observe: no reference endpoint can be reached "
                f"({self.unreachable}); {self.decision.reason}: {self.decision.detail}"
            )
        facts = self.decision.facts
        numbers = (
            f"lag {format_value(facts.lag)}, best {format_block(facts.best)}, "
            f"head {format_block(facts.head)}"
        )
        if isinstance(self.decision, Restart):
            return f"{self.name}: would restart: {self.decision.rule}: {self.decision.detail}"
        return f"{self.name}: {self.decision.reason}: {self.decision.detail} ({numbers})"


def check(config: Config) -> int:
    """``azwatch check``: print one line per container; exit 0, 1 or 3 (worst wins)."""
    results = anyio.run(check_once, config, backend="asyncio")
    for result in results:
        print(result.describe())
    codes = {result.exit_code for result in results}
    if EXIT_WOULD_RESTART in codes:
        return EXIT_WOULD_RESTART
    return EXIT_BLIND if EXIT_BLIND in codes or not results else EXIT_OK


async def check_once(config: Config) -> list[CheckResult]:
    """One look at every configured container and at the reference head.

    Each container's state is rebuilt from its current run's log tail (lines applied at the
    times they were written), then two head samples a moment apart are taken, with the
    lines written in between, so the catch-up rate can be measured as the watcher would.
    """
    problem = docker_problem(config)
    if problem is not None:
        return [CheckResult(name, None, problem) for name in config.container_names or ["?"]]
    async with aiohttp.ClientSession() as session:
        docker = open_docker(config)
        try:
            names = list(config.container_names)
            if config.container_label:
                names += [
                    n
                    for n in await list_labelled(
                        docker, config.container_label, seconds=config.docker_timeout
                    )
                    if n not in names
                ]
            poller = HeadPoller(session, config.rpc_urls, timeout=config.rpc_timeout)
            looks = [await _Look.take(docker, name, config) for name in names]
            unreachable: str | None = None
            for round_ in range(2):
                if round_:
                    await anyio.sleep(min(2.0, config.rpc_poll_interval))
                    for look in looks:
                        await look.read_more(docker)
                event = (await poller.poll()).event()
                unreachable = event.reason if isinstance(event, HeadUnavailable) else None
                for look in looks:
                    look.apply(event)
        except DOCKER_TRANSIENT as error:
            detail = f"{describe_error(error)} at {redacted_docker_url(config)}"
            return [CheckResult(name, None, detail) for name in config.container_names or ["?"]]
        finally:
            with anyio.CancelScope(shield=True):
                await docker.close()
    now = anyio.current_time()
    return [
        CheckResult(look.name, None, look.problem)
        if look.problem is not None
        else CheckResult(look.name, decide(look.state, now, config), unreachable=unreachable)
        for look in looks
    ]


class _Look:
    """One container as ``check`` sees it: its state rebuilt from its log."""

    def __init__(self, name: str, config: Config, state: NodeState) -> None:
        self.name, self.config, self.state = name, config, state
        self.info: ContainerInfo | None = None
        self.problem: str | None = None
        self.cursor: LogCursor | None = None

    @classmethod
    async def take(cls, docker: aiodocker.Docker, name: str, config: Config) -> _Look:
        now = anyio.current_time()
        look = cls(name, config, initial_state(now))
        info = await inspect(docker, name, seconds=config.docker_timeout)
        if info is None:
            look.problem = "no such container"
            return look
        started = now if info.started_ns is None else on_loop_clock(info.started_ns, now)
        look.state = apply(look.state, RunStarted(info.run_key, started), now, config)
        if not info.observable:
            look.state = apply(look.state, ContainerStatus(False, info.describe()), now, config)
            return look
        if not info.logs_readable:
            look.problem = f"log driver {info.log_driver!r} cannot be read"
            return look
        look.info = info
        await look.read_more(docker)
        # The tail was applied at the times its lines were written: it is the present now.
        look.state = apply(look.state, LogCaughtUp(), anyio.current_time(), config)
        return look

    async def read_more(self, docker: aiodocker.Docker) -> None:
        """Apply the lines written since the last read, each once, at the times they were
        written."""
        if self.info is None:
            return
        cursor = resume(self.cursor, self.info.run_key, self.info.previous_run_end_ns)
        params: dict[str, Any] = {"tail": str(self.config.log_tail)}
        if cursor.since_ns is not None:
            params["since"] = docker_since(cursor.since_ns)
        # The whole tail in one answer: more than one quick answer's time, never for ever.
        with engine_deadline("a log request", LOG_READ_ANSWERS * self.config.docker_timeout):
            frames = await docker.containers.container(self.info.id).log(
                stdout=True, stderr=True, timestamps=True, **params
            )
        assembler = LineAssembler(timestamped=True)
        lines = [line for frame in frames for line in assembler.feed(frame)]
        fresh, self.cursor = cursor.fresh_lines(lines)
        now, wall_ns = anyio.current_time(), time.time_ns()
        # A line that cannot be placed in time goes with the line before it.
        at = max(on_loop_clock(cursor.last_ns, now, wall_ns), self.state.run.started_at)
        for ns, rest in fresh:
            if ns is not None:
                at = max(on_loop_clock(ns, now, wall_ns), self.state.run.started_at)
            event = parse_line(rest)
            if event is not None:
                self.state = apply(self.state, event, at, self.config)

    def apply(self, event: Event) -> None:
        self.state = apply(self.state, event, anyio.current_time(), self.config)
