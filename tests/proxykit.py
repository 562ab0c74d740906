"""A real least-privilege Docker socket proxy for the tests: Debian's haproxy on 127.0.0.1.

tests/haproxy/socket-proxy.cfg implements the rules of linuxserver's socket-proxy image,
switched by the same environment variables. :class:`SocketProxy` fills in its placeholders
(port, the Engine's unix socket, timeouts), runs ``haproxy -db`` with the image's defaults
(:data:`IMAGE_DEFAULTS`) plus a profile (:data:`AZWATCH_PROFILE` by default) as its only
environment, and reads haproxy's access log, one :class:`Logged` per request::

    with SocketProxy(tmp_path, server_timeout="2s") as proxy:
        proxy.url                # tcp://127.0.0.1:<port>, a DOCKER_HOST
        proxy.requests()         # what went through, and how each ended

Without haproxy the test is skipped, or fails under ``CI=true`` (Debian package haproxy).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from dockerkit import skip_or_fail

TEMPLATE = Path(__file__).resolve().parent / "haproxy" / "socket-proxy.cfg"
ENGINE_SOCKET = "/var/run/docker.sock"

#: The switches of linuxserver's socket-proxy image and their defaults (its Dockerfile's ENV):
#: reads of /events, /_ping and /version are allowed, everything else is off.
IMAGE_DEFAULTS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "ALLOW_ARCHIVE",
            "ALLOW_CHANGES",
            "ALLOW_EXPORT",
            "ALLOW_LOGS",
            "ALLOW_PAUSE",
            "ALLOW_RESTARTS",
            "ALLOW_START",
            "ALLOW_STOP",
            "ALLOW_TOP",
            "ALLOW_UNPAUSE",
            "AUTH",
            "BUILD",
            "COMMIT",
            "CONFIGS",
            "CONTAINERS",
            "DISTRIBUTION",
            "EXEC",
            "GRPC",
            "IMAGES",
            "INFO",
            "NETWORKS",
            "NODES",
            "PLUGINS",
            "POST",
            "SECRETS",
            "SERVICES",
            "SESSION",
            "SWARM",
            "SYSTEM",
            "TASKS",
            "VOLUMES",
            "LIBPOD_ALLOW_PAUSE",
            "LIBPOD_ALLOW_POD_PAUSE",
            "LIBPOD_ALLOW_POD_RESTARTS",
            "LIBPOD_ALLOW_POD_START",
            "LIBPOD_ALLOW_POD_STOP",
            "LIBPOD_ALLOW_POD_UNPAUSE",
            "LIBPOD_ALLOW_RESTARTS",
            "LIBPOD_ALLOW_START",
            "LIBPOD_ALLOW_STOP",
            "LIBPOD_ALLOW_UNPAUSE",
            "LIBPOD_CONTAINERS",
            "LIBPOD_EVENTS",
            "LIBPOD_EXEC",
            "LIBPOD_GENERATE",
            "LIBPOD_IMAGES",
            "LIBPOD_INFO",
            "LIBPOD_MANIFESTS",
            "LIBPOD_NETWORKS",
            "LIBPOD_PLAY",
            "LIBPOD_PODS",
            "LIBPOD_SECRETS",
            "LIBPOD_SYSTEM",
            "LIBPOD_VOLUMES",
        ),
        "0",
    ),
    **dict.fromkeys(("EVENTS", "PING", "VERSION", "LIBPOD_PING", "LIBPOD_VERSION"), "1"),
}

#: What the README promises is all azwatch needs.
AZWATCH_PROFILE: Mapping[str, str] = {
    "CONTAINERS": "1",
    "ALLOW_LOGS": "1",
    "ALLOW_RESTARTS": "1",
    "POST": "0",
}

#: One line of haproxy's ``option httplog``: client, date, frontend, backend/server, timers,
#: status, bytes, two cookies, the termination state, connection and queue counts, request.
_HTTPLOG = re.compile(
    r"^\S+ \[[^\]]+\] \S+ (?P<server>\S+) (?P<timers>\S+) (?P<status>-?\d+) \S+ \S+ \S+ "
    r'(?P<term>\S{4}) \S+ \S+ "(?P<method>\S+) (?P<path>\S+)(?: [^"]*)?"$'
)


@dataclass(frozen=True, slots=True)
class Logged:
    """One request haproxy logged (when it ended)."""

    method: str
    path: str
    status: int
    #: haproxy's termination state: ``----`` normal, ``PR--`` refused by a rule, ``sD--``
    #: cut by the server timeout while data flowed (an idle stream), ``CD--`` client gone.
    termination: str
    #: ``docker/engine`` when it was passed on, ``socket_proxy/<NOSRV>`` when refused.
    server: str

    @property
    def refused(self) -> bool:
        return self.termination.startswith("PR")

    @property
    def cut_idle(self) -> bool:
        """Ended by ``timeout server``: the Engine sent nothing for that long."""
        return self.termination.startswith("sD")


def haproxy_binary() -> str:
    """The haproxy program; skip (fail under CI=true) without it."""
    found = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
    )
    if found is None:
        skip_or_fail("haproxy is not installed (Debian package haproxy)")
    return found


def render(*, port: int, socket_path: str, client_timeout: str, server_timeout: str) -> str:
    """The template with its placeholders filled in."""
    text = TEMPLATE.read_text(encoding="utf-8")
    values = {
        "PORT": str(port),
        "SOCKET": socket_path,
        "CLIENT_TIMEOUT": client_timeout,
        "SERVER_TIMEOUT": server_timeout,
    }
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    left = sorted(set(re.findall(r"@@[A-Z_]+@@", text)))
    if left:
        raise ValueError(f"{TEMPLATE.name}: placeholders left unfilled: {left}")
    return text


def switches(profile: Mapping[str, str]) -> dict[str, str]:
    """The image's defaults with *profile* laid over them (unknown switches are an error)."""
    unknown = set(profile) - set(IMAGE_DEFAULTS)
    if unknown:
        raise ValueError(f"not switches of the socket-proxy image: {sorted(unknown)}")
    return {**IMAGE_DEFAULTS, **profile}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SocketProxy:
    """haproxy in front of the Engine's socket, on a free 127.0.0.1 port.

    *profile* is laid over :data:`IMAGE_DEFAULTS`; the timeouts are haproxy's (``10m`` as
    in the image, ``2s`` to see idle streams cut).
    """

    def __init__(
        self,
        workdir: Path,
        profile: Mapping[str, str] = AZWATCH_PROFILE,
        *,
        socket_path: str = ENGINE_SOCKET,
        server_timeout: str = "10m",
        client_timeout: str = "10m",
    ) -> None:
        self.workdir = workdir
        self.environment = switches(profile)
        self.socket_path = socket_path
        self.server_timeout = server_timeout
        self.client_timeout = client_timeout
        self.port = 0
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The proxy as a ``DOCKER_HOST``."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def write_config(self, port: int) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            render(
                port=port,
                socket_path=self.socket_path,
                client_timeout=self.client_timeout,
                server_timeout=self.server_timeout,
            ),
            encoding="utf-8",
        )
        return self.config_path

    def check_config(self) -> str:
        """``haproxy -c``: the configuration's own validity; its output."""
        self.write_config(self.port or free_port())
        proc = subprocess.run(
            [haproxy_binary(), "-c", "-f", str(self.config_path)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=30,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"haproxy -c rejected the configuration:\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout + proc.stderr

    def _env(self) -> dict[str, str]:
        # Only the switches: a POST=1 in the test's own environment must not leak in.
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.environment}

    def start(self) -> None:
        binary = haproxy_binary()
        for _ in range(5):  # a port free a moment ago may be taken meanwhile
            self.port = free_port()
            self.write_config(self.port)
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    [binary, "-db", "-f", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                )
            if self._wait_listening():
                return
            self.stop()
        raise RuntimeError(f"haproxy did not start:\n{self.log_text()[-3000:]}")

    def _wait_listening(self, timeout: float = 10) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def requests(self, method: str | None = None, path: str = "") -> list[Logged]:
        """The requests logged so far (a request is logged when it ends), optionally those
        of *method* whose path contains *path*."""
        found = []
        for line in self.log_text().splitlines():
            match = _HTTPLOG.match(line.strip())
            if match is None:
                continue
            entry = Logged(
                method=match["method"],
                path=match["path"],
                status=int(match["status"]),
                termination=match["term"],
                server=match["server"],
            )
            if (method is None or entry.method == method) and path in entry.path:
                found.append(entry)
        return found

    def wait_for_requests(
        self, method: str | None = None, path: str = "", *, count: int = 1, timeout: float = 5
    ) -> list[Logged]:
        """:meth:`requests`, once at least *count* are logged (haproxy logs a request when
        it ends: a stream when it is closed)."""
        deadline = time.monotonic() + timeout
        while len(found := self.requests(method, path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return found
