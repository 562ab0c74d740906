"""Bad input an operator meets, each with a clear line and nothing lost (issue 10).

Pure halves: a watched name that matches no container turns ``/healthz`` unhealthy after a
grace; ``azwatch check`` says "cannot observe" (exit 3) when no reference answers, even in
a cooldown. The live halves are in tests/test_bad_input_docker.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from test_snapshot_http import HEAD, VIEW
from test_supervisor import CONFIG as SUPERVISED
from test_supervisor import Drive, restart_now

from azwatch.commands import EXIT_BLIND, EXIT_OK, EXIT_WOULD_RESTART, CheckResult
from azwatch.config import Config
from azwatch.policy import Facts, Hold, HoldReason, Restart, Rule
from azwatch.restarter import longest_restart
from azwatch.snapshot import LogView, health_problems, missing_grace

MISSING = LogView(waiting="missing", detail="no such container; waiting for it to appear")


@pytest.mark.parametrize(
    ("check_interval", "grace"),
    [(60.0, 120.0), (10.0, 60.0), (1.0, 60.0), (45.0, 90.0)],
)
def test_the_grace_of_a_missing_name_is_a_minute_or_two_check_intervals(
    check_interval: float, grace: float
) -> None:
    assert missing_grace(Config(container_names=("node",), check_interval=check_interval)) == grace


@pytest.mark.parametrize(
    ("missing_age", "label", "unhealthy"),
    [
        (None, None, False),  # the container exists
        (59.0, None, False),  # within the grace: it may be starting
        (61.0, None, True),
        (61.0, "azwatch.enable=true", False),  # found by label, not by name: not misspelled
    ],
    ids=["found", "in-grace", "misspelled", "label-mode"],
)
def test_a_watched_name_with_no_container_is_a_health_problem_after_the_grace(
    missing_age: float | None, label: str | None, unhealthy: bool
) -> None:
    names = ("other",) if label else ("node",)
    config = Config(container_names=names, container_label=label, check_interval=10.0)
    view = replace(VIEW, running=False, log=replace(MISSING, missing_age=missing_age))
    problems = health_problems(config, (view,), HEAD, last_evaluation_age=1.0)
    expected = ["node: no container has this name for 1m01s (is CONTAINER_NAME right?)"]
    assert problems == (expected if unhealthy else [])


FACTS = Facts(None, None, None, None, False, False, None, None, None, 300.0, 10.0)


@pytest.mark.parametrize(
    ("decision", "unreachable", "code"),
    [
        (Hold(HoldReason.COOLDOWN, "10s since run start", FACTS), None, EXIT_OK),
        (Hold(HoldReason.COOLDOWN, "10s since run start", FACTS), "refused", EXIT_BLIND),
        (Hold(HoldReason.HEALTHY, "lag 3", FACTS), "timeout", EXIT_BLIND),
        (Hold(HoldReason.NO_HEAD, "no network head", FACTS), "refused", EXIT_BLIND),
        (Restart(Rule.SEVERE_LAG, "lag 500", FACTS), None, EXIT_WOULD_RESTART),
    ],
    ids=["cooldown", "cooldown-no-reference", "healthy-no-reference", "no-head", "restart"],
)
def test_check_cannot_observe_when_no_reference_answers_even_in_a_cooldown(
    decision: Hold | Restart, unreachable: str | None, code: int
) -> None:
    result = CheckResult("node", decision, unreachable=unreachable)
    assert result.exit_code == code
    if unreachable is not None:
        assert result.describe().startswith(
            f"node: cannot observe: no reference endpoint can be reached ({unreachable})"
        )


def test_a_restart_refused_again_and_again_is_said_in_full_once() -> None:
    """A socket proxy that answers 403 to restart: one error and one notice, then a short
    line per attempt; the watcher keeps deciding (with its back-off) and never crashes."""
    drive = Drive(replace(SUPERVISED, catch_up_rate=0.0, cooldown=10.0, max_cooldown=10.0))
    refused = "Docker answered 403: Forbidden"
    for at in (10.0, 30.0, 50.0):
        restart_now(drive, at)
        drive.done(at + 1, ok=False, detail=refused)
    assert drive.logs("restart_failed") == [
        f"node: restart failed: {refused}; the rules will decide again after the cooldown"
    ]
    assert drive.logs("restart_failed_again") == [
        f"node: restart failed again, as before (2 in a row): {refused}",
        f"node: restart failed again, as before (3 in a row): {refused}",
    ]
    assert drive.notices().count("azwatch: restart of node failed") == 1
    assert drive.supervisor.books["node"].failed_restarts == 3


ROOT = Path(__file__).resolve().parent.parent
#: The longest a stopping azwatch waits for its restart, with the default STOP_TIMEOUT.
_DEFAULTS = Config(container_names=("node",))
LONGEST_RESTART = longest_restart(_DEFAULTS.stop_timeout, _DEFAULTS.docker_timeout)


def test_every_example_gives_azwatch_a_stop_timeout_that_covers_the_longest_restart() -> None:
    """Docker's default 10 s grace would kill azwatch mid-restart (the node still comes back,
    but azwatch would not see how its restart ended)."""
    pages = [ROOT / "README.md", ROOT / "docs" / "migrating.md"]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    runs = re.findall(r"docker run -d\b.*?\n(?:.*\\\n)*.*azwatch\s*$", text, re.M)
    assert len(runs) == 2, runs
    for command in runs:
        (seconds,) = re.findall(r"--stop-timeout (\d+)", command)
        assert int(seconds) > LONGEST_RESTART, command
    compose = (ROOT / "examples" / "docker-compose.yml").read_text(encoding="utf-8")
    service = compose.split("\n  azwatch:\n", 1)[1].split("\nnetworks:", 1)[0]
    (grace,) = re.findall(r"^    stop_grace_period: (\d+)s$", service, re.M)
    assert int(grace) > LONGEST_RESTART
    unit = (ROOT / "examples" / "systemd" / "azwatch.service").read_text(encoding="utf-8")
    (timeout,) = re.findall(r"^TimeoutStopSec=(\d+)s$", unit, re.M)
    assert int(timeout) > LONGEST_RESTART


def test_every_test_the_safety_page_names_exists() -> None:
    """docs/safety.md proves each promise by naming tests: a renamed test must not leave it
    naming nothing."""
    page = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert len(named) >= 30, named
    missing = []
    for path, name in named:
        source = (ROOT / path).read_text(encoding="utf-8")
        if not re.search(rf"^(?:async )?def {name}\(", source, re.M):
            missing.append(f"{path}::{name}")
    assert missing == []
