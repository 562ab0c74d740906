"""The log parser and the line assembler, against literal aleph-node lines."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from azwatch.events import (
    BlockImported,
    BlockPrepared,
    BlockPreSealed,
    EntrypointError,
    FatalKind,
    FatalLine,
    HighestKnownBlock,
    LogEvent,
    MajorSyncChanged,
    NodeBanner,
    PeersReported,
    SessionStarted,
    SyncStatus,
)
from azwatch.logparse import (
    LineAssembler,
    clean,
    docker_timestamp_ns,
    node_message,
    parse_block,
    parse_line,
    parse_lines,
    split_docker_timestamp,
)

# Lines copied from the reference transcripts (detailed docker prefix, 4 trailing spaces) and
# from the real 15.2.0 journal (plain prefix).
DETAILED = "2025-03-21 13:41:47.205  INFO tokio-runtime-worker "

PARSED: list[tuple[str, LogEvent | None]] = [
    (
        DETAILED + "substrate: ✨ Imported #105499808 (0x6e33…ff69)    ",
        BlockImported(105499808),
    ),
    ("2025-10-15 16:01:52 ✨ Imported #123479412 (0x4f57…bfc3)", BlockImported(123479412)),
    (
        DETAILED + "substrate: 🏆 Imported #6547 (0x1a2b…3c4d → 0x5e6f…7a8b)    ",
        BlockImported(6547),
    ),
    (DETAILED + "substrate: 🆕 Imported #6548 (0x5e6f…7a8b)    ", BlockImported(6548)),
    (
        DETAILED + "aleph-block-sync: Imported: #105499814 (0x3a3b…3acb), finalized: "
        "#105499812 (0xeb46…c8e1), favourite: #105499814 (0x3a3b…3acb).    ",
        SyncStatus(105499814, 105499812, 105499814),
    ),
    (
        "2025-10-15 15:58:03 Imported: #123479196 (0xff21…96ba), finalized: #123479194 "
        "(0xda3b…efb8), favourite: #123479196 (0xff21…96ba).",
        SyncStatus(123479196, 123479194, 123479196),
    ),
    ("2025-10-15 16:01:50 📦 Highest known block at #123479411", HighestKnownBlock(123479411)),
    (
        "2025-03-21 13:15:14.100  INFO                 main sc_service::builder: "
        "📦 Highest known block at #105490944    ",
        HighestKnownBlock(105490944),
    ),
    (
        "2025-03-21 13:15:14.121  INFO tokio-runtime-worker aleph-block-sync: "
        "Switched to major sync state.    ",
        MajorSyncChanged(active=True),
    ),
    (
        "2025-03-21 13:15:55.640  INFO tokio-runtime-worker aleph-block-sync: "
        "No longer in major sync state.    ",
        MajorSyncChanged(active=False),
    ),
    ("2025-10-15 16:01:50 Switched to major sync state.", MajorSyncChanged(active=True)),
    (
        "2025-03-21 13:56:40.608  INFO tokio-runtime-worker aleph-party: "
        "Running session 117223.    ",
        SessionStarted(117223),
    ),
    ("2025-10-15 16:01:50 Running session 137199.", SessionStarted(137199)),
    (
        "2025-03-21 13:56:41.005  INFO tokio-runtime-worker sc_basic_authorship::basic_authorship: "
        "🎁 Prepared block for proposing at 105500702 (3 ms) [hash: 0x0e8f793241876a4b22ff069350e8c"
        "dbf4ab88e8eb0cee55669775ba3612e4221; parent_hash: 0xf335…0565; extrinsics (1): "
        "[0x9540…df7e]    ",
        BlockPrepared(105500702),
    ),
    (
        "2025-03-21 13:56:41.006  INFO tokio-runtime-worker aura: 🔖 Pre-sealed block for proposal "
        "at 105500702. Hash now 0x04750174add44e88da284983dc0891f54bad752a25c9fdfc3dbfdfcf4a59e587,"
        " previously 0x0e8f793241876a4b22ff069350e8cdbf4ab88e8eb0cee55669775ba3612e4221.    ",
        BlockPreSealed(105500702),
    ),
    (
        "2025-03-21 13:41:53.931  INFO tokio-runtime-worker aleph-network: Network status report: "
        "/0x7025…344e/sync/0 connected peers - 26;     ",
        PeersReported(26, "0x7025…344e"),
    ),
    (
        "2025-03-21 14:05:13.931  INFO tokio-runtime-worker aleph-network: Network status report: "
        "/0x7025…344e/sync/0 connected peers - 0;     ",
        PeersReported(0, "0x7025…344e"),
    ),
    # The /auth/0 report counts validator-network peers, not sync peers.
    (
        "2025-03-21 13:41:53.932  INFO tokio-runtime-worker aleph-network: Network status report: "
        "/0x7025…344e/auth/0 connected peers - 26;     ",
        None,
    ),
    (
        "2025-03-21 13:15:14.100  INFO                 main sc_cli::runner: Aleph Node    ",
        NodeBanner(),
    ),
    ("2025-10-15 16:01:50 Aleph Node", NodeBanner()),
    (
        "2025-03-21 14:30:00.001 ERROR tokio-runtime-worker sc_service::task_manager: Essential "
        "task `aleph` failed. Shutting down service.    ",
        FatalLine(
            FatalKind.ESSENTIAL_TASK, "Essential task `aleph` failed. Shutting down service."
        ),
    ),
    (
        'Error: Service(Other("Essential task failed."))',
        FatalLine(FatalKind.ERROR_EXIT, 'Error: Service(Other("Essential task failed."))'),
    ),
    (
        "Thread 'tokio-runtime-worker' panicked at 'attempt to add with overflow', src/x.rs:10",
        FatalLine(
            FatalKind.PANIC,
            "Thread 'tokio-runtime-worker' panicked at 'attempt to add with overflow', src/x.rs:10",
        ),
    ),
    # Lines that carry no signal.
    (
        DETAILED + "aleph-party: Running session with AlephBFT version 5, which is current.    ",
        None,
    ),
    (
        "2025-03-21 13:56:41.001  INFO tokio-runtime-worker sc_basic_authorship::basic_authorship: "
        "🙌 Starting consensus session on top of parent 0xf3358f45b4e54b0415dffcb6de8c3758a105a413"
        "35f6df1cb48012d98ad20565    ",
        None,
    ),
    (
        "2025-03-21 14:05:02.417  WARN tokio-runtime-worker telemetry: ❌ Error while dialing "
        "/dns/telemetry.polkadot.io/tcp/443/x-parity-wss/%2Fsubmit%2F: Custom { kind: Other, "
        "error: Timeout }    ",
        None,
    ),
    (
        DETAILED + "sc_informant: ♻️  Reorg on #105499803,0x8b1e…20f4 to #105499804,0x5d2c…e9a7, "
        "common ancestor #105499802,0x1f0b…66d3    ",
        None,
    ),
    ("2025-10-15 16:01:50 ✌️  version 15.2.0-36ed9faa3fd", None),
    ("", None),
    ("hello world", None),
    ("   0: sp_panic_handler::set::{{closure}}", None),
    ("GET /healthz 200", None),
    ("2025-03-21", None),
    ("Aleph Node", None),  # the banner without any prefix is not the node's logger
]


@pytest.mark.parametrize(("line", "expected"), PARSED)
def test_parse_line(line: str, expected: LogEvent | None) -> None:
    """Each literal node line parses to the event it announces, and other lines to None."""
    assert expected == parse_line(line)


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "2025-03-21T13:41:47.205434512Z ",
        "2025-03-21T13:41:47Z ",
        "2025-03-21T13:41:47.2Z ",
        "2025-03-21T13:41:47.205434512+02:00 ",
    ],
)
@pytest.mark.parametrize(
    "decorate",
    [
        pytest.param(lambda s: s, id="plain"),
        pytest.param(lambda s: s + "\r", id="cr"),
        pytest.param(lambda s: s + "\r\n", id="crlf"),
        pytest.param(lambda s: s.rstrip() + " \t  ", id="trailing-space"),
        pytest.param(
            lambda s: (
                "\x1b[2m"
                + s[:23]
                + "\x1b[0m"
                + s[23:29].replace("INFO", "\x1b[32mINFO\x1b[0m")
                + s[29:]
            ),
            id="ansi-prefix",
        ),
    ],
)
def test_prefix_variants(prefix: str, decorate: Callable[[str], str]) -> None:
    """Docker timestamps, colour codes, CR and trailing spaces do not hide the signal."""
    line = decorate(DETAILED + "substrate: ✨ Imported #105499808 (0x6e33…ff69)    ")
    assert BlockImported(105499808) == parse_line(prefix + line)


@pytest.mark.parametrize(
    "line",
    [
        DETAILED + "substrate: ✨ Imported #12x (0x6e33…ff69)",
        DETAILED + "substrate: ✨ Imported #" + "9" * 5000 + " (0x6e33…ff69)",
        DETAILED + "substrate: ✨ Imported # (0x6e33…ff69)",
        DETAILED + "substrate: ✨ Imported #-5 (0x6e33…ff69)",
        DETAILED + "aleph-party: Running session 12",
        DETAILED + "aleph-party: Running session twelve.",
        DETAILED
        + "aleph-block-sync: Imported: #5 (0x1), finalized: #x (0x2), favourite: #5 (0x3).",
        DETAILED
        + "aleph-network: Network status report: /0x7025…344e/sync/0 connected peers - many;",
        DETAILED + "substrate: Switched to major sync state. (not really)",
        DETAILED + "substrate: ✨ Imported #7\ufffd\ufffd (0x6e33…ff69)",
    ],
)
def test_malformed_lines_give_no_event(line: str) -> None:
    """A line that only resembles a signal is not read as one, and never raises."""
    assert parse_line(line) is None


def test_numbers_are_never_taken_from_fatal_lines() -> None:
    """A fatal line mentioning a block number is a FatalLine, not progress."""
    event = parse_line('Error: Service(Client(Backend("block #105499803 unknown")))')
    assert isinstance(event, FatalLine)
    assert event.kind is FatalKind.ERROR_EXIT


def test_thread_padding_and_levels() -> None:
    """Right-aligned thread names and every level column are skipped."""
    for level in (" INFO", " WARN", "ERROR", "DEBUG", "TRACE"):
        prefix = f"2025-03-21 13:15:14.121 {level}                 main "
        line = prefix + "aleph-party: Running session 7.    "
        assert SessionStarted(7) == parse_line(line)


def test_node_message() -> None:
    """The message is what follows the detailed or the plain prefix."""
    assert (
        node_message("2025-03-21 13:15:14.100  INFO main sc_cli::runner: Aleph Node")
        == "Aleph Node"
    )
    assert node_message("2025-10-15 16:01:50 Aleph Node") == "Aleph Node"
    assert node_message("Aleph Node") is None


def test_split_docker_timestamp() -> None:
    """The Docker timestamp is split off; lines without one are returned whole."""
    assert split_docker_timestamp("2026-11-28T16:04:47.505226328Z tick 30") == (
        "2026-11-28T16:04:47.505226328Z",
        "tick 30",
    )
    assert split_docker_timestamp("tick 30") == (None, "tick 30")
    assert split_docker_timestamp("2025-10-15 16:01:50 x") == (None, "2025-10-15 16:01:50 x")


def test_docker_timestamp_ns_orders_trimmed_fractions() -> None:
    """Docker trims trailing zeros; the integer value still orders correctly."""
    shorter = docker_timestamp_ns("2026-11-28T16:04:47.5Z")
    longer = docker_timestamp_ns("2026-11-28T16:04:47.499999999Z")
    assert shorter > longer
    assert shorter - longer == 1
    assert docker_timestamp_ns("2026-11-28T18:04:47+02:00") == docker_timestamp_ns(
        "2026-11-28T16:04:47Z"
    )
    with pytest.raises(ValueError, match="not a Docker timestamp"):
        docker_timestamp_ns("yesterday")


def test_clean() -> None:
    """Colour codes, CR and trailing whitespace are removed; the message is untouched."""
    assert clean("\x1b[2ma\x1b[0m b \r\n") == "a b"


def test_parse_lines_folds_consecutive_imports() -> None:
    """Runs of imports fold into their highest block, keeping other events in order."""
    lines = [
        DETAILED + "substrate: ✨ Imported #5 (0x6e33…ff69)",
        DETAILED + "substrate: ✨ Imported #7 (0x6e33…ff69)",
        DETAILED + "substrate: ✨ Imported #6 (0x6e33…ff69)",
        DETAILED + "aleph-party: Running session 0.",
        "noise",
        DETAILED + "substrate: ✨ Imported #8 (0x6e33…ff69)",
    ]
    assert [BlockImported(7), SessionStarted(0), BlockImported(8)] == parse_lines(lines)


class TestLineAssembler:
    def test_holds_a_partial_line_until_its_newline(self) -> None:
        """A line split across chunks comes out once, whole."""
        assembler = LineAssembler()
        assert assembler.feed("2025-10-15 16:01:50 Imp") == []
        assert assembler.pending == 23
        assert assembler.feed("orted\nnext\npart") == ["2025-10-15 16:01:50 Imported", "next"]
        assert assembler.feed("ial\n") == ["partial"]
        assert assembler.pending == 0

    def test_joins_16k_pieces_and_strips_their_timestamps(self) -> None:
        """Docker's 16 KiB pieces of a long line each carry a timestamp; the line is rejoined."""
        assembler = LineAssembler(timestamped=True)
        ts = "2026-11-28T17:07:47.562796646Z "
        assert assembler.feed(ts + "A" * 16384) == []
        assert assembler.feed(ts + "B" * 16384) == []
        (line,) = assembler.feed(ts + "C" * 7 + "\n")
        assert line == ts + "A" * 16384 + "B" * 16384 + "C" * 7

    def test_cuts_an_overlong_line_without_holding_it(self) -> None:
        """A line over the bound is cut to the bound and counted; the rest is dropped."""
        assembler = LineAssembler(max_line=10)
        assert assembler.feed("0123456789abcdef") == []
        assert assembler.pending <= 10
        assert assembler.feed("x" * 100_000) == []
        assert assembler.pending <= 10
        assert assembler.feed("tail\nok\n") == ["0123456789", "ok"]
        assert assembler.lines_cut == 1

    def test_cuts_an_overlong_line_inside_one_chunk(self) -> None:
        """Complete lines within one chunk are bounded too."""
        assembler = LineAssembler(max_line=4)
        assert assembler.feed("abcdefgh\nef\n") == ["abcd", "ef"]
        assert assembler.lines_cut == 1

    def test_tty_chunks_with_crlf_and_several_lines(self) -> None:
        """TTY chunks carry several CRLF lines; cleaning removes the CR."""
        assembler = LineAssembler()
        lines = assembler.feed("no-newline-tail\r\nx\r\ny\r\nz\r\nerr\r\n")
        assert [clean(line) for line in lines] == ["no-newline-tail", "x", "y", "z", "err"]

    def test_flush_returns_the_partial_line(self) -> None:
        """When the stream ends, the held partial line can be taken."""
        assembler = LineAssembler()
        assembler.feed("half a line")
        assert assembler.flush() == "half a line"
        assert assembler.flush() is None

    def test_rejects_a_non_positive_bound(self) -> None:
        """The bound must be positive."""
        with pytest.raises(ValueError, match="positive"):
            LineAssembler(max_line=0)

    def test_replacement_characters_pass_through(self) -> None:
        """Invalid UTF-8 already replaced by Docker (U+FFFD) is kept, never raises."""
        assembler = LineAssembler()
        assert assembler.feed("bad:\ufffd:end\n") == ["bad:\ufffd:end"]

    def test_blocks_keep_a_burst_whole_and_a_held_line_apart(self) -> None:
        """``feed_blocks`` gives the same lines as ``feed``, a chunk's lines in one string."""
        assembler = LineAssembler()
        assert assembler.feed_blocks("a\nb\nc") == ["a\nb"]
        assert assembler.feed_blocks("c\nd\ne\n") == ["cc", "d\ne"]
        assert assembler.feed_blocks("f\n") == ["f"]
        assert assembler.feed_blocks("g") == []
        assert assembler.feed_blocks("\n") == ["g"]
        assert assembler.feed_blocks("\n\n") == ["\n"]  # two empty lines

    def test_blocks_cut_only_the_overlong_lines(self) -> None:
        """The bound is checked in jumps of its own size: short lines around a long one."""
        assembler = LineAssembler(max_line=8)
        burst = "short\n" + "x" * 20 + "\n" + "12345678\nend\n"
        assert assembler.feed_blocks(burst) == ["short\nxxxxxxxx\n12345678\nend"]
        assert assembler.lines_cut == 1
        assert assembler.feed_blocks("12345678\n" * 3) == ["12345678\n12345678\n12345678"]
        assert assembler.lines_cut == 1


def test_parse_block_is_parse_lines_of_the_lines() -> None:
    """``parse_block`` gives ``parse_lines`` of the block's lines."""
    lines = [line for line, _ in PARSED]
    block = "\n".join(lines)
    assert parse_block(block) == parse_lines(lines)
    # The table opens with four imports: one event, the highest.
    assert parse_block(block)[:2] == [BlockImported(123479412), PARSED[4][1]]


def same_as_parse_lines(block: str) -> None:
    assert parse_block(block) == parse_lines(block.split("\n")), repr(block)


@pytest.mark.parametrize("line", [line for line, _ in PARSED])
def test_each_table_line_alone_and_in_company(line: str) -> None:
    same_as_parse_lines(line)
    imports = "2025-10-15 16:01:52 ✨ Imported #7 (0x4f57…bfc3)"
    same_as_parse_lines("\n".join((imports, line, imports.replace("#7", "#9"))))


def test_the_whole_table_as_one_block() -> None:
    block = "\n".join(line for line, _ in PARSED)
    same_as_parse_lines(block)
    same_as_parse_lines(block + "\n")
    same_as_parse_lines("\n\n" + block.replace("\n", "\r\n"))


def test_a_run_of_imports_in_a_block_folds() -> None:
    lines = [
        f"2025-10-15 16:01:5{i} ✨ Imported #{n} (0x4f57…bfc3)" for i, n in enumerate((5, 9, 7))
    ]
    peers = "2025-10-15 16:01:59 Network status report: /x/sync/0 connected peers - 3;"
    block = "\n".join([*lines, peers, lines[0], "not a node line", lines[2]])
    assert parse_block(block) == [BlockImported(9), PeersReported(3), BlockImported(7)]


def test_a_banner_between_imports_keeps_its_place() -> None:
    block = "2025-10-15 16:01:52 ✨ Imported #7 (0x1)\n2025-10-15 16:01:53 Aleph Node\n"
    assert parse_block(block + block) == [
        BlockImported(7),
        NodeBanner(),
        BlockImported(7),
        NodeBanner(),
    ]


# --- the official image's entrypoint, before the node starts ------------------------------

ENTRYPOINT_LINES = [
    # `set -u` and a variable the script uses bare (NODE_KEY_PATH, CUSTOM_ARGS)
    ("./docker_entrypoint.sh: line 45: NODE_KEY_PATH: unbound variable", "NODE_KEY_PATH"),
    ("/node/docker_entrypoint.sh: line 146: CUSTOM_ARGS: unbound variable", "CUSTOM_ARGS"),
    # `${VAR:?}` without a message, and the image's `${CHAIN:?'Chain should be specified'}`
    ("docker_entrypoint.sh: line 16: CHAIN: parameter null or not set", "CHAIN"),
    ("./docker_entrypoint.sh: line 17: NAME: Name should be specified", "NAME"),
    (
        "./docker_entrypoint.sh: line 121: PUBLIC_VALIDATOR_ADDRESS: Public validator address "
        "should be specified",
        "PUBLIC_VALIDATOR_ADDRESS",
    ),
]


@pytest.mark.parametrize(("line", "variable"), ENTRYPOINT_LINES)
def test_entrypoint_lines_name_the_missing_setting(line: str, variable: str) -> None:
    assert parse_line(line) == EntrypointError(variable, line)
    # As `docker logs -t` shows it, with the trailing space and \r a TTY may add.
    stamped = f"2026-12-01T10:00:00.123456789Z {line} \r"
    assert parse_line(stamped) == EntrypointError(variable, line)
    assert parse_lines([stamped, stamped]) == [EntrypointError(variable, line)] * 2


@pytest.mark.parametrize(
    "line",
    [
        "docker_entrypoint.sh: line 45: unbound variable",  # no variable
        "docker_entrypoint.sh: line x: CHAIN: parameter null or not set",
        "docker_entrypoint.sh: line 16: CHAIN: ",  # no message
        "my_entrypoint.sh: line 16: CHAIN: parameter null or not set",
        "echo docker_entrypoint.sh: line 16: CHAIN: parameter null or not set",
        # a node line that merely mentions it is the node's, and says nothing
        DETAILED + "x: docker_entrypoint.sh: line 16: CHAIN: parameter null or not set",
    ],
)
def test_lines_that_only_look_like_the_entrypoint_give_nothing(line: str) -> None:
    assert parse_line(line) is None
