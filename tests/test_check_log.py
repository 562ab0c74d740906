"""How ``azwatch check`` reads a container's log: two reads, each line applied once.

``check`` reads the log, samples the head, reads again ``since`` the first read and samples
again. A stand-in Engine answers the reads the way Docker does (``tail``, then an inclusive
``since``), so what is tested is ``_Look``'s own reading, lines sharing a timestamp included.
"""

from __future__ import annotations

import time
from typing import Any

from test_logcursor import stamp

from azwatch.commands import _Look
from azwatch.config import Config
from azwatch.containers import docker_since

CONFIG = Config(container_names=("node",))
PREFIX = "2026-11-28 17:00:00.000  INFO tokio-runtime-worker substrate: "


class Engine:
    """Just enough of ``aiodocker.Docker`` for ``_Look``: one running container and its log."""

    def __init__(self, started_ns: int) -> None:
        self.containers = self
        self.started_ns = started_ns
        self.log_lines: list[tuple[int, str]] = []
        self.sinces: list[str | None] = []

    def container(self, name: str) -> Engine:
        return self

    async def show(self) -> dict[str, Any]:
        return {
            "Id": "c0ffee" * 10,
            "Name": "/node",
            "State": {
                "Status": "running",
                "Running": True,
                "StartedAt": stamp(self.started_ns),
                "FinishedAt": "0001-01-01T00:00:00Z",
            },
            "Config": {"Tty": False, "Labels": {}},
            "HostConfig": {"LogConfig": {"Type": "json-file"}},
        }

    async def log(self, *, tail: str, since: str | None = None, **flags: bool) -> list[str]:
        assert flags == {"stdout": True, "stderr": True, "timestamps": True}
        self.sinces.append(since)
        lines = self.log_lines[-int(tail) :]
        if since is not None:
            seconds, _, nanos = since.partition(".")
            since_ns = int(seconds) * 1_000_000_000 + int(nanos)
            lines = [(ns, text) for ns, text in lines if ns >= since_ns]
        return [f"{stamp(ns)} {text}\n" for ns, text in lines]

    def write(self, ns: int, message: str) -> None:
        self.log_lines.append((ns, PREFIX + message + "    "))


async def test_lines_sharing_a_timestamp_between_the_two_reads_are_all_applied() -> None:
    """Lines stamped like the last line of the first read, written before the second, count;
    the lines the second read gets again are not applied twice (a second banner would be
    taken for a new run)."""
    started = time.time_ns() - 60_000_000_000
    shared = started + 1_000_000_000
    engine = Engine(started)
    engine.write(shared, "Aleph Node")
    engine.write(shared, "📦 Highest known block at #100")
    engine.write(shared, "✨ Imported #101")
    look = await _Look.take(engine, "node", CONFIG)  # type: ignore[arg-type]
    assert look.info is not None
    assert look.problem is None
    assert look.state.run.best == 101
    engine.write(shared, "✨ Imported #102")
    engine.write(shared, "✨ Imported #103")
    await look.read_more(engine)  # type: ignore[arg-type]
    assert engine.sinces == [None, docker_since(shared)]
    assert look.state.run.run_id == look.info.run_key  # the banner was applied once
    assert look.state.run.best == 103
    await look.read_more(engine)  # type: ignore[arg-type]
    assert look.state.run.run_id == look.info.run_key
    assert look.state.run.best == 103


async def test_a_restarted_container_is_read_from_its_previous_run_end() -> None:
    """The previous run's lines, up to its end, are not this run's."""
    finished = time.time_ns() - 30_000_000_000
    engine = Engine(finished + 2_000_000_000)
    engine.write(finished - 5, "✨ Imported #500")
    engine.write(finished, "✨ Imported #501")

    async def show() -> dict[str, Any]:
        data = await Engine.show(engine)
        data["State"]["FinishedAt"] = stamp(finished)
        return data

    engine.show = show  # type: ignore[method-assign]
    look = await _Look.take(engine, "node", CONFIG)  # type: ignore[arg-type]
    assert engine.sinces == [docker_since(finished)]
    assert look.state.run.best is None
    engine.write(finished + 1_000_000_000, "📦 Highest known block at #490")
    await look.read_more(engine)  # type: ignore[arg-type]
    assert look.state.run.best == 490
