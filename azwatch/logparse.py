"""Parse aleph-node log output into events, without I/O.

Two pieces, in the order data flows through them:

* :class:`LineAssembler` turns stream chunks (Docker log frames, TTY chunks, file blocks) into
  whole lines: it holds a partial line until its newline, joins the 16 KiB pieces Docker
  splits long lines into, and cuts lines longer than a bound instead of growing without limit.
* :func:`parse_line` turns one line into a :data:`~azwatch.events.LogEvent`, or ``None`` when
  the line carries no signal (most lines, and every line that is not the node's).

Accepted line shapes (see ``docs`` in the README for sources):

* an optional Docker RFC 3339 timestamp in front (``docker logs -t`` / ``timestamps=True``);
* the node's detailed prefix ``2025-03-21 13:15:14.121  INFO tokio-runtime-worker target: ``
  (level right-aligned in five columns, thread name right-aligned to the longest seen) or its
  plain prefix ``2025-10-15 16:01:50 ``;
* ANSI colour codes (``docker run -t``), ``\\r`` and trailing spaces (every line the node
  prints through the ``log`` crate ends with four).

Parsing is on the hot path (hundreds of lines per second while a node catches up), so the
message is located with string slicing and dispatched on its first character; regular
expressions only run on lines that already look like a signal.
"""

from __future__ import annotations

import re
from calendar import timegm
from collections.abc import Iterable
from functools import lru_cache

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

#: Longest line kept, in characters. Longer lines are cut to this and counted.
MAX_LINE = 64 * 1024

# Block numbers are u32 on chain; the bound keeps a garbage line of a million digits from
# reaching int() (which refuses more than 4300 digits).
_NUM = r"(\d{1,18})"

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_DOCKER_TS_RE = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) "
)
_LEVELS = frozenset((" INFO", " WARN", "ERROR", "DEBUG", "TRACE"))

# Message patterns, each with an example of the line it matches (prefix stripped).
# ✨ Imported #105499803 (0x14d8…20da)   |   🏆 Imported #7 (0x1a2b…3c4d → 0x5e6f…7a8b)
_IMPORTED_RE = re.compile(rf"[✨🏆🆕] Imported #{_NUM}(?: |$)")
# Imported: #105499814 (0x3a3b…3acb), finalized: #105499812 (0xeb46…c8e1), favourite: #… (…).
_SYNC_STATUS_RE = re.compile(
    rf"Imported: #{_NUM} \([^)]*\), finalized: #{_NUM} \([^)]*\), favourite: #{_NUM} \("
)
# 📦 Highest known block at #123479411
_HIGHEST_RE = re.compile(rf"📦 Highest known block at #{_NUM}$")
# Running session 117223.
_SESSION_RE = re.compile(rf"Running session {_NUM}\.$")
# 🎁 Prepared block for proposing at 105500702 (3 ms) [hash: 0x0e8f…; parent_hash: …
_PREPARED_RE = re.compile(rf"🎁 Prepared block for proposing at {_NUM} ")
# 🔖 Pre-sealed block for proposal at 105500702. Hash now 0x0475…, previously 0x0e8f….
_PRESEALED_RE = re.compile(rf"🔖 Pre-sealed block for proposal at {_NUM}\.")
# Network status report: /0x7025…344e/sync/0 connected peers - 26;
_PEERS_RE = re.compile(rf"Network status report: /(\S*)/sync/0 connected peers - {_NUM};")
# The protocol is "/{genesis}/sync/0", the genesis hash in its short Display form.
_GENESIS_SHORT_RE = re.compile(r"0x[0-9a-f]{4}…[0-9a-f]{4}")
# Essential task `aleph` failed. Shutting down service.
_ESSENTIAL_RE = re.compile(r"Essential task `[^`]*` failed")
# Thread 'tokio-runtime-worker' panicked at '<message>', <file>:<line>
_PANIC_RE = re.compile(r"Thread '[^']*' panicked at ")

# bash under `set -u` / `${VAR:?msg}` in the official image's entrypoint, before the node runs:
# ./docker_entrypoint.sh: line 45: NODE_KEY_PATH: unbound variable
# /node/docker_entrypoint.sh: line 16: CHAIN: Chain should be specified
_ENTRYPOINT = "docker_entrypoint.sh: line "
_ENTRYPOINT_RE = re.compile(
    r"(?:\S*/)?docker_entrypoint\.sh: line \d{1,9}: ([A-Za-z_][A-Za-z0-9_]*): \S"
)

_MAJOR_SYNC_ON = "Switched to major sync state."
_MAJOR_SYNC_OFF = "No longer in major sync state."
_BANNER = "Aleph Node"


def clean(raw: str) -> str:
    """Remove ANSI colour codes, carriage returns and trailing whitespace."""
    if "\x1b" in raw:
        raw = _ANSI_RE.sub("", raw)
    if "\r" in raw:
        raw = raw.replace("\r", "")
    return raw.rstrip()


def split_docker_timestamp(line: str) -> tuple[str | None, str]:
    """Split ``2025-03-21T13:15:14.121434512Z rest`` into the timestamp and ``rest``.

    Lines without a Docker timestamp come back as ``(None, line)``.
    """
    if len(line) > 20 and line[10] == "T" and line[4] == "-":
        match = _DOCKER_TS_RE.match(line)
        if match is not None:
            end = match.end()
            return line[: end - 1], line[end:]
    return None, line


def docker_timestamp_ns(timestamp: str) -> int:
    """Nanoseconds since the epoch of a Docker RFC 3339 timestamp.

    Docker trims trailing zeros from the fraction, so timestamps cannot be compared as
    strings; compare these integers instead.

    Raises:
        ValueError: if *timestamp* is not an RFC 3339 timestamp.
    """
    # The daemon's own form (UTC, "2026-12-02T04:05:12.123456789Z") is read by slicing, with
    # the minute's epoch cached: a live stream reads one stamp a line, all in a few minutes.
    end, seconds, fraction = timestamp[19:20], timestamp[17:19], timestamp[20:-1]
    if (
        (end == "Z" and len(timestamp) == 20)
        or (end == "." and timestamp[-1] == "Z" and 0 < len(fraction) <= 9 and _digits(fraction))
    ) and _digits(seconds):
        return (
            _minute_ns(timestamp[:17]) + int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0"))
        )
    return _parsed_ns(timestamp)


def _digits(text: str) -> bool:
    """*text* is ASCII digits only (``str.isdigit`` alone also takes "²" and "٣")."""
    return text.isascii() and text.isdigit()


@lru_cache(maxsize=8)
def _minute_ns(minute: str) -> int:
    """Nanoseconds since the epoch of *minute* ("YYYY-MM-DDTHH:MM:"), read in full."""
    return _parsed_ns(minute + "00Z")


def _parsed_ns(timestamp: str) -> int:
    match = _DOCKER_TS_RE.match(timestamp + " ")
    if match is None:
        msg = f"not a Docker timestamp: {timestamp!r}"
        raise ValueError(msg)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def node_message(line: str) -> str | None:
    """The message part of a node log line (prefix removed), or ``None`` if it has no prefix.

    *line* must already be cleaned and carry no Docker timestamp.
    """
    # "YYYY-MM-DD HH:MM:SS" is 19 characters; check its fixed punctuation cheaply.
    if len(line) < 21 or line[4] != "-" or line[10] != " " or line[13] != ":":
        return None
    if line[19] == " ":
        return line[20:]
    if line[19] != ".":
        return None
    space = line.find(" ", 20)
    if space < 0:
        return None
    # Detailed output: a level in five columns (" INFO"), the thread, then "target: ".
    if line[space + 1 : space + 6] in _LEVELS:
        colon = line.find(": ", space + 6)
        if colon >= 0:
            return line[colon + 2 :]
    return line[space + 1 :]


def parse_message(message: str) -> LogEvent | None:
    """The event a node message announces, or ``None`` if it announces nothing we use."""
    if not message:
        return None
    parser = _BY_FIRST_CHAR.get(message[0])
    return parser(message) if parser is not None else None


def parse_line(raw: str) -> LogEvent | None:
    """The event one raw log line announces, or ``None``.

    *raw* may carry a Docker timestamp, ANSI codes, ``\\r`` and trailing spaces.
    """
    line = clean(raw)
    if line[:1].isdigit():
        _, line = split_docker_timestamp(line)
    message = node_message(line)
    if message is not None:
        return parse_message(message)
    # Lines the node writes without its logger: `Error: …` from main, and panics.
    return _parse_unprefixed(line)


def parse_lines(lines: Iterable[str]) -> list[LogEvent]:
    """Parse *lines*, folding each run of consecutive imports into the highest one.

    Folding is exact: the reducer keeps the highest block it has seen, so ``#5, #6, #7``
    applied at one instant leave the same state as ``#7`` alone. While a node catches up
    most lines are imports, and this keeps the reducer off the hot path.
    """
    return _folded(lines)


def parse_block(block: str) -> list[LogEvent]:
    """``parse_lines(block.split("\\n"))``: the events of a block of whole lines.

    A burst of lines arrives as one string (:meth:`LineAssembler.feed_blocks`); it is split
    here, once, instead of line by line upstream.
    """
    return _folded(block.split("\n"))


def _folded(lines: Iterable[str]) -> list[LogEvent]:
    """Parse *lines*, folding each run of imports into the highest one."""
    events: list[LogEvent] = []
    pending_import = -1
    for line in lines:
        event = parse_line(line)
        if event is None:
            continue
        if type(event) is BlockImported:
            pending_import = max(pending_import, event.number)
            continue
        if pending_import >= 0:
            events.append(BlockImported(pending_import))
            pending_import = -1
        events.append(event)
    if pending_import >= 0:
        events.append(BlockImported(pending_import))
    return events


def _parse_unprefixed(line: str) -> LogEvent | None:
    if line.startswith("Error: "):
        return FatalLine(FatalKind.ERROR_EXIT, line)
    if line.startswith("Thread '") and _PANIC_RE.match(line):
        return FatalLine(FatalKind.PANIC, line)
    if _ENTRYPOINT in line:
        match = _ENTRYPOINT_RE.match(line)
        if match is not None:
            return EntrypointError(match[1], line)
    return None


def _parse_imported(message: str) -> LogEvent | None:
    match = _IMPORTED_RE.match(message)
    return BlockImported(int(match[1])) if match else None


def _parse_i(message: str) -> LogEvent | None:
    match = _SYNC_STATUS_RE.match(message)
    if match is None:
        return None
    return SyncStatus(int(match[1]), int(match[2]), int(match[3]))


def _parse_highest(message: str) -> LogEvent | None:
    match = _HIGHEST_RE.match(message)
    return HighestKnownBlock(int(match[1])) if match else None


def _parse_s(message: str) -> LogEvent | None:
    return MajorSyncChanged(active=True) if message == _MAJOR_SYNC_ON else None


def _parse_n(message: str) -> LogEvent | None:
    if message == _MAJOR_SYNC_OFF:
        return MajorSyncChanged(active=False)
    match = _PEERS_RE.match(message)
    if match is None:
        return None
    genesis = match[1] if _GENESIS_SHORT_RE.fullmatch(match[1]) else None
    return PeersReported(int(match[2]), genesis)


def _parse_r(message: str) -> LogEvent | None:
    match = _SESSION_RE.match(message)
    return SessionStarted(int(match[1])) if match else None


def _parse_prepared(message: str) -> LogEvent | None:
    match = _PREPARED_RE.match(message)
    return BlockPrepared(int(match[1])) if match else None


def _parse_presealed(message: str) -> LogEvent | None:
    match = _PRESEALED_RE.match(message)
    return BlockPreSealed(int(match[1])) if match else None


def _parse_a(message: str) -> LogEvent | None:
    return NodeBanner() if message == _BANNER else None


def _parse_e(message: str) -> LogEvent | None:
    if _ESSENTIAL_RE.match(message):
        return FatalLine(FatalKind.ESSENTIAL_TASK, message)
    if message.startswith("Error: "):
        return FatalLine(FatalKind.ERROR_EXIT, message)
    return None


def _parse_t(message: str) -> LogEvent | None:
    return FatalLine(FatalKind.PANIC, message) if _PANIC_RE.match(message) else None


_BY_FIRST_CHAR = {
    "✨": _parse_imported,
    "🏆": _parse_imported,
    "🆕": _parse_imported,
    "I": _parse_i,
    "📦": _parse_highest,
    "S": _parse_s,
    "N": _parse_n,
    "R": _parse_r,
    "🎁": _parse_prepared,
    "🔖": _parse_presealed,
    "A": _parse_a,
    "E": _parse_e,
    "T": _parse_t,
}


class LineAssembler:
    """Reassemble whole lines from stream chunks, with bounded memory.

    ``feed(chunk)`` returns the lines the chunk completes (without their newline). A line is
    held until its newline arrives. A line longer than *max_line* characters is cut to its
    first *max_line* characters: the rest is dropped as it arrives (never buffered) and the
    cut is counted in :attr:`lines_cut`.

    With ``timestamped=True`` the chunks are Docker log frames requested with timestamps, in
    which *every* 16 KiB piece of a long line starts with its own timestamp; the timestamp of
    each continuation piece is removed so the line reads as the node wrote it.
    """

    def __init__(self, max_line: int = MAX_LINE, *, timestamped: bool = False) -> None:
        if max_line < 1:
            msg = f"max_line must be positive, got {max_line}"
            raise ValueError(msg)
        self._max_line = max_line
        self._timestamped = timestamped
        self._parts: list[str] = []
        self._size = 0
        self._cutting = False
        #: How many lines were longer than the bound and cut.
        self.lines_cut = 0

    @property
    def pending(self) -> int:
        """Characters held for the line not yet complete."""
        return self._size

    def feed(self, chunk: str) -> list[str]:
        """Add *chunk*; return the lines it completes."""
        return [line for block in self.feed_blocks(chunk) for line in block.split("\n")]

    def feed_blocks(self, chunk: str) -> list[str]:
        """Add *chunk*; return the lines it completes as blocks of lines joined by ``"\\n"``.

        The same lines as :meth:`feed`, left whole for :func:`parse_block`: a burst of lines
        is never cut into one string per line, and the chunk is copied once. A line held
        from earlier chunks comes back as a block of its own.
        """
        if self._timestamped and (self._parts or self._cutting) and chunk[:1].isdigit():
            _, chunk = split_docker_timestamp(chunk)
        last = chunk.rfind("\n")
        if last < 0:
            self._hold(chunk)
            return []
        blocks: list[str] = []
        start = 0
        if self._parts or self._cutting:
            start = chunk.find("\n") + 1
            blocks.append(self._finish(chunk[: start - 1]))
        if start <= last:
            block = chunk[start:last]
            if self._has_long_line(block):
                block = "\n".join(self._bounded(line) for line in block.split("\n"))
            blocks.append(block)
        self._hold(chunk[last + 1 :])
        return blocks

    def _has_long_line(self, block: str) -> bool:
        """Whether a line of *block* exceeds the bound, found in a few jumps, not per line."""
        bound = self._max_line
        start = 0
        while len(block) - start > bound:
            # The line at `start` fits iff a newline ends it within bound + 1 characters.
            newline = block.rfind("\n", start, start + bound + 1)
            if newline < 0:
                return True
            start = newline + 1
        return False

    def flush(self) -> str | None:
        """Return the held partial line, if any, and forget it (the stream ended)."""
        if not self._parts and not self._cutting:
            return None
        return self._finish("")

    def _hold(self, text: str) -> None:
        if not text:
            return
        if self._cutting:
            return
        room = self._max_line - self._size
        if len(text) > room:
            text = text[:room]
            self._cutting = True
        self._parts.append(text)
        self._size += len(text)

    def _finish(self, end: str) -> str:
        self._hold(end)
        line = "".join(self._parts)
        if self._cutting:
            self.lines_cut += 1
        self._parts = []
        self._size = 0
        self._cutting = False
        return line

    def _bounded(self, line: str) -> str:
        if len(line) <= self._max_line:
            return line
        self.lines_cut += 1
        return line[: self._max_line]
