"""Properties of the core that must hold for every input, checked with hypothesis."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from azwatch.config import Config
from azwatch.events import (
    BlockImported,
    BlockPrepared,
    BlockPreSealed,
    ContainerStatus,
    Event,
    FatalKind,
    FatalLine,
    HeadSample,
    HeadUnavailable,
    HighestKnownBlock,
    MajorSyncChanged,
    NodeBanner,
    PeersReported,
    RestartFinished,
    RestartIssued,
    RunStarted,
    SessionStarted,
    SyncStatus,
)
from azwatch.logparse import (
    LineAssembler,
    _parsed_ns,
    docker_timestamp_ns,
    parse_line,
    parse_lines,
)
from azwatch.policy import Restart, cooldown_anchor, decide, effective_cooldown
from azwatch.state import NodeState, apply, apply_all, initial_state

CONFIG = Config(
    container_names=("node",),
    cooldown=30,
    max_cooldown=200,
    stall_timeout=20,
    trend_window=40,
    trend_buckets=4,
    rpc_poll_interval=5,
    recovery_period=30,
)

PREFIX = "2025-03-21 13:41:47.205  INFO tokio-runtime-worker "
FRAGMENTS = [
    PREFIX + "substrate: ✨ Imported #",
    PREFIX + "aleph-block-sync: Imported: #",
    "), finalized: #",
    ", favourite: #",
    PREFIX + "aleph-party: Running session ",
    PREFIX + "aleph-block-sync: Switched to major sync state.",
    PREFIX + "aleph-block-sync: No longer in major sync state.",
    PREFIX + "aleph-network: Network status report: /0x7025…344e/sync/0 connected peers - ",
    "2025-10-15 16:01:50 Aleph Node",
    "2026-11-28T16:04:47.505226328Z ",
    "🎁 Prepared block for proposing at ",
    "🔖 Pre-sealed block for proposal at ",
    "Error: ",
    "Thread 'x' panicked at ",
    "\x1b[32m",
    "\r",
    "\ufffd",
    "    ",
    "\n",
]

raw_text = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.integers(min_value=0, max_value=10**30).map(str),
        st.text(max_size=40),
    ),
    max_size=40,
).map("".join)


@given(chunks=st.lists(raw_text, max_size=20))
@settings(max_examples=300, deadline=None)
def test_no_log_text_makes_the_pipeline_raise(chunks: list[str]) -> None:
    """Assemble → parse → apply survives any text, split anywhere."""
    assembler = LineAssembler(max_line=200, timestamped=True)
    state = initial_state(0.0, "r")
    now = 0.0
    for chunk in chunks:
        now += 1.0
        for event in parse_lines(assembler.feed(chunk)):
            state = apply(state, event, now, CONFIG)
        decide(state, now, CONFIG)
        assert assembler.pending <= 200


@given(text=raw_text, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
@settings(max_examples=300, deadline=None)
def test_assembler_output_does_not_depend_on_chunking(text: str, cuts: list[int]) -> None:
    """However the stream is chunked, the same complete lines come out."""
    assembler = LineAssembler()
    bounds = sorted({min(cut, len(text)) for cut in cuts})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    lines = [line for piece in pieces for line in assembler.feed(piece)]
    assert text.split("\n")[:-1] == lines


@given(line=st.text(max_size=300))
@settings(max_examples=500, deadline=None)
def test_parse_line_is_total(line: str) -> None:
    """Every string parses to an event or None, without raising."""
    parse_line(line)


def events_numbered(
    blocks: st.SearchStrategy[int], sessions: st.SearchStrategy[int]
) -> st.SearchStrategy[Event]:
    """Every kind of event, with block and session numbers drawn from the given strategies."""
    return st.one_of(
        blocks.map(BlockImported),
        blocks.map(HighestKnownBlock),
        st.builds(SyncStatus, blocks, blocks, blocks),
        st.booleans().map(MajorSyncChanged),
        sessions.map(SessionStarted),
        blocks.map(BlockPrepared),
        blocks.map(BlockPreSealed),
        st.integers(min_value=0, max_value=100).map(PeersReported),
        st.just(NodeBanner()),
        st.builds(FatalLine, st.sampled_from(FatalKind), st.sampled_from(["Error: a", "Error: b"])),
        blocks.map(HeadSample),
        st.just(HeadUnavailable("timeout")),
        st.builds(ContainerStatus, st.booleans(), st.just("exited")),
        st.builds(RunStarted, st.sampled_from(["a", "b", "c"]), st.floats(0, 500)),
    )


blocks = st.integers(min_value=0, max_value=2**32)
events = events_numbered(blocks, st.integers(min_value=0, max_value=10**6))
timeline = st.lists(
    st.tuples(st.floats(min_value=0, max_value=30, allow_nan=False), events), max_size=120
)


@given(steps=timeline, backoff=st.sampled_from([1.0, 2.0, 3.0]))
@settings(max_examples=400, deadline=None)
def test_never_a_restart_inside_the_cooldown(
    steps: list[tuple[float, Event]], backoff: float
) -> None:
    """Whatever happens, a restart is only ever decided once the effective cooldown is over.

    The watcher's own restarts are fed back as the real watcher does, so consecutive
    restarts are also at least COOLDOWN apart.
    """
    config = replace(CONFIG, backoff_factor=backoff)
    state: NodeState = initial_state(0.0, "a")
    now = 0.0
    last_restart: float | None = None
    for gap, event in steps:
        now += gap
        state = apply(state, event, now, config)
        decision = decide(state, now, config)
        if isinstance(decision, Restart):
            assert now >= cooldown_anchor(state) + effective_cooldown(state, config)
            assert now >= state.run.started_at + config.cooldown
            if last_restart is not None:
                assert now - last_restart >= config.cooldown
            last_restart = now
            for own in (RestartIssued(), RestartFinished(ok=True)):
                state = apply(state, own, now, config)
            assert not isinstance(decide(state, now, config), Restart)


@given(steps=timeline)
@settings(max_examples=300, deadline=None)
def test_unknown_or_stale_head_never_restarts(steps: list[tuple[float, Event]]) -> None:
    """Without a fresh head sample, no sequence of log events leads to a restart."""
    state: NodeState = initial_state(0.0, "a")
    now = 0.0
    for gap, event in steps:
        now += gap
        if isinstance(event, HeadSample):
            continue
        state = apply(state, event, now, CONFIG)
        assert not isinstance(decide(state, now + 1000, CONFIG), Restart)


# Few distinct numbers, so that imports repeat and undercut the best and sessions repeat.
close_events = events_numbered(
    st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=3)
)


@given(
    history=st.lists(st.tuples(st.floats(0, 30), close_events), max_size=30),
    batch=st.lists(close_events, max_size=40),
)
@settings(max_examples=1000, deadline=None)
def test_a_batch_applies_like_its_events_one_at_a_time(
    history: list[tuple[float, Event]], batch: list[Event]
) -> None:
    """``apply_all`` reduces runs of commuting events first; the state must not tell."""
    state: NodeState = initial_state(0.0, "a")
    now = 0.0
    for gap, event in history:
        now += gap
        state = apply(state, event, now, CONFIG)
    now += 1.0
    one_at_a_time = state
    for event in batch:
        one_at_a_time = apply(one_at_a_time, event, now, CONFIG)
    assert apply_all(state, batch, now, CONFIG) == one_at_a_time


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 999_999_999),
    st.integers(0, 9),
)
def test_docker_timestamps_read_by_slicing_equal_their_calendar_time(
    when: datetime, nanos: int, digits: int
) -> None:
    """The daemon's own form, read on the fast path, is the instant it names."""
    fraction = f"{nanos:09d}"[:digits].rstrip("0")  # the daemon trims trailing zeros
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"
    seconds = calendar.timegm(when.timetuple())
    assert docker_timestamp_ns(stamp) == seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


@given(st.integers(0, 29), st.sampled_from("0123456789.:-TZ+ x²٣"), st.booleans())
def test_a_damaged_docker_timestamp_reads_as_the_full_pattern_reads_it(
    position: int, char: str, insert: bool
) -> None:
    """One character changed or added: the fast path and the full pattern agree, value or
    refusal."""
    good = "2026-12-02T04:05:12.123456789Z"
    stamp = good[:position] + char + good[position + (0 if insert else 1) :]

    def read(reader: Callable[[str], int]) -> int | str:
        try:
            return reader(stamp)
        except ValueError:
            return "refused"

    assert read(docker_timestamp_ns) == read(_parsed_ns)
