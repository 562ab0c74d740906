"""``azwatch replay``: feed a recorded scenario through the pure core, in virtual time.

Two input shapes are accepted:

* a **scenario**, JSON Lines, one object per line with ``"at"`` (seconds since the scenario
  start, non-decreasing) and exactly one of ``"log"`` (a raw line as ``docker logs`` prints
  it), ``"head"`` (the reference head), ``"head_error"`` (why the reference failed),
  ``"head_finalized"`` (the reference's finalized block), ``"node"`` (a node-channel sample:
  an object with any of ``best``, ``finalized``, ``peers``, ``syncing``, ``ready``),
  ``"node_error"`` (why a node-channel poll failed), ``"exit"`` (the container exited by
  itself with this exit code, ``null``: unknown) or ``"start": true`` (the container began
  a new run); a ``"comment"`` is allowed beside them;
* a plain **capture** of ``docker logs -t`` (or ``docker logs`` of a node with its own
  timestamps): times come from the line prefixes, and there are no head samples.

The records drive the same :class:`~azwatch.supervisor.Supervisor` as the live watcher, in
virtual time, so a replay is by construction what the live watcher would have decided.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from azwatch.config import Config
from azwatch.effects import Reported, RestartContainer
from azwatch.events import (
    ContainerExited,
    ContainerStatus,
    Event,
    HeadSample,
    HeadUnavailable,
    LogCaughtUp,
    NodeSample,
    NodeUnavailable,
    ReferenceFinalized,
    RestartFinished,
    RunStarted,
)
from azwatch.logparse import (
    clean,
    docker_timestamp_ns,
    node_message,
    parse_line,
    split_docker_timestamp,
)
from azwatch.policy import Decision, Facts, Restart
from azwatch.supervisor import (
    ContainerEvents,
    FinalityPolled,
    HeadPolled,
    Message,
    NodePolled,
    RestartDone,
    Supervisor,
)

#: The name the replayed container goes by.
REPLAY_CONTAINER = "replay"

_EVENT_KEYS = ("log", "head", "head_error", "head_finalized", "node", "node_error", "exit", "start")
#: The fields of a ``"node"`` object and whether each is a block count (else a flag).
_NODE_FIELDS = {"best": True, "finalized": True, "peers": True, "syncing": False, "ready": False}
#: The failure kind a scenario's ``"node_error"`` is counted as.
SCENARIO_FAILURE = "scenario"
_ALLOWED_KEYS = frozenset(("at", "comment", *_EVENT_KEYS))


class ScenarioError(ValueError):
    """A scenario line is malformed; ``line_number`` is 1-based."""

    def __init__(self, line_number: int, problem: str) -> None:
        self.line_number = line_number
        self.problem = problem
        super().__init__(f"line {line_number}: {problem}")


@dataclass(frozen=True, slots=True)
class Record:
    """One timed input of a scenario."""

    at: float
    #: ``None`` for a log line that announces nothing.
    event: Event | None


def read_records(lines: Iterable[str]) -> Iterator[Record]:
    """Records of a scenario or capture given as text lines.

    Raises:
        ScenarioError: at the first malformed line.
    """
    iterator = iter(enumerate(lines, start=1))
    for number, line in iterator:
        if not line.strip():
            continue
        first = (number, line)
        if line.lstrip().startswith("{"):
            yield from _scenario_records(first, iterator)
        else:
            yield from _capture_records(first, iterator)
        return


def _scenario_records(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[Record]:
    previous_at = 0.0
    starts = 0
    for number, line in _chain(first, rest):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as error:
            raise ScenarioError(number, f"not JSON ({error.args[0]})") from None
        if not isinstance(item, dict):
            raise ScenarioError(number, "expected a JSON object")
        unknown = sorted(set(item) - _ALLOWED_KEYS)
        if unknown:
            raise ScenarioError(number, f"unknown key(s) {', '.join(map(repr, unknown))}")
        at = item.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ScenarioError(number, '"at" must be a number of seconds')
        if at < previous_at:
            raise ScenarioError(number, f'"at" goes back in time ({at} < {previous_at})')
        previous_at = float(at)
        present = [key for key in _EVENT_KEYS if key in item]
        if len(present) != 1:
            keys = ", ".join(f'"{key}"' for key in _EVENT_KEYS)
            raise ScenarioError(number, f"expected exactly one of {keys}")
        key, value = present[0], item[present[0]]
        if key == "log":
            if not isinstance(value, str):
                raise ScenarioError(number, '"log" must be a string')
            yield Record(previous_at, parse_line(value))
        elif key == "head":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ScenarioError(number, '"head" must be a block number (integer >= 0)')
            yield Record(previous_at, HeadSample(value))
        elif key == "head_error":
            if not isinstance(value, str):
                raise ScenarioError(number, '"head_error" must be a string')
            yield Record(previous_at, HeadUnavailable(value))
        elif key == "head_finalized":
            if not _is_count(value):
                raise ScenarioError(
                    number, '"head_finalized" must be a block number (integer >= 0)'
                )
            yield Record(previous_at, ReferenceFinalized(value))
        elif key == "node":
            yield Record(previous_at, _node_sample(number, value))
        elif key == "node_error":
            if not isinstance(value, str):
                raise ScenarioError(number, '"node_error" must be a string')
            yield Record(previous_at, NodeUnavailable(SCENARIO_FAILURE, value))
        elif key == "exit":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ScenarioError(number, '"exit" must be an exit code (integer) or null')
            yield Record(previous_at, ContainerExited(value, seen_at=previous_at))
        else:
            if value is not True:
                raise ScenarioError(number, '"start" must be true')
            starts += 1
            yield Record(previous_at, RunStarted(f"replay-start-{starts}", previous_at))


def _is_count(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 0


def _node_sample(number: int, value: object) -> NodeSample:
    """A ``"node"`` object as a node-channel sample; any subset of its fields."""
    if not isinstance(value, dict):
        raise ScenarioError(number, '"node" must be an object')
    unknown = sorted(set(value) - set(_NODE_FIELDS))
    if unknown:
        raise ScenarioError(number, f'unknown "node" field(s) {", ".join(map(repr, unknown))}')
    for name, item in value.items():
        if _NODE_FIELDS[name] and not _is_count(item):
            raise ScenarioError(number, f'"node" {name!r} must be an integer >= 0')
        if not _NODE_FIELDS[name] and not isinstance(item, bool):
            raise ScenarioError(number, f'"node" {name!r} must be true or false')
    return NodeSample(**value)


def _capture_records(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[Record]:
    """Records of a ``docker logs [-t]`` capture; times come from the line prefixes."""
    origin: int | None = None
    at = 0.0
    for number, raw in _chain(first, rest):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        stamp = _line_time_ns(line)
        if stamp is not None:
            if origin is None:
                origin = stamp
            # stdout and stderr are copied separately, so neighbours can be slightly out of
            # order; time never goes back in a replay.
            at = max(at, (stamp - origin) / 1e9)
        elif origin is None and number == first[0]:
            raise ScenarioError(number, "neither a JSON scenario line nor a timestamped log line")
        yield Record(at, parse_line(line))


def _line_time_ns(line: str) -> int | None:
    """Docker's timestamp of a captured line, or else the node's own prefix time."""
    stamp, rest = split_docker_timestamp(line)
    if stamp is not None:
        return docker_timestamp_ns(stamp)
    rest = clean(rest)
    if node_message(rest) is None:
        return None
    try:
        return docker_timestamp_ns(rest[:10] + "T" + rest[11:19] + "Z")
    except ValueError:
        return None


def _chain(first: tuple[int, str], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield first
    yield from rest


def decision_record(at: float, decision: Decision) -> dict[str, object]:
    """The JSON object printed for one decision."""
    facts = decision.facts
    record: dict[str, object] = {"at": round(at, 3)}
    if isinstance(decision, Restart):
        record |= {"action": "restart", "rule": str(decision.rule)}
    else:
        record |= {"action": "hold", "reason": str(decision.reason)}
    record |= {
        "lag": facts.lag,
        "best": facts.best,
        "head": facts.head,
        "major_sync": facts.major_sync,
        "producing": facts.producing,
        "session": facts.session,
        "cooldown": facts.cooldown,
        **_finality_facts(facts),
        "detail": decision.detail,
    }
    return record


def _finality_facts(facts: Facts) -> dict[str, object]:
    """The finalized blocks, where a scenario told them (older scenarios' output is unchanged)."""
    if facts.head_finalized is None:
        return {}
    return {"finalized": facts.finalized, "head_finalized": facts.head_finalized}


def replay(
    records: Iterable[Record], config: Config, *, all_decisions: bool = False
) -> Iterator[dict[str, object]]:
    """Run *records* through the supervisor in virtual time; yield one object per decision.

    Restarts are always reported. With *all_decisions*, holds are reported too: at every
    ``CHECK_INTERVAL`` and whenever the reason changes (the decisions the live watcher logs).
    The supervisor is woken exactly when the live watcher would wake it: after every record,
    at every check and at the instants a hold names (the end of a cooldown, a stall timeout).
    A restart starts a new run at that instant, as the real container would.
    """
    engine = _Replay(config)
    for record in records:
        yield from engine.advance_to(record.at, all_decisions)
        if record.event is not None:
            engine.handle(record.event, record.at)
        yield from engine.tick(record.at, all_decisions)


class _Replay:
    """The replay's shell: one container, its supervisor, and virtual time."""

    def __init__(self, config: Config) -> None:
        self.supervisor = Supervisor(config)
        self.supervisor.watch(REPLAY_CONTAINER, 0.0)
        self.restarts = 0
        self.now = 0.0
        self.handle(RunStarted("replay-start-0", 0.0), 0.0)

    def handle(self, event: Event, at: float) -> None:
        self.now = at
        message: Message
        if isinstance(event, HeadSample | HeadUnavailable):
            message = HeadPolled(event)
        elif isinstance(event, ReferenceFinalized):
            message = FinalityPolled(event)
        elif isinstance(event, NodeSample | NodeUnavailable):
            message = NodePolled(REPLAY_CONTAINER, event)
        elif isinstance(event, RunStarted):
            # A replay's lines are the present as they come: a run's log is live at once.
            message = ContainerEvents(REPLAY_CONTAINER, (event, LogCaughtUp()))
        elif isinstance(event, ContainerExited):
            # The run ended by itself: the container is down until the next "start".
            stopped = ContainerStatus(False, "exited", seen_at=at)
            message = ContainerEvents(REPLAY_CONTAINER, (stopped, event))
        else:
            message = ContainerEvents(REPLAY_CONTAINER, (event,))
        self.supervisor.handle(message, at)

    def advance_to(self, until: float, all_decisions: bool) -> Iterator[dict[str, object]]:
        """Wake the supervisor at each instant it asks for strictly before *until*."""
        while (at := max(self.now, self.supervisor.next_wake())) < until:
            yield from self.tick(at, all_decisions)

    def tick(self, at: float, all_decisions: bool) -> Iterator[dict[str, object]]:
        self.now = at
        restarted = False
        for effect in self.supervisor.tick(at):
            if isinstance(effect, Reported):
                if isinstance(effect.decision, Restart) or all_decisions:
                    yield decision_record(effect.at, effect.decision)
            elif isinstance(effect, RestartContainer):
                restarted = True
        if restarted:
            # The container restarts at once: its new run begins, and is decided about.
            self.restarts += 1
            self.supervisor.handle(RestartDone(REPLAY_CONTAINER, RestartFinished(ok=True)), at)
            self.handle(RunStarted(f"replay-restart-{self.restarts}", at), at)
            yield from self.tick(at, all_decisions)
