"""The Docker Engine seen through aiodocker: the client, and inspect results as values.

Everything here is thin: build the client with explicit deadlines, turn ``GET
/containers/{name}/json`` into a :class:`ContainerInfo`, and name Docker's failures.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiodocker
import aiohttp
import anyio

from azwatch.config import Config
from azwatch.logparse import docker_timestamp_ns
from azwatch.redaction import redact_url

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"

#: Errors that mean "the Engine could not be asked": daemon gone, socket cut, proxy reset.
DOCKER_TRANSIENT = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError, ValueError)


class EngineTimeout(TimeoutError):
    """The Engine accepted the connection but did not answer *call* within *seconds*."""

    def __init__(self, call: str, seconds: float) -> None:
        self.call = call
        self.seconds = seconds
        super().__init__(f"Docker did not answer {call} within {seconds:g}s")


@contextlib.contextmanager
def engine_deadline(call: str, seconds: float) -> Iterator[None]:
    """Fail with :class:`EngineTimeout` naming *call* if the block takes over *seconds*.

    A hung daemon otherwise surfaces as a bare ``TimeoutError`` that says neither what was
    asked nor for how long.
    """
    try:
        with anyio.fail_after(seconds):
            yield
    except EngineTimeout:
        raise
    except TimeoutError as error:
        raise EngineTimeout(call, seconds) from error


_UNREADABLE_DRIVERS = frozenset(
    {"none", "syslog", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries"}
)


def docker_url(config: Config) -> str:
    """The Engine address: ``DOCKER_HOST`` if configured, else the standard socket.

    Always explicit: aiodocker would otherwise let a Docker CLI context beat ``DOCKER_HOST``.
    """
    return config.docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL


def open_docker(config: Config) -> aiodocker.Docker:
    """An aiodocker client whose ordinary calls cannot hang (must run inside the loop)."""
    seconds = config.docker_timeout
    return aiodocker.Docker(
        url=docker_url(config),
        timeout=aiohttp.ClientTimeout(total=seconds, sock_connect=seconds),
    )


def unix_socket_path(url: str) -> str | None:
    """The socket file of a ``unix://`` Engine URL, else ``None``."""
    return url[len("unix://") :] if url.startswith("unix://") else None


def describe_error(error: BaseException) -> str:
    """One line for a Docker-side failure, without secrets."""
    if isinstance(error, aiodocker.DockerError):
        if error.status == 900:
            return f"cannot reach the Docker Engine ({_short(error.message)})"
        return f"Docker answered {error.status}: {_short(error.message)}"
    if isinstance(error, EngineTimeout):
        return str(error)
    if isinstance(error, TimeoutError):
        return "the Docker Engine did not answer in time"
    return f"{type(error).__name__}: {_short(str(error))}"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def on_loop_clock(docker_ns: int, now: float, wall_ns: int | None = None) -> float:
    """Docker's wall-clock time *docker_ns* placed on the loop clock that reads *now*.

    Never later than *now*: a timestamp from a clock slightly ahead of ours counts as now.
    """
    wall = time.time_ns() if wall_ns is None else wall_ns
    return now - max(0, wall - docker_ns) / 1e9


def docker_since(ns: int) -> str:
    """A log ``since`` parameter for *ns*: "seconds.nanoseconds" (Docker rejects RFC 3339)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def docker_time_ns(value: object) -> int | None:
    """Nanoseconds since the epoch of an inspect timestamp; ``None`` for the zero time."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        return docker_timestamp_ns(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """What one inspect of the watched container says."""

    id: str
    name: str
    status: str
    running: bool
    paused: bool
    restarting: bool
    started_at: str
    started_ns: int | None
    finished_ns: int | None
    exit_code: int | None
    oom_killed: bool
    log_driver: str
    tty: bool
    labels: dict[str, str]
    #: Starts by Docker's restart policy since the container was last started by hand.
    restart_count: int = 0

    @property
    def run_key(self) -> str:
        """Identifies this run: the container id and its start time."""
        return f"{self.id[:12]}@{self.started_at}"

    @property
    def previous_run_end_ns(self) -> int | None:
        """When the previous run of this container ended, if it ran before this run."""
        if self.finished_ns is None:
            return None
        if self.started_ns is not None and self.finished_ns > self.started_ns:
            return None  # not running: FinishedAt is this run's end
        return self.finished_ns

    @property
    def observable(self) -> bool:
        """Running and not paused: the only state in which azwatch acts."""
        return self.running and not self.paused and not self.restarting

    @property
    def logs_readable(self) -> bool:
        """Whether ``docker logs`` can read this container's log driver."""
        return self.log_driver not in _UNREADABLE_DRIVERS

    def describe(self) -> str:
        """The container's state in a few words."""
        if self.paused:
            return "paused"
        if self.restarting:
            return "restarting (Docker's restart policy)"
        if self.running:
            return "running"
        extra = " after an out-of-memory kill" if self.oom_killed else ""
        code = "" if self.exit_code is None else f" (exit code {self.exit_code}{extra})"
        return f"{self.status}{code}"

    @classmethod
    def from_inspect(cls, data: dict[str, Any]) -> ContainerInfo:
        """Build from the JSON of ``GET /containers/{id}/json``."""
        state = data.get("State") or {}
        config = data.get("Config") or {}
        log_config = (data.get("HostConfig") or {}).get("LogConfig") or {}
        exit_code = state.get("ExitCode")
        return cls(
            id=str(data.get("Id", "")),
            name=str(data.get("Name", "")).lstrip("/"),
            status=str(state.get("Status", "unknown")),
            running=bool(state.get("Running")),
            paused=bool(state.get("Paused")),
            restarting=bool(state.get("Restarting")),
            started_at=str(state.get("StartedAt", "")),
            started_ns=docker_time_ns(state.get("StartedAt")),
            finished_ns=docker_time_ns(state.get("FinishedAt")),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            oom_killed=bool(state.get("OOMKilled")),
            log_driver=str(log_config.get("Type") or "json-file"),
            tty=bool(config.get("Tty")),
            labels=dict(config.get("Labels") or {}),
            restart_count=_whole(data.get("RestartCount")),
        )


def _whole(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


async def inspect(docker: aiodocker.Docker, name: str, *, seconds: float) -> ContainerInfo | None:
    """Inspect container *name* within *seconds*; ``None`` when no such container exists.

    Raises:
        aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError: the Engine could
            not be asked (callers treat these as "try again later"); :class:`EngineTimeout`
            when it did not answer in time.
    """
    with engine_deadline("an inspect", seconds):
        try:
            data = await docker.containers.container(name).show()
        except aiodocker.DockerError as error:
            if error.status == 404:
                return None
            raise
    return ContainerInfo.from_inspect(data)


async def list_labelled(docker: aiodocker.Docker, label: str, *, seconds: float) -> list[str]:
    """Names of the running containers carrying *label* (``key`` or ``key=value``), asked
    within *seconds*."""
    with engine_deadline("a container list", seconds):
        found = await docker.containers.list(filters={"label": [label], "status": ["running"]})
    names: list[str] = []
    for container in found:
        raw = container["Names"] or []  # from the list payload: no inspect per container
        if raw:
            names.append(str(raw[0]).lstrip("/"))
    return sorted(names)


def redacted_docker_url(config: Config) -> str:
    """The Engine address for logs (a tcp:// URL may carry credentials)."""
    return redact_url(docker_url(config))
