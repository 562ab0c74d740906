"""Restart a container through the Engine API, under a deadline, and check that it worked.

``POST /containers/{id}/restart?t=STOP_TIMEOUT`` returns only after the node has been stopped
(which can take the whole grace: the official aleph-node image ignores SIGTERM, so Docker
kills it after ``t`` seconds) and started again. Its deadline is therefore longer than the
grace: ``STOP_TIMEOUT`` plus ``DOCKER_TIMEOUT`` for the kill and the start, and each inspect
before and after it has ``DOCKER_TIMEOUT``. A daemon that takes the call and never answers
fails it at that deadline; the inspect after it tells a restart whose answer alone was lost
from one that did not happen, and the supervisor's cooldown (which counts from the attempt)
keeps a failed one from being asked again at once. The call runs shielded: a watcher told
to stop mid-restart finishes the restart and reports it rather than leaving it half-observed.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import aiodocker
import aiohttp
import anyio

from azwatch.containers import (
    DOCKER_TRANSIENT,
    EngineTimeout,
    describe_error,
    engine_deadline,
    inspect,
)
from azwatch.events import RestartFinished

logger = logging.getLogger("azwatch.restart")


def longest_restart(stop_timeout: float, docker_timeout: float) -> float:
    """The longest one restart can take: an inspect, the call (the whole grace, then the kill
    and the start), and the inspect after it, each under its deadline."""
    return math.ceil(stop_timeout) + 3 * docker_timeout


class Restarter(Protocol):
    """Restarts a container by name and says how it went."""

    async def restart(self, name: str, *, stop_timeout: float) -> RestartFinished: ...


class DockerRestarter:
    """The real restarter, over an aiodocker client."""

    def __init__(self, docker: aiodocker.Docker, docker_timeout: float) -> None:
        self.docker = docker
        #: Deadline of each inspect, and the restart call's allowance beyond the grace.
        self.docker_timeout = docker_timeout

    async def restart(self, name: str, *, stop_timeout: float) -> RestartFinished:
        """Restart *name* if it is still running, giving the node *stop_timeout* seconds to
        stop; the result says what Docker did."""
        with anyio.CancelScope(shield=True):
            try:
                return await self._restart(name, stop_timeout)
            except DOCKER_TRANSIENT as error:
                return RestartFinished(ok=False, detail=describe_error(error))
        return RestartFinished(ok=False, detail="interrupted")  # pragma: no cover - shielded

    async def _restart(self, name: str, stop_timeout: float) -> RestartFinished:
        seconds = self.docker_timeout
        before = await inspect(self.docker, name, seconds=seconds)
        if before is None:
            return RestartFinished(ok=False, detail="the container no longer exists")
        if not before.observable:
            # The operator stopped it meanwhile: their stop wins.
            return RestartFinished(ok=False, detail=f"container is {before.describe()}; left alone")
        container = self.docker.containers.container(before.id)
        grace = math.ceil(stop_timeout)  # Docker takes whole seconds: never less grace
        unanswered: EngineTimeout | None = None
        try:
            with engine_deadline("the restart", grace + seconds):
                await container.restart(
                    t=grace,
                    timeout=aiohttp.ClientTimeout(total=grace + seconds, sock_connect=seconds),
                )
        except EngineTimeout as error:
            # The daemon may have restarted the node and lost only its answer: look.
            unanswered = error
        after = await inspect(self.docker, name, seconds=seconds)
        if after is None:
            return RestartFinished(ok=False, detail="the container vanished during the restart")
        if after.started_at == before.started_at or not after.running:
            if unanswered is not None:
                raise unanswered
            return RestartFinished(
                ok=False,
                detail=f"Docker accepted the restart but the container is {after.describe()}",
            )
        detail = f"running again since {after.started_at}"
        if unanswered is not None:
            detail += f" ({unanswered}; the inspect after it shows the new run)"
        return RestartFinished(ok=True, detail=detail)


class DryRunRestarter:
    """Touches nothing: every decision is only logged (``DRY_RUN=true``)."""

    async def restart(self, name: str, *, stop_timeout: float) -> RestartFinished:
        return RestartFinished(ok=True, detail="dry run: container not touched")
