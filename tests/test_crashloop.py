"""Crash loops and misconfigured containers: the pure counting, and the supervisor's hold.

Tables in the style of tests/test_supervisor.py: messages in at chosen instants, effects out.
The live counterpart (a fake node exiting under Docker's restart policy) is in
tests/test_crashloop_docker.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from test_supervisor import CONFIG, NAME, Drive

from azwatch.crashloop import (
    CRASH_LOOP_EXITS,
    CRASH_LOOP_WINDOW,
    Crashes,
    Exit,
    count_exit,
    exit_words,
    loop_ends_at,
)
from azwatch.effects import SendNotice
from azwatch.events import (
    BlockImported,
    ContainerExited,
    ContainerStatus,
    EntrypointError,
    FatalKind,
    FatalLine,
    LogCaughtUp,
    RunStarted,
)
from azwatch.metrics import registry_for
from azwatch.page import render
from azwatch.policy import Hold, HoldReason
from azwatch.snapshot import HeadView, document, take
from azwatch.watcher import exit_code

# --- the pure counting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (123, "exit code 123: the node exited non-zero"),
        (125, "exit code 125: the node was killed by a signal"),
        (1, "exit code 1"),
        (0, "exit code 0"),
        (137, "exit code 137"),
        (None, "exit code unknown (Docker did not report one)"),
    ],
)
def test_exit_codes_are_named_as_the_official_image_means_them(
    code: int | None, words: str
) -> None:
    assert exit_words(code) == words


def count_all(*exits: Exit) -> Crashes:
    crashes = Crashes()
    for exit in exits:
        crashes, _ = count_exit(crashes, exit)
    return crashes


@pytest.mark.parametrize(
    ("times", "looping"),
    [
        ([0.0, 10.0], False),
        ([0.0, 10.0, 20.0], True),
        ([0.0, 300.0, CRASH_LOOP_WINDOW], True),  # the window includes its edge
        ([0.0, 300.0, CRASH_LOOP_WINDOW + 1], False),  # the first fell out of the window
        ([0.0, 700.0, 1400.0, 2100.0], False),  # one exit every 700 s is not a loop
    ],
    ids=["two", "three-quick", "three-at-the-edge", "three-too-slow", "one-in-700s"],
)
def test_three_exits_within_ten_minutes_make_a_crash_loop(
    times: list[float], looping: bool
) -> None:
    crashes = count_all(*(Exit(at, 123, f"run-{i}") for i, at in enumerate(times)))
    assert (crashes.loop is not None) is looping
    assert crashes.total == len(times)
    assert CRASH_LOOP_EXITS == 3


def test_a_runs_exit_counts_once_however_often_it_is_reported() -> None:
    crashes, new = count_exit(Crashes(), Exit(1.0, 123, "run-1"))
    assert new
    again, new = count_exit(crashes, Exit(1.2, 123, "run-1"))  # the inspect after the die event
    assert (again, new) == (crashes, False)
    told, new = count_exit(crashes, Exit(1.2, 123, "run-1", fatal="Error: db"))
    assert not new
    assert told.total == 1
    assert told.last == Exit(1.0, 123, "run-1", fatal="Error: db")  # the words it lacked
    unknown, new = count_exit(crashes, Exit(2.0, None, None))  # a run nobody named counts
    assert new
    assert unknown.total == 2


def test_the_loop_ends_a_full_cooldown_after_the_later_of_last_exit_and_run_start() -> None:
    crashes = count_all(*(Exit(at, 1, f"run-{at}") for at in (0.0, 5.0, 10.0)))
    assert loop_ends_at(crashes, run_started_at=12.0, cooldown=60.0) == 72.0
    assert loop_ends_at(crashes, run_started_at=3.0, cooldown=60.0) == 70.0
    assert loop_ends_at(Crashes(), run_started_at=3.0, cooldown=60.0) is None


# --- the supervisor -------------------------------------------------------------------------


def crash(drive: Drive, at: float, run: int, code: int | None = 123) -> None:
    """Run *run* ends at *at* by itself; Docker's restart policy starts run *run* + 1."""
    drive.events(at, ContainerExited(code, seen_at=at), ContainerStatus(False, "exited", at))
    drive.events(at + 1, RunStarted(f"run-{run + 1}", at + 0.5), LogCaughtUp())


def decision_of(drive: Drive) -> Hold:
    decision = drive.supervisor.books[NAME].decision
    assert isinstance(decision, Hold), decision
    return decision


def test_a_crash_loop_is_said_once_and_holds_every_restart_until_a_run_lasts_a_cooldown() -> None:
    config = replace(CONFIG, catch_up_rate=0.0, cooldown=60.0)
    drive = Drive(config)
    fatal = FatalLine(FatalKind.ERROR_EXIT, 'Error: Service(Client(Backend("db corrupt")))')
    drive.events(1, BlockImported(1000), fatal)
    crash(drive, 10, run=1)
    crash(drive, 20, run=2)
    assert drive.logs("crash_loop") == []
    drive.events(25, fatal)
    crash(drive, 30, run=3)
    (said,) = drive.logs("crash_loop")
    assert said.startswith("node: crash loop: 3 exits within 10m00s, the last with exit code 123:")
    assert 'last fatal line: Error: Service(Client(Backend("db corrupt")))' in said
    assert drive.notices().count("azwatch: node is crash looping") == 1
    exits = drive.logs("container_exited")
    assert len(exits) == 3
    assert exits[0].startswith(
        "node: the container exited by itself: exit code 123: the node exited non-zero; "
        "1 exit(s) in the last 10m00s"
    )
    # The run after the loop is past the cooldown and lags badly: still no restart.
    drive.events(40, BlockImported(1000))
    for at in range(60, 91, 5):
        drive.events(at, BlockImported(1000))
        drive.head(at, 5000)
    assert drive.restarts() == []
    hold = decision_of(drive)
    assert hold.reason is HoldReason.CRASH_LOOP
    assert "keeps exiting by itself (3 exits within 10m00s" in hold.detail
    assert "no restart until it has run for 1m00s" in hold.detail
    assert hold.until == 30.5 + 60.0  # a full cooldown after the run that began at 30.5 s
    assert drive.supervisor.next_wake() <= hold.until
    assert len(drive.logs("crash_loop")) == 1
    # A full cooldown of running ends the loop: the rules decide again (severe lag).
    drive.events(95, BlockImported(1000))
    drive.head(95, 5000)
    assert drive.logs("crash_loop_over") == [
        "node: crash loop over: running for 1m00s since the last exit"
    ]
    over = [e.notice for e in drive.effects if isinstance(e, SendNotice)][-1]
    assert over.title == "azwatch: node runs again"
    assert over.key != "crash_loop:node"  # not suppressed as a repeat of the loop's notice
    assert len(drive.restarts()) == 1


def test_a_crash_loop_shows_in_status_and_metrics() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    for i, at in enumerate((10, 20, 30), start=1):
        crash(drive, at, run=i, code=None)
    snapshot = take(drive.supervisor, now=31, wall=1e9, logs={}, head=HeadView(None, None))
    view = document(snapshot)["containers"][NAME]
    assert (view["crash_loop"], view["crashes"]) == (True, 3)
    assert view["last_exit"] == "exit code unknown (Docker did not report one)"
    assert view["decision"]["reason"] == "crash_loop"
    metrics = generate_latest(registry_for(lambda: snapshot)).decode()
    assert f'azwatch_crash_loop{{container="{NAME}"}} 1.0' in metrics
    assert f'azwatch_crashes_total{{container="{NAME}"}} 3.0' in metrics


def test_exits_spread_wider_than_the_window_are_counted_but_no_loop() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    for i, at in enumerate((10, 700, 1400), start=1):
        crash(drive, at, run=i)
    assert drive.logs("crash_loop") == []
    assert drive.supervisor.books[NAME].crashes.total == 3


def test_the_die_event_and_the_inspect_of_one_exit_count_once() -> None:
    drive = Drive()
    drive.events(10, ContainerExited(1, seen_at=10))  # the die event: the current run, run-1
    drive.events(11, ContainerExited(1, run_id="run-1", seen_at=10.5))  # the inspect
    drive.events(12, RunStarted("run-2", 11.5), LogCaughtUp())
    # A die that arrives after the next run was seen is put down to the run it ended.
    drive.events(13, ContainerExited(1, run_id="run-2", seen_at=12.5))
    drive.events(14, RunStarted("run-3", 13.5), LogCaughtUp())
    drive.events(15, ContainerExited(1, seen_at=12.5))
    assert drive.supervisor.books[NAME].crashes.total == 2
    assert len(drive.logs("container_exited")) == 2


def test_the_exit_azwatchs_own_restart_causes_is_not_a_crash() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    drive.events(10, BlockImported(1000))
    drive.head(10, 1500)
    assert len(drive.restarts()) == 1
    drive.events(11, ContainerExited(137, seen_at=11))
    drive.done(12)
    assert drive.supervisor.books[NAME].crashes.total == 0
    assert drive.logs("container_exited") == []


def test_an_entrypoint_error_is_a_misconfigured_container_said_once_per_run() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0, cooldown=0.0))
    line = "/node/docker_entrypoint.sh: line 45: NODE_KEY_PATH: unbound variable"
    error = EntrypointError("NODE_KEY_PATH", line)
    drive.events(1, error)
    drive.events(2, error)  # the same run: not said again
    (said,) = drive.logs("misconfigured")
    assert said.startswith(f"node: misconfigured container: {line} (the image's entrypoint")
    assert "NODE_KEY_PATH is not set" in said
    assert drive.notices() == ["azwatch: node is misconfigured"]
    # The next run's report of the same error, read after it ended: said for that run.
    drive.events(3, RunStarted("run-2", 2.5))
    drive.events(4, ContainerExited(1, run_id="run-2", seen_at=3.5, last_words=(error,)))
    assert len(drive.logs("misconfigured")) == 2
    assert drive.logs("container_exited")[-1].endswith(f"; last fatal line: {line}")
    drive.head(5, 10_000)
    assert drive.restarts() == []


@pytest.mark.parametrize(
    ("attribute", "code"),
    [("123", 123), ("0", 0), ("", None), ("abc", None), ("-1", None), (None, None)],
)
def test_a_die_events_exit_code_docker_cannot_report_is_unknown(
    attribute: str | None, code: int | None
) -> None:
    assert exit_code(attribute) == code


def test_the_status_page_shows_the_crash_loop_and_the_last_exit() -> None:
    drive = Drive(replace(CONFIG, catch_up_rate=0.0))
    for i, at in enumerate((10, 20, 30), start=1):
        crash(drive, at, run=i)
    snapshot = take(drive.supervisor, now=31, wall=1e9, logs={}, head=HeadView(None, None))
    page = render(snapshot)
    assert '<span class="badge bad">crash loop</span>' in page
    assert (
        '<dt>exits by itself</dt><dd><span class="bad">3</span>, the last with exit code 123: '
        "the node exited non-zero</dd>"
    ) in page
    quiet = render(take(Drive().supervisor, now=31, wall=1e9, logs={}, head=HeadView(None, None)))
    assert "crash loop" not in quiet
    assert "exits by itself" not in quiet
