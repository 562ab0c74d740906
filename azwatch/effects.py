"""Effects: what the supervisor asks the shell to do, as values.

:class:`~azwatch.supervisor.Supervisor` decides; it never restarts, notifies or logs by
itself. Each of its steps returns a list of these, and the shell (the live watcher, or
``azwatch replay`` in virtual time) carries them out in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azwatch.policy import Decision, Restart


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for the operator. ``key`` identifies repeats of the same message."""

    key: str
    title: str
    body: str
    level: str = "info"  # apprise notify types: info, success, warning, failure


@dataclass(frozen=True, slots=True)
class RestartContainer:
    """Restart *name* now (or only pretend to, in dry run): *decision* says why."""

    name: str
    decision: Restart
    stop_timeout: float
    dry_run: bool


@dataclass(frozen=True, slots=True)
class SendNotice:
    """Tell the operator (``NOTIFY_URLS``)."""

    notice: Notice


@dataclass(frozen=True, slots=True)
class LogRecord:
    """Write one log record: *event* names it for JSON logs, *fields* carries its numbers."""

    level: int
    container: str | None
    event: str
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reported:
    """A decision worth reporting: a restart, a new hold reason, or the one at a check.

    The live watcher shows it in its logs already; ``azwatch replay`` prints these.
    """

    name: str
    at: float
    decision: Decision
    #: A restart the operator's pause turned into a non-restart: nothing was carried out.
    paused: bool = False


Effect = RestartContainer | SendNotice | LogRecord | Reported
