"""Crash loops: a container that keeps exiting by itself, counted per run. Pure.

A node that exits over and over (a corrupt database, a bad flag, a missing key) is started
again by Docker's restart policy, not by azwatch, and restarting it more never helps. The
supervisor counts each run's exit once (:func:`count_exit`; an exit is known by the run it
ended, so a ``die`` event and an inspect of the same exit count once), and after
:data:`CRASH_LOOP_EXITS` exits within :data:`CRASH_LOOP_WINDOW` declares a crash loop. The
loop lasts until a run has been running for a full cooldown since the last exit
(:func:`loop_ends_at`); meanwhile azwatch decides no restart of that container.

The official image runs the node through ``xargs``, which masks its exit status:
:func:`exit_words` names the two codes that mean the node itself failed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: Exits within :data:`CRASH_LOOP_WINDOW` that make a crash loop.
CRASH_LOOP_EXITS = 3
#: Seconds over which exits are counted.
CRASH_LOOP_WINDOW = 600.0
#: Runs whose exit is remembered, so a second report of the same exit is not counted.
REMEMBERED_RUNS = 16

#: Exit codes of the official image's entrypoint, whose last command is ``… | xargs aleph-node``.
XARGS_EXIT_CODES = {
    123: "the node exited non-zero",
    125: "the node was killed by a signal",
}


def exit_words(code: int | None) -> str:
    """What exit *code* means, in the words of the log (``None``: Docker could not say)."""
    if code is None:
        return "exit code unknown (Docker did not report one)"
    meaning = XARGS_EXIT_CODES.get(code)
    return f"exit code {code}" if meaning is None else f"exit code {code}: {meaning}"


@dataclass(frozen=True, slots=True)
class Exit:
    """One run's end: when, its exit code, the run, and the run's last fatal line."""

    at: float
    code: int | None
    run_id: str | None
    fatal: str | None = None


@dataclass(frozen=True, slots=True)
class CrashLoop:
    """A crash loop in force: declared at *since*, *last* is the latest exit."""

    since: float
    last: Exit


@dataclass(frozen=True, slots=True)
class Crashes:
    """A container's exits: those of the last window, the total, and the loop if any."""

    recent: tuple[Exit, ...] = ()
    total: int = 0
    counted_runs: tuple[str, ...] = ()
    loop: CrashLoop | None = None

    @property
    def last(self) -> Exit | None:
        return self.recent[-1] if self.recent else None


def count_exit(crashes: Crashes, exit: Exit) -> tuple[Crashes, bool]:
    """*crashes* with *exit* counted, and whether it was new (a run's exit counts once).

    A second report of a counted exit only adds the fatal line the first one lacked.
    """
    if exit.run_id is not None and exit.run_id in crashes.counted_runs:
        return _with_fatal(crashes, exit), False
    horizon = exit.at - CRASH_LOOP_WINDOW
    recent = tuple(sorted((*(e for e in crashes.recent if e.at >= horizon), exit), key=_at))
    counted = crashes.counted_runs
    if exit.run_id is not None:
        counted = (*counted, exit.run_id)[-REMEMBERED_RUNS:]
    loop = crashes.loop
    if loop is not None:
        loop = replace(loop, last=exit)
    elif len(recent) >= CRASH_LOOP_EXITS:
        loop = CrashLoop(since=exit.at, last=exit)
    return Crashes(recent, crashes.total + 1, counted, loop), True


def loop_ends_at(crashes: Crashes, run_started_at: float, cooldown: float) -> float | None:
    """When the crash loop ends if the current run keeps running: a full *cooldown* after
    the later of the last exit and the run's start. ``None``: no crash loop."""
    loop = crashes.loop
    if loop is None:
        return None
    return max(loop.last.at, run_started_at) + cooldown


def end_loop(crashes: Crashes) -> Crashes:
    """*crashes* once its loop is over (the exits stay counted)."""
    return replace(crashes, loop=None)


def _with_fatal(crashes: Crashes, report: Exit) -> Crashes:
    if report.fatal is None:
        return crashes

    def told(exit: Exit) -> Exit:
        same = exit.run_id == report.run_id and exit.fatal is None
        return replace(exit, fatal=report.fatal) if same else exit

    loop = crashes.loop
    if loop is not None:
        loop = replace(loop, last=told(loop.last))
    return replace(crashes, recent=tuple(told(e) for e in crashes.recent), loop=loop)


def _at(exit: Exit) -> float:
    return exit.at
