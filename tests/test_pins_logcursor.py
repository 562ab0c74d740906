"""Log cursor behaviour pinned by mutation testing (docs/mutation-testing.md).

Each test here fails on at least one mutant of azwatch/logcursor.py that the older tests let
survive: a line at the edge of a block (the first one empty, the last one unstamped, one
with an empty message) that is lost, cut, doubled or miscounted.
"""

from __future__ import annotations

from azwatch.logcursor import LogCursor, split_stamp

#: 2026-11-28T17:00:00Z; the lines count nanoseconds from it.
T = 1_795_885_200_000_000_000
WHOLE_SECOND = "2026-11-28T17:00:00Z"


def raw(ns: int, text: str) -> str:
    """A line as Docker sends it with ``timestamps=True``, stamped T + *ns* (ns < 1 s)."""
    return f"2026-11-28T17:00:00.{ns:09d}Z {text}"


def test_an_empty_line_at_a_whole_second_keeps_its_timestamp() -> None:
    """Docker trims a zero fraction: the shortest stamped line is 21 characters."""
    assert split_stamp(f"{WHOLE_SECOND} ") == (T, "")
    assert split_stamp(f"{WHOLE_SECOND} x") == (T, "x")


def test_an_unstamped_last_line_passes_whole_before_the_first_new_line() -> None:
    cursor = LogCursor("run", T + 5, 1).reopened()
    block, after = cursor.fresh_block(f"{raw(5, 'applied')}\nno stamp")
    assert block == "no stamp"
    assert after == LogCursor("run", T + 5, 1)  # an unstamped line moves nothing
    assert LogCursor.start("run", None).fresh_block("no stamp") == (
        "no stamp",
        LogCursor.start("run", None),
    )


def test_an_empty_first_line_and_the_lines_after_it_pass_once() -> None:
    block = f"\n{raw(1, 'a')}\n{raw(2, 'b')}"
    fresh, after = LogCursor.start("run", None).fresh_block(block)
    assert fresh == block
    assert (after.last_ns, after.at_last, after.live) == (T + 2, 1, True)


def test_a_live_block_after_an_empty_line_moves_the_cursor() -> None:
    live = LogCursor("run", T + 5, 1, live=True)
    fresh, after = live.fresh_block(f"\n{raw(7, 'x')}")
    assert fresh == f"\n{raw(7, 'x')}"
    assert (after.last_ns, after.at_last) == (T + 7, 1)


def test_lines_with_an_empty_message_count_among_those_sharing_a_timestamp() -> None:
    """Three lines at one instant, the middle one empty: a re-attach skips all three."""
    same = [raw(7, "a"), f"{raw(7, '')}", raw(7, "c")]
    _, after = LogCursor("run", T + 5, 1, live=True).fresh_block("\n".join(same))
    assert (after.last_ns, after.at_last) == (T + 7, 3)
    fresh, _ = after.reopened().fresh_block("\n".join([*same, raw(8, "new")]))
    assert fresh == raw(8, "new")


def test_unstamped_lines_with_no_new_line_pass_as_they_came() -> None:
    cursor = LogCursor("run", T + 5, 1).reopened()
    block, _ = cursor.fresh_block(f"first\n{raw(5, 'applied')}\nsecond")
    assert block == "first\nsecond"
