"""``azwatch demo``: see azwatch find a stalled node and restart it, within about a minute.

The demo needs a Docker Engine and the azwatch image, nothing else (no lagging validator, no
network, no registry). It:

1. checks what a tired user may have got wrong, each with one clear line: no Docker Engine,
   no image (it never pulls one), the status page's port in use;
2. serves a reference head on 127.0.0.1 (:mod:`azwatch.demohead`) whose chain advances one
   block a second;
3. starts a stand-in node container from the azwatch image (``python -m azwatch.demonode``,
   ``--network none``) that prints a scripted node life in aleph-node's log format: start-up,
   major sync, in sync, then a stall; after a restart it is in sync again;
4. watches it with the real :class:`~azwatch.watcher.Watcher`, with settings scaled down so
   the stall is detected within seconds, prints the status page's address and azwatch's own
   log lines as they come, and stops once the restart's verdict says ``helped: yes`` (or
   after ``--duration``);
5. removes the container on every way out: done, failed, Ctrl+C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import errno
import logging
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO, TypeVar

import aiodocker
import anyio
import anyio.abc

from azwatch.config import Config
from azwatch.containers import DOCKER_TRANSIENT, describe_error, docker_url, open_docker
from azwatch.demohead import serve_head
from azwatch.demonode import Chain, Script
from azwatch.snapshot import ContainerView
from azwatch.watcher import Watcher

EXIT_OK: Final = 0
#: The demo ran but did not show what it should (no verdict in time, the stand-in died).
EXIT_FAILED: Final = 1
#: Something to fix before it can run: the image is missing, the port is in use.
EXIT_SETUP: Final = 2
#: No Docker Engine answers.
EXIT_NO_DOCKER: Final = 3
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143

#: Without ``--duration``: how long to wait for the restart's verdict before giving up.
VERDICT_BUDGET: Final = 150.0
#: Seconds a stand-in may be seen not running, outside a restart, before the demo gives up.
DEAD_GRACE: Final = 5.0
#: The chain's block at the demo's start (mainnet-like numbers).
BASE_BLOCK: Final = 105_500_000
#: Label on the demo's container, so an operator can tell what it is.
LABEL: Final = "azwatch.demo"

#: The stand-in's life: in sync for 20 s after its major sync, then the stall.
SCRIPT: Final = Script(behind=150, sync_rate=40.0, in_sync_for=20.0, status_every=4.0)

#: azwatch's settings, scaled so the whole story takes well under a minute: a 15 s cooldown,
#: a 10 s stall, a summary and a verdict every 5 s. The lag thresholds are raised so that the
#: stall rule, not the lag rules, names the restart (README: "How it decides").
SETTINGS: Final[dict[str, Any]] = {
    "check_interval": 5.0,
    "cooldown": 15.0,
    "stall_timeout": 10.0,
    "block_lag_20": 50,
    "block_lag_100": 200,
    "trend_window": 600.0,
    "recovery_period": 20.0,
    "max_cooldown": 120.0,
    "rpc_poll_interval": 1.0,
    "rpc_timeout": 2.0,
    "stop_timeout": 5.0,
    "log_silence_timeout": 15.0,
    "log_tail": 1000,
}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What the user asked for on the command line."""

    #: The azwatch image the stand-in runs from.
    image: str
    #: The status page's port on 127.0.0.1; 0 picks a free one.
    port: int
    #: Keep running this many seconds, then stop (``None``: stop at the verdict).
    duration: float | None = None
    #: The container's name (``None``: ``azwatch-demo-<random>``).
    name: str | None = None
    docker_host: str | None = None


class DemoFailed(Exception):
    """The demo cannot go on; *line* says why in one line, *code* is the exit code."""

    def __init__(self, line: str, code: int = EXIT_FAILED) -> None:
        super().__init__(line)
        self.line = line
        self.code = code


def demo_config(name: str, rpc_url: str, options: DemoOptions) -> Config:
    """The watcher's settings for the demo: the short ones above, the status page on."""
    return Config(
        container_names=(name,),
        rpc_urls=(rpc_url,),
        http_port=options.port,
        http_host="127.0.0.1",
        docker_host=options.docker_host,
        **SETTINGS,
    )


def run(options: DemoOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``azwatch demo``: run it to its end; return the exit code.

    The story goes to *out* (stdout); why it could not be shown, in one line, to *err*.
    """
    demo = _Demo(options, out or sys.stdout, err or sys.stderr)
    try:
        return anyio.run(demo.run, backend="asyncio")
    except KeyboardInterrupt:  # a second Ctrl+C while cleaning up
        return EXIT_SIGINT


class _Printer(logging.Handler):
    """azwatch's log records as demo lines: seconds since the start, then the message."""

    def __init__(self, say: Callable[[str], None], container: str) -> None:
        super().__init__(logging.INFO)
        self._say = say
        self._prefix = f"{container}: "

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) in _QUIET_EVENTS:
            return
        try:
            message = record.getMessage().removeprefix(self._prefix)
            self._say(message if message.startswith("azwatch") else f"azwatch: {message}")
        except Exception:  # a closed terminal must not break the watcher that logged
            self.handleError(record)


#: Records the demo says in its own words (the status page's address).
_QUIET_EVENTS: Final = frozenset({"http_started"})


class _Demo:
    """One run of the demo: its container, its output, how it ended."""

    def __init__(self, options: DemoOptions, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.name = options.name or f"azwatch-demo-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        #: The stand-in, once asked for: removed by name on the way out, even when its
        #: creation was interrupted before Docker's answer came back.
        self.container: aiodocker.containers.DockerContainer | None = None
        self.stopped_by: signal.Signals | None = None
        self.removal_failed = False

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(f"{elapsed:5.1f}s  {text}\n")
        self.out.flush()

    def line(self, text: str, stream: TextIO | None = None) -> None:
        """One line of its own, not on the timeline (the page, the end, problems)."""
        out = stream or self.out
        out.write(f"azwatch demo: {text}\n")
        out.flush()

    async def run(self) -> int:
        logger = logging.getLogger("azwatch")
        printer = _Printer(self.say, self.name)
        saved = (logger.level, logger.propagate)
        logger.addHandler(printer)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # only the demo's lines on the terminal
        failure: DemoFailed | None = None
        try:
            code = await self._run_until_signal()
        except* DemoFailed as failed:
            failure = _first(failed, DemoFailed)
        finally:
            logger.removeHandler(printer)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
        if failure is not None:
            self.line(failure.line, self.err)
            return failure.code
        return EXIT_FAILED if code == EXIT_OK and self.removal_failed else code

    async def _run_until_signal(self) -> int:
        result = EXIT_FAILED
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as group:

                async def stop_on_signal() -> None:
                    async for signum in signals:
                        self.stopped_by = signal.Signals(signum)
                        self.line(f"{self.stopped_by.name}: stopping")
                        group.cancel_scope.cancel()
                        return

                async def main() -> None:
                    nonlocal result
                    result = await self._main()
                    group.cancel_scope.cancel()

                group.start_soon(stop_on_signal)
                group.start_soon(main)
        if self.stopped_by is not None:
            return EXIT_SIGINT if self.stopped_by is signal.SIGINT else EXIT_SIGTERM
        return result

    async def _main(self) -> int:
        engine = Config(container_names=(self.name,), docker_host=self.options.docker_host)
        docker = open_docker(engine)
        try:
            await self._check_engine(docker, docker_url(engine))
            await self._check_image(docker)
            _check_port(self.options.port)
            return await self._show(docker)
        finally:
            with anyio.CancelScope(shield=True):
                await self._remove(docker)
                with anyio.move_on_after(5):
                    await docker.close()

    async def _check_engine(self, docker: aiodocker.Docker, url: str) -> None:
        try:
            with anyio.fail_after(10):
                await docker.version()
        except DOCKER_TRANSIENT as error:
            raise DemoFailed(
                f"no Docker Engine answers at {url} ({_innermost(error)}): start Docker, or "
                "point DOCKER_HOST at it",
                EXIT_NO_DOCKER,
            ) from None

    async def _check_image(self, docker: aiodocker.Docker) -> None:
        try:
            with anyio.fail_after(15):
                await docker.images.inspect(self.options.image)
        except DOCKER_TRANSIENT as error:
            if isinstance(error, aiodocker.DockerError) and error.status == 404:
                raise _missing_image(self.options.image) from None
            raise DemoFailed(
                f"cannot look at image {self.options.image}: {describe_error(error)}"
            ) from None

    async def _show(self, docker: aiodocker.Docker) -> int:
        epoch = time.time()
        chain = Chain(epoch, BASE_BLOCK)
        async with anyio.create_task_group() as group:
            head_url = await group.start(serve_head, chain)
            await self._start_node(docker, chain)
            self.say(
                f"started the stand-in node {self.name} (image {self.options.image}, no "
                f"network): {SCRIPT.behind} blocks behind, it syncs, stays in sync "
                f"{SCRIPT.in_sync_for:g}s, then stalls"
            )
            watcher = Watcher(demo_config(self.name, head_url, self.options))
            group.start_soon(self._watch, watcher)
            with anyio.fail_after(20):
                await watcher.started.wait()
            assert watcher.http_address is not None
            host, port = watcher.http_address
            self.line(f"status page: http://{host}:{port}/   (Ctrl+C stops the demo)")
            code = await self._follow(watcher)
            group.cancel_scope.cancel()
        return code

    async def _watch(self, watcher: Watcher) -> None:
        try:
            await watcher.run()
        except* OSError as failed:
            in_use = _first(failed, OSError)
            if in_use is not None and in_use.errno == errno.EADDRINUSE:
                raise _port_in_use(self.options.port) from None
            raise

    async def _start_node(self, docker: aiodocker.Docker, chain: Chain) -> None:
        env = {
            "DEMONODE_EPOCH": repr(chain.epoch),
            "DEMONODE_BASE": str(chain.base),
            "DEMONODE_BEHIND": str(SCRIPT.behind),
            "DEMONODE_SYNC_RATE": repr(SCRIPT.sync_rate),
            "DEMONODE_IN_SYNC_FOR": repr(SCRIPT.in_sync_for),
            "DEMONODE_STATUS_EVERY": repr(SCRIPT.status_every),
        }
        config: dict[str, Any] = {
            "Image": self.options.image,
            # The image's Python with azwatch in it; PATH leads to /opt/azwatch/bin.
            "Entrypoint": ["python", "-m", "azwatch.demonode"],
            "Cmd": [],
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Labels": {LABEL: "true"},
            "StopSignal": "SIGTERM",
            # The image's HEALTHCHECK asks a watcher in the container; there is none here.
            "Healthcheck": {"Test": ["NONE"]},
            "HostConfig": {
                "NetworkMode": "none",
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
            },
        }
        # Named before it is asked for, so that an interrupted create is removed too.
        self.container = docker.containers.container(self.name)
        try:
            with anyio.fail_after(30):
                # create, never run(): aiodocker's run() pulls a missing image.
                await docker.containers.create(config, name=self.name)
        except DOCKER_TRANSIENT as error:
            status = error.status if isinstance(error, aiodocker.DockerError) else None
            if status == 409:
                self.container = None  # someone else's: never removed by the demo
                raise DemoFailed(
                    f"a container named {self.name} exists already: remove it "
                    f"(docker rm -f {self.name}) or choose another --name",
                    EXIT_SETUP,
                ) from None
            if status == 404:
                raise _missing_image(self.options.image) from None
            raise DemoFailed(f"cannot create the stand-in node: {describe_error(error)}") from None
        try:
            with anyio.fail_after(30):
                await self.container.start()
        except DOCKER_TRANSIENT as error:
            hint = ""
            if isinstance(error, aiodocker.DockerError):
                # Docker cannot run the stand-in's command in that image.
                hint = ": it must be an azwatch image (docker build -t azwatch .)"
            raise DemoFailed(
                f"cannot start the stand-in node from {self.options.image} "
                f"({describe_error(error)}){hint}"
            ) from None

    async def _follow(self, watcher: Watcher) -> int:
        """Narrate from the watcher's snapshot until the verdict (or the duration) is reached."""
        duration = self.options.duration
        deadline = self.started + (duration if duration is not None else VERDICT_BUDGET)
        stall_said = False
        verdict: str | None = None
        down_since: float | None = None
        while True:
            now = time.monotonic()
            view = _view(watcher, self.name)
            if view is not None:
                if not stall_said and _looks_stalled(view):
                    stall_said = True
                    self.say(
                        f"demo: the stand-in stalls at #{view.best} on purpose (no peers, no "
                        "imports; the head goes on)"
                    )
                if verdict is None and view.recent_restarts:
                    verdict = view.recent_restarts[-1].verdict
                    if verdict is not None and not verdict.startswith("yes"):
                        raise DemoFailed(f"the restart did not help: {verdict}")
                    if verdict is not None:
                        self.line(
                            "azwatch saw the stall, restarted the node, and the restart helped "
                            f"({verdict})"
                        )
                        if duration is None:
                            return EXIT_OK
                down_since = _still_down(view, down_since, now)
                if down_since is not None and now - down_since >= DEAD_GRACE:
                    raise DemoFailed(await self._why_dead(view))
            if now >= deadline:
                if duration is not None:
                    return EXIT_OK
                raise DemoFailed(
                    f"no restart verdict within {VERDICT_BUDGET:g}s; the log above says what "
                    "azwatch saw"
                )
            await anyio.sleep(0.2)

    async def _why_dead(self, view: ContainerView) -> str:
        last = ""
        if self.container is not None:
            try:
                with anyio.fail_after(10):
                    lines = await self.container.log(stdout=True, stderr=True, tail=3)
                last = " ".join("".join(lines).split())[-300:]
            except DOCKER_TRANSIENT:
                last = ""
        said = f": {last}" if last else ""
        if view.best is not None:
            return f"the stand-in node is {view.status}{said}"
        # It never printed a block: the image may predate the demo.
        return (
            f"the stand-in node is {view.status}{said} (is {self.options.image} an image of "
            "this azwatch? rebuild it: docker build -t azwatch .)"
        )

    async def _remove(self, docker: aiodocker.Docker) -> None:
        if self.container is None:
            return
        try:
            with anyio.fail_after(30):
                await self.container.delete(force=True, v=True)
        except aiodocker.DockerError as error:
            if error.status == 404:  # never created, or removed by someone else
                self.container = None
            else:
                self._not_removed(error)
            return
        except DOCKER_TRANSIENT as error:
            self._not_removed(error)
            return
        self.container = None
        self.line(f"removed container {self.name}")

    def _not_removed(self, error: BaseException) -> None:
        self.removal_failed = True
        self.line(
            f"could not remove container {self.name} ({describe_error(error)}): remove it "
            f"with docker rm -f {self.name}",
            self.err,
        )


_E = TypeVar("_E", bound=BaseException)


def _first(group: BaseExceptionGroup[Any], kind: type[_E]) -> _E | None:
    """The first exception of *kind* in *group*, however deeply nested."""
    for each in group.exceptions:
        if isinstance(each, BaseExceptionGroup):
            found = _first(each, kind)
            if found is not None:
                return found
        elif isinstance(each, kind):
            return each
    return None


def _view(watcher: Watcher, name: str) -> ContainerView | None:
    for view in watcher.snapshot().containers:
        if view.name == name:
            return view
    return None


def _looks_stalled(view: ContainerView) -> bool:
    """The first run has stopped importing, after its major sync."""
    return (
        view.restarts == 0
        and view.log_live
        and not view.major_sync
        and view.best_advanced_age is not None
        and view.best_advanced_age >= 3.0
    )


def _still_down(view: ContainerView, since: float | None, now: float) -> float | None:
    """Since when the container has been seen not running outside a restart (or ``None``)."""
    if view.running or view.restart_in_flight:
        return None
    return now if since is None else since


#: aiodocker's "cannot connect" nests its causes in brackets; the innermost says it best.
_INNERMOST_RE = re.compile(r"\[([^\[\]]+)\]+$")


def _innermost(error: BaseException) -> str:
    """Why the Engine could not be reached, in a few words."""
    if isinstance(error, aiodocker.DockerError) and error.status == 900:
        found = _INNERMOST_RE.search(str(error.message).strip())
        if found is not None:
            return found[1]
    return describe_error(error)


def _check_port(port: int) -> None:
    """Raise :class:`DemoFailed` if 127.0.0.1:*port* cannot be bound (the status page's)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As asyncio binds servers, so that connections in TIME_WAIT do not count as in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise _port_in_use(port) from None
            raise DemoFailed(
                f"cannot use port {port} on 127.0.0.1: {error.strerror}", EXIT_SETUP
            ) from None


def _port_in_use(port: int) -> DemoFailed:
    return DemoFailed(
        f"port {port} on 127.0.0.1 is in use (another azwatch?): choose another with "
        "--port, or --port 0 for any free one",
        EXIT_SETUP,
    )


def _missing_image(image: str) -> DemoFailed:
    return DemoFailed(
        f"no image {image} here (the demo never pulls one): build it in a clone of azwatch "
        f"with `docker build -t {image} .`, or name another with --image",
        EXIT_SETUP,
    )
