"""The log cursor: which lines of a (re-)opened container log are new, without Docker.

The tables give Docker's answer to one request and what the cursor lets through; the
properties check that blocks cut anywhere change nothing, and that a run's lines are applied
exactly once however often its log is re-opened, however many lines share a timestamp.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from fakeengine import rfc3339_nano as stamp  # Docker's form: nanoseconds, zeros trimmed
from hypothesis import given
from hypothesis import strategies as st

from azwatch.logcursor import EVERY_LINE, LogCursor, resume, split_stamp

#: 2026-11-28T17:00:00Z; the tables count nanoseconds from it.
T = 1_795_885_200_000_000_000

Line = tuple[int, str] | str  # (nanoseconds after T, text), or a line without a timestamp


def raw(line: Line) -> str:
    """The line as Docker sends it with ``timestamps=True``."""
    return line if isinstance(line, str) else f"{stamp(T + line[0])} {line[1]}"


def text(line: str) -> str:
    return split_stamp(line)[1]


def fresh_texts(cursor: LogCursor, lines: list[Line]) -> tuple[list[str], LogCursor]:
    """What *cursor* lets through of *lines* sent as one block, without the timestamps."""
    block, after = cursor.fresh_block("\n".join(raw(line) for line in lines))
    return ([] if block is None else [text(line) for line in block.split("\n")]), after


def mid_run(last: int, at_last: int) -> LogCursor:
    """The cursor of a run read up to T+*last*, re-opened."""
    return LogCursor("run", T + last, at_last).reopened()


def test_a_run_starts_at_its_floor() -> None:
    """The first request of a run asks from the previous run's end; without one, from the
    start of the log."""
    assert LogCursor.start("run", T).since_ns == T
    assert LogCursor.start("run", None).since_ns is None
    assert LogCursor.start("run", T).at_last == EVERY_LINE


def test_resume_keeps_the_same_run_and_starts_another() -> None:
    """Re-opening the run read before keeps its place; another run starts at its floor."""
    cursor = LogCursor("run", T + 5, 2, live=True)
    assert resume(cursor, "run", T) == LogCursor("run", T + 5, 2, redelivered=2)
    assert resume(cursor, "next", T + 7) == LogCursor.start("next", T + 7)
    assert resume(None, "run", None) == LogCursor.start("run", None)
    assert resume(cursor, "run", T).since_ns == T + 5


@pytest.mark.parametrize(
    ("cursor", "sent", "fresh", "last", "at_last"),
    [
        pytest.param(
            mid_run(5, 1),
            [(5, "a"), (6, "b"), (7, "c")],
            ["b", "c"],
            7,
            1,
            id="resume-mid-run",
        ),
        pytest.param(
            mid_run(5, 1),
            [(5, "a")],
            [],
            5,
            1,
            id="nothing-new",
        ),
        pytest.param(
            mid_run(5, 2),
            [(4, "old"), (5, "a"), (5, "b"), (5, "c"), (6, "d")],
            ["c", "d"],
            6,
            1,
            id="older-lines-are-skipped-too",
        ),
        pytest.param(
            mid_run(5, 1),
            [(5, "a"), (5, "b"), (5, "c")],
            ["b", "c"],
            5,
            3,
            id="new-lines-at-the-last-timestamp-count-on",
        ),
        pytest.param(
            mid_run(5, 1),
            [(5, "a"), (6, "b"), (4, "late")],
            ["b", "late"],
            4,
            1,
            id="after-a-new-line-everything-passes",
        ),
        pytest.param(
            LogCursor.start("run", T + 5),
            [(3, "previous run"), (5, "previous run's last"), (5, "and its last"), (9, "x")],
            ["x"],
            9,
            1,
            id="new-run-above-its-floor",
        ),
        pytest.param(
            LogCursor.start("run", T + 5),
            [(5, "previous run's last")],
            [],
            5,
            EVERY_LINE,
            id="new-run-nothing-yet",
        ),
        pytest.param(
            LogCursor.start("run", None),
            [(0, "a"), (0, "b")],
            ["a", "b"],
            0,
            2,
            id="first-run-everything",
        ),
        pytest.param(
            mid_run(5, 1),
            ["no stamp", (5, "a"), "k", (6, "b"), "tail"],
            ["no stamp", "k", "b", "tail"],
            6,
            1,
            id="no-timestamp-while-re-delivering",
        ),
        pytest.param(
            LogCursor("run", T + 7, 1, live=True),
            [(8, "i"), (8, "j"), "k"],
            ["i", "j", "k"],
            8,
            2,
            id="no-timestamp-at-the-end-of-a-live-block",
        ),
        pytest.param(
            LogCursor("run", T + 7, 2, live=True),
            [(7, "h"), "x", (7, "i")],
            ["h", "x", "i"],
            7,
            4,
            id="live-block-at-the-last-timestamp",
        ),
        pytest.param(
            LogCursor("run", T + 7, 1, live=True),
            [(100_000_000, "i"), "2026-11-28T17:00:00.100000000+00:00 j"],
            ["i", "j"],
            100_000_000,
            2,
            id="one-instant-written-two-ways",
        ),
        pytest.param(
            mid_run(5, 1),
            ["2026-11-28T17:00:00.xZ not a stamp", (5, "a")],
            ["2026-11-28T17:00:00.xZ not a stamp"],
            5,
            1,
            id="unparseable-timestamp-passes",
        ),
    ],
)
def test_one_request(
    cursor: LogCursor, sent: list[Line], fresh: list[str], last: int, at_last: int
) -> None:
    """What one request's lines let through, and where the cursor ends."""
    got, after = fresh_texts(cursor, sent)
    assert got == fresh
    assert (after.last_ns - T, after.at_last) == (last, at_last)


@pytest.mark.parametrize("applied", range(5))
@pytest.mark.parametrize("blocks", ["one block", "a block per line"])
def test_re_attach_with_lines_sharing_the_last_timestamp(applied: int, blocks: str) -> None:
    """N=4 lines carry the last timestamp and k were applied: on re-attach Docker sends all
    four again, and exactly the other N-k pass, then what follows them."""
    same = [(5, f"line {i}") for i in range(4)]
    read: list[Line] = [(4, "before"), *same[:applied]]
    cursor = LogCursor.start("run", None)
    for sent in [read] if blocks == "one block" else [[line] for line in read]:
        _, cursor = fresh_texts(cursor, sent)
    assert (cursor.last_ns - T, cursor.at_last) == ((5, applied) if applied else (4, 1))
    got, after = fresh_texts(resume(cursor, "run", None), [(4, "before"), *same, (6, "next")])
    assert got == [t for _, t in same[applied:]] + ["next"]
    assert (after.last_ns - T, after.at_last) == (6, 1)


def test_fresh_lines_gives_times_and_text() -> None:
    """For ``check``: the new lines with their times, the timestamps taken off."""
    cursor = mid_run(5, 1)
    got, after = cursor.fresh_lines([raw((5, "a")), raw((5, "b")), "no stamp"])
    assert got == [(T + 5, "b"), (None, "no stamp")]
    assert after == LogCursor("run", T + 5, 2, live=True)
    assert cursor.fresh_lines([]) == ([], cursor)
    assert cursor.fresh_lines([raw((5, "a"))]) == ([], LogCursor("run", T + 5, 1))


# --- properties ---------------------------------------------------------------------------


def stamped(offsets: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """Lines stamped at T + one of *offsets*, in Docker's form or an equal one."""
    zulu = st.builds(lambda ns, t: f"{stamp(T + ns)} {t}", offsets, st.sampled_from("abc"))
    # The same instant written another way: the cursor compares times, not text.
    padded = st.builds(
        lambda ns, t: f"{stamp(T + ns)[:-1].ljust(29, '0')}+00:00 {t}",
        offsets.filter(lambda ns: ns % 1_000_000_000),
        st.sampled_from("abc"),
    )
    return zulu | padded


# Few distinct times, so that many lines share one; some with trimmed fractions.
OFFSETS = st.sampled_from([0, 10, 100_000_000, 100_000_001, 2_000_000_000])
ANY_LINE = stamped(OFFSETS) | st.sampled_from(["", "no stamp", "2026-11-28T17:00:00.xZ bad"])
CURSORS = st.builds(
    LogCursor,
    st.just("run"),
    st.sampled_from([0, T, T + 10, T + 100_000_000]),
    st.integers(0, 4) | st.just(EVERY_LINE),
    st.integers(0, 4),
    st.booleans(),
)


def in_blocks(lines: list[str], cuts: set[int]) -> list[str]:
    """*lines* as blocks, cut before each index in *cuts*."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(lines)), len(lines)]
    return ["\n".join(lines[a:b]) for a, b in pairwise(bounds)]


def feed(cursor: LogCursor, blocks: list[str]) -> tuple[list[str], LogCursor]:
    got: list[str] = []
    for block in blocks:
        fresh, cursor = cursor.fresh_block(block)
        if fresh is not None:
            got += fresh.split("\n")
    return got, cursor


@given(CURSORS, st.lists(ANY_LINE, min_size=1, max_size=40), st.sets(st.integers(0, 40)))
def test_blocks_cut_anywhere_give_what_one_block_gives(
    cursor: LogCursor, lines: list[str], cuts: set[int]
) -> None:
    """The follower's blocks fall where the network cut the stream: that changes nothing."""
    assert feed(cursor, in_blocks(lines, cuts)) == feed(cursor, ["\n".join(lines)])


@st.composite
def run_logs(draw: st.DrawFn) -> tuple[int, list[tuple[int, str]], list[tuple[int, str]]]:
    """A floor, the previous run's lines (at or before it) and this run's (after it), in
    time order, many sharing a timestamp."""
    floor = T + draw(st.integers(0, 3))

    def lines(low: int, high: int, label: str, most: int) -> list[tuple[int, str]]:
        times = sorted(draw(st.lists(st.integers(low, high), max_size=most)))
        return [(ns, f"{label} {i}") for i, ns in enumerate(times)]

    return floor, lines(T, floor, "previous", 6), lines(floor + 1, floor + 4, "line", 30)


@given(
    run_logs(),
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 40), st.sets(st.integers(0, 40))),
        max_size=8,
    ),
)
def test_every_line_of_a_run_is_applied_once_across_re_attaches(
    log: tuple[int, list[tuple[int, str]], list[tuple[int, str]]],
    requests: list[tuple[int, int, set[int]]],
) -> None:
    """Whenever the log is re-opened, however far each request got before its stream was
    cut, and wherever its blocks were cut: each of the run's lines is applied exactly once,
    and none of the previous run's."""
    floor, previous, run = log
    cursor: LogCursor | None = None
    applied: list[str] = []
    written = 0
    # Each request: lines written since the previous one, how many of its lines arrive
    # before the stream is cut, where its blocks are cut. A last one reads to the end.
    for more, arrive, cuts in [*requests, (len(run), 1 << 30, set())]:
        written = min(len(run), written + more)
        cursor = resume(cursor, "run", floor)
        since = cursor.since_ns
        sent = [
            f"{stamp(ns)} {t}"
            for ns, t in previous + run[:written]
            if since is None or ns >= since  # Docker's `since` is inclusive
        ][:arrive]
        got, cursor = feed(cursor, in_blocks(sent, cuts)) if sent else ([], cursor)
        applied += got
    assert [text(line) for line in applied] == [t for _, t in run]
