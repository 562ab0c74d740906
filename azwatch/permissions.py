"""``azwatch check --permissions``: what the configured Docker endpoint lets azwatch do.

azwatch makes five kinds of Engine call: list containers (label mode), inspect one, read its
log, follow the events, restart it. Each is sent once here, the way azwatch sends it, to
the configured ``DOCKER_HOST`` (the socket, or a socket proxy in front of it), and its answer
is classified:

* a 2xx answer: **ok**;
* 403 (or 401, 407): **refused** by whatever stands in front of the Engine;
* Docker's own 404 "No such container" for a name: the call reached the Engine, so it is
  **ok** (allowed). This is how restart is probed without restarting anything: it goes to
  ``azwatch-permission-probe-<random>``, a name no container has;
* anything else (no connection, no answer within the deadline, another status): **error**.

Creating a container is what a least-privilege endpoint must *not* allow, since whoever may
create one may start a privileged container with the host's ``/`` mounted. It is probed with
``POST /containers/create`` carrying an empty configuration and an invalid name: Docker
rejects that (400) and creates nothing, and any answer from Docker rather than a 403 means
the endpoint let it through: more privilege than azwatch needs, reported as a warning.

Every request runs under a deadline. The probes are read-only for the Engine, whatever the
endpoint allows. See docs/security.md.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiodocker
import aiohttp
import anyio

from azwatch.config import Config
from azwatch.containers import (
    describe_error,
    docker_url,
    open_docker,
    redacted_docker_url,
    unix_socket_path,
)

#: Seconds each probe may take, connection included.
PROBE_TIMEOUT = 10.0
#: Prefix of the container names the restart probe uses; a random suffix follows.
PROBE_PREFIX = "azwatch-permission-probe-"
#: The five calls azwatch needs, in the order they are reported.
NEEDED = ("list", "inspect", "logs", "events", "restart")

_REFUSED_STATUSES = frozenset({401, 403, 407})
_TAG = re.compile(r"<[^>]*>")


class Verdict(enum.StrEnum):
    """How the endpoint answered one probe."""

    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe: which call, the request sent, and what came of it."""

    what: str
    request: str
    verdict: Verdict
    status: int | None = None
    detail: str = ""

    def line(self) -> str:
        """``restart  ok       POST /containers/…/restart -> 404 No such container …``."""
        answer = "" if self.status is None else f" -> {self.status}"
        detail = f" {self.detail}" if self.detail else ""
        verdict = (
            "allowed" if self.what == "create" and self.verdict is Verdict.OK else self.verdict
        )
        return f"{self.what:<8} {verdict:<8} {self.request}{answer}{detail}"


@dataclass(frozen=True, slots=True)
class PermissionReport:
    """The probes of one endpoint; :attr:`exit_code` is 0 when azwatch can work through it."""

    endpoint: str
    engine: str | None
    probes: tuple[Probe, ...]
    create: Probe

    @property
    def sufficient(self) -> bool:
        """Whether all five calls azwatch needs are allowed."""
        return all(probe.verdict is Verdict.OK for probe in self.probes)

    @property
    def excessive(self) -> bool:
        """Whether the endpoint also lets a container be created."""
        return self.create.verdict is Verdict.OK

    @property
    def exit_code(self) -> int:
        return 0 if self.sufficient else 3

    def lines(self) -> list[str]:
        engine = f" ({self.engine})" if self.engine else ""
        out = [
            f"Docker permissions at {self.endpoint}{engine}",
            "method: each call azwatch makes is sent once, as azwatch sends it; restart goes to"
            f" a container name that cannot exist ({PROBE_PREFIX}<random>) and create carries"
            " an empty configuration and an invalid name: nothing is restarted or created",
            "meaning: 2xx, or Docker's own 404 for that name, means allowed; 403 means refused",
            *(probe.line() for probe in self.probes),
            self.create.line(),
        ]
        if self.excessive:
            out.append(
                "warning: create is allowed too: more privilege than needed. Whoever can use this"
                " endpoint can start a privileged container, i.e. is root on the host; put a"
                " socket proxy in front of the Engine (CONTAINERS=1 ALLOW_LOGS=1 ALLOW_RESTARTS=1"
                " POST=0, see docs/security.md)"
            )
        if self.sufficient:
            out.append("all five calls azwatch needs are allowed")
        else:
            failed = ", ".join(
                f"{probe.what} {probe.verdict}"
                for probe in self.probes
                if probe.verdict is not Verdict.OK
            )
            out.append(f"azwatch cannot work through this endpoint: {failed}")
        return out


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    message: str


async def probe_permissions(
    config: Config, container: str | None = None, *, seconds: float = PROBE_TIMEOUT
) -> PermissionReport:
    """Probe the configured Docker endpoint, each request within *seconds*.

    Inspect and logs look at *container*; without one, at a name that cannot exist (Docker's
    404 for it still shows that the call is allowed).
    """
    url = docker_url(config)
    endpoint = url if unix_socket_path(url) else redacted_docker_url(config)
    probe_name = PROBE_PREFIX + secrets.token_hex(4)
    target = container or probe_name
    docker = open_docker(config)
    try:
        prober = _Prober(docker, seconds)
        engine, version_error = await prober.version()
        if version_error is not None:
            # aiodocker asks the version before any versioned call: nothing else can work.
            why = f"GET /version failed first ({version_error}); every call needs it"
            probes = tuple(Probe(what, "-", Verdict.ERROR, None, why) for what in NEEDED)
            return PermissionReport(endpoint, None, probes, Probe("create", "-", Verdict.ERROR))
        now = int(time.time())
        log_params = {"stdout": "1", "stderr": "1", "tail": "1", "timestamps": "1"}
        # A closed interval: the daemon sends what it has and ends the response.
        event_params = {
            "since": str(now - 1),
            "until": str(now),
            "filters": json.dumps({"type": ["container"]}),
        }
        probes = (
            await prober.probe("list", "GET", "containers/json", {"limit": "1"}),
            await prober.probe("inspect", "GET", f"containers/{target}/json"),
            await prober.probe("logs", "GET", f"containers/{target}/logs", log_params),
            await prober.probe("events", "GET", "events", event_params),
            await prober.probe("restart", "POST", f"containers/{probe_name}/restart"),
        )
        create = await prober.create()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await docker.close()
    return PermissionReport(endpoint, engine, probes, create)


class _Prober:
    """Sends the probes through one aiodocker client, each within *seconds*."""

    def __init__(self, docker: aiodocker.Docker, seconds: float) -> None:
        self.docker = docker
        self.seconds = seconds

    async def version(self) -> tuple[str | None, str | None]:
        """The Engine's version in a few words, or why ``GET /version`` failed."""
        try:
            with anyio.fail_after(self.seconds):
                info = await self.docker.version()
        except aiodocker.DockerError as error:
            if error.status == 900:  # aiodocker's "cannot connect"
                return None, describe_error(error)
            return None, f"{error.status} {_describe_answer(_Answer(error.status, error.message))}"
        except TimeoutError:
            return None, f"no answer within {self.seconds:g}s"
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return None, describe_error(error)
        return f"Docker Engine {info.get('Version')}, API {info.get('ApiVersion')}", None

    async def send(
        self, method: str, path: str, params: Mapping[str, str] | None, data: str | None
    ) -> _Answer:
        """One request, its body read to the end; its status and error message."""
        with anyio.fail_after(self.seconds):
            try:
                async with self.docker._query(  # aiodocker's low-level call: any path, method
                    path,
                    method,
                    params=dict(params or {}),
                    data=data,
                    timeout=aiohttp.ClientTimeout(total=self.seconds, sock_connect=self.seconds),
                ) as response:
                    await response.read()
                    return _Answer(response.status, "")
            except aiodocker.DockerError as error:
                if error.status == 900:  # aiodocker's "cannot connect"
                    raise
                return _Answer(error.status, error.message)

    async def answer(
        self,
        what: str,
        request: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        data: str | None = None,
    ) -> _Answer | Probe:
        """The answer to one request, or the failed probe when none came."""
        try:
            return await self.send(method, path, params, data)
        except TimeoutError:
            return Probe(what, request, Verdict.ERROR, None, f"no answer within {self.seconds:g}s")
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, ValueError) as error:
            return Probe(what, request, Verdict.ERROR, None, describe_error(error))

    async def probe(
        self, what: str, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> Probe:
        """One of the calls azwatch needs."""
        request = f"{method} /{path}"
        answer = await self.answer(what, request, method, path, params)
        if isinstance(answer, Probe):
            return answer
        if 200 <= answer.status < 300:
            return Probe(what, request, Verdict.OK, answer.status)
        if answer.status in _REFUSED_STATUSES:
            return Probe(what, request, Verdict.REFUSED, answer.status, _describe_answer(answer))
        if answer.status == 404 and "no such container" in answer.message.lower():
            detail = f"{_describe_answer(answer)} (Docker's own answer: allowed)"
            return Probe(what, request, Verdict.OK, answer.status, detail)
        return Probe(what, request, Verdict.ERROR, answer.status, _describe_answer(answer))

    async def create(self) -> Probe:
        """``POST /containers/create`` with ``{}`` and an invalid name: Docker rejects that
        and creates nothing, so any answer of Docker's means the endpoint let it through."""
        name = "-" + PROBE_PREFIX + secrets.token_hex(4)  # a leading "-" is not a valid name
        request = "POST /containers/create (empty configuration, invalid name)"
        answer = await self.answer(
            "create", request, "POST", "containers/create", {"name": name}, "{}"
        )
        if isinstance(answer, Probe):
            return answer
        if answer.status in _REFUSED_STATUSES:
            return Probe("create", request, Verdict.REFUSED, answer.status, "(not needed: good)")
        if 200 <= answer.status < 300:
            detail = "Docker created a container anyway: remove it"
            return Probe("create", request, Verdict.OK, answer.status, detail)
        if _from_docker(answer):
            detail = f"{_describe_answer(answer)} (Docker's own answer: let through)"
            return Probe("create", request, Verdict.OK, answer.status, detail)
        return Probe("create", request, Verdict.ERROR, answer.status, _describe_answer(answer))


def _from_docker(answer: _Answer) -> bool:
    """Whether an error answer is the Engine's own JSON message rather than a proxy's page."""
    return bool(answer.message) and "<" not in answer.message


def _describe_answer(answer: _Answer) -> str:
    """``403 Forbidden``-style text of an error answer, HTML pages reduced to their words."""
    text = " ".join(_TAG.sub(" ", answer.message).split()).removeprefix(f"{answer.status} ")
    if len(text) > 160:
        text = text[:159] + "…"
    return text or f"HTTP {answer.status}"
