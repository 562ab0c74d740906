"""Sync metrics for the summary line printed every ``CHECK_INTERVAL``.

The original tool logged, at each check: the lag, the blocks caught up since the previous
check, the sync rate, the estimated time to catch up, or that the node is fully caught up.
:func:`sync_progress` computes the same figures from two consecutive checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from azwatch.state import NodeState


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a check saw, kept to compare the next check with."""

    at: float
    best: int
    lag: int
    run_id: str | None


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Sync figures at one check, relative to the previous check of the same run."""

    best: int
    head: int
    lag: int
    #: Blocks imported since the previous check.
    imported: int | None
    #: Net blocks by which the lag shrank since the previous check (negative: it grew).
    caught_up: int | None
    #: Blocks imported per second since the previous check.
    sync_rate: float | None
    #: Net blocks per second by which the lag shrank.
    net_rate: float | None
    #: Seconds until the lag reaches zero at the net rate; ``None`` when it is not shrinking.
    time_to_catch_up: float | None

    @property
    def fully_caught_up(self) -> bool:
        """The node has the network head (or is ahead of the reference)."""
        return self.lag <= 0

    def checkpoint(self, at: float, run_id: str | None) -> Checkpoint:
        """The checkpoint the next check compares with."""
        return Checkpoint(at=at, best=self.best, lag=self.lag, run_id=run_id)


def sync_progress(
    previous: Checkpoint | None, state: NodeState, now: float, best: int | None = None
) -> SyncProgress | None:
    """Sync figures for *state* at *now* (with the local *best* from whichever channel gave
    it; the log's by default), or ``None`` while best or head is unknown."""
    best, head = (state.run.best if best is None else best), state.head
    if best is None or head is None:
        return None
    lag = head - best
    if previous is None or previous.run_id != state.run.run_id or now <= previous.at:
        return SyncProgress(best, head, lag, None, None, None, None, None)
    elapsed = now - previous.at
    imported = best - previous.best
    caught_up = previous.lag - lag
    net_rate = caught_up / elapsed
    time_to_catch_up = lag / net_rate if net_rate > 0 and lag > 0 else None
    return SyncProgress(
        best=best,
        head=head,
        lag=lag,
        imported=imported,
        caught_up=caught_up,
        sync_rate=imported / elapsed,
        net_rate=net_rate,
        time_to_catch_up=time_to_catch_up,
    )


def describe(progress: SyncProgress) -> str:
    """The summary line's words for *progress*."""
    if progress.fully_caught_up:
        return f"fully caught up at #{progress.best} (head #{progress.head})"
    parts = [f"lag {progress.lag} blocks (best #{progress.best}, head #{progress.head})"]
    if progress.caught_up is not None and progress.sync_rate is not None:
        parts.append(f"caught up {progress.caught_up} blocks since the last check")
        parts.append(f"sync rate {progress.sync_rate:.2f} blocks/s")
        eta = progress.time_to_catch_up
        parts.append(
            f"time to catch up {format_duration(eta)}"
            if eta is not None
            else "time to catch up unknown (lag not shrinking)"
        )
    return ", ".join(parts)


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1h02m05s"``; ``42.4`` → ``"42s"``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_block(number: int | None) -> str:
    """``1234`` → ``"#1234"``; an unknown block is ``"unknown"``, never ``None``."""
    return "unknown" if number is None else f"#{number}"


def format_value(value: object) -> str:
    """A number (or any value) for a person; an unknown one is ``"unknown"``."""
    return "unknown" if value is None else str(value)
