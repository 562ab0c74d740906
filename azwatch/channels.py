"""How the channels that see a node combine into the signals the rules read. Pure.

azwatch sees a node through two channels: its **log** (the live, primary channel: every line
is news within a second) and, when ``NODE_RPC_URL`` or ``NODE_METRICS_URL`` is set, the
**node** channel (the node's own RPC and metrics, polled every ``RPC_POLL_INTERVAL``). Each
channel's values count only while that channel is fresh; then every signal takes the freshest
known value across channels:

* best and finalized: the highest fresh value (the same node cannot be behind itself; the
  channel that saw further saw later);
* peers and major sync: the latest fresh reading;
* block production and session: the log only; without a fresh log they are unknown, and a
  rule that needs one holds and names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

_T = TypeVar("_T", int, bool)


class Channel(StrEnum):
    """Where a signal's value came from (the values are ``/status`` labels)."""

    LOG = "log"
    NODE = "node"


@dataclass(frozen=True, slots=True)
class Reading(Generic[_T]):
    """One channel's value of one signal, and when that channel last told it."""

    value: _T
    channel: Channel
    #: Monotonic seconds: the channel's latest line or sample that carried the value.
    at: float


def highest(readings: Iterable[Reading[int] | None]) -> Reading[int] | None:
    """The reading with the highest value (the latest among equals), or ``None``."""
    known = [reading for reading in readings if reading is not None]
    if len(known) < 2:  # the usual case, one channel: nothing to compare
        return known[0] if known else None
    return max(known, key=lambda reading: (reading.value, reading.at))


def latest(readings: Iterable[Reading[_T] | None]) -> Reading[_T] | None:
    """The most recent reading (the log's among equally recent ones), or ``None``."""
    known = [reading for reading in readings if reading is not None]
    if len(known) < 2:
        return known[0] if known else None
    return max(known, key=lambda reading: (reading.at, reading.channel is Channel.LOG))


@dataclass(frozen=True, slots=True)
class Signals:
    """The combined, fresh signals of one run at one moment (``None``: unknown)."""

    best: Reading[int] | None = None
    finalized: Reading[int] | None = None
    peers: Reading[int] | None = None
    major_sync: Reading[bool] | None = None
    #: ``alephNode_ready``: the node channel only, where the node offers it.
    ready: Reading[bool] | None = None
    #: The log only.
    producing: Reading[bool] | None = None
    session: Reading[int] | None = None

    def named(self) -> tuple[tuple[str, Reading[int] | Reading[bool] | None], ...]:
        """Every signal with its name, in the order ``/status`` shows them."""
        return (
            ("best", self.best),
            ("finalized", self.finalized),
            ("peers", self.peers),
            ("major_sync", self.major_sync),
            ("ready", self.ready),
            ("producing", self.producing),
            ("session", self.session),
        )

    @property
    def log_less(self) -> bool:
        """Decisions run on the node channel alone: it gives the best, the log gives nothing."""
        return (
            self.best is not None
            and self.best.channel is Channel.NODE
            and all(
                reading is None or reading.channel is not Channel.LOG for _, reading in self.named()
            )
        )
