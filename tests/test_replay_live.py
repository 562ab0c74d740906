"""Replay equals live: one recorded scenario, decided by the live watcher and by replay.

The live watcher follows a fake node (real Docker Engine) that stalls while the fake
reference's head moves on. Everything the watcher saw is recorded as it happened: the
container's log with Docker's timestamps, and the heads the fake RPC answered. That record,
as a replay scenario, goes through ``azwatch replay`` with the same settings; both must
decide the same restarts, by the same rules, within a second or two.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import anyio
import pytest
from dockerkit import FakeNode, FakeNodeFactory
from fakerpc import FakeRpc
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch.cli import main
from azwatch.logparse import docker_timestamp_ns, split_docker_timestamp

pytestmark = pytest.mark.docker

#: Live restarts the scenario records before the node is let to recover.
RESTARTS = 3


def scenario_of(node: FakeNode, rpc: FakeRpc, origin: float, until: float) -> str:
    """What the watcher saw from *origin* to *until* (Unix times), as a replay scenario."""
    records: list[tuple[float, dict[str, object]]] = [(0.0, {"start": True})]
    for line in node.logs(stdout=False, timestamps=True).splitlines():
        stamp, rest = split_docker_timestamp(line)
        assert stamp is not None, line
        at = docker_timestamp_ns(stamp) / 1e9 - origin
        if at <= until - origin:
            records.append((max(0.0, at), {"log": rest}))
    records += [(at - origin, {"head": head}) for at, head in rpc.answered if at <= until]
    records.sort(key=lambda record: record[0])
    return "".join(
        json.dumps({"at": round(at, 3), **item}, ensure_ascii=False) + "\n" for at, item in records
    )


async def test_replay_decides_the_restarts_the_live_watcher_decided(
    fake_node: FakeNodeFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    # Falling behind is off: its trend and moderate lag both start to hold at a lag of about
    # five, and which one a check sees first hangs on where the check lands between two polls,
    # which a replay cannot reproduce to the millisecond. One rule per threshold keeps the
    # comparison about decisions, not about phase.
    flags = {
        "catch_up_rate": 0.0,
        "block_lag_20": 5,
        "block_lag_100": 15,
        "backoff_factor": 1.0,
        "falling_behind_min_rise": 1000,
    }
    async with FakeRpc() as rpc:
        config = scaled((node.name,), rpc.url, **flags)
        mover = HeadMover(rpc, node, monotonic=True)  # the head follows the node: in sync
        async with running(config, mover):
            origin = await anyio.to_thread.run_sync(lambda: _epoch(node.started_at()))
            await anyio.sleep(config.cooldown + 1)
            # The node stalls; the head goes on at the node's pace.
            mover.rise_from(node.best() or 0, 5.0)
            await anyio.to_thread.run_sync(lambda: node.set(STEP=0))

            def live_restarts() -> list[logging.LogRecord]:
                return [r for r in caplog.records if getattr(r, "event", None) == "restart"]

            await eventually(
                lambda: len(live_restarts()) >= RESTARTS, within=40, what="three restarts"
            )
            # Let the node recover: it imports fast until it has the head, which then follows it.
            await anyio.to_thread.run_sync(lambda: node.set(STEP=10))
            mover.node, mover.offset = node, 0
            await eventually(
                lambda: (node.best() or 0) >= rpc.head, within=10, what="the node caught up"
            )
            await anyio.to_thread.run_sync(lambda: node.set(STEP=1))
            await anyio.sleep(config.cooldown + 2)
            until = time.time()
    live = [(r.created - origin, r.fields["rule"]) for r in live_restarts()]  # type: ignore[attr-defined]
    assert len(live) >= RESTARTS  # more may come while the node recovers: all are compared

    scenario = tmp_path / "recorded.jsonl"
    scenario.write_text(scenario_of(node, rpc, origin, until), encoding="utf-8")
    settings = [
        "--cooldown=3",
        "--max-cooldown=30",
        "--check-interval=1",
        "--rpc-poll-interval=0.3",
        "--rpc-timeout=0.25",
        "--stall-timeout=3",
        "--trend-window=3",
        "--catch-up-rate=0",
        "--block-lag-20=5",
        "--block-lag-100=15",
        "--backoff-factor=1",
        "--falling-behind-min-rise=1000",
    ]
    assert main(["replay", str(scenario), *settings], environ={}) == 0
    replayed = [(d["at"], d["rule"]) for d in map(json.loads, capsys.readouterr().out.splitlines())]
    assert [rule for _, rule in replayed] == [rule for _, rule in live], (live, replayed)
    for (live_at, _), (replay_at, _) in zip(live, replayed, strict=True):
        assert abs(live_at - replay_at) <= 2.0, (live, replayed)


def _epoch(docker_time: str) -> float:
    return docker_timestamp_ns(docker_time) / 1e9
