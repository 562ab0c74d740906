"""Maintenance pauses in the pure supervisor and the rules they share with the CLI.

A pause turns the restarts the rules decide into logged, reported non-restarts until it ends
(by itself, or by a resume); it consumes no cooldown and lives in memory only.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_snapshot_http import HEAD
from test_supervisor import CONFIG, NAME, Drive

from azwatch.control import (
    PAUSE_DEFAULT,
    PAUSE_MAX,
    ControlAccess,
    ControlError,
    clean_reason,
    host_of,
    is_loopback,
    parse_duration,
)
from azwatch.effects import Reported, RestartContainer
from azwatch.events import BlockImported
from azwatch.metrics import registry_for
from azwatch.policy import Restart, Rule
from azwatch.snapshot import take
from azwatch.supervisor import Pause, Resume, Supervisor

LAGGING = replace(CONFIG, catch_up_rate=0.0)  # no catch-up guard: a lag of 500 restarts


def lag_of_500(drive: Drive, at: float) -> list[object]:
    """A severe lag at *at*: what the supervisor answered."""
    drive.events(at - 1, BlockImported(1000))
    return list(drive.head(at, 1500))


def pause(drive: Drive, at: float, seconds: float = 3600, reason: str = "db resync") -> None:
    drive.effects += drive.supervisor.handle(Pause(NAME, at + seconds, reason), at)


def restarts(effects: list[object]) -> list[RestartContainer]:
    return [e for e in effects if isinstance(e, RestartContainer)]


def test_a_paused_container_is_not_restarted_and_azwatch_says_what_it_would_do() -> None:
    drive = Drive(LAGGING)
    pause(drive, 1)
    (paused,) = drive.logs("paused")
    assert paused.startswith("node: paused by the operator for 1h00m00s: db resync;")
    out = lag_of_500(drive, 10)
    assert restarts(out) == []
    (line,) = drive.logs("paused_restart")
    assert line == (
        "node: paused: would restart: severe_lag: lag 500 > BLOCK_LAG_100=100 "
        "(best #1000, head #1500; paused for another 59m51s: db resync)"
    )
    (reported,) = [e for e in out if isinstance(e, Reported)]
    assert reported.paused
    assert isinstance(reported.decision, Restart)
    assert reported.decision.rule is Rule.SEVERE_LAG
    book = drive.supervisor.books[NAME]
    # Nothing was consumed: no restart counted, no cooldown started, no back-off step.
    assert (book.state.restarts, book.state.unhelped_restarts, book.state.restart_at) == (
        0,
        0,
        None,
    )
    assert book.restarts_by_rule == {}
    assert book.last_restart_at is None
    assert book.restart_log.records() == ()


def test_the_would_restart_line_comes_once_per_check_interval_while_it_holds() -> None:
    drive = Drive(LAGGING)
    pause(drive, 1)
    for at in range(10, 10 + 2 * int(CONFIG.check_interval), 5):
        lag_of_500(drive, at)
    assert len(drive.logs("paused_restart")) == 2  # at 10 s and 70 s (CHECK_INTERVAL 60 s)
    assert drive.restarts() == []


def test_a_resume_lets_the_restart_happen_at_once_since_no_cooldown_was_consumed() -> None:
    drive = Drive(LAGGING)
    pause(drive, 1)
    lag_of_500(drive, 10)
    out = drive.supervisor.handle(Resume(NAME), 20)
    drive.effects += out
    (resumed,) = drive.logs("resumed", out)
    assert resumed == "node: resumed by the operator after 19s; restarts allowed again"
    out = drive.tick(20)
    (restart,) = restarts(out)
    assert restart.decision.rule is Rule.SEVERE_LAG
    assert drive.supervisor.books[NAME].state.restarts == 1


def test_a_pause_ends_by_itself_when_its_time_is_up() -> None:
    drive = Drive(LAGGING)
    pause(drive, 1, seconds=100)
    for at in range(10, 101, 10):
        lag_of_500(drive, at)
    assert drive.supervisor.next_wake() <= 101
    assert drive.restarts() == []
    out = drive.tick(101)
    (ended,) = drive.logs("pause_ended", out)
    assert ended == "node: pause ended: its 1m40s are up; restarts allowed again"
    assert drive.supervisor.books[NAME].pause is None
    (restart,) = restarts(out)  # decided in the same step, as soon as the pause ended
    assert restart.decision.rule is Rule.SEVERE_LAG
    titles = drive.notices()
    assert titles == ["azwatch: node paused for 1m40s", "azwatch: pause of node ended"]


def test_a_new_pause_replaces_the_old_one_and_none_lasts_more_than_a_day() -> None:
    drive = Drive(LAGGING)
    pause(drive, 0, seconds=60)
    pause(drive, 10, seconds=10 * 86400, reason="longer")
    book = drive.supervisor.books[NAME]
    assert book.pause is not None
    assert (book.pause.since, book.pause.until, book.pause.reason) == (10, 10 + PAUSE_MAX, "longer")


def test_pause_and_resume_of_an_unknown_container_change_nothing_and_say_so() -> None:
    supervisor = Supervisor(CONFIG)
    supervisor.watch(NAME, 0)
    out = supervisor.handle(Pause("other", 100, ""), 1)
    out += supervisor.handle(Resume("other"), 2)
    assert [e.message for e in out if hasattr(e, "message")] == [
        "other: not watched; pause ignored",
        "other: not watched; resume ignored",
    ]
    assert supervisor.books[NAME].pause is None


def test_resume_without_a_pause_says_so() -> None:
    drive = Drive()
    out = drive.supervisor.handle(Resume(NAME), 1)
    assert drive.logs("resumed", out) == ["node: resume: was not paused"]


def test_a_dry_run_pause_still_only_logs() -> None:
    drive = Drive(replace(LAGGING, dry_run=True))
    pause(drive, 1)
    lag_of_500(drive, 10)
    assert drive.restarts() == []
    assert drive.logs("restart") == []
    assert len(drive.logs("paused_restart")) == 1


def test_the_snapshot_metrics_and_status_show_the_pause() -> None:
    drive = Drive(LAGGING)
    pause(drive, 1, reason="upgrade")
    lag_of_500(drive, 10)
    snapshot = take(drive.supervisor, now=10.0, wall=1_700_000_000.0, logs={}, head=HEAD)
    view = snapshot.container(NAME)
    assert view is not None
    assert view.pause is not None
    assert (view.pause.until, view.pause.left, view.pause.reason) == (
        1_700_000_000.0 + 3591,
        3591,
        "upgrade",
    )
    assert view.decision is not None
    assert (view.decision.action, view.decision.why) == ("paused", "severe_lag")
    registry = registry_for(lambda: snapshot)
    assert registry.get_sample_value("azwatch_paused", {"container": NAME}) == 1.0
    # Once its time is up the views say unpaused at once, before the supervisor's next tick.
    later = take(drive.supervisor, now=3602.0, wall=1_700_003_592.0, logs={}, head=HEAD)
    assert later.containers[0].pause is None
    assert registry_for(lambda: later).get_sample_value("azwatch_paused", {"container": NAME}) == 0


def test_a_pause_does_not_survive_a_restart_of_azwatch() -> None:
    """Pauses live in memory: a new supervisor (a restarted azwatch) starts unpaused."""
    drive = Drive(LAGGING)
    pause(drive, 1)
    assert drive.supervisor.books[NAME].pause is not None
    again = Drive(LAGGING)  # the same container, watched by a new Supervisor
    assert again.supervisor.books[NAME].pause is None
    (restart,) = restarts(lag_of_500(again, 10))
    assert restart.name == NAME


# --- durations, reasons, who may ask ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (None, PAUSE_DEFAULT),
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 2H ", 7200),
        ("600", 600),
        (600, 600),
        ("24h", 86400),
    ],
)
def test_durations(text: str | int | None, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("2d", "pause duration '2d': expected a duration such as 90s, 30m, 2h or 1h30m"),
        ("abc", "pause duration 'abc': expected a duration such as 90s, 30m, 2h or 1h30m"),
        ("", "pause duration '': expected a duration such as 90s, 30m, 2h or 1h30m"),
        ("-5m", "pause duration '-5m': expected a duration such as 90s, 30m, 2h or 1h30m"),
        ("0s", "pause duration '0s': expected more than 0s"),
        ("25h", "pause duration '25h': at most 24h"),
        ("24h1s", "pause duration '24h1s': at most 24h"),
        ("1h1h", "pause duration '1h1h': each unit at most once"),
        (True, "pause duration True: expected a duration such as 90s, 30m, 2h or 1h30m"),
    ],
)
def test_a_bad_duration_is_a_clear_error(text: str, said: str) -> None:
    with pytest.raises(ControlError) as caught:
        parse_duration(text)
    assert str(caught.value) == said


def test_reasons_are_one_line_and_bounded() -> None:
    assert clean_reason(None) == ""
    assert clean_reason("  db\nresync\t now ") == "db resync now"
    with pytest.raises(ControlError, match="at most 200 characters"):
        clean_reason("x" * 201)
    with pytest.raises(ControlError, match="expected text"):
        clean_reason(5)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
        ("node.example", False),
        ("localhost.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_host_of_a_host_header() -> None:
    assert host_of("127.0.0.1:9616") == "127.0.0.1"
    assert host_of("[::1]:9616") == "::1"
    assert host_of("localhost") == "localhost"


TOKEN = "t0ken-t0ken-t0ken-0123"


@pytest.mark.parametrize(
    ("http_host", "token", "authorization", "host", "status"),
    [
        # Loopback without a token: open to requests that name the loopback.
        ("127.0.0.1", None, None, "127.0.0.1:9616", None),
        ("127.0.0.1", None, None, "localhost:9616", None),
        ("127.0.0.1", None, None, "evil.example:9616", 403),  # DNS rebinding
        ("127.0.0.1", None, None, None, 403),
        # Not loopback: a token is required; without one configured, control is off.
        ("0.0.0.0", None, f"Bearer {TOKEN}", "10.0.0.2:9616", 403),
        ("0.0.0.0", TOKEN, None, "10.0.0.2:9616", 401),
        ("0.0.0.0", TOKEN, "Bearer wrong-token-0123456789", "10.0.0.2:9616", 401),
        ("0.0.0.0", TOKEN, f"Basic {TOKEN}", "10.0.0.2:9616", 401),
        ("0.0.0.0", TOKEN, f"Bearer {TOKEN}", "10.0.0.2:9616", None),
        ("0.0.0.0", TOKEN, f"bearer  {TOKEN} ", "anything", None),
        # A token set on loopback is required there too.
        ("127.0.0.1", TOKEN, None, "127.0.0.1:9616", 401),
        ("127.0.0.1", TOKEN, f"Bearer {TOKEN}", "127.0.0.1:9616", None),
    ],
)
def test_who_may_pause(
    http_host: str, token: str | None, authorization: str | None, host: str | None, status: int
) -> None:
    refusal = ControlAccess(http_host, token).refusal(authorization, host)
    assert (refusal.status if refusal else None) == status
    if refusal is not None:
        assert TOKEN not in refusal.message


def test_the_access_rule_never_shows_the_token() -> None:
    assert TOKEN not in repr(ControlAccess("0.0.0.0", TOKEN))
