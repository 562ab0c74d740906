"""Live cost and restart latency of ``azwatch run`` against a real Docker Engine.

Run ``.venv/bin/python benchmarks/follow_live.py [--seconds N] [--repeats R]``. It needs a
Docker Engine and builds the fake node image from tests/fakenode (FROM scratch, never pulls).
Every container it makes is named ``azwatch-bench-*`` and removed at the end, also on failure,
Ctrl+C or SIGTERM. The reference RPC is tests/fakerpc.py, served from this process on
127.0.0.1, its head kept at the fake node's best block (the node's ``/ctl/best``) + an offset.

**Part A**, cost of following at catch-up speed: a fake node prints ~250 lines/s (STEP=26,
TICK=0.1, STATUS_EVERY=1). Two OS processes follow it *concurrently*: ``python -m azwatch run``
(lag ~0, RPC_POLL_INTERVAL=10, LOG_LEVEL=WARNING) and the floor, benchmarks/_bare_follow.py
(aiodocker's follow, counting items). After a warm-up, each one's CPU time (user + system,
psutil) is read at the start and the end of a ``--seconds`` window, and its RSS every second.
A short extra run at LOG_LEVEL=INFO then shows that azwatch applied the lines: its summary
"fully caught up at #N" against the node's best block at that moment.

**Part B**, restart latency: one azwatch process (COOLDOWN=5, RPC_POLL_INTERVAL=2,
STOP_TIMEOUT=1, BACKOFF_FACTOR=1 so the cooldown stays 5 s) and one fake node (IGNORE_TERM=0)
that it restarts ``2 x --repeats`` times. The restart call is the first ``kill`` event Docker
reports in each run.

* (i) head = best + 500 from the start: latency = kill - (``State.StartedAt`` + COOLDOWN);
* (ii) head = best until 3 to 5 s after the cooldown (the jumps spread evenly over one poll
  interval), then best + 500 from instant T: latency = kill - T.

**--idle** (instead of A and B), the cost of a healthy node's ordinary life: a fake node at
~1 line/s (STEP=1, TICK=1, STATUS_EVERY=20), followed concurrently by ``python -m azwatch run``
with default settings (HTTP_PORT added to read ``/status``) and by the floor,
benchmarks/_bare_follow.py ``--rpc``: aiodocker's follow counting lines plus ``chain_getHeader``
every RPC_POLL_INTERVAL (10 s) on one aiohttp session. The ``--seconds`` window (default 300)
starts ``--warmup`` s (default 310) after both start, once the node's run is past azwatch's
COOLDOWN and TREND_WINDOW. Printed: CPU seconds (user, system), wake-ups, lines and polls seen
in the window, RSS at its start and end, and azwatch/floor against the 1.5x target.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import anyio
import psutil  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dockerkit import (  # noqa: E402
    DockerError,
    DockerEvents,
    FakeNode,
    ParamValue,
    build_fake_node_image,
    docker,
)
from fakerpc import FakeRpc  # noqa: E402

from azwatch.containers import docker_time_ns  # noqa: E402
from azwatch.dockerevents import ACTIONS  # noqa: E402

AZWATCH = [sys.executable, "-m", "azwatch", "run"]
BARE_FOLLOW = [sys.executable, str(Path(__file__).resolve().parent / "_bare_follow.py")]
PREFIX = "azwatch-bench-"
MB = 1 << 20

# Part A: the node, the measurement, the targets.
STEP, TICK = 26, 0.1  # blocks per tick, seconds per tick: ~250 lines/s with the status lines
FOLLOWED_NODE: dict[str, ParamValue] = {"STEP": STEP, "TICK": TICK, "STATUS_EVERY": 1}
WARMUP = 5.0  # seconds between starting the followers and the window
CHECK_SECONDS = 13.0  # the LOG_LEVEL=INFO run that shows the lines were applied
MAX_CPU_RATIO = 2.0
MAX_PEAK_RSS_MB = 60.0
MAX_RSS_GROWTH_MB = 1.0  # last 10 s average minus first 10 s average

# Part B.
RESTARTED_NODE: dict[str, ParamValue] = {"STEP": 1, "TICK": 0.5, "IGNORE_TERM": 0}
COOLDOWN = 5.0
POLL = 2.0
JUMP = 500  # blocks added to the head: far above BLOCK_LAG_100=100
HEALTHY_FOR = 3.0  # way (ii): healthy seconds after the cooldown (plus a phase) before the jump

# --idle: a healthy node's ~1 line/s, the default poll interval, the target.
IDLE_NODE: dict[str, ParamValue] = {"STEP": 1, "TICK": 1, "STATUS_EVERY": 20}
IDLE_POLL = 10.0  # azwatch's default RPC_POLL_INTERVAL, which the floor copies
# The window starts once the node's run is older than azwatch's default COOLDOWN and
# TREND_WINDOW (300 s each): from then on azwatch decides "healthy", as it does most of its life.
IDLE_WARMUP = 310.0
IDLE_SECONDS = 300
MAX_IDLE_RATIO = 1.5

Verdict = tuple[str, bool]


# --- plumbing ---------------------------------------------------------------------------------


class HeadServer:
    """tests/fakerpc.py in a thread of its own, its head kept at ``best() + offset``."""

    def __init__(
        self, best: Callable[[], int | None], offset: int = 0, *, refresh: float = 0.05
    ) -> None:
        self._best = best
        self._offset = offset
        self._refresh_every = refresh
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._rpc: FakeRpc | None = None
        self._thread = threading.Thread(target=anyio.run, args=(self._serve,), daemon=True)
        self.url = ""

    def __enter__(self) -> HeadServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake RPC did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def set_offset(self, offset: int) -> float:
        """Answer ``best + offset`` from now on; return the wall-clock time it took effect."""
        with self._lock:
            self._offset = offset
            self._refresh()
            return time.time()

    @property
    def head_polls(self) -> int:
        """Head questions (``chain_getHeader`` of the latest block) so far: azwatch's
        finalized-block and genesis questions are not polls of the head."""
        return 0 if self._rpc is None else self._rpc.head_polls

    def _refresh(self) -> None:
        best = self._best()
        if best is not None and self._rpc is not None:
            self._rpc.head = best + self._offset

    async def _serve(self) -> None:
        async with FakeRpc(head=0) as rpc:
            self._rpc, self.url = rpc, rpc.url
            self._ready.set()
            while not self._stop.is_set():
                with self._lock:
                    self._refresh()
                await anyio.sleep(self._refresh_every)


def start_node(
    stack: contextlib.ExitStack, work: Path, role: str, params: dict[str, ParamValue]
) -> FakeNode:
    """A fake node container ``azwatch-bench-ROLE-*``, removed when *stack* closes."""
    name = f"{PREFIX}{role}-{uuid.uuid4().hex[:8]}"
    stack.callback(remove, name)
    node = FakeNode.run(name, work / f"ctl-{role}", **params)  # type: ignore[arg-type]
    node.wait_best(1, timeout=15)  # its best block is on disk: the head can follow it
    return node


def remove(container: str) -> None:
    """``docker rm -f``, retried for 30 s while the Docker daemon does not answer."""
    for _ in range(30):
        with contextlib.suppress(DockerError):
            proc = docker("rm", "-f", "-v", container, check=False, timeout=10)
            if proc.returncode == 0 or "No such container" in proc.stderr:
                return
        time.sleep(1)
    print(f"follow_live: could not remove container {container}", file=sys.stderr)


def azwatch_env(node: str, rpc_url: str, **settings: object) -> dict[str, str]:
    """The environment of ``python -m azwatch run`` watching *node*.

    MONITOR_UID=0: azwatch started as root would otherwise switch to uid 1000, which may not
    use this machine's Docker socket.
    """
    env = {"CONTAINER_NAME": node, "RPC_URL": rpc_url, "MONITOR_UID": "0"}
    return env | {key: str(value) for key, value in settings.items()}


def spawn(
    stack: contextlib.ExitStack, args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start *args* with its output in *log*; *stack* stops it when it closes."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )
    stack.callback(stop, proc)
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_time(pid: int) -> float | None:
    """Seconds all of *pid*'s threads have run, from the scheduler (``None``: not told)."""
    total = 0
    try:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            total += int(stat.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9 if total else None


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def log_on_error(log: Path) -> Iterator[None]:
    """On an exception, show the end of *log* before it propagates."""
    try:
        yield
    except Exception:
        if log.exists():
            print(f"--- end of {log.name} ---\n{tail(log)}", file=sys.stderr)
        raise


def verdict(target: str, ok: bool) -> Verdict:
    print(f"  {'PASS' if ok else 'FAIL'}  {target}")
    return (target, ok)


def spread(values: list[float], unit: str = "s") -> str:
    listed = ", ".join(f"{value:.3f}" for value in values)
    return (
        f"min {min(values):.3f} {unit}, median {statistics.median(values):.3f} {unit}, "
        f"max {max(values):.3f} {unit}   [{listed}]"
    )


# --- part A: cost of following ----------------------------------------------------------------


@dataclass
class Measured:
    """One follower process: its CPU time over the window and its RSS, sampled every second."""

    label: str
    proc: subprocess.Popen[bytes]
    log: Path
    cpu_seconds: float = 0.0
    wakeups: int = 0
    rss: list[int] = field(default_factory=list)
    #: (user, system) CPU seconds at each ``usage()`` call.
    split: list[tuple[float, float]] = field(default_factory=list)

    def usage(self) -> tuple[float, int]:
        """CPU seconds (user + system) and voluntary context switches so far.

        The seconds are the scheduler's exact run time of every thread where Linux tells it
        (``/proc/PID/task/*/schedstat``, in ns; both processes measured here run one thread,
        so no thread's time leaves with it). ``cpu_times()`` counts 10 ms clock ticks
        that land while the process runs: for a process busy under a millisecond a second,
        a sample of a few dozen ticks over the window, off by a quarter from run to run.
        """
        process = psutil.Process(self.proc.pid)
        times, switches = process.cpu_times(), process.num_ctx_switches()
        self.split.append((float(times.user), float(times.system)))
        exact = run_time(self.proc.pid)
        seconds = float(times.user + times.system) if exact is None else exact
        return seconds, int(switches.voluntary)

    def user_system(self) -> tuple[float, float]:
        """User and system CPU seconds over the window (the first and last ``usage()``)."""
        (user0, system0), (user1, system1) = self.split[0], self.split[-1]
        return user1 - user0, system1 - system0

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.label} exited early (Docker restarted?):\n{tail(self.log)}")

    def sample_rss(self) -> None:
        self.check_alive()
        self.rss.append(psutil.Process(self.proc.pid).memory_info().rss)

    def rss_mb(self, samples: slice) -> float:
        return statistics.fmean(self.rss[samples]) / MB


@dataclass(frozen=True)
class Summary:
    """A summary line of azwatch and the node's best block when it was printed."""

    text: str
    best: int
    node_best: int


SUMMARY = re.compile(r"(?:fully caught up at #|\(best #)(\d+)")


def part_a(work: Path, seconds: int) -> list[Verdict]:
    node_text = " ".join(f"{key}={value}" for key, value in FOLLOWED_NODE.items())
    print(
        f"Part A: following a fake node at catch-up speed ({node_text}) for {seconds} s;\n"
        f"        azwatch and the floor follow the same container concurrently, "
        f"measured after a {WARMUP:g} s warm-up"
    )
    with contextlib.ExitStack() as stack:
        began = time.time()
        node = start_node(stack, work, "follow", FOLLOWED_NODE)
        rpc = stack.enter_context(HeadServer(node.best))
        env = azwatch_env(
            node.name, rpc.url, RPC_POLL_INTERVAL=10, LOG_LEVEL="WARNING", COOLDOWN=seconds + 600
        )
        logs = {"azwatch": work / "azwatch-a.log", "floor": work / "floor.log"}
        azwatch = Measured("azwatch", spawn(stack, AZWATCH, logs["azwatch"], env), logs["azwatch"])
        floor = Measured(
            "floor", spawn(stack, [*BARE_FOLLOW, node.name], logs["floor"]), logs["floor"]
        )
        with log_on_error(logs["azwatch"]):
            run = node.started_at()
            start, end = measure([azwatch, floor], seconds)
            if node.status() != "running" or node.started_at() != run:
                raise RuntimeError("the fake node stopped during the window (Docker restarted?)")
            applied = summaries(work, node, rpc.url)
        written = docker("logs", "--since", f"{start:.6f}", "--until", f"{end:.6f}", node.name)
        kills = [event for event in events_since(node.name, began) if event["Action"] == "kill"]

    window = end - start
    produced = len((written.stdout + written.stderr).splitlines())
    counted = json.loads(logs["floor"].read_text().splitlines()[-1])
    delivered = (counted["lines"] - 1) / (counted["last"] - counted["first"])
    print(
        f"  node wrote      {produced:,} lines in the {window:.1f} s window: "
        f"{produced / window:.1f} lines/s (docker logs)"
    )
    print(f"  floor received  {counted['lines']:,} lines in its life: {delivered:.1f} lines/s")
    print("  process   CPU s   % of one core   CPU us/line   wakeups/line")
    for proc in (azwatch, floor):
        print(
            f"  {proc.label:<8} {proc.cpu_seconds:6.2f}   {100 * proc.cpu_seconds / window:13.2f}"
            f"   {1e6 * proc.cpu_seconds / produced:11.1f}   {proc.wakeups / produced:12.2f}"
        )
    print("  process   peak RSS MB   RSS first 10 s   last 10 s   growth MB")
    for proc in (azwatch, floor):
        first, last = proc.rss_mb(slice(None, 10)), proc.rss_mb(slice(-10, None))
        print(
            f"  {proc.label:<8} {max(proc.rss) / MB:11.1f}   {first:14.1f}   {last:9.1f}"
            f"   {last - first:+9.2f}"
        )
    ratio = azwatch.cpu_seconds / floor.cpu_seconds
    peak = max(azwatch.rss) / MB
    growth = azwatch.rss_mb(slice(-10, None)) - azwatch.rss_mb(slice(None, 10))
    print(f"  azwatch / floor CPU: {ratio:.2f}x")
    print(f"  restarts while following: {len(kills)} (kill events)")
    if applied:
        last_summary = applied[-1]
        ahead = last_summary.node_best - last_summary.best
        print(f"  applied: azwatch at LOG_LEVEL=INFO logged {last_summary.text!r}")
        print(
            f"           when the node's best was #{last_summary.node_best} ({ahead} blocks ahead)"
        )
    else:
        print("  applied: azwatch at LOG_LEVEL=INFO logged no summary line")
    one_second = round(STEP / TICK)
    return [
        verdict(f"azwatch CPU <= {MAX_CPU_RATIO:g}x floor ({ratio:.2f}x)", ratio <= MAX_CPU_RATIO),
        verdict(
            f"azwatch peak RSS < {MAX_PEAK_RSS_MB:g} MB ({peak:.1f} MB)", peak < MAX_PEAK_RSS_MB
        ),
        verdict(
            f"azwatch RSS not growing (last 10 s - first 10 s = {growth:+.2f} MB, "
            f"limit +{MAX_RSS_GROWTH_MB:g} MB)",
            growth <= MAX_RSS_GROWTH_MB,
        ),
        verdict("no restart while following", not kills),
        verdict(
            f"azwatch applied the lines (its best within {one_second} blocks, ~1 s, of the node's)",
            bool(applied) and 0 <= applied[-1].node_best - applied[-1].best <= one_second,
        ),
    ]


def measure(
    procs: list[Measured],
    seconds: int,
    *,
    warmup: float = WARMUP,
    mark: Callable[[], None] = lambda: None,
) -> tuple[float, float]:
    """After the warm-up, read CPU time and context switches around a *seconds* window and
    RSS every second, then stop the processes. Returns the window's wall-clock start and end.

    *mark* runs just before the first CPU reading and just after the last one, so what it
    asks of the processes (counts to read) stays outside the window.
    """
    began = time.monotonic()
    while (left := began + warmup - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        for proc in procs:
            proc.check_alive()  # a long warm-up: give up early when Docker went away
    mark()
    start = time.time()
    before = [proc.usage() for proc in procs]
    for second in range(seconds + 1):
        time.sleep(max(0.0, start + second - time.time()))
        for proc in procs:
            proc.sample_rss()
    after = [proc.usage() for proc in procs]
    end = time.time()
    mark()
    for proc, (cpu0, wakeups0), (cpu1, wakeups1) in zip(procs, before, after, strict=True):
        proc.cpu_seconds, proc.wakeups = cpu1 - cpu0, wakeups1 - wakeups0
    for proc in procs:
        stop(proc.proc)
    return start, end


def summaries(work: Path, node: FakeNode, rpc_url: str) -> list[Summary]:
    """Run azwatch at LOG_LEVEL=INFO for a few summary lines, each with the node's best."""
    env = azwatch_env(
        node.name, rpc_url, LOG_LEVEL="INFO", CHECK_INTERVAL=4, RPC_POLL_INTERVAL=2, COOLDOWN=3600
    )
    seen: list[Summary] = []

    def read(stream: TextIO, log: TextIO) -> None:
        for line in stream:
            log.write(line)
            node_best = node.best()
            if (match := SUMMARY.search(line)) and node_best is not None:
                seen.append(Summary(line.split(": ", 1)[-1].strip(), int(match[1]), node_best))

    proc = subprocess.Popen(
        AZWATCH, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    with (work / "azwatch-info.log").open("w") as log:
        reader = threading.Thread(target=read, args=(proc.stdout, log))
        reader.start()
        try:
            time.sleep(CHECK_SECONDS)
        finally:
            stop(proc)
            reader.join(10)
    return seen


def events_since(name: str, since: float) -> list[dict[str, Any]]:
    """The container events Docker reported for *name* since *since* (wall clock)."""
    proc = docker(
        "events", "--filter", f"container={name}", "--filter", "type=container",
        "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--format", "{{json .}}",
    )  # fmt: skip
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def container_events(start: float, end: float, name: str | None = None) -> int:
    """How many container events of the kinds azwatch subscribes to Docker reported from
    *start* to *end*: about any container (other users of the daemon make them too), or
    with *name* about that one (Docker's filter: names it starts with too)."""
    only = () if name is None else ("--filter", f"container={name}")
    proc = docker(
        "events", "--filter", "type=container", *(f"--filter=event={action}" for action in ACTIONS),
        *only, "--since", f"{start:.6f}", "--until", f"{end:.6f}", "--format", "{{.Action}}",
    )  # fmt: skip
    return len(proc.stdout.split())


# --- part B: restart latency ------------------------------------------------------------------


def part_b(work: Path, repeats: int) -> list[Verdict]:
    node_text = " ".join(f"{key}={value}" for key, value in RESTARTED_NODE.items())
    print(
        f"Part B: restart latency, COOLDOWN={COOLDOWN:g} RPC_POLL_INTERVAL={POLL:g} "
        f"STOP_TIMEOUT=1 BACKOFF_FACTOR=1, {repeats} restarts per way;\n"
        f"        one azwatch process, one fake node ({node_text}); "
        "the restart call is the first kill event of a run"
    )
    log = work / "azwatch-b.log"
    with contextlib.ExitStack() as stack, log_on_error(log):
        began = time.time()
        node = start_node(stack, work, "restart", RESTARTED_NODE)
        events = stack.enter_context(DockerEvents(node.name, since=began))
        rpc = stack.enter_context(HeadServer(node.best, offset=JUMP))
        env = azwatch_env(
            node.name, rpc.url, COOLDOWN=COOLDOWN, RPC_POLL_INTERVAL=POLL, STOP_TIMEOUT=1,
            BACKOFF_FACTOR=1, LOG_LEVEL="INFO",
        )  # fmt: skip
        azwatch = spawn(stack, AZWATCH, log, env)
        in_cooldown = []
        for run in range(1, repeats + 1):
            started = run_started(events, node, run)
            in_cooldown.append(kill_at(events, run) - (started + COOLDOWN))
        rpc.set_offset(0)
        after_jump = []
        for index, run in enumerate(range(repeats + 1, 2 * repeats + 1)):
            started = run_started(events, node, run)
            # A run starts just after the poll that restarted the previous one: spread the
            # jumps over a poll interval, or they would all meet the same phase of the polls.
            phase = POLL * (index + 0.5) / repeats
            time.sleep(max(0.0, started + COOLDOWN + HEALTHY_FOR + phase - time.time()))
            jumped = rpc.set_offset(JUMP)
            after_jump.append(kill_at(events, run) - jumped)
            rpc.set_offset(0)
        stop(azwatch)

    restarts = log.read_text().count("restarting: severe_lag")
    limit = POLL + 1
    print("  (i)  lag > BLOCK_LAG_100 during the cooldown: kill - (StartedAt + COOLDOWN)")
    print(f"       {spread(in_cooldown)}")
    print(
        f"  (ii) head +{JUMP} at T, {HEALTHY_FOR:g} to {HEALTHY_FOR + POLL:g} s after cooldown: "
        "kill - T"
    )
    print(f"       {spread(after_jump)}")
    print(f"  azwatch logged {restarts} severe_lag restarts (expected {2 * repeats})")
    return [
        verdict(
            f"(i) latency <= RPC_POLL_INTERVAL + 1 = {limit:g} s",
            all(0 <= v <= limit for v in in_cooldown),
        ),
        verdict(
            f"(ii) latency <= RPC_POLL_INTERVAL + 1 = {limit:g} s",
            all(0 <= v <= limit for v in after_jump),
        ),
        verdict("every kill was a severe_lag restart by azwatch", restarts == 2 * repeats),
    ]


def run_started(events: DockerEvents, node: FakeNode, run: int) -> float:
    """``State.StartedAt`` (wall clock) of the *run*-th run, once Docker reported its start."""
    events.wait_for("start", count=run, timeout=60)
    started = docker_time_ns(node.state()["StartedAt"])
    assert started is not None
    return started / 1e9


def kill_at(events: DockerEvents, run: int) -> float:
    """Wall-clock time of the *run*-th ``kill`` event."""
    return int(events.wait_for("kill", count=run, timeout=60)["timeNano"]) / 1e9


# --- idle: a healthy node at 1 line/s -------------------------------------------------------


@dataclass
class Counted:
    """Lines and polls one process reported at the start and the end of the window."""

    lines: list[int] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)

    def delta(self, values: list[int]) -> int:
        return values[-1] - values[0]


def free_port() -> int:
    """A 127.0.0.1 TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azwatch_status(port: int, name: str) -> tuple[int, str]:
    """The log lines azwatch took from *name* so far and its last decision (``/status``)."""
    url = f"http://127.0.0.1:{port}/status"
    with urllib.request.urlopen(url, timeout=10) as reply:
        status = json.load(reply)["containers"][name]
    decision = status["decision"] or {}
    return int(status["log"]["lines"]), str(decision.get("reason") or decision.get("rule"))


def floor_counts(floor: Measured) -> dict[str, Any]:
    """Ask the floor for its counts (SIGUSR1) and read the line it prints."""
    before = len(floor.log.read_text().splitlines())
    floor.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = floor.log.read_text().splitlines()
        if len(lines) > before:
            return dict(json.loads(lines[-1]))
        time.sleep(0.01)
    raise RuntimeError(f"the floor did not report its counts:\n{tail(floor.log)}")


def part_idle(work: Path, seconds: int, warmup: float) -> list[Verdict]:
    node_text = " ".join(f"{key}={value}" for key, value in IDLE_NODE.items())
    print(
        f"Idle: a healthy fake node at ~1 line/s ({node_text}) for {seconds} s;\n"
        f"      azwatch (default settings + HTTP_PORT for /status) and the floor (aiodocker's "
        f"follow + chain_getHeader\n      every {IDLE_POLL:g} s on one aiohttp session) follow "
        f"it concurrently, measured after a {warmup:g} s warm-up"
    )
    with contextlib.ExitStack() as stack:
        began = time.time()
        node = start_node(stack, work, "idle", IDLE_NODE)
        rpc = stack.enter_context(HeadServer(node.best, refresh=1.0))
        port = free_port()
        env = azwatch_env(node.name, rpc.url, HTTP_PORT=port)
        logs = {"azwatch": work / "azwatch-idle.log", "floor": work / "floor-idle.log"}
        azwatch = Measured("azwatch", spawn(stack, AZWATCH, logs["azwatch"], env), logs["azwatch"])
        floor_args = [*BARE_FOLLOW, node.name, "--rpc", rpc.url, "--interval", f"{IDLE_POLL:g}"]
        floor = Measured("floor", spawn(stack, floor_args, logs["floor"]), logs["floor"])
        seen = {"azwatch": Counted(), "floor": Counted(), "reference": Counted()}

        def mark() -> None:
            counts = floor_counts(floor)
            seen["floor"].lines.append(counts["lines"])
            seen["floor"].polls.append(counts["polls"])
            lines, decision = azwatch_status(port, node.name)
            seen["azwatch"].lines.append(lines)
            seen["azwatch"].decisions.append(decision)
            seen["reference"].polls.append(rpc.head_polls)

        with log_on_error(logs["azwatch"]), log_on_error(logs["floor"]):
            run = node.started_at()
            start, end = measure([azwatch, floor], seconds, warmup=warmup, mark=mark)
            if node.status() != "running" or node.started_at() != run:
                raise RuntimeError("the fake node stopped during the window (Docker restarted?)")
        written = docker("logs", "--since", f"{start:.6f}", "--until", f"{end:.6f}", node.name)
        kills = [event for event in events_since(node.name, began) if event["Action"] == "kill"]
        logged = logs["azwatch"].read_text().splitlines()
        on_daemon = container_events(start, end)
        about_node = container_events(start, end, node.name)

    window = end - start
    produced = len((written.stdout + written.stderr).splitlines())
    lines = {label: seen[label].delta(seen[label].lines) for label in ("azwatch", "floor")}
    polls = {"floor": seen["floor"].delta(seen["floor"].polls)}
    polls["azwatch"] = seen["reference"].delta(seen["reference"].polls) - polls["floor"]
    print(
        f"  node wrote  {produced:,} lines in the {window:.1f} s window: "
        f"{produced / window:.2f} lines/s (docker logs)"
    )
    print("  process   CPU s   user    sys   % of one core   wakeups/s   lines seen   polls")
    for proc in (azwatch, floor):
        user, system = proc.user_system()
        print(
            f"  {proc.label:<8} {proc.cpu_seconds:6.3f} {user:6.2f} {system:6.2f}"
            f"   {100 * proc.cpu_seconds / window:13.3f}   {proc.wakeups / window:9.2f}"
            f"   {lines[proc.label]:10,}   {polls[proc.label]:5}"
        )
    print("  process   RSS MB at start   at end    peak   first 10 s   last 10 s   growth MB")
    for proc in (azwatch, floor):
        first, last = proc.rss_mb(slice(None, 10)), proc.rss_mb(slice(-10, None))
        print(
            f"  {proc.label:<8} {proc.rss[0] / MB:15.1f}   {proc.rss[-1] / MB:6.1f}"
            f"   {max(proc.rss) / MB:5.1f}   {first:10.1f}   {last:9.1f}   {last - first:+9.2f}"
        )
    ratio = azwatch.cpu_seconds / floor.cpu_seconds
    growth = azwatch.rss_mb(slice(-10, None)) - azwatch.rss_mb(slice(None, 10))
    print(f"  azwatch / floor CPU: {ratio:.2f}x")
    print(f"  restarts: {len(kills)} (kill events); azwatch logged {len(logged)} lines")
    print(
        f"  Docker container events in the window: {on_daemon} on the daemon (any container), "
        f"{about_node} about the node (what azwatch's filtered stream gets; the floor "
        "subscribes to none)"
    )
    decisions = seen["azwatch"].decisions
    print(
        f"  azwatch's decision: {decisions[0]} at the start of the window, "
        f"{decisions[-1]} at its end"
    )
    expected_polls = window / IDLE_POLL
    return [
        verdict(
            f"azwatch CPU <= {MAX_IDLE_RATIO:g}x floor ({ratio:.2f}x)", ratio <= MAX_IDLE_RATIO
        ),
        verdict(
            f"azwatch RSS flat (last 10 s - first 10 s = {growth:+.2f} MB, "
            f"limit +{MAX_RSS_GROWTH_MB:g} MB)",
            growth <= MAX_RSS_GROWTH_MB,
        ),
        verdict(
            f"azwatch and the floor each saw the node's lines (±2 of {produced})",
            all(abs(count - produced) <= 2 for count in lines.values()),
        ),
        verdict(
            f"azwatch and the floor each polled the reference every {IDLE_POLL:g} s "
            f"(±1 of {expected_polls:.0f})",
            all(abs(count - expected_polls) <= 1 for count in polls.values()),
        ),
        verdict("no restart", not kills),
    ]


# --- main -------------------------------------------------------------------------------------


def source_version() -> str:
    """The commit azwatch/ was measured at, and whether it had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = subprocess.run(
        [*git, "status", "--porcelain", "azwatch"], capture_output=True, text=True
    )
    if head.returncode != 0:
        return "(not a git checkout)"
    return head.stdout.strip() + (" + uncommitted changes" if status.stdout.strip() else "")


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=int,
        help=f"part A window (>= 20; default 60), or with --idle its window "
        f"(default {IDLE_SECONDS})",
    )
    parser.add_argument("--repeats", type=int, default=5, help="restarts per way in part B")
    parser.add_argument(
        "--idle",
        action="store_true",
        help="instead of parts A and B: the idle cost of azwatch next to the floor, following "
        "a node at ~1 line/s",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=IDLE_WARMUP,
        help=f"with --idle: seconds from starting the node and the followers to the window "
        f"(default {IDLE_WARMUP:g}: past azwatch's 300 s cooldown; >= 5)",
    )
    args = parser.parse_args()
    if args.warmup < 5:
        parser.error("--warmup must be >= 5")
    if args.seconds is None:
        args.seconds = IDLE_SECONDS if args.idle else 60
    if args.seconds < 20 or args.repeats < 1:
        parser.error("--seconds must be >= 20 and --repeats >= 1")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    began = time.monotonic()
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"follow_live: azwatch {source_version()}, Python {platform.python_version()}, "
        f"Docker {server}, {os.cpu_count()} CPUs, load average {load}"
    )
    verdicts: list[Verdict] = []
    try:
        build_fake_node_image()
        with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp:
            if args.idle:
                verdicts += part_idle(Path(tmp), args.seconds, args.warmup)
            else:
                verdicts += part_a(Path(tmp), args.seconds)
                verdicts += part_b(Path(tmp), args.repeats)
    except KeyboardInterrupt:
        print("interrupted; every azwatch-bench container was removed", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError, DockerError) as error:
        print(f"follow_live: cannot measure: {error}", file=sys.stderr)
        return 2
    return exit_code(verdicts, began)


def exit_code(verdicts: list[Verdict], began: float) -> int:
    """Print the tally of *verdicts* (the run began at monotonic *began*): 0 if all passed."""
    failed = sum(not ok for _, ok in verdicts)
    print(f"done in {time.monotonic() - began:.0f} s: {len(verdicts) - failed} PASS, {failed} FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
