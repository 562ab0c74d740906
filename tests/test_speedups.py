"""The C line scan gives exactly the events of the pure-Python parser.

``parse_block(block)`` is defined as ``parse_lines(block.split("\\n"))``. With
``azwatch._speedups`` built, the C scan decides most lines itself, so every branch of it is
held to the Python parser here: on the parser's own tables, on lines built to sit just inside
and just outside each pattern, and on arbitrary text. Without the extension these tests skip
(and fail under ``CI=true``, where .ci/run builds it).
"""

from __future__ import annotations

import pytest
from dockerkit import skip_or_fail
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_logparse import PARSED

from azwatch import logparse
from azwatch.events import BlockImported, NodeBanner, PeersReported
from azwatch.logparse import parse_block, parse_lines


@pytest.fixture(autouse=True)
def _needs_the_extension() -> None:
    if not logparse.SCAN_IN_C:
        skip_or_fail("azwatch._speedups is not built (no C compiler when azwatch was installed)")


def same_as_python(block: str) -> None:
    assert parse_block(block) == parse_lines(block.split("\n")), repr(block)


# --- the parser's tables ---------------------------------------------------------------------

TABLE_LINES = [line for line, _ in PARSED]


@pytest.mark.parametrize("line", TABLE_LINES)
def test_each_table_line_alone_and_in_company(line: str) -> None:
    same_as_python(line)
    imports = "2025-10-15 16:01:52 ✨ Imported #7 (0x4f57…bfc3)"
    same_as_python("\n".join((imports, line, imports.replace("#7", "#9"))))


def test_the_whole_table_as_one_block() -> None:
    block = "\n".join(TABLE_LINES)
    same_as_python(block)
    same_as_python(block + "\n")
    same_as_python("\n\n" + block.replace("\n", "\r\n"))


def test_a_run_of_imports_folds_like_parse_lines() -> None:
    lines = [
        f"2025-10-15 16:01:5{i} ✨ Imported #{n} (0x4f57…bfc3)" for i, n in enumerate((5, 9, 7))
    ]
    peers = "2025-10-15 16:01:59 Network status report: /x/sync/0 connected peers - 3;"
    block = "\n".join([*lines, peers, lines[0], "not a node line", lines[2]])
    assert parse_block(block) == [BlockImported(9), PeersReported(3), BlockImported(7)]


# Characters that hold the bytes of "\n", "\r" or ESC without being them: U+0A0A, U+0D0A,
# U+1B0D, U+1F40A (stored 0a f4 01 00), U+10D1B.
LOOKALIKE_BYTES = ["\u0a0a", "\u0d0a", "\u1b0d", "\U0001f40a", "\U00010d1b"]


def test_every_string_width() -> None:
    """Blocks stored 1, 2 and 4 bytes a character (CPython picks by the widest one)."""
    line = "2025-10-15 16:01:52 Running session 12."
    for extra in ("", "é", "…", "✨", "🎁", *LOOKALIKE_BYTES):
        same_as_python(f"{line}\n{extra}\n{line.replace('12', '13')}")
        same_as_python(f"{line}{extra}\n{line.replace('12', '13')} {extra}")
        assert len(parse_block(f"{line}\n{extra}\n{line.replace('12', '13')}")) == 2


def test_a_banner_between_imports_keeps_its_place() -> None:
    block = "2025-10-15 16:01:52 ✨ Imported #7 (0x1)\n2025-10-15 16:01:53 Aleph Node\n"
    assert parse_block(block + block) == [
        BlockImported(7),
        NodeBanner(),
        BlockImported(7),
        NodeBanner(),
    ]


def test_scan_block_checks_its_arguments() -> None:
    from azwatch._speedups import scan_block

    with pytest.raises(TypeError):
        scan_block(b"bytes", logparse._SCANNED_EVENTS)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        scan_block("text", ())


# --- lines built to sit on each side of each pattern -------------------------------------------

# Characters the C code must treat exactly as Python's re and str do.
UNICODE_DIGITS = ["٣", "３", "߁", "𝟙"]  # regex \d (Unicode decimal digits)
NOT_DECIMAL = ["²", "½", "Ⅻ"]  # isdigit() or numeric, but not \d
SPACES = [" ", "\t", "\u00a0", "\u2003", "\x1c", "\x85", "\u3000", "\x0b", "\x0c"]

digits = st.one_of(
    st.integers(min_value=0, max_value=10**20).map(str),
    st.text(alphabet="0123456789", min_size=17, max_size=20),
    st.lists(
        st.one_of(st.sampled_from("0123456789"), st.sampled_from(UNICODE_DIGITS + NOT_DECIMAL)),
        max_size=6,
    ).map("".join),
    st.just(""),
)

docker_stamps = st.one_of(
    st.just(""),
    st.builds(
        "{}25-03-21T13:41:{}{}{}{} ".format,
        st.sampled_from(["20", "٢0", "²0", "x0"]),
        st.sampled_from(["47", "4", "4٣", "ab"]),
        st.one_of(
            st.integers(min_value=0, max_value=11).map(lambda n: "." + "5" * n if n else ""),
            st.sampled_from([".", ".٣", ".12٣"]),
        ),
        st.sampled_from(["Z", "+02:00", "-0200", "+02x00", "+0٣:00", "z", ""]),
        st.sampled_from(["", " ", "x"]),
    ),
)

node_prefixes = st.one_of(
    st.just(""),
    st.just("2025-10-15 16:01:50 "),
    st.just("2025-10-15 16:01:50"),
    st.builds(
        "2025-03-21 13:41:47.{}{}{}{}: ".format,
        st.sampled_from(["205 ", "205", "2 ", "205  "]),
        st.sampled_from([" INFO", " WARN", "ERROR", "DEBUG", "TRACE", "INFO", " info"]),
        st.sampled_from([" tokio-runtime-worker ", "                 main ", " ", ""]),
        st.sampled_from(["substrate", "aleph-block-sync", "a: b", ""]),
    ),
    st.sampled_from(["2025-03-21x13:41:47 ", "2025-03-21 13-41:47 ", "20٣5-03-21 13:41:47 "]),
)

messages = st.one_of(
    st.builds(
        "{}Imported #{}{}".format,
        st.sampled_from(["✨ ", "🏆 ", "🆕 ", "✨", "* "]),
        digits,
        st.sampled_from(["", " (0x6e33…ff69)", "(0x1)", " ", "\t", "x"]),
    ),
    st.builds(
        "Imported: #{} ({}), finalized: #{} ({}), favourite: #{} ({}".format,
        digits,
        st.sampled_from(["0x3a3b…3acb", "", "a(b", "a)b"]),
        digits,
        st.sampled_from(["0xeb46…c8e1", ")"]),
        digits,
        st.sampled_from(["0x3a3b…3acb).", ""]),
    ),
    st.builds("📦 Highest known block at #{}{}".format, digits, st.sampled_from(["", " ", "."])),
    st.builds("Running session {}{}".format, digits, st.sampled_from([".", "", ". ", ".x", ".."])),
    st.builds(
        "🎁 Prepared block for proposing at {}{}".format,
        digits,
        st.sampled_from([" (3 ms)", "", "x"]),
    ),
    st.builds(
        "🔖 Pre-sealed block for proposal at {}{}".format,
        digits,
        st.sampled_from([". Hash", "", " "]),
    ),
    st.builds(
        "Network status report: {}{} connected peers - {}{}".format,
        st.sampled_from(
            [
                "/0x7025…344e/sync/0",
                "/sync/0",
                "//sync/0",
                "/a/auth/0",
                "/a b/sync/0",
                "/a/sync/0/sync/0",
                "x/a/sync/0",
                "/a\u00a0/sync/0",
            ]
        ),
        st.sampled_from(["", "\t"]),
        digits,
        st.sampled_from([";", "", "; ", "x"]),
    ),
    st.sampled_from(
        [
            "Switched to major sync state.",
            "No longer in major sync state.",
            "Switched to major sync state",
            "Aleph Node",
            "Aleph Node!",
            "Essential task `aleph` failed. Shutting down service.",
            'Error: Service(Other("x"))',
            "Thread 'main' panicked at 'boom', src/main.rs:1",
            "Thread 'main' did not panic",
            "💤 Idle (26 peers), best: #105499808",
            "",
        ]
    ),
    st.text(max_size=30),
)

decorations = st.one_of(
    st.just(""),
    st.lists(st.sampled_from(SPACES), max_size=3).map("".join),
    st.sampled_from(["\r", "\x1b[0m", "    \x1b[0m", "x", *LOOKALIKE_BYTES]),
)

built_lines = st.builds("{}{}{}{}".format, docker_stamps, node_prefixes, messages, decorations)


@given(lines=st.lists(built_lines, max_size=12))
@settings(max_examples=3000, deadline=None)
@example(lines=["2025-10-15 16:01:52 ✨ Imported #" + "1" * 18])
@example(lines=["2025-10-15 16:01:52 ✨ Imported #" + "1" * 19])
@example(lines=["2025-10-15 16:01:52 ✨ Imported #12٣ (0x1)"])
@example(lines=["2025-10-15 16:01:52 Running session 5.\u2003"])
@example(lines=["2025-03-21T13:41:47.1234567890Z 2025-10-15 16:01:52 Running session 5."])
@example(lines=["2025-03-21T13:41:47.123456789Z 2025-10-15 16:01:52 Running session 5."])
@example(lines=["٢025-03-21T13:41:47Z 2025-10-15 16:01:52 Running session 5."])
@example(lines=["2025-03-21T13:41:47+02:00 2025-10-15 16:01:52 Running session 5."])
def test_near_misses_of_every_pattern(lines: list[str]) -> None:
    same_as_python("\n".join(lines))


@given(text=st.text(max_size=400))
@settings(max_examples=1000, deadline=None)
def test_arbitrary_text(text: str) -> None:
    same_as_python(text)


@given(
    lines=st.lists(st.one_of(built_lines, st.text(max_size=60)), max_size=30),
    joiner=st.sampled_from(["\n", "\n\n", "\r\n"]),
)
@settings(max_examples=500, deadline=None)
def test_mixed_blocks(lines: list[str], joiner: str) -> None:
    same_as_python(joiner.join(lines))
