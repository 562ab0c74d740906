"""Parser behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/logparse.py that the older tests let
survive. Lines go through :func:`parse_line` (always pure Python), so the C scan of
``parse_block`` cannot hide a mutant of the Python parser.
"""

from __future__ import annotations

import pytest

from azwatch.events import (
    BlockImported,
    FatalKind,
    FatalLine,
    LogEvent,
    PeersReported,
    SessionStarted,
)
from azwatch.logparse import (
    LineAssembler,
    clean,
    docker_timestamp_ns,
    node_message,
    parse_block,
    parse_line,
    parse_lines,
    parse_message,
    split_docker_timestamp,
)

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
        pytest.param("2025-01-01T00:00:00+14:00", (NEW_YEAR - 14 * 3600) * NS, id="+1400"),
        pytest.param(
            "2025-01-01T00:00:00-11:15", (NEW_YEAR + 11 * 3600 + 15 * 60) * NS, id="-1115"
        ),
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


# --- the line assembler -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_line", "chunk", "blocks", "cut"),
    [
        # The only line is one character too long: the check must start at the first one.
        pytest.param(4, "abcde\n", ["abcd"], 1, id="single-line-one-over"),
        # A line one over the bound followed by more: the window ends right at the bound.
        pytest.param(4, "abcde\nf\n", ["abcd\nf"], 1, id="one-over-then-short"),
        # A short line, then one a character too long: it is measured from its first character.
        pytest.param(4, "ab\ncdefg\nh\n", ["ab\ncdef\nh"], 1, id="short-then-one-over"),
        pytest.param(4, "abcd\nefgh\n", ["abcd\nefgh"], 0, id="exactly-the-bound"),
        # Cutting keeps the lines of a block apart, spaces and all.
        pytest.param(8, "a b c\n" + "x" * 20 + "\nd e\n", ["a b c\nxxxxxxxx\nd e"], 1, id="spaces"),
        pytest.param(3, "abcd\nefgh\n", ["abc\nefg"], 2, id="two-cut-lines"),
        pytest.param(1, "ab\n\nc\n", ["a\n\nc"], 1, id="bound-of-one"),
    ],
)
def test_feed_blocks_cuts_exactly_the_overlong_lines(
    max_line: int, chunk: str, blocks: list[str], cut: int
) -> None:
    """Lines over the bound are cut to it and counted, one by one; the others are untouched."""
    assembler = LineAssembler(max_line=max_line)
    assert assembler.feed_blocks(chunk) == blocks
    assert assembler.lines_cut == cut
    assert assembler.pending == 0


@pytest.mark.parametrize(
    ("block", "long"),
    [
        pytest.param("", False, id="empty"),
        pytest.param("abcd", False, id="exactly-the-bound"),
        pytest.param("abcde", True, id="one-over"),
        pytest.param("ab\ncd", False, id="two-short-lines"),
        pytest.param("abcd\nef", False, id="bound-then-short"),
        pytest.param("\nabcd", False, id="empty-line-first"),
        pytest.param("abcd\nabcde", True, id="bound-then-one-over"),
        pytest.param("ab\ncdefg\nh", True, id="short-then-one-over"),
    ],
)
def test_the_quick_check_answers_exactly_whether_a_line_is_too_long(block: str, long: bool) -> None:
    """feed_blocks' quick check says exactly whether a line of the block is over the bound.

    A wrong False lets a line past the bound; a wrong True splits and rejoins every burst,
    which is the hot path the check exists to avoid.
    """
    assert LineAssembler(max_line=4)._has_long_line(block) is long


@pytest.mark.parametrize(
    ("held", "chunk", "lines"),
    [
        pytest.param("", "\n", [""], id="one-empty-line"),
        pytest.param("", "\n\n", ["", ""], id="two-empty-lines"),
        pytest.param("abc", "\n\n", ["abc", ""], id="held-line-then-empty-line"),
        pytest.param("abc", "\nx\n", ["abc", "x"], id="held-line-then-line"),
        pytest.param("abc", "\n", ["abc"], id="held-line-only"),
    ],
)
def test_empty_lines_are_lines(held: str, chunk: str, lines: list[str]) -> None:
    """Every newline completes a line, an empty one included."""
    assembler = LineAssembler()
    assert assembler.feed(held) == []
    assert assembler.feed(chunk) == lines


def test_a_held_line_of_exactly_the_bound_is_not_cut() -> None:
    """A partial line that fills the bound exactly is whole when its newline comes."""
    assembler = LineAssembler(max_line=4)
    assert assembler.feed("abcd") == []
    assert assembler.feed("\n") == ["abcd"]
    assert assembler.lines_cut == 0


def test_a_line_held_over_many_chunks_is_bounded_by_all_of_them() -> None:
    """The bound counts every held piece of a line, not only the latest chunk."""
    assembler = LineAssembler(max_line=10)
    for piece in ("abcd", "efgh", "ijkl"):
        assert assembler.feed(piece) == []
    assert assembler.pending == 10
    assert assembler.feed("\n") == ["abcdefghij"]
    assert assembler.lines_cut == 1


def test_every_cut_line_is_counted() -> None:
    """Cut lines add up, whether held across chunks or complete in one."""
    assembler = LineAssembler(max_line=3)
    assembler.feed("abcdef")
    assembler.feed("\n")
    assembler.feed("ghijkl")
    assert assembler.flush() == "ghi"
    assembler.feed("mnopqr\nstuvwx\n")
    assert assembler.lines_cut == 4


def test_untimestamped_streams_keep_digits_after_a_held_line() -> None:
    """Only a timestamped assembler strips a timestamp from a continuation piece."""
    piece = "2026-11-28T17:07:47.562796646Z rest\n"
    plain = LineAssembler()
    plain.feed("abc")
    assert plain.feed(piece) == ["abc2026-11-28T17:07:47.562796646Z rest"]
    stamped = LineAssembler(timestamped=True)
    stamped.feed("abc")
    assert stamped.feed(piece) == ["abcrest"]


# --- prefixes and folding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        pytest.param("a\rb\r", "ab", id="carriage-returns-inside"),
        pytest.param("\r\x1b[32mok\x1b[0m  \r\n", "ok", id="colour-and-crlf"),
        pytest.param("plain", "plain", id="untouched"),
    ],
)
def test_clean_removes_every_carriage_return(raw: str, cleaned: str) -> None:
    """Every `\\r` goes, not only a trailing one."""
    assert clean(raw) == cleaned


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        pytest.param(
            "2025-03-21T13:41:47Z ", ("2025-03-21T13:41:47Z", ""), id="shortest-with-empty-rest"
        ),
        pytest.param("2025-03-21T13:41:47Z", (None, "2025-03-21T13:41:47Z"), id="no-space"),
        pytest.param(
            "2025-03-21T13:41:47.1-05:00 x", ("2025-03-21T13:41:47.1-05:00", "x"), id="offset"
        ),
    ],
)
def test_split_docker_timestamp_edges(line: str, parts: tuple[str | None, str]) -> None:
    """The shortest timestamped line (timestamp and its space) still splits."""
    assert split_docker_timestamp(line) == parts


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("2025-10-15 16:01:50 A", "A", id="plain-one-character"),
        pytest.param("2025-10-15 16:01:50 ", None, id="plain-nothing"),
        pytest.param(
            "2025-03-21 13:15:14.121 Running session 7.", "Running session 7.", id="no-level"
        ),
        pytest.param("2025-03-21 13:15:14.121  INFO main x: y: z", "y: z", id="first-colon"),
        pytest.param("2025-03-21 13:15:14.121", None, id="no-space-after-fraction"),
    ],
)
def test_node_message_edges(line: str, message: str | None) -> None:
    """The message starts right after the prefix, whichever prefix it is."""
    assert node_message(line) == message


ODD_IMPORT = "✨ Imported #5 (0x1)"


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("2025-03-21 13:15:14. " + ODD_IMPORT, id="empty-fraction"),
        pytest.param(
            "2025-03-21 13: 5:14.121  INFO main x: " + ODD_IMPORT, id="colon-space-in-time"
        ),
        pytest.param(
            "2025-03-21 13:15:14.12:  INFO main x: " + ODD_IMPORT, id="colon-ends-fraction"
        ),
        pytest.param("2025-03-21 13:15:14.121  INFO: " + ODD_IMPORT, id="colon-after-level"),
    ],
)
def test_odd_prefixes_are_read_by_position_like_the_c_scan(line: str) -> None:
    """Lines that pass the prefix's cheap punctuation checks are cut by position.

    azwatch/_speedups.c cuts them the same way, so parse_block gives the same events whether
    a line is decided in C or handed to parse_line (without the extension both are Python).
    """
    assert parse_line(line) == BlockImported(5)
    assert parse_block(line) == [BlockImported(5)]


def test_a_fraction_without_level_still_carries_the_signal() -> None:
    """A detailed timestamp without a level column is read as the plain prefix."""
    assert parse_line("2025-03-21 13:15:14.121 Running session 7.") == SessionStarted(7)


IMPORT = "2025-10-15 16:01:52 ✨ Imported #{} (0x4f57…bfc3)"
SESSION = "2025-10-15 16:01:52 Running session 3."
PEERS = "2025-10-15 16:01:52 Network status report: /x/sync/0 connected peers - 4;"


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        pytest.param(
            [IMPORT.format(0), SESSION],
            [BlockImported(0), SessionStarted(3)],
            id="block-zero-before-an-event",
        ),
        pytest.param(
            [IMPORT.format(0), IMPORT.format(0)], [BlockImported(0)], id="block-zero-folded"
        ),
        pytest.param(
            [IMPORT.format(5), SESSION, PEERS],
            [BlockImported(5), SessionStarted(3), PeersReported(4)],
            id="two-events-after-imports",
        ),
        pytest.param(
            [SESSION, IMPORT.format(2), IMPORT.format(1), PEERS, IMPORT.format(1)],
            [SessionStarted(3), BlockImported(2), PeersReported(4), BlockImported(1)],
            id="runs-fold-apart",
        ),
    ],
)
def test_parse_lines_folds_only_runs_of_imports(lines: list[str], events: list[LogEvent]) -> None:
    """A run of imports becomes its highest block, in place; nothing else is added or moved."""
    assert parse_lines(lines) == events


# --- pinned after the C scan was removed (its differential tests had killed these) ---------


@pytest.mark.parametrize(
    "message",
    [
        "📦 Highest known block: unknown",
        "🎁 Prepared block for proposing soon",
        "🔖 Pre-sealed block, no number",
        "Aleph Node is a node",
    ],
)
def test_a_message_with_a_known_first_character_but_another_text_is_no_event(
    message: str,
) -> None:
    assert parse_message(message) is None


@pytest.mark.parametrize(
    "line",
    [
        "2026-11-28 17-00-00 Aleph Node",  # no colon in the time
        "2026/11-28 17:00:00 Aleph Node",  # no dash in the date
    ],
)
def test_a_prefix_with_the_wrong_punctuation_is_no_prefix(line: str) -> None:
    assert node_message(line) is None
