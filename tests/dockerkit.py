"""Docker test infrastructure: engine check, the fake aleph-node image and containers.

Load it from a conftest with ``pytest_plugins = ["dockerkit"]`` (tests/ is on sys.path
under pytest's default import mode). It provides:

* ``docker_engine`` (session): the Docker host URL (``unix:///var/run/docker.sock``)
  once a daemon answers. Without one the test is skipped, or fails when ``CI=true``.
* ``fake_node_image`` (session): builds ``azwatch-test-node:latest`` from
  tests/fakenode (FROM scratch + the host's static ``/bin/busybox``; never pulls).
* ``fake_node`` (function): a :class:`FakeNodeFactory`; ``fake_node(STEP=2, TICK=0.2)``
  runs a uniquely named ``azwatch-test-*`` container; all are removed at teardown.
* :class:`FakeNode` to drive one container and :class:`DockerEvents` to record what
  Docker itself reports (start/die/restart...) about a container.

Tests marked ``@pytest.mark.docker`` get the skip/fail behaviour of ``docker_engine``
even when they don't use it, and tests using these fixtures are marked ``docker``.

Everything here is synchronous (subprocess + the ``docker`` CLI). In an async test
that runs the watchdog in the same event loop, don't block the loop on a wait: use
the ``*_async`` waiters, or ``await anyio.to_thread.run_sync(node.restart)``.

PYTEST_DONT_REWRITE: test modules may import this before it is registered as a plugin;
without this marker pytest then warns (an error under filterwarnings=error).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, Protocol, Self, TypeVar, overload

import anyio
import pytest

T = TypeVar("T")

FAKE_NODE_IMAGE = "azwatch-test-node:latest"
FAKENODE_DIR = Path(__file__).resolve().parent / "fakenode"
BUSYBOX = Path(os.environ.get("AZWATCH_TEST_BUSYBOX", "/bin/busybox"))
CONTAINER_PREFIX = "azwatch-test-"
LABEL = "azwatch.test"  # on every container and image made here
PID_LABEL = "azwatch.test.pid"  # the pytest process that made a container
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

#: The fake node's parameters (see tests/fakenode/fakenode.sh for their meaning).
PARAMS = frozenset(
    {
        "START",
        "STEP",
        "TICK",
        "PEERS",
        "MAJOR_SYNC",
        "PRODUCE",
        "QUIET",
        "EXIT",
        "IGNORE_TERM",
        "STATUS_EVERY",
    }
)
ParamValue = int | float | str | bool | None


class DockerError(RuntimeError):
    """A ``docker`` CLI command failed."""


# --------------------------------------------------------------------------- CLI


def docker(
    *args: str,
    check: bool = True,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS`` and capture its output as UTF-8 text."""
    cmd = ["docker", *args]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=None if env is None else {**os.environ, **env},
            check=False,
        )
    except FileNotFoundError as exc:
        raise DockerError("the docker CLI is not installed (Debian package docker.io)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"{' '.join(cmd)} did not finish within {timeout} s") from exc
    if check and proc.returncode != 0:
        raise DockerError(
            f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def in_ci() -> bool:
    """True when the CI system runs us (``CI=true``): missing Docker is then an error."""
    return os.environ.get("CI", "").strip().lower() == "true"


def docker_host() -> str:
    """The Docker host the CLI talks to, as a URL aiodocker accepts."""
    if host := os.environ.get("DOCKER_HOST"):
        return host
    try:
        proc = docker("context", "inspect", check=False, timeout=10)
        host = json.loads(proc.stdout)[0]["Endpoints"]["docker"]["Host"]
    except (DockerError, ValueError, LookupError, TypeError):
        return DEFAULT_DOCKER_HOST
    return host if isinstance(host, str) and host else DEFAULT_DOCKER_HOST


def engine_problem(timeout: float = 20) -> str | None:
    """Why no Docker Engine answers, or None when one does."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (Debian package docker.io)"
    try:
        proc = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=timeout)
    except DockerError as exc:
        return str(exc)
    if proc.returncode != 0 or not proc.stdout.strip():
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return (lines[-1] if lines else f"docker version exited {proc.returncode}") + (
            " (start one with .ci/start-dockerd)"
        )
    return None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, or fail it under ``CI=true`` where a skip would hide a broken setup."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must not be skipped)", pytrace=False)
    pytest.skip(reason)


# ------------------------------------------------------------------------- image


def build_fake_node_image(tag: str = FAKE_NODE_IMAGE, *, busybox: Path = BUSYBOX) -> str:
    """Build the fake aleph-node image from tests/fakenode and return its tag.

    The build context is a temp dir with the Dockerfile, fakenode.sh and a copy of the
    host's static busybox. Uses the classic builder with ``--network host``: FROM
    scratch needs no registry, and nothing is ever pulled.
    """
    if not busybox.is_file():
        raise DockerError(
            f"{busybox} is missing: install Debian's busybox-static (a static busybox is"
            " what the FROM-scratch test image runs; set AZWATCH_TEST_BUSYBOX to use another)"
        )
    previous = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="azwatch-fakenode-") as ctx:
        for name in ("Dockerfile", "fakenode.sh"):
            shutil.copy2(FAKENODE_DIR / name, Path(ctx, name))
        shutil.copy2(busybox, Path(ctx, "busybox"))
        Path(ctx, "busybox").chmod(0o755)
        proc = docker(
            "build",
            "--network",
            "host",
            "--label",
            f"{LABEL}=1",
            "--tag",
            tag,
            ctx,
            check=False,
            timeout=300,
            env={"DOCKER_BUILDKIT": "0"},
        )
    if proc.returncode != 0:
        raise DockerError(
            f"docker build of {tag} failed (is {busybox} statically linked?):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    current = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    if previous and previous != current:
        # fakenode.sh changed: drop the old build (now untagged) unless a container uses it
        docker("image", "rm", previous, check=False)
    return tag


def remove_stale_containers() -> list[str]:
    """Remove ``azwatch-test-*`` containers left by pytest processes that are gone."""
    proc = docker(
        "ps",
        "-a",
        "--filter",
        f"label={LABEL}",
        "--format",
        '{{.Names}}\t{{.Label "' + PID_LABEL + '"}}',
        check=False,
    )
    stale = []
    for line in proc.stdout.splitlines():
        name, _, pid = line.partition("\t")
        if name.startswith(CONTAINER_PREFIX) and pid.isdigit() and not _pid_alive(int(pid)):
            stale.append(name)
    if stale:
        docker("rm", "-f", "-v", *stale, check=False)
    return stale


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------ waiting


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 10, interval: float = 0.1, what: str = ""
) -> T:
    """Call ``probe`` until it returns something other than None/False; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or probe!r}")
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], T | None], *, interval: float = 0.1, what: str = ""
) -> T:
    """:func:`wait_until` for async tests, without blocking the event loop: ``probe``
    runs in a worker thread. Bound it with ``anyio.fail_after(seconds)``."""
    while True:
        result = await anyio.to_thread.run_sync(probe)
        if result is not None and result is not False:
            return result
        await anyio.sleep(interval)


# ---------------------------------------------------------------------- fake node


def _param_name(key: str) -> str:
    name = key.upper()
    if name not in PARAMS:
        raise ValueError(f"unknown fake node parameter {key!r} (known: {sorted(PARAMS)})")
    return name


def _param_value(value: int | float | str | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{Decimal(str(value)):f}"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValueError(f"parameter value {text!r} contains a line break")
    return text


class _RunFunction(Protocol):
    def __call__(
        self,
        name: str,
        ctl_dir: str | os.PathLike[str],
        *,
        image: str = ...,
        restart_policy: str | None = ...,
        docker_args: Sequence[str] = ...,
        **params: ParamValue,
    ) -> FakeNode: ...


class _StartDescriptor:
    """``FakeNode.start(name, ctl_dir, ...)`` runs a new container (= :meth:`FakeNode.run`);
    ``node.start()`` starts that stopped container again (= :meth:`FakeNode.docker_start`)."""

    @overload
    def __get__(self, obj: None, owner: type[FakeNode]) -> _RunFunction: ...
    @overload
    def __get__(self, obj: FakeNode, owner: type[FakeNode] | None = None) -> Callable[[], None]: ...
    def __get__(
        self, obj: FakeNode | None, owner: type[FakeNode] | None = None
    ) -> _RunFunction | Callable[[], None]:
        if obj is None:
            assert owner is not None
            return owner.run
        return obj.docker_start


class FakeNode:
    """One fake aleph-node container, driven through the docker CLI.

    Parameters go in as environment variables at ``docker run`` and can be changed at
    run time with :meth:`set` (written to ``<ctl_dir>/params``, read by the node every
    tick). The node keeps its best block in ``<ctl_dir>/best`` across restarts.
    """

    start = _StartDescriptor()

    def __init__(self, name: str, ctl_dir: Path, image: str, container_id: str) -> None:
        self.name = name
        self.ctl_dir = ctl_dir
        self.image = image
        self.id = container_id

    def __repr__(self) -> str:
        return f"FakeNode({self.name!r}, ctl_dir={str(self.ctl_dir)!r})"

    @classmethod
    def run(
        cls,
        name: str,
        ctl_dir: str | os.PathLike[str],
        *,
        image: str = FAKE_NODE_IMAGE,
        restart_policy: str | None = None,
        docker_args: Sequence[str] = (),
        command: Sequence[str] = (),
        **params: ParamValue,
    ) -> Self:
        """``docker run -d --name NAME --network none -v CTL_DIR:/ctl -e K=V ... IMAGE``.

        ``restart_policy`` is Docker's ``--restart`` value (``always``, ``on-failure:3``);
        ``docker_args`` are extra ``docker run`` options (``--entrypoint``), ``command`` the
        arguments after the image; ``params`` are the fake node's
        (``STEP=0``, ``TICK=0.2``, ``PRODUCE=True``; None means not given).
        """
        ctl = Path(ctl_dir).resolve()
        ctl.mkdir(parents=True, exist_ok=True)
        args = ["run", "--detach", "--name", name, "--network", "none"]
        args += ["--log-driver", "json-file", "--volume", f"{ctl}:/ctl"]
        args += ["--label", f"{LABEL}=1", "--label", f"{PID_LABEL}={os.getpid()}"]
        if restart_policy is not None:
            args += ["--restart", restart_policy]
        for key, value in params.items():
            if value is not None:
                args += ["--env", f"{_param_name(key)}={_param_value(value)}"]
        args += [*docker_args, image, *command]
        container_id = docker(*args).stdout.strip()
        return cls(name, ctl, image, container_id)

    # -- parameters ---------------------------------------------------------------

    @property
    def params_file(self) -> Path:
        return self.ctl_dir / "params"

    def params(self) -> dict[str, str]:
        """The run-time overrides now in ``<ctl_dir>/params``."""
        try:
            text = self.params_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        pairs = (line.partition("=") for line in text.splitlines())
        return {key: value for key, sep, value in pairs if sep}

    def set(self, **params: ParamValue) -> None:
        """Override parameters at run time (from the node's next tick on).

        Merges into ``<ctl_dir>/params``, replaced atomically; ``KEY=None`` removes an
        override, so the node falls back to its environment value.
        """
        current = self.params()
        for key, value in params.items():
            name = _param_name(key)
            if value is None:
                current.pop(name, None)
            else:
                current[name] = _param_value(value)
        tmp = self.ctl_dir / f".params.{uuid.uuid4().hex}"
        tmp.write_text("".join(f"{k}={v}\n" for k, v in current.items()), encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(self.params_file)

    def best(self) -> int | None:
        """The best block the node last saved in ``<ctl_dir>/best`` (None before)."""
        try:
            return int((self.ctl_dir / "best").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # -- docker -------------------------------------------------------------------

    def inspect(self) -> dict[str, Any]:
        """``docker inspect`` of the container."""
        data = json.loads(docker("inspect", "--type", "container", self.name).stdout)
        assert isinstance(data, list)
        assert len(data) == 1
        assert isinstance(data[0], dict)
        return data[0]

    def state(self) -> dict[str, Any]:
        state = self.inspect()["State"]
        assert isinstance(state, dict)
        return state

    def started_at(self) -> str:
        """``State.StartedAt``: changes on every (re)start."""
        return str(self.state()["StartedAt"])

    def status(self) -> str:
        """``created``, ``running``, ``restarting``, ``exited``..."""
        return str(self.state()["Status"])

    def exit_code(self) -> int:
        return int(self.state()["ExitCode"])

    def restart_count(self) -> int:
        """Restarts by the restart policy (``docker restart`` doesn't count)."""
        return int(self.inspect()["RestartCount"])

    def restart(self, t: int = 1) -> None:
        docker("restart", "-t", str(t), self.name)

    def stop(self, t: int = 1) -> None:
        docker("stop", "-t", str(t), self.name)

    def docker_start(self) -> None:
        """``docker start`` (also reachable as ``node.start()``)."""
        docker("start", self.name)

    def kill(self, signal: str = "KILL") -> None:
        docker("kill", "--signal", signal, self.name)

    def remove(self) -> None:
        """``docker rm -f``; no error when it is gone already."""
        proc = docker("rm", "-f", "-v", self.name, check=False)
        if proc.returncode != 0 and "No such container" not in proc.stderr:
            raise DockerError(f"docker rm -f {self.name}: {proc.stderr.strip()}")

    def logs(
        self,
        *,
        stdout: bool = True,
        stderr: bool = True,
        since: str | None = None,
        tail: int | None = None,
        timestamps: bool = False,
    ) -> str:
        """``docker logs``: the node's log is on stderr; stdout only has diagnostics."""
        args = ["logs", "--timestamps"] if timestamps else ["logs"]
        if since is not None:
            args += ["--since", since]
        if tail is not None:
            args += ["--tail", str(tail)]
        proc = docker(*args, self.name)
        return (proc.stdout if stdout else "") + (proc.stderr if stderr else "")

    # -- waiting ------------------------------------------------------------------

    def _log_line(self, pattern: str | re.Pattern[str], count: int) -> Callable[[], str | None]:
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern

        def probe() -> str | None:
            found = [ln for ln in self.logs().splitlines() if regex.search(ln)]
            return found[count - 1] if len(found) >= count else None

        return probe

    def wait_for_log(
        self, pattern: str | re.Pattern[str], *, count: int = 1, timeout: float = 10
    ) -> str:
        """Wait until ``count`` log lines contain ``pattern`` (a str, or a regex searched
        in each line); return the ``count``-th of them."""
        return wait_until(
            self._log_line(pattern, count), timeout=timeout, what=f"{count}x log line {pattern!r}"
        )

    async def wait_for_log_async(self, pattern: str | re.Pattern[str], *, count: int = 1) -> str:
        """:meth:`wait_for_log` for async tests; bound it with ``anyio.fail_after``."""
        return await wait_until_async(
            self._log_line(pattern, count), what=f"{count}x log line {pattern!r}"
        )

    def wait_best(self, at_least: int, *, timeout: float = 10) -> int:
        """Wait until the saved best block is ``>= at_least``; return it."""

        def probe() -> int | None:
            best = self.best()
            return best if best is not None and best >= at_least else None

        return wait_until(probe, timeout=timeout, what=f"best >= {at_least}")

    def wait_status(self, status: str, *, timeout: float = 10) -> str:
        """Wait for ``State.Status`` (e.g. ``running``, ``exited``)."""
        return wait_until(
            lambda: status if self.status() == status else None,
            timeout=timeout,
            what=f"{self.name} {status}",
        )


def _docker_name(text: str) -> str:
    cleaned = re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-_.")
    return cleaned[:40] or "node"


class FakeNodeFactory:
    """What the ``fake_node`` fixture yields: call it to run a fake node container."""

    def __init__(self, image: str, workdir: Path, hint: str = "node") -> None:
        self.image = image
        self.workdir = workdir
        self.hint = _docker_name(hint)
        self.nodes: list[FakeNode] = []

    def __call__(
        self,
        *,
        name: str | None = None,
        ctl_dir: str | os.PathLike[str] | None = None,
        restart_policy: str | None = None,
        image: str | None = None,
        docker_args: Sequence[str] = (),
        command: Sequence[str] = (),
        **params: ParamValue,
    ) -> FakeNode:
        """Run a fake node named ``azwatch-test-<name or test name>-<random>``.

        ``ctl_dir`` defaults to a fresh directory; pass another node's ``ctl_dir`` to
        have a new container continue from its best block.
        """
        suffix = uuid.uuid4().hex[:8]
        full_name = f"{CONTAINER_PREFIX}{_docker_name(name) if name else self.hint}-{suffix}"
        ctl = Path(ctl_dir) if ctl_dir is not None else self.workdir / f"ctl-{suffix}"
        node = FakeNode.run(
            full_name,
            ctl,
            image=image or self.image,
            restart_policy=restart_policy,
            docker_args=docker_args,
            command=command,
            **params,
        )
        self.nodes.append(node)
        return node

    def remove_all(self) -> None:
        for node in self.nodes:
            node.remove()
        self.nodes.clear()


# ------------------------------------------------------------------------- events


class DockerEvents:
    """Record the events Docker reports for one container, from creation on.

    ``docker events --filter container=NAME --since <now>`` runs in the background (the
    ``--since`` replays what happened between creating this and its process starting).
    Use as a context manager, or call :meth:`start` / :meth:`stop`::

        with DockerEvents(node.name) as ev:
            node.restart()
            ev.wait_for("restart")
        assert ev.actions() == ["kill", "die", "stop", "start", "restart"]
    """

    def __init__(self, container: str, *, since: float | None = None) -> None:
        self.container = container
        self.since = time.time() if since is None else since
        self._events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._proc is not None:
            return
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--filter",
                f"container={self.container}",
                "--filter",
                "type=container",
                "--since",
                f"{self.since:.6f}",
                "--format",
                "{{json .}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                with self._cond:
                    self._events.append(event)
                    self._cond.notify_all()

    def stop(self) -> list[dict[str, Any]]:
        """Stop recording (after a short grace for events in flight); return them all."""
        if self._proc is not None:
            time.sleep(0.1)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        return self.events

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events so far, as Docker's JSON (``Action``, ``Actor.Attributes``...)."""
        with self._cond:
            return list(self._events)

    def actions(self) -> list[str]:
        """The ``Action`` of each event so far, e.g. ``["kill", "die", "stop", "start"]``."""
        return [str(e.get("Action") or e.get("status")) for e in self.events]

    def _nth(self, action: str, count: int) -> dict[str, Any] | None:
        matching = [e for e in self._events if (e.get("Action") or e.get("status")) == action]
        return matching[count - 1] if len(matching) >= count else None

    def wait_for(self, action: str, *, count: int = 1, timeout: float = 10) -> dict[str, Any]:
        """Block until the ``count``-th event with this ``Action`` arrived; return it."""
        with self._cond:
            if self._cond.wait_for(lambda: self._nth(action, count) is not None, timeout):
                event = self._nth(action, count)
                assert event is not None
                return event
        raise TimeoutError(
            f"no {count}x {action!r} event for {self.container} within {timeout} s;"
            f" saw {self.actions()}"
        )

    async def wait_for_async(self, action: str, *, count: int = 1) -> dict[str, Any]:
        """:meth:`wait_for` without blocking the event loop; bound it with
        ``anyio.fail_after(seconds)``."""
        while True:
            with self._cond:
                event = self._nth(action, count)
            if event is not None:
                return event
            await anyio.sleep(0.05)


def collect_events(
    container: str, since: float, until: float | None = None
) -> list[dict[str, Any]]:
    """The events Docker reported for ``container`` between two ``time.time()`` values
    (``until`` defaults to now); Docker keeps only its recent events for this."""
    until = time.time() if until is None else until
    proc = docker(
        "events",
        "--filter",
        f"container={container}",
        "--filter",
        "type=container",
        "--since",
        f"{since:.6f}",
        "--until",
        f"{until:.6f}",
        "--format",
        "{{json .}}",
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return [e for e in events if isinstance(e, dict)]


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The Docker host URL once a daemon answers; skip (fail under CI=true) otherwise."""
    problem = engine_problem()
    if problem is not None:
        skip_or_fail(f"no Docker Engine: {problem}")
    return docker_host()


@pytest.fixture(scope="session")
def fake_node_image(docker_engine: str) -> str:
    """Build ``azwatch-test-node:latest`` once per session and return its name."""
    remove_stale_containers()
    try:
        return build_fake_node_image()
    except DockerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def fake_node(
    fake_node_image: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FakeNodeFactory]:
    """A factory of fake node containers, all removed (``docker rm -f``) at teardown."""
    factory = FakeNodeFactory(fake_node_image, tmp_path, hint=request.node.name)
    try:
        yield factory
    finally:
        factory.remove_all()


@pytest.fixture(autouse=True)
def _docker_marker_needs_engine(request: pytest.FixtureRequest) -> None:
    """Tests marked ``docker`` skip (fail under CI=true) without a Docker Engine."""
    if request.node.get_closest_marker("docker") is not None:
        request.getfixturevalue("docker_engine")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use these fixtures ``docker`` (so ``-m "not docker"`` works)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if {"docker_engine", "fake_node_image", "fake_node"} & set(names):
            item.add_marker(pytest.mark.docker)


# ---------------------------------------------------------------------------- main

if __name__ == "__main__":
    # python tests/dockerkit.py build|clean  (by hand, outside pytest)
    command = sys.argv[1] if len(sys.argv) > 1 else "build"
    if command == "build":
        print(build_fake_node_image())
    elif command == "clean":
        print("\n".join(remove_stale_containers()) or "no stale containers")
    else:
        sys.exit("usage: python tests/dockerkit.py [build|clean]")
