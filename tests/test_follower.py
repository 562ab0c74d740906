"""The follower's frame decoding, without a container.

FrameReader reads a real HTTP response from an aiohttp server on 127.0.0.1 that sends
Docker's multiplexed frames in awkward pieces. Which lines are new is the cursor's business:
tests/test_logcursor.py.
"""

from __future__ import annotations

import struct

import aiohttp
import anyio
from aiohttp import web
from loopback import start_on_loopback, stop

from azwatch.follower import FrameReader


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
