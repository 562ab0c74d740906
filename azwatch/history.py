"""Bounded, in-memory history of one container, for the status page. Pure.

Two kinds of record, each kept in a ring of fixed length so that a watcher running for
months uses the same memory as one running for a day:

* :class:`ChartPoint`: best block, network head and lag at one head poll, for the chart of
  the last :data:`CHART_SPAN` seconds. One point per poll; the ring holds
  ``CHART_SPAN / RPC_POLL_INTERVAL`` points, at most :data:`MAX_CHART_POINTS`, and points
  older than the span are dropped as new ones come;
* :class:`RestartRecord`: the watcher's latest :data:`MAX_RESTART_RECORDS` restarts (dry-run
  decisions included), each with its rule and, once judged, whether it helped.

Times are whatever clock the caller uses (the supervisor's monotonic ``now``); nothing here
reads a clock. Nothing survives a restart of azwatch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

#: Seconds of chart history kept: six hours.
CHART_SPAN = 6 * 3600.0
#: Upper bound of chart points per container, whatever ``RPC_POLL_INTERVAL`` is: six hours
#: at one poll every five seconds (the default, 10 s, needs 2160).
MAX_CHART_POINTS = 4320
#: Restarts remembered per container.
MAX_RESTART_RECORDS = 20


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One head poll as the chart shows it; ``None`` where the value was unknown."""

    at: float
    best: int | None
    head: int | None
    lag: int | None


def chart_capacity(poll_interval: float, span: float = CHART_SPAN) -> int:
    """Points needed for one per poll over *span*, capped at :data:`MAX_CHART_POINTS`."""
    if not poll_interval > 0 or not math.isfinite(poll_interval):
        return MAX_CHART_POINTS
    return max(2, min(MAX_CHART_POINTS, math.ceil(span / poll_interval) + 1))


class Chart:
    """The chart points of one container: a ring of :func:`chart_capacity` points."""

    __slots__ = ("_points", "span")

    def __init__(self, poll_interval: float, span: float = CHART_SPAN) -> None:
        self.span = span
        self._points: deque[ChartPoint] = deque(maxlen=chart_capacity(poll_interval, span))

    @property
    def capacity(self) -> int:
        maxlen = self._points.maxlen
        assert maxlen is not None
        return maxlen

    def add(self, point: ChartPoint) -> None:
        """Keep *point*; drop the oldest beyond the capacity and those older than the span."""
        points = self._points
        points.append(point)
        horizon = point.at - self.span
        while points and points[0].at < horizon:
            points.popleft()

    def points(self) -> tuple[ChartPoint, ...]:
        return tuple(self._points)

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[ChartPoint]:
        return iter(self._points)


@dataclass(frozen=True, slots=True)
class RestartRecord:
    """One restart (or dry-run decision) by the watcher and what came of it."""

    at: float
    rule: str
    detail: str
    dry_run: bool
    #: Whether it helped (``yes…``, ``not yet…``, ``no…``, ``unknown…``), ``restart failed: …``,
    #: or ``None`` while not judged yet.
    verdict: str | None = None


class RestartLog:
    """The latest :data:`MAX_RESTART_RECORDS` restarts of one container, oldest first."""

    __slots__ = ("_records",)

    def __init__(self, size: int = MAX_RESTART_RECORDS) -> None:
        self._records: deque[RestartRecord] = deque(maxlen=size)

    def add(self, record: RestartRecord) -> None:
        self._records.append(record)

    def judge(self, verdict: str) -> None:
        """Give the latest restart its verdict (a restart is judged once, the latest only)."""
        records = self._records
        if records and records[-1].verdict is None:
            records[-1] = replace(records[-1], verdict=verdict)

    def records(self) -> tuple[RestartRecord, ...]:
        return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)
