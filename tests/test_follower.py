"""The follower's pieces that need no container: frame decoding and line de-duplication.

FrameReader reads a real HTTP response from an aiohttp server on 127.0.0.1 that sends
Docker's multiplexed frames in awkward pieces.
"""

from __future__ import annotations

import struct
from typing import Any

import aiohttp
import anyio
from aiohttp import web
from loopback import start_on_loopback, stop

from azwatch.config import Config
from azwatch.follower import FrameReader, LogFollower, _Cursor
from azwatch.logparse import split_docker_timestamp

STAMP = "2026-11-28T17:00:00.{:09d}Z "


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


async def read_all(pieces: list[bytes], *, tty: bool = False) -> list[tuple[int, str]]:
    """Serve *pieces* as one chunked response and read it with a FrameReader."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
            await anyio.sleep(0.01)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    runner, port = await start_on_loopback(app)
    out: list[tuple[int, str]] = []
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as r,
        ):
            reader = FrameReader(r, tty=tty)
            while (got := await reader.next()) is not None:
                out.extend(got)
    finally:
        await stop(runner)
    return out


async def test_frames_split_anywhere_are_reassembled() -> None:
    """Headers and payloads cut across network reads still give whole frames, in order."""
    data = frame(2, b"first line\n") + frame(1, b"on stdout\n") + frame(2, b"second\n")
    pieces = [data[:3], data[3:15], data[15:16], data[16:]]
    assert await read_all(pieces) == [(2, "first line\n"), (1, "on stdout\n"), (2, "second\n")]


async def test_utf8_is_decoded_per_stream_with_replacement() -> None:
    """A character cut between two frames of a stream is rejoined; a bad byte becomes U+FFFD."""
    euro = "€".encode()
    data = (
        frame(2, b"price " + euro[:1])
        + frame(1, b"other stream\n")
        + frame(2, euro[1:] + b" \xff!\n")
    )
    got = await read_all([data])
    assert "".join(text for kind, text in got if kind == 2) == "price € \ufffd!\n"
    assert [text for kind, text in got if kind == 1] == ["other stream\n"]


async def test_a_frame_cut_by_the_end_of_the_stream_is_dropped() -> None:
    """A truncated last frame (daemon gone mid-frame) ends the stream without garbage."""
    data = frame(2, b"whole\n") + frame(2, b"never finished\n")[:10]
    assert await read_all([data]) == [(2, "whole\n")]


async def test_tty_streams_are_raw_text() -> None:
    """With a TTY there are no frame headers."""
    assert "".join(t for _, t in await read_all([b"a\r\nb", b"\r\n"], tty=True)) == "a\r\nb\r\n"


def follower_at(cursor: _Cursor, *, skip: int, caught_up: bool = False) -> LogFollower:
    follower = LogFollower(
        docker=None,  # type: ignore[arg-type]  # _fresh never talks to Docker
        name="node",
        config=Config(container_names=("node",)),
        emit=_never,
    )
    follower._cursor = cursor
    follower._skip = skip
    follower._caught_up = caught_up
    return follower


async def _never(*args: Any) -> None:
    raise AssertionError("not called")


def line(ns: int, text: str) -> str:
    return STAMP.format(ns) + text


def fresh_lines(follower: LogFollower, lines: list[str]) -> list[str]:
    """What ``_fresh`` passes on from *lines*, each without its Docker timestamp."""
    block = follower._fresh("\n".join(lines))
    return [] if block is None else [split_docker_timestamp(x)[1] for x in block.split("\n")]


def test_re_deliveries_after_a_re_attach_are_skipped_exactly() -> None:
    """`since` is inclusive: lines at the cursor already applied are skipped, new ones kept."""
    base = 1_795_885_200_000_000_000
    follower = follower_at(_Cursor("run", base + 5, 2), skip=2)
    lines = [line(4, "old"), line(5, "a"), line(5, "b"), line(5, "c"), line(6, "d")]
    assert fresh_lines(follower, lines) == ["c", "d"]
    assert follower._cursor == _Cursor("run", base + 6, 1)
    # Later batches are all new, even at the timestamp the previous one ended with.
    assert fresh_lines(follower, [line(6, "e"), line(7, "f"), line(7, "g")]) == ["e", "f", "g"]
    assert follower._cursor == _Cursor("run", base + 7, 2)
    assert fresh_lines(follower, [line(7, "h")]) == ["h"]
    assert follower._cursor == _Cursor("run", base + 7, 3)
    # A line without a stamp at the end does not hide the stamps before it.
    assert fresh_lines(follower, [line(8, "i"), line(8, "j"), "k"]) == ["i", "j", "k"]
    assert follower._cursor == _Cursor("run", base + 8, 2)


def test_a_new_run_skips_every_line_of_the_previous_run() -> None:
    """Lines stamped at or before the previous run's end belong to it."""
    floor = 1_795_885_200_000_000_005
    follower = follower_at(_Cursor("run2", floor, 0), skip=1 << 62)
    lines = [line(3, "previous run"), line(5, "previous run's last"), line(9, "new run")]
    assert fresh_lines(follower, lines) == ["new run"]
    assert fresh_lines(follower, [line(9, "")]) == [""]


def test_lines_without_a_timestamp_are_kept() -> None:
    """A line that cannot be placed in time is applied rather than lost."""
    follower = follower_at(_Cursor("run", 0, 0), skip=0)
    assert fresh_lines(follower, ["no stamp here"]) == ["no stamp here"]
