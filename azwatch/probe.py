"""Probe mode, pure: when a new run of the node began, and the verdict ``/livez`` serves.

In a Kubernetes pod azwatch has no Docker: no start event, no ``State.StartedAt``. What it
sees of the node is its own RPC, which goes silent while the kubelet kills and starts the
container. :class:`RunTracker` turns those observations (the node answered with its best
block at ``now``, or did not answer) into :class:`NewRun` values: the first answer ever is
the first run; after that, a new run began when the node channel has been unreachable and
comes back

* with a best block below the highest one of the previous run (a node started on an empty
  database), or
* after a gap longer than the probe's period (``PROBE_PERIOD``, the livenessProbe's
  ``periodSeconds``): counted from the first unanswered poll, so one lost poll is a blip,
  not a restart.

:class:`Verdict` is what the kubelet reads at ``/livez``: alive while the rules hold; once
they decide a restart, that restart (its rule and numbers) until a new run begins.

No I/O, no clock: every function takes ``now`` (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from azwatch.policy import Restart
from azwatch.progress import format_duration


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run of the node began; *number* counts the runs azwatch has seen (from 1)."""

    number: int
    #: When it is taken to have started: its first answer (the kubelet started it earlier,
    #: but azwatch cannot tell when; the cooldown counts from the answer, erring long).
    started_at: float
    #: Why this is a new run, in words for the log.
    reason: str

    @property
    def run_id(self) -> str:
        """The run's identity for the state model (``RunStarted.run_id``)."""
        return f"probe-run-{self.number}"


@dataclass(frozen=True, slots=True)
class RunTracker:
    """What the probe remembers of the node channel to tell a new run from a blip."""

    #: Seconds of unreachability after which the next answer is a new run (``PROBE_PERIOD``).
    period: float
    runs: int = 0
    #: The highest best block the current run answered (``None``: none yet).
    highest_best: int | None = None
    #: When the node last answered.
    answered_at: float | None = None
    #: The first unanswered poll since the node last answered (``None``: it answers).
    unreachable_since: float | None = None

    def unreachable(self, now: float) -> RunTracker:
        """The node channel did not answer at *now*."""
        if self.unreachable_since is not None:
            return self
        return replace(self, unreachable_since=now)

    def answered(self, best: int | None, now: float) -> tuple[RunTracker, NewRun | None]:
        """The node answered at *now* (with its best block, when it told it).

        Returns the tracker after it, and the :class:`NewRun` it began, if it began one.
        """
        reason = self._new_run_reason(best, now)
        if reason is None:
            highest = self.highest_best
            if best is not None and (highest is None or best > highest):
                highest = best
            same = replace(self, highest_best=highest, answered_at=now, unreachable_since=None)
            return same, None
        run = NewRun(self.runs + 1, now, reason)
        tracker = replace(
            self, runs=run.number, highest_best=best, answered_at=now, unreachable_since=None
        )
        return tracker, run

    def _new_run_reason(self, best: int | None, now: float) -> str | None:
        if self.runs == 0:
            return "the node answers for the first time"
        since = self.unreachable_since
        if since is None:
            return None  # answering all along: whatever its best does, the same run
        gap = now - since
        highest = self.highest_best
        if best is not None and highest is not None and best < highest:
            return (
                f"the node answers again after {format_duration(gap)} without an answer, "
                f"with best #{best} below the previous run's #{highest}"
            )
        if gap > self.period:
            return (
                f"the node answers again after {format_duration(gap)} without an answer "
                f"(> PROBE_PERIOD={self.period:g}s)"
            )
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``GET /livez`` answers: alive, or the restart the rules decided and since when."""

    restart: Restart | None = None
    #: When the rules decided it (monotonic seconds).
    since: float | None = None

    @property
    def alive(self) -> bool:
        """The rules hold: the kubelet should leave the node alone."""
        return self.restart is None

    def decided(self, restart: Restart, now: float) -> Verdict:
        """The rules decided *restart* at *now*; an earlier one in force stays (it is older)."""
        if self.restart is not None:
            return self
        return Verdict(restart, now)

    def text(self, now: float) -> str:
        """One line for a person (``kubectl describe``, ``curl``)."""
        restart = self.restart
        if restart is None:
            return "ok: the rules hold; no restart needed"
        since = self.since if self.since is not None else now
        return (
            f"restart: {restart.rule}: {restart.detail} (decided {format_duration(now - since)} "
            "ago; waiting for the kubelet to restart the node)"
        )

    def document(self, now: float) -> dict[str, Any]:
        """The JSON body of ``/livez``."""
        body: dict[str, Any] = {"alive": self.alive, "text": self.text(now)}
        restart = self.restart
        if restart is None:
            return body
        body["rule"] = str(restart.rule)
        body["detail"] = restart.detail
        body["decided_seconds_ago"] = None if self.since is None else now - self.since
        facts = restart.facts
        # The values, not their provenance (which carries monotonic times).
        body["numbers"] = {
            each.name: getattr(facts, each.name) for each in fields(facts) if each.compare
        }
        return body
