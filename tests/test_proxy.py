"""azwatch through a real least-privilege Docker socket proxy, and ``check --permissions``.

The proxy is Debian's haproxy with tests/haproxy/socket-proxy.cfg: the rules of
linuxserver's socket-proxy, run with the profile the README promises is all azwatch needs
(``CONTAINERS=1 ALLOW_LOGS=1 ALLOW_RESTARTS=1 POST=0`` over the image's defaults
``EVENTS=1 PING=1 VERSION=1``), on 127.0.0.1 in front of /var/run/docker.sock. The tests
show that the live watcher does its whole job through it and asks for nothing it refuses;
that the streams it cuts when idle (``timeout server``, 10 minutes in the image, 2 s here) are
re-attached with no line applied twice; that it refuses create, exec and delete; and what
``azwatch check --permissions`` says about the raw socket, the proxy and narrower profiles.

Docker Engine's own records (its events, ``docker logs --timestamps``, inspect) and haproxy's
access log are the evidence, not what azwatch believes.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio
import pytest
import yaml
from aiohttp import web
from dockerkit import (
    FAKE_NODE_IMAGE,
    LABEL,
    DockerEvents,
    FakeNode,
    FakeNodeFactory,
    collect_events,
    docker,
)
from fakerpc import FakeRpc, closed_port_url
from loopback import start_on_loopback, stop
from proxykit import AZWATCH_PROFILE, IMAGE_DEFAULTS, Logged, SocketProxy, render, switches
from watchkit import NODE, HeadMover, eventually, running, scaled

import azwatch.cli
import azwatch.follower
from azwatch.config import Config
from azwatch.logparse import LogEvent
from azwatch.permissions import PROBE_PREFIX, Verdict, probe_permissions

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "examples" / "docker-compose.yml"
ProxyFactory = Callable[..., SocketProxy]


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ProxyFactory]:
    """Start socket proxies: ``proxy(profile=..., server_timeout="2s")``; all stopped at
    teardown."""
    started: list[SocketProxy] = []

    def start(profile: Mapping[str, str] = AZWATCH_PROFILE, **options: str) -> SocketProxy:
        each = SocketProxy(tmp_path / f"proxy-{len(started)}", profile, **options)
        started.append(each)
        each.start()
        return each

    try:
        yield start
    finally:
        for each in started:
            each.stop()


def ask(
    proxy: SocketProxy,
    method: str,
    path: str,
    body: object | None = None,
    *,
    timeout: float = 10,
) -> tuple[int, str]:
    """One HTTP request through *proxy*; its status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def containers_named(name: str) -> list[str]:
    """Every container, in any state, whose name is exactly *name* (asked of the socket)."""
    out = docker("ps", "--all", "--filter", f"name={name}", "--format", "{{.Names}}").stdout
    return [line for line in out.splitlines() if line == name]


def logged(node: FakeNode) -> list[str]:
    """The node's log as ``docker logs --timestamps`` has it (the node writes to stderr)."""
    proc = docker("logs", "--timestamps", node.name)
    assert proc.stdout == ""
    return proc.stderr.removesuffix("\n").split("\n") if proc.stderr else []


def record_applied_lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every line a follower hands to the parser from now on, in order (with its stamp)."""
    lines: list[str] = []
    parse_block = azwatch.follower.parse_block

    def recording(block: str) -> list[LogEvent]:
        lines.extend(block.split("\n"))
        return parse_block(block)

    monkeypatch.setattr(azwatch.follower, "parse_block", recording)
    return lines


# --- the configuration itself -------------------------------------------------------------


def test_the_template_is_a_valid_haproxy_configuration(tmp_path: Path) -> None:
    """haproxy -c accepts the filled-in template; by default it keeps the image's 10m."""
    text = render(
        port=2375, socket_path="/var/run/docker.sock", client_timeout="10m", server_timeout="10m"
    )
    assert "timeout server 10m" in text
    assert "@@" not in text
    output = SocketProxy(tmp_path, server_timeout="2s").check_config()
    assert "valid" in output.lower()


def test_the_tested_profile_is_the_one_the_compose_example_ships() -> None:
    """examples/docker-compose.yml gives the proxy exactly the switches tested here."""
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    shipped = {
        key: str(value)
        for key, value in document["services"]["socket-proxy"]["environment"].items()
    }
    tested = switches(AZWATCH_PROFILE)
    assert set(shipped) <= set(IMAGE_DEFAULTS)
    assert {key: tested[key] for key in shipped} == shipped
    # and nothing the compose file leaves to the image's defaults is switched on here
    assert {k: v for k, v in tested.items() if v == "1"} == {
        k: v for k, v in {**IMAGE_DEFAULTS, **shipped}.items() if v == "1"
    }


#: (method, path, allowed): each rule of the profile, on names no container has, so that
#: nothing happens even where the proxy lets the request through. "Allowed" means haproxy
#: passed it to the Engine (which may still say 404); refused means haproxy's own 403.
RULES = [
    # the API sections the profile opens, for reading only
    ("GET", "/_ping", True),
    ("HEAD", "/_ping", True),
    ("GET", "/version", True),
    ("GET", "/v1.41/version", True),
    ("GET", "/v1.41/containers/json", True),
    ("GET", "/containers/json", True),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/json", True),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/logs?stdout=1", True),
    ("GET", "/v1.41/events?since=0&until=1", True),
    # residual: every GET under /containers passes, the websocket attach and stats included
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/attach/ws?stream=1", True),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/stats?stream=0", True),
    # ALLOW_RESTARTS, checked before the POST gate: restart, and with it stop and kill
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/restart", True),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/stop", True),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/kill", True),
    # deny gates whose ALLOW_* is off: refused even for GET
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/archive?path=/", False),
    ("HEAD", f"/v1.41/containers/{PROBE_PREFIX}x/archive?path=/", False),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/export", False),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/changes", False),
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/top", False),
    # lifecycle switches that are off, then the POST gate (POST=0)
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/start", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/pause", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/unpause", False),
    ("POST", "/v1.41/containers/create", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/exec", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/update", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/rename?name=y", False),
    ("POST", f"/v1.41/containers/{PROBE_PREFIX}x/attach", False),
    ("PUT", f"/v1.41/containers/{PROBE_PREFIX}x/archive?path=/", False),
    ("DELETE", f"/v1.41/containers/{PROBE_PREFIX}x", False),
    ("POST", "/v1.41/containers/prune", False),
    ("POST", "/v1.41/images/create?fromImage=busybox", False),
    ("POST", "/v1.41/build", False),
    # sections whose switch is off: refused even for GET
    ("GET", "/v1.41/images/json", False),
    ("GET", "/v1.41/info", False),
    ("GET", "/v1.41/networks", False),
    ("GET", "/v1.41/volumes", False),
    ("GET", "/v1.41/system/df", False),
    ("GET", f"/v1.41/exec/{PROBE_PREFIX}x/json", False),
    ("GET", "/v1.41/plugins", False),
    ("GET", "/v1.41/secrets", False),
    ("GET", "/v1.41/swarm", False),
    # the match is on the decoded path: an escaped "archive" is still the archive rule
    ("GET", f"/v1.41/containers/{PROBE_PREFIX}x/%61rchive?path=/", False),
]


def test_each_rule_of_the_profile(docker_engine: str, proxy: ProxyFactory) -> None:
    """Every rule, one request each: passed to the Engine or refused by haproxy, as the
    profile says (the requests name no real container, so nothing is changed)."""
    proxied = proxy()
    wrong = []
    for method, path, allowed in RULES:
        status, _ = ask(proxied, method, path)
        if (status != 403) != allowed:
            wrong.append(f"{method} {path}: {status}, expected {'passed' if allowed else '403'}")
    assert not wrong, "\n".join(wrong)
    logged_requests = proxied.wait_for_requests(count=len(RULES))
    assert len(logged_requests) == len(RULES), logged_requests
    for (method, path, allowed), entry in zip(RULES, logged_requests, strict=True):
        assert (entry.method, entry.path) == (method, path)
        assert entry.refused is not allowed, entry
        assert (entry.server == "docker/engine") is allowed, entry


# --- (a) the live watcher does its job through the proxy ----------------------------------


async def test_azwatch_attaches_follows_and_restarts_a_lagging_node_through_the_proxy(
    fake_node: FakeNodeFactory, proxy: ProxyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """DOCKER_HOST is the proxy (image timeouts): azwatch follows the log, gets Docker's
    events, restarts the node when it lags; Docker's events show exactly that restart, and
    haproxy's log shows azwatch never asked for anything the profile refuses."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    first_start = node.started_at()
    proxied = proxy()
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node)
        with DockerEvents(node.name) as events:
            config = scaled((node.name,), rpc.url, docker_host=proxied.url)
            async with running(config, mover) as watcher:
                assert watcher.events is not None
                tracked = watcher.supervisor.books[node.name]
                status = watcher.followers[node.name].status
                await eventually(
                    lambda: status.attached and status.lines > 10 and tracked.state.run.best,
                    within=10,
                    what="attached through the proxy, lines applied",
                )
                await eventually(
                    lambda: watcher.events is not None and watcher.events.connected,
                    within=10,
                    what="the event stream is open through the proxy",
                )
                first_run = tracked.state.run.run_id
                received = watcher.events.received
                mover.offset = 500  # the node now lags badly
                with anyio.fail_after(20):
                    await events.wait_for_async("restart")
                mover.offset = 0
                await eventually(
                    lambda: any(getattr(r, "event", "") == "restart_done" for r in caplog.records),
                    within=15,
                    what="azwatch saw its restart succeed",
                )
                # Docker's events of the restart reached azwatch through the proxy ...
                await eventually(
                    lambda: watcher.events is not None and watcher.events.received > received,
                    within=5,
                    what="the restart's events arrived through the proxy",
                )
                # ... and the new run is followed.
                await eventually(
                    lambda: tracked.state.run.run_id != first_run and status.attached,
                    within=10,
                    what="the new run is followed",
                )
                best = tracked.state.run.best or 0
                await eventually(
                    lambda: (tracked.state.run.best or 0) > best + 5,
                    within=10,
                    what="the new run's imports are applied",
                )
                assert tracked.failed_restarts == 0
    assert events.actions().count("restart") == 1
    assert node.started_at() != first_start
    restarts = proxied.requests("POST", "/restart")
    assert [(r.status, r.server) for r in restarts] == [(204, "docker/engine")]
    assert proxied.wait_for_requests("GET", "/logs")
    # (The event stream is not in haproxy's log yet: haproxy logs a request when it ends, and
    # keeps a stream whose client left open until the Engine writes to it or the timeout.)
    refused = [r for r in proxied.requests() if r.refused]
    assert refused == [], f"azwatch asked for what the profile refuses: {refused}"


# --- (b) idle streams cut by the proxy -----------------------------------------------------


async def test_idle_streams_cut_by_the_proxy_are_reattached_and_no_line_is_applied_twice(
    fake_node: FakeNodeFactory, proxy: ProxyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``timeout server 2s`` haproxy cuts the log stream whenever the node is quiet and
    the event stream whenever Docker has nothing to say. azwatch re-attaches after each cut
    (its own silence timer, 60 s here, never fires), applies every line of
    ``docker logs --timestamps`` exactly once, in order, and the event stream comes back."""
    node = fake_node(**NODE)
    started = node.started_at()
    proxied = proxy(server_timeout="2s")
    applied = record_applied_lines(monkeypatch)

    def cut(path: str) -> list[Logged]:
        return [r for r in proxied.requests("GET", path) if r.cut_idle]

    async with FakeRpc() as rpc:
        # A long cooldown: this test is about the streams, not the decisions.
        config = scaled(
            (node.name,),
            rpc.url,
            docker_host=proxied.url,
            log_silence_timeout=60.0,
            cooldown=600.0,
            max_cooldown=600.0,
        )
        async with running(config, HeadMover(rpc, node)) as watcher:
            events = watcher.events
            assert events is not None
            reconnects = [0]
            reconnect = events.on_reconnect

            def counting() -> None:
                reconnects[0] += 1
                reconnect()

            events.on_reconnect = counting
            status = watcher.followers[node.name].status
            await eventually(lambda: status.lines > 10, within=10, what="lines flow")
            for _ in range(2):
                cuts = len(cut("/logs"))
                await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
                await eventually(
                    lambda n=cuts: len(cut("/logs")) >= n + 2,
                    within=30,
                    what="the proxy cut the idle log stream twice",
                )
                lines = status.lines
                await anyio.to_thread.run_sync(lambda: node.set(QUIET=0))
                await eventually(
                    lambda n=lines: status.lines > n + 10,
                    within=40,
                    what="lines flow again after the cuts",
                )
            assert len(cut("/events")) >= 2
            assert reconnects[0] >= 2
            # The event stream, re-opened after its cuts, still delivers: a harmless signal
            # (SIGWINCH; the node ignores it) makes Docker report a "kill" event.
            for _ in range(5):
                await eventually(lambda: events.connected, within=40, what="events reconnected")
                received = events.received
                await anyio.to_thread.run_sync(lambda: node.kill("WINCH"))
                with anyio.move_on_after(1.5):
                    while events.received == received:
                        await anyio.sleep(0.05)
                if events.received > received:
                    break
            assert events.received > received, "no event arrived on the re-opened stream"
            await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
            await anyio.sleep(1)  # the node's last tick
            written = await anyio.to_thread.run_sync(logged, node)
            await eventually(
                lambda: len(applied) >= len(written), within=40, what="every line applied"
            )
            assert status.silences == 0  # every re-attach followed a cut by the proxy
            assert status.attaches >= 5
            assert watcher.supervisor.books[node.name].state.restarts == 0
    assert applied == written
    assert node.started_at() == started


# --- (c) what the proxy refuses -------------------------------------------------------------


def test_the_proxy_refuses_create_exec_and_delete(
    fake_node: FakeNodeFactory, proxy: ProxyFactory
) -> None:
    """Through the profile, creating a container (even the privileged, host-mounting kind),
    exec-ing into one and deleting one are refused with 403 and never reach the Engine; and
    the Engine shows that nothing was created, executed or removed."""
    node = fake_node(**NODE)
    proxied = proxy()
    name = f"azwatch-test-proxy-created-{uuid.uuid4().hex[:8]}"
    try:
        status, body = ask(
            proxied,
            "POST",
            f"/v1.41/containers/create?name={name}",
            {
                "Image": FAKE_NODE_IMAGE,
                "Labels": {LABEL: "1"},
                "HostConfig": {"Privileged": True, "Binds": ["/:/host"], "NetworkMode": "none"},
            },
        )
        assert status == 403, body
        assert containers_named(name) == []
        # The same through the Docker CLI, as an intruder holding the proxy would try.
        cli = docker(
            "--host",
            proxied.url,
            "run",
            "--detach",
            "--name",
            name,
            "--privileged",
            "--network",
            "none",
            "--label",
            f"{LABEL}=1",
            FAKE_NODE_IMAGE,
            check=False,
        )
        assert cli.returncode != 0
        assert "403" in cli.stderr or "forbidden" in cli.stderr.lower(), cli.stderr
        assert containers_named(name) == []

        marker = node.ctl_dir / "exec-ran"
        status, body = ask(
            proxied,
            "POST",
            f"/v1.41/containers/{node.id}/exec",
            {"Cmd": ["/bin/busybox", "touch", "/ctl/exec-ran"]},
        )
        assert status == 403, body
        cli = docker(
            "--host",
            proxied.url,
            "exec",
            node.name,
            "/bin/busybox",
            "touch",
            "/ctl/exec-ran",
            check=False,
        )
        assert cli.returncode != 0
        assert "403" in cli.stderr or "forbidden" in cli.stderr.lower(), cli.stderr
        assert node.inspect().get("ExecIDs") in (None, [])
        assert not marker.exists()

        status, body = ask(proxied, "DELETE", f"/v1.41/containers/{node.id}?force=1")
        assert status == 403, body
        assert node.status() == "running"

        refused = [r for r in proxied.requests() if r.method in ("POST", "DELETE")]
        assert refused, "the refusals were logged"
        assert all(r.refused and r.status == 403 for r in refused), refused
        assert all(r.server != "docker/engine" for r in refused), refused
    finally:
        docker("rm", "--force", name, check=False)


def test_a_path_escaping_an_allowed_prefix_creates_nothing(
    docker_engine: str, proxy: ProxyFactory
) -> None:
    """The restart rule matches a path prefix, so haproxy passes ``…/restart%2F..%2F..%2Fcreate``
    on; the Engine cleans such a path and answers with a redirect to it (which, asked again,
    the proxy refuses): nothing is created."""
    proxied = proxy()
    name = f"azwatch-test-proxy-escape-{uuid.uuid4().hex[:8]}"
    try:
        status, body = ask(
            proxied,
            "POST",
            f"/v1.41/containers/x/restart%2F..%2F..%2Fcreate?name={name}",
            {"Image": FAKE_NODE_IMAGE, "Labels": {LABEL: "1"}},
        )
        assert not 200 <= status < 300, (status, body)
        assert containers_named(name) == []
    finally:
        docker("rm", "--force", name, check=False)


# --- check --permissions -------------------------------------------------------------------


@pytest.fixture
def cli_logging_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI would hand the root logger to its own handler; pytest keeps it here."""
    monkeypatch.setattr(azwatch.cli, "configure", lambda *args, **kwargs: None)


def permissions(
    capsys: pytest.CaptureFixture[str], docker_host: str, container: str | None = None
) -> tuple[int, dict[str, str], str]:
    """Run ``azwatch check --permissions``: exit code, verdict per call, whole output."""
    environ = {"DOCKER_HOST": docker_host}
    if container is not None:
        environ["CONTAINER_NAME"] = container
    code = azwatch.cli.main(["check", "--permissions"], environ=environ)
    out = capsys.readouterr().out
    verdicts = {}
    for line in out.splitlines():
        what, _, rest = line.partition(" ")
        if what in ("list", "inspect", "logs", "events", "restart", "create"):
            verdicts[what] = rest.split()[0]
    return code, verdicts, out


ALL_OK = dict.fromkeys(("list", "inspect", "logs", "events", "restart"), "ok")


@pytest.mark.usefixtures("cli_logging_untouched")
def test_check_permissions_on_the_raw_socket_warns_about_create(
    fake_node: FakeNodeFactory, docker_engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The socket itself allows everything: the five calls work (exit 0), and create is
    reported as more privilege than needed. Nothing is restarted or created."""
    node = fake_node(**NODE)
    started = node.started_at()
    since = time.time()
    code, verdicts, out = permissions(capsys, docker_engine, node.name)
    assert code == 0, out
    assert verdicts == {**ALL_OK, "create": "allowed"}, out
    assert "warning: create is allowed too: more privilege than needed" in out
    assert f"inspect  ok       GET /containers/{node.name}/json -> 200" in out
    assert "restart  ok       POST /containers/azwatch-permission-probe-" in out
    assert node.started_at() == started
    assert "restart" not in [event.get("Action") for event in collect_events(node.name, since)]
    probes = docker("ps", "--all", "--filter", "name=azwatch-permission-probe", "-q").stdout
    assert probes.strip() == ""


@pytest.mark.usefixtures("cli_logging_untouched")
def test_check_permissions_through_the_proxy_is_clean(
    fake_node: FakeNodeFactory, proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the profile: all five calls work, create is refused, no warning; the probes
    reached the Engine (restart's 404 for a name that cannot exist) and changed nothing."""
    node = fake_node(**NODE)
    started = node.started_at()
    proxied = proxy()
    code, verdicts, out = permissions(capsys, proxied.url, node.name)
    assert code == 0, out
    assert verdicts == {**ALL_OK, "create": "refused"}, out
    assert "warning" not in out
    assert "all five calls azwatch needs are allowed" in out
    [restart] = proxied.requests("POST", "/restart")
    assert (restart.status, restart.server) == (404, "docker/engine")
    assert PROBE_PREFIX in restart.path
    [create] = proxied.requests("POST", "/containers/create")
    assert create.refused
    assert node.started_at() == started


@pytest.mark.parametrize(
    ("narrower", "refused"),
    [
        ({"ALLOW_RESTARTS": "0"}, {"restart"}),
        ({"ALLOW_LOGS": "0"}, {"logs"}),
        ({"EVENTS": "0"}, {"events"}),
        ({"CONTAINERS": "0"}, {"list", "inspect", "logs"}),
    ],
    ids=["ALLOW_RESTARTS=0", "ALLOW_LOGS=0", "EVENTS=0", "CONTAINERS=0"],
)
@pytest.mark.usefixtures("cli_logging_untouched")
def test_check_permissions_through_a_narrower_proxy_fails(
    docker_engine: str,
    proxy: ProxyFactory,
    capsys: pytest.CaptureFixture[str],
    narrower: dict[str, str],
    refused: set[str],
) -> None:
    """A profile without one of the switches: that call is refused (403), exit 3."""
    proxied = proxy({**AZWATCH_PROFILE, **narrower})
    code, verdicts, out = permissions(capsys, proxied.url)
    assert code == 3, out
    assert verdicts == {
        **ALL_OK,
        **dict.fromkeys(refused, "refused"),
        "create": "refused",
    }, out
    for what in refused:
        assert any(line.startswith(what) and "-> 403" in line for line in out.splitlines()), out
    assert "azwatch cannot work through this endpoint: " in out


@pytest.mark.usefixtures("cli_logging_untouched")
def test_check_permissions_through_a_proxy_without_version_says_why_nothing_works(
    docker_engine: str, proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """VERSION=0: aiodocker's first request is refused, so every call is an error."""
    proxied = proxy({**AZWATCH_PROFILE, "VERSION": "0"})
    code, verdicts, out = permissions(capsys, proxied.url)
    assert code == 3, out
    assert set(verdicts.values()) == {"error"}, out
    assert "GET /version failed first (403" in out


# --- check --permissions without Docker ---------------------------------------------------


class FakeEngine:
    """An aiohttp stand-in for the Engine (or a proxy) answering each probe its own way."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.url = ""
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeEngine:
        app = web.Application()
        app.router.add_get("/version", self.version)
        app.router.add_get("/v1.41/version", self.version)
        app.router.add_get("/v1.41/containers/json", self.listing)
        app.router.add_get("/v1.41/containers/{name}/json", self.no_such_container)
        app.router.add_get("/v1.41/containers/{name}/logs", self.forbidden)
        app.router.add_get("/v1.41/events", self.hang)
        app.router.add_post("/v1.41/containers/{name}/restart", self.plain_404)
        app.router.add_post("/v1.41/containers/create", self.bad_request)
        self.runner, port = await start_on_loopback(app)
        self.url = f"tcp://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        if self.runner is not None:
            await stop(self.runner)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"Version": "fake", "ApiVersion": "1.41"})

    async def listing(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def no_such_container(self, request: web.Request) -> web.Response:
        message = f"No such container: {request.match_info['name']}"
        return web.json_response({"message": message}, status=404)

    async def forbidden(self, request: web.Request) -> web.Response:
        page = "<html><body><h1>403 Forbidden</h1>\nRequest forbidden.\n</body></html>\n"
        return web.Response(text=page, status=403, content_type="text/html")

    async def hang(self, request: web.Request) -> web.Response:
        with anyio.move_on_after(30):
            await self.release.wait()
        return web.json_response([])

    async def plain_404(self, request: web.Request) -> web.Response:
        return web.Response(text="404 page not found\n", status=404)

    async def bad_request(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "Config cannot be empty"}, status=400)


async def test_each_probe_is_classified_and_none_outlasts_its_deadline() -> None:
    """ok, Docker's 404 (allowed), a proxy's 403 page (refused), no answer (error, within the
    deadline), a 404 that is not Docker's (error), create let through (a warning)."""
    async with FakeEngine() as engine:
        config = Config(container_names=("aleph-node",), docker_host=engine.url)
        began = anyio.current_time()
        report = await probe_permissions(config, "aleph-node", seconds=0.5)
        took = anyio.current_time() - began
    verdicts = {probe.what: probe.verdict for probe in report.probes}
    assert verdicts == {
        "list": Verdict.OK,
        "inspect": Verdict.OK,
        "logs": Verdict.REFUSED,
        "events": Verdict.ERROR,
        "restart": Verdict.ERROR,
    }
    assert report.create.verdict is Verdict.OK
    assert report.excessive
    assert report.exit_code == 3
    assert took < 3
    lines = report.lines()
    assert lines[0] == f"Docker permissions at {engine.url} (Docker Engine fake, API 1.41)"
    by_call = {line.split()[0]: line for line in lines[3:9]}
    assert by_call["logs"].endswith("-> 403 Forbidden Request forbidden.")
    assert by_call["events"].endswith("no answer within 0.5s")
    assert by_call["restart"].endswith("-> 404 page not found")
    assert by_call["inspect"].endswith("(Docker's own answer: allowed)")
    assert any(line.startswith("warning: create is allowed too") for line in lines)
    assert (
        lines[-1]
        == "azwatch cannot work through this endpoint: logs refused, events error, restart error"
    )


@pytest.mark.usefixtures("cli_logging_untouched")
def test_check_permissions_without_an_engine_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens at DOCKER_HOST: every call is an error, and the exit code says so."""
    url = closed_port_url().replace("http://", "tcp://").rstrip("/")
    code, verdicts, out = permissions(capsys, url)
    assert code == 3, out
    assert set(verdicts.values()) == {"error"}, out
    assert "cannot reach the Docker Engine" in out
