"""Where a reader is in one run's container log, and which lines Docker sends are new.

Docker can only be asked for a log ``since`` a time, and ``since`` is inclusive: a reader that
opens the log again (the follower re-attaching, ``azwatch check`` reading a second time) gets
back lines it has applied. A :class:`LogCursor` remembers the timestamp of the last line
applied and how many lines in a row carried exactly it, so the re-delivered lines are skipped
exactly, however many share one timestamp. The rules:

* a run's lines are those stamped after the previous run's end, its *floor* (the first lines
  of a run are stamped slightly before its ``StartedAt``, so reading "since StartedAt" would
  lose the banner); every line at or before the floor is the previous run's;
* a request opened at :attr:`LogCursor.since_ns` re-delivers the lines at that timestamp: the
  first :attr:`LogCursor.at_last` of them were applied and are skipped, and lines stamped
  before it are skipped too;
* once a new line has come, every later line of that request is new, whatever its stamp:
  the lines pass whole and only the timestamps at the end of a block are read, to move the
  cursor (this is the follower's hot path);
* a line without a timestamp that parses cannot be placed: it is passed on (better applied
  than lost) and moves nothing.

Docker writes a stream's lines in the order of their timestamps; the cursor relies on it.
Pure: no I/O, no clock. Lines keep their timestamps; :func:`split_stamp` reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from azwatch.logparse import docker_timestamp_ns

#: ``at_last`` of a run's first cursor: every line stamped at the floor is the previous run's.
EVERY_LINE = 1 << 62


def split_stamp(line: str) -> tuple[int | None, str]:
    """Docker's timestamp of *line* in nanoseconds since the epoch, and the rest of the line.

    ``(None, line)`` when the line has no timestamp that parses.
    """
    stamp = _stamp(line)
    if stamp is not None:
        ns = _stamp_ns(stamp)
        if ns is not None:
            return ns, line[len(stamp) + 1 :]
    return None, line


@dataclass(frozen=True, slots=True)
class LogCursor:
    """How far the lines of run *run_key* have been applied, within the current request."""

    run_key: str
    #: The timestamp of the last line applied; the run's floor until its first line.
    last_ns: int
    #: How many of the last lines applied, in a row, carry exactly ``last_ns``.
    at_last: int
    #: Lines at ``last_ns`` the current request re-delivers and are still to be skipped.
    redelivered: int = 0
    #: A new line came in the current request: every later line of it is new.
    live: bool = False

    @classmethod
    def start(cls, run_key: str, floor_ns: int | None) -> LogCursor:
        """The cursor of a run not read yet, whose previous run ended at *floor_ns*."""
        return cls(run_key, floor_ns or 0, EVERY_LINE, EVERY_LINE)

    @property
    def since_ns(self) -> int | None:
        """The ``since`` to open the log at; ``None``: from its start."""
        return self.last_ns or None

    def reopened(self) -> LogCursor:
        """This cursor for a new request at :attr:`since_ns`, which re-delivers lines."""
        return replace(self, redelivered=self.at_last, live=False)

    def fresh_block(self, block: str) -> tuple[str | None, LogCursor]:
        """The lines of *block* (joined by ``"\\n"``) not applied before, and the cursor
        once they are; ``None`` when no line is new.

        Feeding a request's lines in blocks cut anywhere between lines gives the same lines
        and the same cursor as feeding them as one block.
        """
        if self.live:
            return block, self._past(block)
        kept: list[str] = []
        cursor = self
        start = 0
        while True:
            end = block.find("\n", start)
            line = block[start:] if end < 0 else block[start:end]
            ns = _line_ns(line)
            if ns is None:
                kept.append(line)  # cannot be placed; better applied than lost
            elif ns == cursor.last_ns and cursor.redelivered > 0:
                cursor = replace(cursor, redelivered=cursor.redelivered - 1)
            elif ns >= cursor.last_ns:
                # The first new line: it and everything after it pass.
                rest = block[start:]
                kept.append(rest)
                return "\n".join(kept), replace(cursor, redelivered=0, live=True)._past(rest)
            if end < 0:
                return ("\n".join(kept) if kept else None), cursor
            start = end + 1

    def fresh_lines(self, lines: Sequence[str]) -> tuple[list[tuple[int | None, str]], LogCursor]:
        """:meth:`fresh_block` for separate lines: the new ones as ``(timestamp, rest)``
        (see :func:`split_stamp`), and the cursor once they are applied."""
        if not lines:
            return [], self
        block, cursor = self.fresh_block("\n".join(lines))
        if block is None:
            return [], cursor
        return [split_stamp(line) for line in block.split("\n")], cursor

    def _past(self, block: str) -> LogCursor:
        """This live cursor once every line of *block* is applied.

        Only the lines at the end of the block are read: the last timestamp, and how many
        lines in a row carry it. Equal stamps are compared as text and parsed once.
        """
        last_stamp = ""
        last_ns = 0
        same = 0
        whole = True  # every stamped line of the block carries the last timestamp
        end = len(block)
        while end >= 0:
            start = block.rfind("\n", 0, end) + 1
            stamp = _stamp(block[start:end])
            end = start - 1
            if stamp is None:
                continue
            if stamp != last_stamp:
                ns = _stamp_ns(stamp)
                if ns is None:
                    continue
                if same and ns != last_ns:
                    whole = False
                    break
                last_stamp, last_ns = stamp, ns
            same += 1
        if not same:
            return self
        if whole and last_ns == self.last_ns:
            same += self.at_last
        # Built directly, not with replace(): this runs for every block read live.
        return LogCursor(self.run_key, last_ns, same, 0, True)


def resume(cursor: LogCursor | None, run_key: str, floor_ns: int | None) -> LogCursor:
    """The cursor to open *run_key*'s log with: *cursor* reopened if it is that run's, else
    the run's first cursor at *floor_ns* (the previous run's end)."""
    if cursor is not None and cursor.run_key == run_key:
        return cursor.reopened()
    return LogCursor.start(run_key, floor_ns)


def _stamp(line: str) -> str | None:
    """Docker's timestamp at the start of *line*, found fast by trusting the daemon's format."""
    if len(line) > 20 and line[10] == "T" and line[4] == "-":
        space = line.find(" ", 19, 45)
        if space > 0:
            return line[:space]
    return None


def _stamp_ns(stamp: str) -> int | None:
    try:
        return docker_timestamp_ns(stamp)
    except ValueError:
        return None


def _line_ns(line: str) -> int | None:
    stamp = _stamp(line)
    return None if stamp is None else _stamp_ns(stamp)
