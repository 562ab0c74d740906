"""Cost of one ``azwatch run`` following many quiet nodes, by name and by label.

Run ``.venv/bin/python benchmarks/many_nodes.py [--nodes N] [--seconds S] [--profile]``. It
needs a Docker Engine and reuses benchmarks/follow_live.py's helpers (the fake node image,
the fake RPC in a thread, the CPU/RSS sampling, the cleanup). N fake nodes
(``azwatch-bench-many-*``, label ``azwatch.bench=many``) each print one line a second (STEP=1,
TICK=1, STATUS_EVERY=0) and share one best block (START = 1000 + seconds since the first one
started). The reference head is the lowest best block of the N, so every node is in sync.

The same measurement runs twice, with one ``python -m azwatch run`` process (default
RPC_POLL_INTERVAL, LOG_LEVEL=WARNING) watching all N nodes: by name (CONTAINER_NAME lists them)
and by label (CONTAINER_LABEL=azwatch.bench=many). After a warm-up, psutil reads its CPU time
around a ``--seconds`` window and its RSS every second. A short second run at LOG_LEVEL=INFO
then shows that every container is followed: one summary line per container, whose best block
is compared with the node's own. If a target fails (or with ``--profile``), py-spy records a
fresh azwatch process for 30 s and the heaviest functions are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))

import follow_live as fl  # it also puts tests/ on sys.path
from dockerkit import DockerError, FakeNode, build_fake_node_image, docker

LABEL = "azwatch.bench=many"
WARMUP = 10.0  # seconds from starting azwatch to the window: attaches and log tails are done
CHECK_SECONDS, CHECK_INTERVAL = 13.0, 4  # the LOG_LEVEL=INFO run: about 3 summaries each
MAX_CPU_PERCENT = 2.0  # of one core
MAX_PEAK_RSS_MB = 80.0
LINE_RATE = (0.9, 1.1)  # lines/s each node must have written in the window
PROFILE_SECONDS = 30
PY_SPY = str(Path(sys.executable).with_name("py-spy"))


@dataclass
class Azwatch(fl.Measured):
    """:class:`follow_live.Measured` that also keeps user and system CPU time apart."""

    times: list[tuple[float, float]] = field(default_factory=list)

    def usage(self) -> tuple[float, int]:
        times = psutil.Process(self.proc.pid).cpu_times()
        self.times.append((times.user, times.system))
        return super().usage()


def start_nodes(stack: contextlib.ExitStack, work: Path, count: int) -> list[FakeNode]:
    """*count* labelled fake nodes sharing one best block, removed when *stack* closes."""
    run, began, nodes = uuid.uuid4().hex[:6], time.time(), []
    for index in range(1, count + 1):
        name = f"{fl.PREFIX}many-{index:02d}-{run}"
        stack.callback(fl.remove, name)
        start = 1000 + round(time.time() - began)
        labels = ["--label", LABEL]
        # One line a second: one Imported line per 1 s tick, no status reports.
        nodes.append(
            FakeNode.run(
                name, work / name, docker_args=labels, START=start, STEP=1, TICK=1, STATUS_EVERY=0
            )
        )
    for node in nodes:
        node.wait_best(1, timeout=15)
    return nodes


def lowest_best(nodes: list[FakeNode]) -> int | None:
    bests = [node.best() for node in nodes]
    return None if None in bests else min(best for best in bests if best is not None)


def runs(nodes: list[FakeNode]) -> dict[str, str]:
    """Each node's ``status StartedAt``, with a single ``docker inspect``."""
    fmt = "{{.Name}} {{.State.Status}} {{.State.StartedAt}}"
    out = docker("inspect", "--type", "container", "--format", fmt, *(n.name for n in nodes))
    rows = (line.lstrip("/").split(" ", 1) for line in out.stdout.splitlines() if line)
    return {row[0]: row[1] for row in rows}


def lines_written(node: FakeNode, start: float, end: float) -> int:
    out = docker("logs", "--since", f"{start:.6f}", "--until", f"{end:.6f}", node.name)
    return len((out.stdout + out.stderr).splitlines())


def summaries(work: Path, nodes: list[FakeNode], env: dict[str, str]) -> dict[str, fl.Summary]:
    """Run azwatch at LOG_LEVEL=INFO (JSON lines) for a few summaries; per container, the last
    summary with the node's best block at the moment it was logged."""
    env = env | {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "CHECK_INTERVAL": str(CHECK_INTERVAL)}
    by_name = {node.name: node for node in nodes}
    seen: dict[str, fl.Summary] = {}

    def read(stream: TextIO, log: TextIO) -> None:
        for line in stream:
            log.write(line)
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                node = by_name.get(record.get("container"))
                node_best = node.best() if node else None
                if record.get("event") == "summary" and node and node_best is not None:
                    text = record["message"].split(": ", 1)[-1]
                    seen[node.name] = fl.Summary(text, int(record.get("best") or -1), node_best)

    proc = subprocess.Popen(
        fl.AZWATCH, cwd=fl.ROOT, env={**os.environ, **env}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    with (work / "azwatch-info.log").open("a") as log:
        reader = threading.Thread(target=read, args=(proc.stdout, log))
        reader.start()
        try:
            time.sleep(CHECK_SECONDS)
        finally:
            fl.stop(proc)
            reader.join(10)
    return seen


def measure_mode(
    work: Path, nodes: list[FakeNode], env: dict[str, str], title: str, seconds: int
) -> list[fl.Verdict]:
    print(
        f"{title}: one azwatch process, {len(nodes)} nodes at 1 line/s, default "
        f"RPC_POLL_INTERVAL, LOG_LEVEL=WARNING;\n        measured for {seconds} s after a "
        f"{WARMUP:g} s warm-up"
    )
    log = work / f"azwatch-{title.split()[-1]}.log"
    with contextlib.ExitStack() as stack, fl.log_on_error(log):
        before = runs(nodes)
        azwatch = Azwatch("azwatch", fl.spawn(stack, fl.AZWATCH, log, env), log)
        time.sleep(WARMUP - fl.WARMUP)  # fl.measure waits fl.WARMUP itself
        start, end = fl.measure([azwatch], seconds)
        after = runs(nodes)
        if any(not state.startswith("running ") for state in after.values()):
            raise RuntimeError("a fake node stopped during the window (Docker restarted?)")
        seen = summaries(work, nodes, env)

    window = end - start
    rates = [lines_written(node, start, end) / window for node in nodes]
    lines = round(sum(rates) * window)
    cpu_percent = 100 * azwatch.cpu_seconds / window
    peak = max(azwatch.rss) / fl.MB
    first, last = azwatch.rss_mb(slice(None, 10)), azwatch.rss_mb(slice(-10, None))
    logged = Counter(line.split(": ", 1)[-1] for line in log.read_text().splitlines())
    lags = [s.node_best - s.best for s in seen.values() if s.text.startswith("fully caught up")]
    print(
        f"  nodes wrote  {lines:,} lines in the {window:.1f} s window (docker logs); per node "
        f"min {min(rates):.2f}, median {statistics.median(rates):.2f}, max {max(rates):.2f} lines/s"
    )
    (user0, system0), (user1, system1) = azwatch.times
    print(
        f"  azwatch CPU  {azwatch.cpu_seconds:.2f} s (user {user1 - user0:.2f}, system "
        f"{system1 - system0:.2f}): {cpu_percent:.2f}% of one core, "
        f"{1e6 * azwatch.cpu_seconds / max(lines, 1):.0f} us/line, "
        f"{azwatch.wakeups / max(lines, 1):.2f} wakeups/line"
    )
    print(
        f"  azwatch RSS  peak {peak:.1f} MB; first 10 s {first:.1f} MB, last 10 s {last:.1f} MB, "
        f"growth {last - first:+.2f} MB"
    )
    print(f"  azwatch log  {sum(logged.values())} lines at WARNING and above")
    for text, count in logged.most_common(5):
        print(f"    {count:3d}x {text[:110]}")
    print(
        f"  followed     LOG_LEVEL=INFO run: {len(seen)} of {len(nodes)} containers logged a "
        f"summary, {len(lags)} 'fully caught up', azwatch's best behind the node's by "
        + (f"{min(lags)} to {max(lags)} blocks" if lags else "-")
    )
    for name in sorted({node.name for node in nodes} - set(seen)):
        print(f"    no summary for {name}")
    return [
        fl.verdict(
            f"each node wrote {LINE_RATE[0]:g} to {LINE_RATE[1]:g} lines/s",
            all(LINE_RATE[0] <= rate <= LINE_RATE[1] for rate in rates),
        ),
        fl.verdict(
            f"azwatch CPU < {MAX_CPU_PERCENT:g}% of one core ({cpu_percent:.2f}%)",
            cpu_percent < MAX_CPU_PERCENT,
        ),
        fl.verdict(
            f"azwatch peak RSS < {MAX_PEAK_RSS_MB:g} MB ({peak:.1f} MB)", peak < MAX_PEAK_RSS_MB
        ),
        fl.verdict(
            f"azwatch RSS not growing (growth {last - first:+.2f} MB, "
            f"limit +{fl.MAX_RSS_GROWTH_MB:g} MB)",
            last - first <= fl.MAX_RSS_GROWTH_MB,
        ),
        fl.verdict("no node restarted (StartedAt unchanged)", after == before),
        fl.verdict(
            "every container followed (caught up, best within 2 blocks of the node's)",
            len(lags) == len(nodes) and all(0 <= lag <= 2 for lag in lags),
        ),
    ]


def profile(work: Path, env: dict[str, str]) -> None:
    """py-spy a fresh azwatch process after the warm-up; print where its time goes."""
    out = work / "py-spy.txt"
    with contextlib.ExitStack() as stack:
        proc = fl.spawn(stack, fl.AZWATCH, work / "azwatch-profile.log", env)
        time.sleep(WARMUP)
        args = ["record", "-p", str(proc.pid), "-d", str(PROFILE_SECONDS), "-r", "1000"]
        spy = subprocess.run([PY_SPY, *args, "-f", "raw", "-o", str(out)], capture_output=True)
    if spy.returncode != 0 or not out.exists():
        print(f"  py-spy failed: {(spy.stderr or spy.stdout).decode().strip()[-300:]}")
        return
    own: Counter[str] = Counter()
    caller: Counter[str] = Counter()  # the innermost azwatch function of each sample
    idle = 0  # samples in the event loop's select(): waiting, not working
    for line in out.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        # "function (file:line)" -> "function (file)": one row per function.
        frames, samples = [re.sub(r":\d+\)$", ")", f) for f in stack_text.split(";")], int(count)
        if frames[-1].startswith("EpollSelector.select "):
            idle += samples
            continue
        own[frames[-1]] += samples
        inner = next((f for f in reversed(frames) if "azwatch/" in f), "(outside azwatch)")
        caller[inner] += samples
    busy = sum(own.values())
    print(
        f"  py-spy: {busy + idle} samples in {PROFILE_SECONDS} s at 1000 Hz; {idle} in the event "
        f"loop's select() (waiting), {busy} busy ({100 * busy / (PROFILE_SECONDS * 1000):.2f}% "
        "of the time)"
    )
    for heading, counts in (("own time", own), ("innermost azwatch function", caller)):
        print(f"  busy samples by {heading}:")
        for frame, samples in counts.most_common(10):
            print(f"    {100 * samples / max(busy, 1):5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20, help="fake node containers")
    parser.add_argument("--seconds", type=int, default=60, help="measured window (>= 20)")
    parser.add_argument("--profile", action="store_true", help="py-spy even if every target passes")
    args = parser.parse_args()
    if args.seconds < 20 or args.nodes < 1:
        parser.error("--seconds must be >= 20 and --nodes >= 1")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, fl.interrupt)
    began = time.monotonic()
    server = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"many_nodes: azwatch {fl.source_version()}, Python {platform.python_version()}, "
        f"Docker {server}, {os.cpu_count()} CPUs, load average {load}"
    )
    if stale := docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split():
        print(f"many_nodes: {len(stale)} container(s) labelled {LABEL} exist already; remove them")
        return 2
    verdicts: list[fl.Verdict] = []
    try:
        build_fake_node_image()
        with tempfile.TemporaryDirectory(prefix=fl.PREFIX) as tmp, contextlib.ExitStack() as stack:
            work = Path(tmp)
            nodes = start_nodes(stack, work, args.nodes)
            rpc = stack.enter_context(fl.HeadServer(lambda: lowest_best(nodes)))
            names = ",".join(node.name for node in nodes)
            modes = {
                "by name": fl.azwatch_env(names, rpc.url, LOG_LEVEL="WARNING"),
                "by label": fl.azwatch_env("", rpc.url, CONTAINER_LABEL=LABEL, LOG_LEVEL="WARNING"),
            }
            failed_env = None
            for title, env in modes.items():
                mode_verdicts = measure_mode(work, nodes, env, title, args.seconds)
                verdicts += mode_verdicts
                if failed_env is None and not all(ok for _, ok in mode_verdicts):
                    failed_env = env
            if failed_env is not None or args.profile:
                print(f"Profile: py-spy record -r 1000 -d {PROFILE_SECONDS} of a fresh azwatch")
                profile(work, failed_env or modes["by name"])
    except KeyboardInterrupt:
        print("interrupted; every azwatch-bench-many container was removed", file=sys.stderr)
        return 130
    except (RuntimeError, TimeoutError, DockerError) as error:
        print(f"many_nodes: cannot measure: {error}", file=sys.stderr)
        return 2
    return fl.exit_code(verdicts, began)


if __name__ == "__main__":
    sys.exit(main())
