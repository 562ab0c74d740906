"""``azwatch demo``: the stand-in node's script, its reference head, and the demo end to end.

The Docker-free tests hold the stand-in to aleph-node's log format (every line it prints
has the node's detailed prefix and the signals parse as azwatch reads them) and run its
script with the demo's settings through the pure supervisor in virtual time: stall, restart
and "helped: yes" within the minute. The live tests run ``azwatch demo`` as a user does,
against the real Engine, from the azwatch image (``AZWATCH_IMAGE``, default ``azwatch:ci``,
which ``.ci/run`` builds before the tests): the whole story, Ctrl+C and SIGTERM mid-run, and
the bad inputs, each leaving no container behind.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from dockerkit import docker, skip_or_fail

from azwatch.cli import main
from azwatch.demo import BASE_BLOCK, SCRIPT, SETTINGS, DemoOptions, demo_config
from azwatch.demohead import serve_head
from azwatch.demonode import GENESIS, Chain, Line, Memory, Renderer, StandIn
from azwatch.effects import LogRecord, RestartContainer
from azwatch.events import (
    BlockImported,
    HeadSample,
    HighestKnownBlock,
    LogCaughtUp,
    MajorSyncChanged,
    NodeBanner,
    PeersReported,
    RestartFinished,
    RunStarted,
    SyncStatus,
)
from azwatch.head import fetch_head, rpc_call
from azwatch.logparse import clean, node_message, parse_line
from azwatch.supervisor import ContainerEvents, HeadPolled, RestartDone, Supervisor

IMAGE = os.environ.get("AZWATCH_IMAGE", "azwatch:ci")
EPOCH = 1_764_000_000.0
#: The node's detailed docker prefix, exactly: time to the millisecond, the level in five
#: columns, the thread, the target; and the four trailing spaces of the log crate.
DETAILED = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ( INFO| WARN) (main|tokio-runtime-worker) "
    r"[a-z_:-]+: \S.*    $"
)


def life(node: StandIn, until: float, step: float = 0.2) -> list[tuple[float, str]]:
    """The lines *node* prints from its start to Unix time *until*, rendered."""
    renderer = Renderer()
    lines: list[Line] = node.start()
    at = node.started
    printed: list[tuple[float, str]] = []
    while True:
        printed += [(line.wall, renderer.render(line)) for line in lines]
        at += step
        if at > until:
            return printed
        lines = node.step(at)


def test_stand_in_prints_a_first_run_that_syncs_then_stalls_in_the_node_format() -> None:
    chain = Chain(EPOCH, BASE_BLOCK)
    node = StandIn(chain, SCRIPT, Memory(), started=EPOCH + 5)
    printed = life(node, EPOCH + 70)
    for _, line in printed:
        assert DETAILED.fullmatch(line), line
        assert node_message(clean(line)) is not None, line
    events = [(at, parse_line(line)) for at, line in printed]
    signals = [event for _, event in events if event is not None]
    assert isinstance(signals[0], NodeBanner)
    start_best = chain.height(EPOCH + 5) - SCRIPT.behind
    assert HighestKnownBlock(start_best) in signals
    assert signals.index(MajorSyncChanged(True)) < signals.index(MajorSyncChanged(False))
    assert PeersReported(SCRIPT.peers, "0x7025…344e") in signals
    imports = [(at, e.number) for at, e in events if isinstance(e, BlockImported)]
    numbers = [number for _, number in imports]
    assert numbers == list(range(start_best + 1, numbers[-1] + 1)), "every block, in order"
    # In sync: the best is the chain's head of the moment it is printed, within a block.
    synced_at = next(at for at, e in events if e == MajorSyncChanged(False))
    assert synced_at - node.started < SCRIPT.behind / (SCRIPT.sync_rate - 1) + 1
    for at, number in imports:
        if at >= synced_at:
            assert chain.height(at) - number in (0, 1)
    # Then the stall: no import for the rest of the run, yet status lines keep coming,
    # with the same numbers and no peers.
    last_import = imports[-1][0]
    assert last_import == pytest.approx(synced_at + SCRIPT.in_sync_for, abs=1.0)
    later = [e for at, e in events if at > last_import and e is not None]
    statuses = [e for e in later if isinstance(e, SyncStatus)]
    assert len(statuses) >= 10
    assert {status.imported for status in statuses} == {numbers[-1]}
    assert PeersReported(0, "0x7025…344e") in later
    assert node.remembered() == Memory(1, numbers[-1])


def test_stand_in_after_a_restart_syncs_from_where_it_stalled_and_stays_in_sync() -> None:
    chain = Chain(EPOCH, BASE_BLOCK)
    stalled_at = chain.height(EPOCH + 30)
    node = StandIn(chain, SCRIPT, Memory(1, stalled_at), started=EPOCH + 45)
    printed = life(node, EPOCH + 200)
    assert all(DETAILED.fullmatch(line) for _, line in printed)
    events = [(at, parse_line(line)) for at, line in printed]
    assert events[0][1] == NodeBanner()
    assert (EPOCH + 45, HighestKnownBlock(stalled_at)) in events
    imports = [(at, e.number) for at, e in events if isinstance(e, BlockImported)]
    assert imports[0][1] == stalled_at + 1
    assert chain.height(EPOCH + 200) - imports[-1][1] in (0, 1), "in sync to the end"
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(imports)]
    assert max(gaps) <= 1.2


def test_thread_names_align_to_the_longest_printed_so_far() -> None:
    renderer = Renderer()
    lines = [
        Line(EPOCH, "INFO", "main", "sc_cli::runner", "Aleph Node"),
        Line(EPOCH, "INFO", "tokio-runtime-worker", "substrate", "✨ Imported #7 (0x1a2b…3c4d)"),
        Line(EPOCH + 0.0125, "WARN", "main", "sc_service::config", "late"),
    ]
    first, second, third = (renderer.render(line) for line in lines)
    assert first == "2025-11-24 16:00:00.000  INFO main sc_cli::runner: Aleph Node    "
    assert second.startswith("2025-11-24 16:00:00.000  INFO tokio-runtime-worker substrate: ✨")
    assert third == f"2025-11-24 16:00:00.012  WARN {'main':>20} sc_service::config: late    "


def test_memory_of_a_run_survives_its_own_text_and_garbage_is_a_first_run() -> None:
    assert Memory.parse(Memory(2, 105_500_123).text()) == Memory(2, 105_500_123)
    assert Memory.parse(Memory(1, None).text()) == Memory(1, None)
    assert Memory.parse("runs=x\nbest=1\n") == Memory()
    assert Memory.parse("") == Memory()


def test_stand_in_process_ends_at_sigterm_and_its_next_run_goes_on_from_its_best(
    tmp_path: Path,
) -> None:
    """``python -m azwatch.demonode`` as the container runs it: the log on stderr, exit 0
    at once on SIGTERM, and the memory that makes the next run a restart."""
    memory = tmp_path / "memory"
    env = {
        **os.environ,
        "DEMONODE_MEMORY": str(memory),
        "DEMONODE_EPOCH": repr(time.time()),
        "DEMONODE_BASE": str(BASE_BLOCK),
        "DEMONODE_BEHIND": "30",
        "DEMONODE_SYNC_RATE": "100",
    }

    def one_run(wait_for: str) -> list[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azwatch.demonode"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
        )
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if wait_for in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=5)  # at once: STOP_TIMEOUT is never waited out
        assert proc.returncode == 0
        assert rest == ""  # nothing on stdout: the node logs to stderr
        return lines

    first = one_run("No longer in major sync state.")
    assert all(DETAILED.fullmatch(line) for line in first)
    remembered = Memory.parse(memory.read_text())
    assert remembered.runs == 1
    assert remembered.best is not None
    assert remembered.best >= BASE_BLOCK
    second = one_run("Switched to major sync state.")
    assert f"📦 Highest known block at #{remembered.best}" in " ".join(second)
    assert Memory.parse(memory.read_text()).runs == 2


def test_demo_settings_see_stall_restart_and_help_within_the_minute() -> None:
    """The stand-in's script and the demo's settings, through the pure supervisor in
    virtual time (each step as the live watcher would get it): the first restart is the
    stall rule's, and its verdict says yes, all within about a minute."""
    chain = Chain(EPOCH, BASE_BLOCK)
    name = "demo"
    config = demo_config(name, "http://127.0.0.1:1/", DemoOptions(image="azwatch", port=0))
    supervisor = Supervisor(config)
    supervisor.watch(name, EPOCH)
    runs = 0

    def begin(memory: Memory, at: float) -> tuple[StandIn, list[Line]]:
        nonlocal runs
        runs += 1
        supervisor.handle(ContainerEvents(name, (RunStarted(f"run-{runs}", at),)), at)
        supervisor.handle(ContainerEvents(name, (LogCaughtUp(),)), at)
        node = StandIn(chain, SCRIPT, memory, started=at)
        return node, node.start()

    node, lines = begin(Memory(), EPOCH)
    restarts: list[tuple[float, str]] = []
    said: list[tuple[float, str]] = []
    at = EPOCH
    next_poll = EPOCH
    while at < EPOCH + 90:
        events = tuple(e for e in (parse_line(Renderer().render(line)) for line in lines) if e)
        effects = supervisor.handle(ContainerEvents(name, events), at) if events else []
        if at >= next_poll:
            effects += supervisor.handle(HeadPolled(HeadSample(chain.height(at))), at)
            next_poll += config.rpc_poll_interval
        effects += supervisor.tick(at)
        said += [(at, e.message) for e in effects if isinstance(e, LogRecord)]
        restart = next((e for e in effects if isinstance(e, RestartContainer)), None)
        at += 0.2
        if restart is not None:
            restarts.append((at - EPOCH, str(restart.decision.rule)))
            at += 1.0  # docker restart: the old run stops, the new one starts
            supervisor.handle(RestartDone(name, RestartFinished(ok=True)), at)
            node, lines = begin(node.remembered(), at)
        else:
            lines = node.step(at)
    assert [rule for _, rule in restarts] == ["stall"]
    assert restarts[0][0] < 45
    verdicts = [(t - EPOCH, text) for t, text in said if "restart helped" in text]
    assert verdicts, said
    assert verdicts[0][1].startswith("demo: restart helped: yes")
    assert verdicts[0][0] < 60


def test_help_says_the_demo_settings_it_runs_with(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"], {})
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for variable in ("COOLDOWN", "STALL_TIMEOUT", "CHECK_INTERVAL"):
        assert f"{variable} {SETTINGS[variable.lower()]:g} s" in text
    assert "--image IMAGE" in text
    assert "--duration SECONDS" in text


# --- the reference head ---------------------------------------------------------------------


async def test_reference_head_answers_the_chain_in_the_node_wire_format() -> None:
    now = [EPOCH + 12.5]
    chain = Chain(EPOCH, BASE_BLOCK)
    async with anyio.create_task_group() as group, aiohttp.ClientSession() as session:
        url = await group.start(
            lambda task_status: serve_head(chain, clock=lambda: now[0], task_status=task_status)
        )
        assert url.startswith("http://127.0.0.1:")
        assert await fetch_head(session, url, timeout=5) == BASE_BLOCK + 12
        now[0] += 7
        assert await fetch_head(session, url, timeout=5) == BASE_BLOCK + 19
        assert await rpc_call(session, url, "chain_getBlockHash", [0], timeout=5) == GENESIS
        request = {"jsonrpc": "2.0", "id": 4, "method": "chain_getHeader", "params": []}
        async with session.post(url, json=request) as reply:
            text = await reply.text()
        assert text.startswith('{"jsonrpc":"2.0","result":{"parentHash":"0x')
        assert text.endswith(',"id":4}')
        assert json.loads(text)["result"]["number"] == hex(BASE_BLOCK + 19)
        unknown = {"jsonrpc": "2.0", "id": 5, "method": "system_peers", "params": []}
        async with session.post(url, json=unknown) as reply:
            assert (await reply.json())["error"]["code"] == -32601
        group.cancel_scope.cancel()


# --- bad input: one line, non-zero, nothing left behind ---------------------------------------


def test_no_docker_engine_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
    environ = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    code = main(["demo", "--port", "0", "--name", name], environ)
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert err == (
        "azwatch demo: no Docker Engine answers at unix:///nonexistent/docker.sock (No such "
        "file or directory): start Docker, or point DOCKER_HOST at it\n"
    )


def test_bad_port_or_duration_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--port", "70000"], {}) == 2
    assert main(["demo", "--duration", "0"], {}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 2


@pytest.mark.docker
def test_missing_image_is_one_line_naming_the_build_and_nothing_is_pulled(
    docker_engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image = f"azwatch-test-missing-{uuid.uuid4().hex[:8]}:none"
    name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
    code = main(["demo", "--image", image, "--port", "0", "--name", name], {})
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == (
        f"azwatch demo: no image {image} here (the demo never pulls one): build it in a clone "
        f"of azwatch with `docker build -t {image} .`, or name another with --image\n"
    )
    assert docker("image", "inspect", image, check=False).returncode != 0
    assert docker("inspect", name, check=False).returncode != 0


@pytest.mark.docker
def test_port_in_use_is_one_line_and_no_container_is_started(
    docker_engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        image = _any_local_image()
        code = main(["demo", "--image", image, "--port", str(port), "--name", name], {})
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == (
        f"azwatch demo: port {port} on 127.0.0.1 is in use (another azwatch?): choose another "
        "with --port, or --port 0 for any free one\n"
    )
    assert docker("inspect", name, check=False).returncode != 0


def test_an_image_without_azwatch_is_one_line_and_its_container_is_removed(
    fake_node_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fake node's busybox image has no Python: Docker cannot start the stand-in."""
    name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
    code = main(["demo", "--image", fake_node_image, "--port", "0", "--name", name], {})
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith(f"azwatch demo: cannot start the stand-in node from {fake_node_image} (")
    assert err.endswith("it must be an azwatch image (docker build -t azwatch .)\n")
    assert out == f"azwatch demo: removed container {name}\n"
    assert docker("inspect", name, check=False).returncode != 0


def test_a_name_taken_is_one_line_and_that_container_is_left_alone(
    fake_node_image: str, demo_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
    docker("create", "--name", name, "--label", "azwatch.test=1", fake_node_image)
    try:
        code = main(["demo", "--image", demo_image, "--port", "0", "--name", name], {})
        out, err = capsys.readouterr()
        assert code == 2
        assert out == ""
        assert err == (
            f"azwatch demo: a container named {name} exists already: remove it "
            f"(docker rm -f {name}) or choose another --name\n"
        )
        assert json.loads(docker("inspect", name).stdout)[0]["Config"]["Image"] == fake_node_image
    finally:
        docker("rm", "-f", name, check=False)


def _any_local_image() -> str:
    """An image that exists here (the port is checked after the image)."""
    listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    usable = [image for image in listed if not image.startswith("<none>")]
    if not usable:
        pytest.skip("no local image to name")
    return usable[0]


# --- live: the demo as a user runs it -------------------------------------------------------


@pytest.fixture(scope="module")
def demo_image(docker_engine: str) -> str:
    """The azwatch image with this azwatch in it; skipped locally when it is missing or
    older than the demo, fatal under CI=true (.ci/run builds it first)."""
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        skip_or_fail(f"image {IMAGE} not built (run .ci/build-image)")
    probe = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "python",
        IMAGE,
        "-c",
        "import azwatch.demonode",
        check=False,
    )
    if probe.returncode != 0:
        skip_or_fail(f"image {IMAGE} predates azwatch demo (rebuild it: .ci/build-image)")
    return IMAGE


class DemoProcess:
    """``azwatch demo`` in a child process; its stdout read line by line as it comes."""

    def __init__(self, *args: str) -> None:
        self.name = f"azwatch-test-demo-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "azwatch", "demo", "--name", self.name, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            return next((m for line in self.lines if (m := regex.search(line))), None)

        with self._cond:
            if not self._cond.wait_for(
                lambda: found() is not None or self.proc.poll() is not None, timeout
            ):
                raise AssertionError(f"no {pattern!r} within {timeout}s:\n" + self.output())
        match = found()
        assert match is not None, f"no {pattern!r}; exited:\n{self.output()}"
        return match

    def finish(self, timeout: float) -> tuple[int, float]:
        """Wait for the exit: its code and the seconds since the start."""
        code = self.proc.wait(timeout)
        elapsed = time.monotonic() - self.started
        self._reader.join(5)
        return code, elapsed

    def errors(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def output(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        docker("rm", "-f", "-v", self.name, check=False)  # only if the demo failed to


@pytest.fixture
def demos() -> Iterator[list[DemoProcess]]:
    started: list[DemoProcess] = []
    yield started
    for each in started:
        each.close()


def _status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "status", timeout=10) as reply:
        document = json.load(reply)
    assert isinstance(document, dict)
    return document


@pytest.mark.docker
@pytest.mark.timeout(180)
def test_demo_shows_stall_restart_and_helped_yes_and_leaves_nothing(
    demo_image: str, demos: list[DemoProcess]
) -> None:
    demo = DemoProcess("--image", demo_image, "--port", "0")
    demos.append(demo)
    url = demo.wait_for(r"status page: (http://127\.0\.0\.1:\d+/)", timeout=30)[1]
    assert demo.name in json.dumps(_status(url))
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert demo.name in reply.read().decode()
    running = json.loads(docker("inspect", demo.name).stdout)[0]
    assert running["HostConfig"]["NetworkMode"] == "none"
    assert running["Config"]["Image"] == demo_image
    code, elapsed = demo.finish(timeout=150)
    output = demo.output()
    assert code == 0, output + demo.errors()
    assert elapsed < 90, output
    order = [
        "azwatch: major sync on",
        "azwatch: major sync off",
        "the stand-in stalls",
        "restarting: stall",
        "restart done",
        "restart helped: yes",
    ]
    positions = [output.find(text) for text in order]
    assert -1 not in positions, output
    assert positions == sorted(positions), output
    # The stand-in ends at SIGTERM: the restart takes nowhere near STOP_TIMEOUT.
    restarting, done = (_at(output, text) for text in ("restarting: stall", "restart done"))
    assert done - restarting < 3, output
    assert f"removed container {demo.name}" in output
    assert docker("inspect", demo.name, check=False).returncode != 0
    listed = docker("ps", "-a", "--filter", "label=azwatch.demo", "--format", "{{.Names}}")
    assert demo.name not in listed.stdout.split()


def _at(output: str, text: str) -> float:
    """The seconds the demo printed in front of the first line containing *text*."""
    line = next(line for line in output.splitlines() if text in line)
    return float(line.split("s", 1)[0])


@pytest.mark.docker
@pytest.mark.timeout(60)
def test_duration_ends_the_demo_with_exit_0_and_removes_the_container(
    demo_image: str, demos: list[DemoProcess]
) -> None:
    demo = DemoProcess("--image", demo_image, "--port", "0", "--duration", "8")
    demos.append(demo)
    code, elapsed = demo.finish(timeout=40)
    output = demo.output()
    assert code == 0, output + demo.errors()
    assert 8 <= elapsed < 25, output
    assert "restarting" not in output
    assert output.endswith(f"azwatch demo: removed container {demo.name}")
    assert docker("inspect", demo.name, check=False).returncode != 0


@pytest.mark.docker
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_removes_the_container(
    demo_image: str, demos: list[DemoProcess], signum: signal.Signals, code: int
) -> None:
    demo = DemoProcess("--image", demo_image, "--port", "0")
    demos.append(demo)
    demo.wait_for("status page:", timeout=30)
    demo.wait_for("major sync off", timeout=30)
    assert json.loads(docker("inspect", demo.name).stdout)[0]["State"]["Running"]
    demo.proc.send_signal(signum)
    exit_code, _ = demo.finish(timeout=40)
    assert exit_code == code, demo.output() + demo.errors()
    output = demo.output()
    assert output.index(f"{signum.name}: stopping") < output.index(f"removed container {demo.name}")
    assert docker("inspect", demo.name, check=False).returncode != 0
