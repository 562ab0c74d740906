"""Soak: one ``azwatch run`` process against a fake node for N minutes of scheduled faults.

Run ``.venv/bin/python benchmarks/soak.py [--minutes N]`` (default 30). It needs a Docker
Engine and builds the fake node image from tests/fakenode (FROM scratch, never pulls). The
container it makes is named ``azwatch-bench-soak-*`` and removed at the end, also on failure,
Ctrl+C or SIGTERM.

What runs, all on this machine:

* one fake node (tests/fakenode: STEP=1 TICK=0.5 STATUS_EVERY=2, ~3.5 lines/s, on stderr);
* three fake reference endpoints (tests/fakerpc.py on 127.0.0.1), heads at the node's best
  block (its ``/ctl/best``) plus an offset this script sets;
* a TCP front on 127.0.0.1 in front of the Docker socket that can drop the connections
  carrying a ``/logs`` request (as a socket proxy or a daemon going away does);
* ``python -m azwatch run`` with ``DOCKER_HOST=tcp://127.0.0.1:<front>``, LOG_FORMAT=json to
  a file, HTTP_PORT for /status and /healthz, and COOLDOWN=20, RPC_POLL_INTERVAL=2,
  RPC_TIMEOUT=1, CHECK_INTERVAL=10, RECOVERY_PERIOD=30, STOP_TIMEOUT=1.

Faults, on a 300 s cycle repeated for the whole run (offsets in the cycle):

* every minute (30, 90, 150, 210, 270): the ``/logs`` connections are dropped;
* 40 and 245: a lag episode, the head jumps 500 blocks ahead (BLOCK_LAG_100 is 100) for 30 s,
  longer than the cooldown: each must give exactly one severe_lag restart;
* 110-150 endpoint A answers HTTP 500, 130-170 endpoint B hangs, 150-165 endpoint C rate
  limits (429); 180-200 all three fail at once (dropped connection, HTML page, broken JSON):
  no head, so azwatch holds;
* 215: ``docker restart -t 1`` by hand (the operator's restart starts a cooldown).

Episodes are scheduled only when they end 30 s before the run does. At the end the node is
made quiet, azwatch gets 5 s to read the last lines, then SIGTERM.

Measures, and what they mean:

* restarts decided: the ``restart`` records of azwatch's JSON log, by rule, against the lag
  episodes injected; and ``restart`` events reported by Docker itself (azwatch's plus the
  ones by hand);
* lines applied twice: azwatch's count of log lines it applied (``/status``
  ``log.lines``, the same counter as ``azwatch_log_lines_total``) against the lines
  ``docker logs --timestamps`` holds for the container (every run, stdout and stderr) at the
  end. ``applied - written`` > 0 is at least that many lines applied twice, < 0 lines
  missed; a duplicate and a miss would cancel out, so this is a lower bound on each. The
  cursor tests (tests/test_logcursor.py, tests/test_follower.py) check line by line;
* open file descriptors, threads and RSS of the azwatch process (psutil) every 2 s; asyncio
  tasks through a probe: a ``sitecustomize`` on azwatch's PYTHONPATH (this run only) that
  every 2 s asks the running loop for ``len(asyncio.all_tasks())`` and appends it to a file.
  The probe adds one thread (counted in ``threads``). Start is the most frequent value from
  35 s to 65 s (after the first attach and polls, and the first cut's re-attach), end the
  most frequent value over the last 30 s (after the last cut); the most frequent, because a
  request or a restart in flight holds a task or a socket for a moment, and a dropped
  stream takes one away for a moment. The peak of each is printed too.

Exit code: 0 when every expectation holds, 1 when one fails, 2 when it could not measure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import anyio
import anyio.abc
import psutil  # type: ignore[import-untyped]
from anyio.abc import SocketStream

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dockerkit import (  # noqa: E402
    DockerError,
    DockerEvents,
    FakeNode,
    build_fake_node_image,
    docker,
    docker_host,
)
from fakerpc import FakeRpc  # noqa: E402

PREFIX = "azwatch-bench-soak-"
MB = 1 << 20
CYCLE = 300.0
CUTS = (30.0, 90.0, 150.0, 210.0, 270.0)
EPISODES = (40.0, 245.0)
EPISODE_SECONDS = 30.0
JUMP = 500
MANUAL_RESTART = 215.0
#: (start, end, endpoint index, FakeRpc mode)
RPC_FAULTS = (
    (110.0, 150.0, 0, "http_500"),
    (130.0, 170.0, 1, "hang"),
    (150.0, 165.0, 2, "rate_limit_http"),
    (180.0, 200.0, 0, "close"),
    (180.0, 200.0, 1, "html"),
    (180.0, 200.0, 2, "bad_json"),
)
NODE = {"STEP": 1, "TICK": 0.5, "STATUS_EVERY": 2, "IGNORE_TERM": 0}
SETTINGS = {
    "COOLDOWN": 20,
    "RPC_POLL_INTERVAL": 2,
    "RPC_TIMEOUT": 1,
    "CHECK_INTERVAL": 10,
    "RECOVERY_PERIOD": 30,
    "STOP_TIMEOUT": 1,
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
}
SAMPLE_EVERY = 2.0
START_WINDOW = (35.0, 65.0)
END_WINDOW = 30.0
MAX_RSS_GROWTH_MB = 2.0

PROBE = '''\
"""azwatch soak probe: asyncio task count of the running loop, every 2 s, to a file."""
import asyncio, json, os, threading, time

_PATH = os.environ.get("AZWATCH_SOAK_PROBE")
if _PATH:
    _loops = []
    _run_forever = asyncio.BaseEventLoop.run_forever

    def run_forever(self):
        _loops.append(self)
        return _run_forever(self)

    asyncio.BaseEventLoop.run_forever = run_forever

    def _count(out):
        out.write(json.dumps({"time": time.time(), "tasks": len(asyncio.all_tasks())}) + "\\n")
        out.flush()

    def _sample():
        with open(_PATH, "a") as out:
            while True:
                time.sleep(2)
                for loop in list(_loops):
                    if loop.is_running():
                        try:
                            loop.call_soon_threadsafe(_count, out)
                        except RuntimeError:
                            pass

    threading.Thread(target=_sample, name="azwatch-soak-probe", daemon=True).start()
'''


# --- the TCP front --------------------------------------------------------------------------

_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ")


@dataclass(eq=False)
class _Connection:
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    request: bytes = b""


class CuttingFront:
    """127.0.0.1:PORT in front of the Engine; drops the connections of ``/logs`` requests."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.port = 0
        self.cut = 0
        self._connections: set[_Connection] = set()

    def cut_logs(self) -> int:
        """Drop every connection whose latest request is for a log; how many were dropped."""
        dropped = [c for c in self._connections if b"/logs?" in c.request]
        for connection in dropped:
            connection.scope.cancel()
        self.cut += len(dropped)
        return len(dropped)

    async def serve(self, client: SocketStream) -> None:
        connection = _Connection()
        self._connections.add(connection)
        try:
            with connection.scope:
                async with (
                    client,
                    await self._connect() as upstream,
                    anyio.create_task_group() as pumps,
                ):
                    pumps.start_soon(self._pump, client, upstream, connection, True)
                    pumps.start_soon(self._pump, upstream, client, connection, False)
        except OSError:
            pass  # the Engine refused us: so is the client
        finally:
            self._connections.discard(connection)

    async def _connect(self) -> SocketStream:
        if self.engine.startswith("unix://"):
            return await anyio.connect_unix(self.engine.removeprefix("unix://"))
        host, _, port = self.engine.removeprefix("tcp://").rpartition(":")
        return await anyio.connect_tcp(host, int(port))

    async def _pump(
        self, source: SocketStream, sink: SocketStream, connection: _Connection, requests: bool
    ) -> None:
        try:
            async for data in source:
                if requests and data.startswith(_METHODS):
                    connection.request = data.split(b"\r\n", 1)[0]
                await sink.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        connection.scope.cancel()  # one side is gone: so is the connection


@contextlib.asynccontextmanager
async def cutting_front(engine: str) -> AsyncIterator[CuttingFront]:
    front = CuttingFront(engine)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    front.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, front.serve)
        try:
            yield front
        finally:
            group.cancel_scope.cancel()


# --- samples --------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since azwatch started
    fds: int
    threads: int
    rss: int
    #: The sockets among the fds, by what they connect to.
    sockets: dict[str, int] = field(default_factory=dict)


@dataclass
class Soak:
    """Everything the run records."""

    minutes: float
    work: Path
    began: float = 0.0  # monotonic, azwatch started
    samples: list[Sample] = field(default_factory=list)
    episodes: list[float] = field(default_factory=list)
    manual_restarts: int = 0
    cuts_tried: int = 0
    cuts_effective: int = 0
    health: Counter[str] = field(default_factory=Counter)
    health_checks: int = 0
    timeline: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        line = f"  [{time.monotonic() - self.began:7.1f} s] {text}"
        self.timeline.append(line)
        print(line, flush=True)


def window(values: list[tuple[float, int]], start: float, end: float) -> int | None:
    """The most frequent of the values sampled between *start* and *end* seconds (the lower
    one of a tie): a request, a re-attach or a restart in flight holds a task or a socket for
    a moment, and a dropped stream takes one away for a moment."""
    inside = Counter(value for at, value in values if start <= at <= end)
    if not inside:
        return None
    return min(inside, key=lambda value: (-inside[value], value))


def rss_mb(samples: list[Sample], start: float, end: float) -> float | None:
    inside = [s.rss for s in samples if start <= s.at <= end]
    return statistics.median(inside) / MB if inside else None


# --- the run --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remove(container: str) -> None:
    for _ in range(30):
        with contextlib.suppress(DockerError):
            proc = docker("rm", "-f", "-v", container, check=False, timeout=10)
            if proc.returncode == 0 or "No such container" in proc.stderr:
                return
        time.sleep(1)
    print(f"soak: could not remove container {container}", file=sys.stderr)


def written_lines(node: FakeNode) -> int:
    """Lines the container's log holds, every run, both streams (``docker logs``)."""
    proc = docker("logs", "--timestamps", node.name, timeout=120)
    return len(proc.stdout.splitlines()) + len(proc.stderr.splitlines())


async def schedule(
    soak: Soak, node: FakeNode, front: CuttingFront, rpcs: list[FakeRpc], offset: list[int]
) -> None:
    """Inject the faults of every cycle until the run's end."""
    duration = soak.minutes * 60
    actions: list[tuple[float, str, Callable[[], Any]]] = []

    def at(when: float, what: str, action: Callable[[], Any]) -> None:
        if when < duration:
            actions.append((when, what, action))

    async def cut() -> None:
        soak.cuts_tried += 1
        dropped = front.cut_logs()
        soak.cuts_effective += dropped > 0
        soak.note(f"cut the log stream ({dropped} connection(s) dropped)")

    async def lag(on: bool) -> None:
        offset[0] = JUMP if on else 0
        soak.note(f"lag episode {'begins: head +' + str(JUMP) if on else 'ends'}")

    async def manual() -> None:
        await anyio.to_thread.run_sync(lambda: node.restart(t=1))
        soak.manual_restarts += 1
        soak.note("docker restart -t 1 by hand")

    async def rpc_mode(index: int, mode: str) -> None:
        rpcs[index].mode = mode  # type: ignore[assignment]
        soak.note(f"endpoint {'ABC'[index]}: {mode}")

    for base in range(0, math.ceil(duration / CYCLE) * int(CYCLE), int(CYCLE)):
        for when in CUTS:
            at(base + when, "cut", cut)
        for when in EPISODES:
            if base + when + EPISODE_SECONDS + 30 <= duration:
                soak.episodes.append(base + when)
                at(base + when, "lag", lambda: lag(True))
                at(base + when + EPISODE_SECONDS, "lag", lambda: lag(False))
        if base + MANUAL_RESTART + 10 <= duration:
            at(base + MANUAL_RESTART, "manual", manual)
        for start, end, index, mode in RPC_FAULTS:
            if base + end <= duration:
                at(base + start, "rpc", lambda i=index, m=mode: rpc_mode(i, m))
                at(base + end, "rpc", lambda i=index: rpc_mode(i, "ok"))
    actions.sort(key=lambda item: item[0])
    for when, _what, action in actions:
        await anyio.sleep_until(soak.began + when)
        await action()
    await anyio.sleep_until(soak.began + duration)


async def move_heads(node: FakeNode, rpcs: list[FakeRpc], offset: list[int]) -> None:
    while True:
        best = node.best()
        if best is not None:
            for rpc in rpcs:
                rpc.head = best + offset[0]
        await anyio.sleep(0.05)


async def sample(soak: Soak, pid: int, peers: dict[int, str], http_port: int) -> None:
    """Every 2 s: azwatch's fds, threads, RSS, and its sockets by peer (*peers*: port → name;
    "unix or socketpair": the event loop's own)."""
    process = psutil.Process(pid)
    while True:
        with process.oneshot():
            sockets: Counter[str] = Counter()
            for conn in process.net_connections(kind="all"):
                if conn.status == psutil.CONN_LISTEN:
                    sockets["listening"] += 1
                elif conn.laddr and isinstance(conn.laddr, tuple) and conn.laddr[1] == http_port:
                    sockets["/healthz client"] += 1
                elif conn.raddr and isinstance(conn.raddr, tuple):
                    sockets[peers.get(conn.raddr[1], f"port {conn.raddr[1]}")] += 1
                else:
                    sockets["unix or socketpair"] += 1
            soak.samples.append(
                Sample(
                    time.monotonic() - soak.began,
                    process.num_fds(),
                    process.num_threads(),
                    process.memory_info().rss,
                    dict(sockets),
                )
            )
        await anyio.sleep(SAMPLE_EVERY)


async def watch_health(soak: Soak, session: aiohttp.ClientSession, port: int) -> None:
    """Ask /healthz every 5 s; count the answers and the problems named."""
    while True:
        await anyio.sleep(5)
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as reply:
                body = await reply.json()
            soak.health_checks += 1
            if reply.status == 200:
                soak.health["200"] += 1
            for problem in body.get("problems", []):
                soak.health[problem.split(":", 1)[-1].strip()[:60]] += 1
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            soak.health["no answer"] += 1


async def status(session: aiohttp.ClientSession, port: int) -> dict[str, Any]:
    async with session.get(f"http://127.0.0.1:{port}/status") as reply:
        data = await reply.json()
    assert isinstance(data, dict)
    return data


def read_log(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append({"level": "RAW", "message": line})
    return records


async def run(minutes: float, work: Path) -> int:
    soak = Soak(minutes, work)
    build_fake_node_image()
    name = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    log_path, probe_path = work / "azwatch.jsonl", work / "tasks.jsonl"
    probe_dir = work / "probe"
    probe_dir.mkdir()
    (probe_dir / "sitecustomize.py").write_text(PROBE)
    http_port = free_port()
    offset = [0]
    with contextlib.ExitStack() as stack:
        stack.callback(remove, name)
        node = FakeNode.run(name, work / "ctl", **NODE)  # type: ignore[arg-type]
        node.wait_best(1, timeout=15)
        events = stack.enter_context(DockerEvents(node.name))
        async with contextlib.AsyncExitStack() as astack:
            rpcs = [await astack.enter_async_context(FakeRpc(head=0)) for _ in range(3)]
            front = await astack.enter_async_context(cutting_front(docker_host()))
            session = await astack.enter_async_context(
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
            )
            env = {
                **os.environ,
                **{key: str(value) for key, value in SETTINGS.items()},
                "CONTAINER_NAME": node.name,
                "RPC_URL": ",".join(rpc.url for rpc in rpcs),
                "DOCKER_HOST": f"tcp://127.0.0.1:{front.port}",
                "HTTP_PORT": str(http_port),
                "MONITOR_UID": "0",
                "PYTHONPATH": os.pathsep.join(
                    [str(probe_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "AZWATCH_SOAK_PROBE": str(probe_path),
            }
            with log_path.open("w") as out:
                proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; the run owns it
                    [sys.executable, "-m", "azwatch", "run"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            soak.began = time.monotonic()
            stack.callback(_stop, proc)
            print(
                f"soak: {minutes:g} min; container {node.name}; azwatch pid {proc.pid}; "
                f"log {log_path}",
                flush=True,
            )
            async with anyio.create_task_group() as group:
                group.start_soon(move_heads, node, rpcs, offset)
                peers = {front.port: "docker (front)"}
                peers |= {rpc.port: f"rpc {'ABC'[i]}" for i, rpc in enumerate(rpcs)}
                group.start_soon(sample, soak, proc.pid, peers, http_port)
                group.start_soon(watch_health, soak, session, http_port)

                async def progress() -> None:
                    while True:
                        await anyio.sleep(60)
                        if proc.poll() is not None:
                            raise RuntimeError(f"azwatch exited early ({proc.returncode})")
                        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                            view = (await status(session, http_port))["containers"][node.name]
                            last = soak.samples[-1]
                            soak.note(
                                f"minute {round((time.monotonic() - soak.began) / 60)}: "
                                f"restarts {view['restarts']}, lines {view['log']['lines']}, "
                                f"attaches {view['log']['attaches']}, fds {last.fds}, "
                                f"threads {last.threads}, RSS {last.rss / MB:.1f} MB"
                            )

                group.start_soon(progress)
                await schedule(soak, node, front, rpcs, offset)
                # The end: the node falls quiet, azwatch reads the last lines, we count.
                await anyio.to_thread.run_sync(lambda: node.set(QUIET=1))
                await anyio.sleep(5)
                final = (await status(session, http_port))["containers"][node.name]
                written = await anyio.to_thread.run_sync(written_lines, node)
                group.cancel_scope.cancel()
            code = await anyio.to_thread.run_sync(_stop, proc)
        docker_restarts = events.actions().count("restart")
    return report(soak, final, written, docker_restarts, code, read_log(log_path), probe_path)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after 10 s; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def report(
    soak: Soak,
    final: dict[str, Any],
    written: int,
    docker_restarts: int,
    exit_code: int,
    records: list[dict[str, Any]],
    probe_path: Path,
) -> int:
    duration = soak.minutes * 60
    end = max((s.at for s in soak.samples), default=duration)
    tasks = []
    if probe_path.exists():
        for line in probe_path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):
                entry = json.loads(line)
                tasks.append((entry["time"], int(entry["tasks"])))
    # The probe's wall times on the samples' clock (seconds since azwatch started).
    wall_began = time.time() - (time.monotonic() - soak.began)
    tasks = [(at - wall_began, count) for at, count in tasks]
    first, last = START_WINDOW, (end - END_WINDOW, end)

    decided = [r for r in records if r.get("event") == "restart"]
    by_rule = Counter(str(r.get("rule")) for r in decided)
    failed = [r for r in records if r.get("event") == "restart_failed"]
    done = [r for r in records if r.get("event") == "restart_done"]
    crashes = [r for r in records if r.get("exception") or r.get("event") == "follower_crash"]
    raw = [r for r in records if r.get("level") == "RAW"]
    levels = Counter(str(r.get("level")) for r in records)
    events = Counter(str(r.get("event")) for r in records if r.get("level") in ("WARNING", "ERROR"))
    applied = int(final["log"]["lines"])
    expected = len(soak.episodes)

    def figure(values: list[tuple[float, int]]) -> tuple[int | None, int | None]:
        return window(values, *first), window(values, *last)

    fds = figure([(s.at, s.fds) for s in soak.samples])
    threads = figure([(s.at, s.threads) for s in soak.samples])
    task_counts = figure(tasks)
    rss = (rss_mb(soak.samples, *first), rss_mb(soak.samples, *last))
    peak = max(s.rss for s in soak.samples) / MB

    print(f"\nsoak: {soak.minutes:g} min, {len(soak.samples)} samples")
    print(
        f"  faults: {len(soak.episodes)} lag episodes, {soak.cuts_tried} log cuts "
        f"({soak.cuts_effective} dropped a stream), {soak.manual_restarts} restarts by hand"
    )
    rules = ", ".join(f"{rule} {count}" for rule, count in sorted(by_rule.items())) or "none"
    print(
        f"  restarts decided: {len(decided)} ({rules}); expected {expected} severe_lag; "
        f"done {len(done)}, failed {len(failed)}; /status says {final['restarts']}"
    )
    print(
        f"  Docker reported {docker_restarts} restart events "
        f"({soak.manual_restarts} by hand + {len(done)} by azwatch expected)"
    )
    print(
        f"  lines: azwatch applied {applied}, docker logs holds {written}: "
        f"applied twice >= {max(0, applied - written)}, missed >= {max(0, written - applied)}; "
        f"attaches {final['log']['attaches']}, silences {final['log']['silences']}"
    )
    print("             start (35-65 s)   end (last 30 s)   peak")
    print(f"  fds        {fds[0]!s:>15}   {fds[1]!s:>15}")
    for label, at in (("start", first), ("end", last)):
        low = [
            x
            for x in soak.samples
            if at[0] <= x.at <= at[1]
            and x.fds == min((y.fds for y in soak.samples if at[0] <= y.at <= at[1]), default=-1)
        ]
        if low:
            shown = ", ".join(f"{k} {v}" for k, v in sorted(low[0].sockets.items()))
            print(f"    sockets at the {label}'s lowest: {shown}")
    print(f"  threads    {threads[0]!s:>15}   {threads[1]!s:>15}   (one is the probe)")
    print(f"  tasks      {task_counts[0]!s:>15}   {task_counts[1]!s:>15}   (asyncio, probe)")
    print(f"  RSS MB     {_mb(rss[0]):>15}   {_mb(rss[1]):>15}   (median; peak {peak:.1f} MB)")
    healthy = soak.health.get("200", 0)
    problems = ", ".join(f"{k!r} x{v}" for k, v in soak.health.most_common() if k != "200")
    print(f"  /healthz: {healthy} of {soak.health_checks} answers 200; problems: {problems or '-'}")
    print(f"  log records: {dict(levels)}; warnings/errors by event: {dict(events)}")
    print(f"  azwatch exit code on SIGTERM: {exit_code}")

    growth = None if rss[0] is None or rss[1] is None else rss[1] - rss[0]
    checks = [
        (
            f"restarts decided = lag episodes ({len(decided)} = {expected})",
            len(decided) == expected,
        ),
        ("every restart by the severe_lag rule", set(by_rule) <= {"severe_lag"}),
        ("no restart failed", not failed and len(done) == len(decided)),
        (
            "Docker's restart events = by hand + by azwatch",
            docker_restarts == soak.manual_restarts + len(done),
        ),
        ("no line applied twice (applied <= written)", applied <= written),
        ("no line missed (applied >= written)", applied >= written),
        (
            "every dropped stream re-attached",
            int(final["log"]["attaches"]) > soak.cuts_effective,
        ),
        ("fds back to start", None not in fds and fds[1] <= fds[0]),  # type: ignore[operator]
        (
            "threads back to start",
            None not in threads and threads[1] <= threads[0],  # type: ignore[operator]
        ),
        (
            "asyncio tasks back to start",
            None not in task_counts and task_counts[1] <= task_counts[0],  # type: ignore[operator]
        ),
        (
            f"RSS flat (end - start {growth if growth is None else f'{growth:+.2f}'} MB, "
            f"limit +{MAX_RSS_GROWTH_MB:g})",
            growth is not None and growth <= MAX_RSS_GROWTH_MB,
        ),
        ("no exception or follower crash in the log", not crashes and not raw),
        ("azwatch stopped with exit code 0", exit_code == 0),
    ]
    failures = 0
    for text, ok in checks:
        failures += not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    for record in (crashes + raw)[:5]:
        print(f"    {json.dumps(record)[:300]}")
    return 1 if failures else 0


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def source_version() -> str:
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "azwatch"], capture_output=True, text=True
    )
    if head.returncode != 0:
        return "(not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="length of the run (>= 2)")
    parser.add_argument("--workdir", type=Path, help="keep the logs here (default: a temp dir)")
    args = parser.parse_args()
    if args.minutes < 2:
        parser.error("--minutes must be >= 2")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"soak: azwatch {source_version()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load}",
        flush=True,
    )
    work = args.workdir or Path(tempfile.mkdtemp(prefix=PREFIX))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return anyio.run(run, args.minutes, work)
    except KeyboardInterrupt:
        print("interrupted; the soak container was removed", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError, DockerError, aiohttp.ClientError, OSError) as error:
        print(f"soak: cannot measure: {error!r}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        for error in group.exceptions:
            print(f"soak: cannot measure: {error!r}", file=sys.stderr)
        return 2
    finally:
        print(f"soak: logs in {work}")


if __name__ == "__main__":
    sys.exit(main())
