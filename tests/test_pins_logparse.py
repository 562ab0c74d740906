"""Parser behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/logparse.py that the older tests let
survive. Lines go through :func:`parse_line` (always pure Python), so the C scan of
``parse_block`` cannot hide a mutant of the Python parser.
"""

from __future__ import annotations

import pytest

from azwatch.events import FatalKind, FatalLine, LogEvent
from azwatch.logparse import docker_timestamp_ns, parse_line

NS = 1_000_000_000
#: 2025-01-01T00:00:00Z in seconds since the epoch.
NEW_YEAR = 1_735_689_600


@pytest.mark.parametrize(
    ("timestamp", "ns"),
    [
        pytest.param("2025-01-01T00:00:00Z", NEW_YEAR * NS, id="utc"),
        pytest.param("2025-01-01T00:00:00.5Z", NEW_YEAR * NS + NS // 2, id="fraction"),
        pytest.param("2025-01-01T00:00:00.000000001Z", NEW_YEAR * NS + 1, id="nanosecond"),
        pytest.param("2025-01-01T00:00:00.5-05:00", (NEW_YEAR + 5 * 3600) * NS + NS // 2, id="-05"),
        pytest.param("2025-01-01T00:00:00+05:30", (NEW_YEAR - 5 * 3600 - 30 * 60) * NS, id="+0530"),
        pytest.param("2025-01-01T00:00:00-03:45", (NEW_YEAR + 3 * 3600 + 45 * 60) * NS, id="-0345"),
        pytest.param("2025-01-01T00:00:00+00:00", NEW_YEAR * NS, id="+0000"),
        pytest.param("2024-12-31T19:00:00-05:00", NEW_YEAR * NS, id="new-year-in-new-york"),
        pytest.param("2025-03-04T05:06:07Z", (NEW_YEAR + 62 * 86400 + 18367) * NS, id="fields"),
    ],
)
def test_docker_timestamp_ns(timestamp: str, ns: int) -> None:
    """Every field counts, and a zone offset of either sign is subtracted to give UTC."""
    assert docker_timestamp_ns(timestamp) == ns


def test_docker_timestamps_compare_across_zones() -> None:
    """The same instant written in three zones is one integer."""
    instants = {
        docker_timestamp_ns(text)
        for text in (
            "2025-06-30T23:59:59.25Z",
            "2025-06-30T18:59:59.25-05:00",
            "2025-07-01T01:29:59.25+01:30",
        )
    }
    assert len(instants) == 1


@pytest.mark.parametrize(
    "text",
    ["2025-01-01T00:00:00", "2025-01-01 00:00:00Z", "2025-01-01T00:00:00+0500", ""],
)
def test_docker_timestamp_ns_rejects_other_text(text: str) -> None:
    """Text that is not an RFC 3339 timestamp with a zone raises, naming it."""
    with pytest.raises(ValueError, match="not a Docker timestamp") as raised:
        docker_timestamp_ns(text)
    assert repr(text) in str(raised.value)


PANIC = "Thread 'main' panicked at 'called `Option::unwrap()` on a `None` value', src/main.rs:7"
ERROR = 'Error: Service(Client(Backend("database corrupted")))'
ESSENTIAL = "Essential task `aleph` failed. Shutting down service."


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "2025-01-01 12:00:00 " + PANIC, FatalLine(FatalKind.PANIC, PANIC), id="panic-plain"
        ),
        pytest.param(
            "2025-01-01 12:00:00.123 ERROR main sp_panic_handler: " + PANIC,
            FatalLine(FatalKind.PANIC, PANIC),
            id="panic-detailed",
        ),
        pytest.param(
            "2025-01-01T12:00:00.5-05:00 2025-01-01 12:00:00 " + PANIC,
            FatalLine(FatalKind.PANIC, PANIC),
            id="panic-docker-timestamp",
        ),
        pytest.param(
            "2025-01-01 12:00:00 " + ERROR, FatalLine(FatalKind.ERROR_EXIT, ERROR), id="error-plain"
        ),
        pytest.param(
            "2025-01-01 12:00:00.123 ERROR main aleph_node: " + ERROR,
            FatalLine(FatalKind.ERROR_EXIT, ERROR),
            id="error-detailed",
        ),
        pytest.param(
            "2025-01-01 12:00:00 " + ESSENTIAL,
            FatalLine(FatalKind.ESSENTIAL_TASK, ESSENTIAL),
            id="essential-plain",
        ),
        pytest.param(PANIC, FatalLine(FatalKind.PANIC, PANIC), id="panic-unprefixed"),
        pytest.param(ERROR, FatalLine(FatalKind.ERROR_EXIT, ERROR), id="error-unprefixed"),
        # Near misses: the same words without the shape of a fatal line.
        pytest.param("2025-01-01 12:00:00 Thread 'main' is fine", None, id="thread-not-panic"),
        pytest.param("2025-01-01 12:00:00 Thread main panicked at x", None, id="thread-unquoted"),
        pytest.param("2025-01-01 12:00:00 Errors: 3", None, id="errors-plural"),
        pytest.param("2025-01-01 12:00:00 Error:x", None, id="error-without-space"),
        pytest.param("2025-01-01 12:00:00 Essential task aleph failed", None, id="unquoted-task"),
        pytest.param("Thread 'main' is fine", None, id="unprefixed-thread-not-panic"),
        pytest.param("Error:x", None, id="unprefixed-error-without-space"),
        pytest.param("Errors: 3", None, id="unprefixed-errors-plural"),
        pytest.param(ESSENTIAL, None, id="essential-unprefixed"),
    ],
)
def test_fatal_lines_behind_a_node_prefix(line: str, expected: LogEvent | None) -> None:
    """Panics and `Error:` lines are fatal with or without the node's prefix, of their kind."""
    assert parse_line(line) == expected
