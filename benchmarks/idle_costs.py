"""Where azwatch's idle CPU goes, step by step, measured cold in a live run.

Runs ``follow_live.py --idle`` with azwatch started through this file, which times each pure
step of the per-line path (the follower's frames, assembler, cursor and parser; the inbox;
the supervisor's ``handle`` and ``tick``, with ``apply_all`` and ``decide`` inside them) with
the process's CPU clock, from shortly before the window to the end. At idle each step runs
once a second after a sleep, with cold caches, several times slower than in a hot loop
(``core_throughput.py``), so only a live run tells what it costs there.

    .venv/bin/python benchmarks/idle_costs.py                 # 45 s warm-up, 150 s window
    .venv/bin/python benchmarks/idle_costs.py --warmup 310 --seconds 300

Printed after follow_live's own report: for each step, its calls, CPU ms in all and µs per
call, and the process's whole CPU over the same time. The wrappers cost about a
microsecond a call, so the whole is a little above a plain run's.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRAPPER_FLAG = "--as-azwatch"
#: The steps in the order a line meets them.
ORDER = (
    "follower: frames",
    "follower: assembler",
    "follower: cursor",
    "follower: parse_block",
    "inbox: offer",
    "inbox: take",
    "supervisor: handle",
    "  of which apply_all",
    "supervisor: tick",
    "  of which decide",
)
OUT_ENV, AFTER_ENV = "AZWATCH_COSTS_OUT", "AZWATCH_COSTS_AFTER"


def run_azwatch_timed() -> int:
    """``python -m azwatch run`` with its per-line steps timed (in the azwatch process)."""
    import azwatch.follower as follower
    import azwatch.inbox as inbox
    import azwatch.logcursor as logcursor
    import azwatch.logparse as logparse
    import azwatch.supervisor as supervisor
    from azwatch.cli import main

    spent: dict[str, float] = {}
    calls: dict[str, int] = {}
    timing = False

    def timed(label: str, step: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(step)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not timing:
                return step(*args, **kwargs)
            began = time.process_time()
            try:
                return step(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - began
                calls[label] = calls.get(label, 0) + 1

        return wrapper

    follower.FrameReader._frames = timed("follower: frames", follower.FrameReader._frames)  # type: ignore[method-assign]
    logparse.LineAssembler.feed_blocks = timed(  # type: ignore[method-assign]
        "follower: assembler", logparse.LineAssembler.feed_blocks
    )
    logcursor.LogCursor.fresh_block = timed("follower: cursor", logcursor.LogCursor.fresh_block)  # type: ignore[method-assign]
    follower.parse_block = timed("follower: parse_block", follower.parse_block)
    inbox.Inbox.offer = timed("inbox: offer", inbox.Inbox.offer)  # type: ignore[method-assign]
    inbox.Inbox.take = timed("inbox: take", inbox.Inbox.take)  # type: ignore[method-assign]
    supervisor.Supervisor.handle = timed("supervisor: handle", supervisor.Supervisor.handle)  # type: ignore[method-assign]
    supervisor.apply_all = timed("  of which apply_all", supervisor.apply_all)
    supervisor.Supervisor.tick = timed("supervisor: tick", supervisor.Supervisor.tick)  # type: ignore[method-assign]
    supervisor.decide = timed("  of which decide", supervisor.decide)

    started = [0.0]

    def start(*_: object) -> None:
        nonlocal timing
        timing, started[0] = True, time.process_time()

    signal.signal(signal.SIGALRM, start)
    signal.alarm(max(1, int(float(os.environ[AFTER_ENV]))))
    try:
        return main(["run"])
    finally:
        whole = time.process_time() - started[0] if timing else 0.0
        report = {"whole": whole, "spent": spent, "calls": calls}
        Path(os.environ[OUT_ENV]).write_text(json.dumps(report), encoding="utf-8")


def print_report(path: Path) -> None:
    report = json.loads(path.read_text(encoding="utf-8"))
    print("\nidle_costs: azwatch's per-line steps, process CPU from just before the window")
    print("  step                      calls   CPU ms   us/call")
    for label in ORDER:
        if label not in report["spent"]:
            continue
        seconds, count = report["spent"][label], report["calls"][label]
        print(f"  {label:<24} {count:6}   {seconds * 1e3:6.1f}   {seconds * 1e6 / count:7.1f}")
    print(f"  {'whole process':<24} {'':6}   {report['whole'] * 1e3:6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=float, default=45.0, help="seconds before the window")
    parser.add_argument("--seconds", type=int, default=150, help="the window (>= 20)")
    args = parser.parse_args()
    if args.warmup < 5 or args.seconds < 20:
        parser.error("--warmup must be >= 5 and --seconds >= 20")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import follow_live

    with tempfile.TemporaryDirectory(prefix="azwatch-costs-") as tmp:
        out = Path(tmp) / "costs.json"
        os.environ[OUT_ENV] = str(out)
        os.environ[AFTER_ENV] = str(max(1.0, args.warmup - 5))  # past the start-up
        follow_live.AZWATCH = [sys.executable, str(Path(__file__).resolve()), WRAPPER_FLAG]
        sys.argv = [
            "follow_live.py",
            "--idle",
            "--warmup",
            f"{args.warmup:g}",
            "--seconds",
            str(args.seconds),
        ]
        code = follow_live.main()
        if out.exists():
            print_report(out)
        else:
            print("idle_costs: azwatch wrote no report", file=sys.stderr)
            return 2
    return code


if __name__ == "__main__":
    sys.exit(run_azwatch_timed() if sys.argv[1:] == [WRAPPER_FLAG] else main())
