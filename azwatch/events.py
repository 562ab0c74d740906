"""Events: the immutable facts the state model is built from.

Two families feed :func:`azwatch.state.apply`:

* **log events**, parsed from one line of the node's output by :mod:`azwatch.logparse`;
* **watcher events**, produced by the shell (Docker inspect/events, the head poller, the
  restarter) or by a replay scenario.

All are frozen, slotted dataclasses. None of them carries a time: the reducer receives ``now``
separately, so the same event means the same thing in a replay and in a live watcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# --- log events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockImported:
    """``✨ Imported #N`` (or the ``🏆``/``🆕`` variants): the node imported block N."""

    number: int


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """The 20 s ``aleph-block-sync`` line: ``Imported: #N (…), finalized: #M (…), favourite: …``."""

    imported: int
    finalized: int
    favourite: int


@dataclass(frozen=True, slots=True)
class HighestKnownBlock:
    """``📦 Highest known block at #N``: the local best when the node starts."""

    number: int


@dataclass(frozen=True, slots=True)
class MajorSyncChanged:
    """``Switched to major sync state.`` (active) or ``No longer in major sync state.``."""

    active: bool


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """``Running session N.``"""

    session: int


@dataclass(frozen=True, slots=True)
class BlockPrepared:
    """``🎁 Prepared block for proposing at N …``: this node authored a block."""

    number: int


@dataclass(frozen=True, slots=True)
class BlockPreSealed:
    """``🔖 Pre-sealed block for proposal at N. …``: this node sealed its block."""

    number: int


@dataclass(frozen=True, slots=True)
class PeersReported:
    """``Network status report: /0x7025…344e/sync/0 connected peers - K;``

    The protocol names the node's chain: *genesis* is its genesis hash in the short form
    the node prints (first and last four hex digits), or ``None`` when the line has none.
    """

    peers: int
    genesis: str | None = None


@dataclass(frozen=True, slots=True)
class NodeBanner:
    """The ``Aleph Node`` banner, printed once when the node process starts."""


class FatalKind(Enum):
    """Which kind of fatal line was seen."""

    ESSENTIAL_TASK = "essential_task"
    ERROR_EXIT = "error_exit"
    PANIC = "panic"


@dataclass(frozen=True, slots=True)
class FatalLine:
    """A line that announces the node is dying: recorded and reported, never read as numbers."""

    kind: FatalKind
    text: str


@dataclass(frozen=True, slots=True)
class EntrypointError:
    """The official image's entrypoint stopped before starting the node: a required setting
    is missing (``docker_entrypoint.sh: line 45: NODE_KEY_PATH: unbound variable``,
    ``…: CHAIN: parameter null or not set``, or the message of a ``${VAR:?message}``).

    A misconfigured container, not a sick node: restarting it never helps.
    """

    variable: str
    text: str


LogEvent = (
    BlockImported
    | SyncStatus
    | HighestKnownBlock
    | MajorSyncChanged
    | SessionStarted
    | BlockPrepared
    | BlockPreSealed
    | PeersReported
    | NodeBanner
    | FatalLine
    | EntrypointError
)

# --- watcher events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The container began a run (its start event, or ``State.StartedAt`` on attach).

    ``run_id`` identifies the run (container id and start time), so that seeing the same run
    again after a re-attach changes nothing. ``started_at`` is on the same monotonic clock as
    ``now`` and may lie in the past.
    """

    run_id: str
    started_at: float


@dataclass(frozen=True, slots=True)
class ContainerStatus:
    """The container is running, or is not (stopped, exited, paused, missing): ``detail`` says.

    ``seen_at`` is when Docker reported it (same clock as ``now``), for reports that can
    arrive late: a "not running" seen before the current run started is about an earlier run.
    """

    running: bool
    detail: str
    seen_at: float | None = None


@dataclass(frozen=True, slots=True)
class ContainerExited:
    """A run of the container ended by itself: not by azwatch's restart, nor a stop or
    restart someone asked Docker for (the shell leaves those out).

    *exit_code* is ``State.ExitCode`` or the ``die`` event's ``exitCode``; ``None`` when
    Docker could not report one. *run_id* is the run that ended, when the shell knows it
    (an inspect); ``None``: the run that was current at *seen_at*. *last_words* are the
    fatal and entrypoint lines of that run the shell read after it ended (a run too short
    to be followed live).
    """

    exit_code: int | None
    run_id: str | None = None
    seen_at: float | None = None
    last_words: tuple[FatalLine | EntrypointError, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferenceAnswer:
    """One reference endpoint's head in a poll round, with the chain it serves.

    *genesis* is the endpoint's genesis hash in the node's short form (``0x7025…344e``), or
    ``None`` when the endpoint has not told it.
    """

    endpoint: str
    head: int
    genesis: str | None


@dataclass(frozen=True, slots=True)
class HeadSample:
    """The network head from the reference RPC: the median of the endpoints that answered.

    *sources* are the answers behind it, when known: with them, each node takes the median
    of the endpoints that serve its own chain (``CHECK_CHAIN``).
    """

    head: int
    answers: int = 1
    #: Where the sample came from: provenance, not part of its value.
    sources: tuple[ReferenceAnswer, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class HeadUnavailable:
    """No reference endpoint gave a usable answer in this poll round."""

    reason: str


@dataclass(frozen=True, slots=True)
class RestartIssued:
    """The watcher decided to restart (or would have, in dry run) and attempted it now.

    The cooldown and the back-off count from this moment whether or not the restart call
    succeeded, so a failing Docker call is retried by the rules, not in a tight loop.
    """


@dataclass(frozen=True, slots=True)
class RestartFinished:
    """The restart call returned (``ok``) or failed; ``detail`` carries Docker's answer."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LogCaughtUp:
    """The follower has read the run's log up to the present.

    Lines before it were history (the tail read on attach); lines after it are live. The
    log's signals count for the rules only from here on.
    """


@dataclass(frozen=True, slots=True)
class LogUnreadable:
    """The run's log cannot be read (a log driver such as ``none``): *reason* says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class NodeSample:
    """What the node said about itself through its own RPC (or metrics) in one poll.

    Every field is ``None`` when that interface did not tell it: *ready* is ``None`` where
    ``alephNode_ready`` is not offered, and a metrics-only channel has no *ready*.
    """

    best: int | None = None
    finalized: int | None = None
    peers: int | None = None
    syncing: bool | None = None
    ready: bool | None = None
    #: The node's chain, its genesis hash in the short form (``0x7025…344e``), when asked.
    genesis: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceFinalized:
    """The reference's finalized block: the lower median of the endpoints that told it."""

    number: int


@dataclass(frozen=True, slots=True)
class NodeUnavailable:
    """A node-channel poll gave no sample: *kind* classifies why (the head poller's kinds)."""

    kind: str
    detail: str


WatcherEvent = (
    RunStarted
    | ContainerStatus
    | ContainerExited
    | HeadSample
    | HeadUnavailable
    | NodeSample
    | NodeUnavailable
    | ReferenceFinalized
    | RestartIssued
    | RestartFinished
    | LogCaughtUp
    | LogUnreadable
)

Event = LogEvent | WatcherEvent
