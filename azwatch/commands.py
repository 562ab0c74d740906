"""The live commands behind the CLI: ``azwatch run`` and ``azwatch check``.

``run`` is the process around :func:`azwatch.watch`: it checks that the Docker socket is
usable (one clear line and exit 3 if not), handles SIGTERM/SIGINT by cancelling the watcher,
and exits 0 once everything is closed. ``check`` takes one look at each container and the
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
    docker_url,
    inspect,
    list_labelled,
    open_docker,
    redacted_docker_url,
    unix_socket_path,
)
from azwatch.events import ContainerStatus, RunStarted
from azwatch.head import HeadPoller
from azwatch.logparse import (
    LineAssembler,
    docker_timestamp_ns,
    parse_line,
    split_docker_timestamp,
)
from azwatch.policy import BLIND_REASONS, Decision, Restart, decide
from azwatch.state import NodeState, apply, initial_state
from azwatch.watcher import Watcher

logger = logging.getLogger("azwatch")

EXIT_OK = 0
EXIT_WOULD_RESTART = 1
EXIT_BLIND = 3


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
        return (
            f"no permission to use the Docker socket {path} (owned by uid {owner.st_uid}, "
            f"gid {owner.st_gid}) as uid {os.getuid()} with groups "
            f"{sorted({os.getgid(), *os.getgroups()})}: set MONITOR_GID={owner.st_gid} "
            f"(or docker run --group-add {owner.st_gid})"
        )
    return None


def run(config: Config) -> int:
    """``azwatch run``: watch until SIGTERM or SIGINT; return the exit code."""
    problem = docker_problem(config)
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
        await Watcher(config).run()
    logger.info("azwatch stopped", extra={"event": "stopped"})


# --- check ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``check`` concluded about one container."""

    name: str
    decision: Decision | None
    problem: str | None = None

    @property
    def exit_code(self) -> int:
        if self.decision is None:
            return EXIT_BLIND
        if isinstance(self.decision, Restart):
            return EXIT_WOULD_RESTART
        return EXIT_BLIND if self.decision.reason in BLIND_REASONS else EXIT_OK

    def describe(self) -> str:
        if self.decision is None:
            return f"{self.name}: cannot observe: {self.problem}"
        facts = self.decision.facts
        numbers = f"lag {facts.lag}, best #{facts.best}, head #{facts.head}"
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
    """One look at every configured container and at the reference head."""
    problem = docker_problem(config)
    if problem is not None:
        return [CheckResult(name, None, problem) for name in config.container_names or ["?"]]
    async with aiohttp.ClientSession() as session:
        docker = open_docker(config)
        try:
            names = list(config.container_names)
            if config.container_label:
                names += [
                    n for n in await list_labelled(docker, config.container_label) if n not in names
                ]
            poller = HeadPoller(session, config.rpc_urls, timeout=config.rpc_timeout)
            looks = [await _look(docker, name, config) for name in names]
            # Two head samples a moment apart, so the catch-up rate can be measured.
            first = await poller.poll()
            first_at = anyio.current_time()
            await anyio.sleep(min(2.0, config.rpc_poll_interval))
            second = await poller.poll()
            now = anyio.current_time()
        except DOCKER_TRANSIENT as error:
            detail = f"{describe_error(error)} at {redacted_docker_url(config)}"
            return [CheckResult(name, None, detail) for name in config.container_names or ["?"]]
        finally:
            with anyio.CancelScope(shield=True):
                await docker.close()
    results = []
    for name, look in zip(names, looks, strict=True):
        if isinstance(look, str):
            results.append(CheckResult(name, None, look))
            continue
        state = look
        for result, at in ((first, first_at), (second, now)):
            state = apply(state, result.event(), at, config)
        results.append(CheckResult(name, decide(state, now, config)))
    return results


async def _look(docker: aiodocker.Docker, name: str, config: Config) -> NodeState | str:
    """The state of *name* rebuilt from its current run's log tail, or why it cannot be."""
    info = await inspect(docker, name)
    if info is None:
        return "no such container"
    now, wall = anyio.current_time(), time.time()
    started = now - max(0.0, wall - (info.started_ns or wall * 1e9) / 1e9)
    state = apply(initial_state(now), RunStarted(info.run_key, started), now, config)
    if not info.observable:
        return apply(state, ContainerStatus(False, info.describe()), now, config)
    if not info.logs_readable:
        return f"log driver {info.log_driver!r} cannot be read"
    return _replay_tail(state, await _tail(docker, info, config), now, wall, config)


async def _tail(docker: aiodocker.Docker, info: ContainerInfo, config: Config) -> list[str]:
    params: dict[str, Any] = {"tail": str(config.log_tail)}
    floor = info.previous_run_end_ns
    if floor:
        params["since"] = f"{floor // 1_000_000_000}.{floor % 1_000_000_000:09d}"
    with anyio.fail_after(60):
        lines = await docker.containers.container(info.id).log(
            stdout=True, stderr=True, timestamps=True, **params
        )
    assembler = LineAssembler(timestamped=True)
    complete = [line for frame in lines for line in assembler.feed(frame)]
    tail = assembler.flush()
    return complete if tail is None else [*complete, tail]


def _replay_tail(
    state: NodeState, lines: list[str], now: float, wall: float, config: Config
) -> NodeState:
    """Apply a log tail at the times its lines were written (from their Docker timestamps)."""
    for line in lines:
        stamp, rest = split_docker_timestamp(line)
        at = now
        if stamp is not None:
            try:
                at = min(now, now - (wall - docker_timestamp_ns(stamp) / 1e9))
            except ValueError:
                at = now
        event = parse_line(rest)
        if event is not None:
            state = apply(state, event, max(at, state.run.started_at), config)
    return state
