"""`azwatch replay` with the node channel: "node", "node_error" and "head_finalized" records.

Each scenario is written here from a few lines of timeline (no log at all, or a log that
stops), replayed through the same supervisor as the live watcher, and judged by its output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from azwatch.cli import main
from azwatch.replay import ScenarioError, read_records

BLOCK = 105_000_000


def replay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, records: list[dict[str, object]]
) -> list[dict[str, object]]:
    path = tmp_path / "scenario.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    code = main(["replay", str(path), "--all"], environ={})
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def restarts(decisions: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(d["at"], d["rule"]) for d in decisions if d["action"] == "restart"]


def reasons(decisions: list[dict[str, object]]) -> list[object]:
    return [d["reason"] for d in decisions if d["action"] == "hold"]


def timeline(
    seconds: int,
    *,
    node_best: int | None = None,
    node_rate: float = 1.0,
    finalized_behind: int = 2,
    finalized_stops_at: float | None = None,
    syncing: bool = False,
    head_rate: float = 1.0,
    head_finalized_rate: float | None = None,
    node_error_from: float | None = None,
) -> Iterator[dict[str, object]]:
    """Every 10 s: a head sample and a node sample (or a node error); every 60 s the
    reference's finalized block, when *head_finalized_rate* is given. No log line at all."""
    start_best = BLOCK if node_best is None else node_best
    for at in range(0, seconds + 1, 10):
        yield {"at": at, "head": BLOCK + int(head_rate * at)}
        if node_error_from is not None and at >= node_error_from:
            yield {"at": at + 0.5, "node_error": "connection refused"}
        else:
            best = start_best + int(node_rate * at)
            frozen_at = at if finalized_stops_at is None else min(at, finalized_stops_at)
            finalized = start_best + int(node_rate * frozen_at) - finalized_behind
            yield {
                "at": at + 0.5,
                "node": {"best": best, "finalized": finalized, "peers": 12, "syncing": syncing},
            }
        if head_finalized_rate is not None and at % 60 == 0:
            yield {"at": at + 0.7, "head_finalized": BLOCK - 2 + int(head_finalized_rate * at)}


def test_node_only_severe_lag_restarts_after_the_cooldown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No log at all, the node's RPC says it stopped at start: severe lag at 300 s."""
    decisions = replay(capsys, tmp_path, list(timeline(400, node_rate=0)))
    assert restarts(decisions)[0] == (300.0, "severe_lag")
    restart = next(d for d in decisions if d["action"] == "restart")
    assert restart["best"] == BLOCK
    assert "since the latest node sample" in str(restart["detail"])


def test_node_only_moderate_lag_holds_for_production(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """50 behind at chain speed, no log: moderate lag needs production, so it holds."""
    decisions = replay(capsys, tmp_path, list(timeline(900, node_best=BLOCK - 50)))
    assert restarts(decisions) == []
    assert "signal_unknown" in reasons(decisions)
    held = next(d for d in decisions if d.get("reason") == "signal_unknown")
    assert "block production is unknown" in str(held["detail"])


def test_node_errors_hold_as_without_a_node_channel(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The node channel fails from 100 s on while the head runs away: with no log either,
    no best is known, and azwatch holds as it does without a node channel, saying why."""
    decisions = replay(
        capsys, tmp_path, list(timeline(900, node_rate=0, head_rate=5, node_error_from=100))
    )
    assert restarts(decisions) == []
    late = [d for d in decisions if float(d["at"]) > 300]  # type: ignore[arg-type]
    assert late
    assert {"no_local_best"} == {d["reason"] for d in late}
    assert "node channel: scenario: connection refused" in str(late[-1]["detail"])


def test_finality_lag_restarts_when_the_node_finality_stops(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In sync, but the node's finalized block stops at 100 s while the reference's rises."""
    decisions = replay(
        capsys,
        tmp_path,
        list(timeline(1200, finalized_stops_at=100, head_finalized_rate=1.0)),
    )
    # 900 s of a finalized block standing still, counted from its last advance at 100.5 s.
    assert restarts(decisions) == [(1000.5, "finality_lag")]
    restart = next(d for d in decisions if d["action"] == "restart")
    assert restart["finalized"] == BLOCK + 100 - 2
    assert int(restart["head_finalized"]) > int(restart["finalized"]) + 20  # type: ignore[call-overload]


def test_a_chain_wide_finality_stall_is_held(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The reference's finality stopped too: the February 2025 outage; no restart helps."""
    decisions = replay(
        capsys,
        tmp_path,
        list(timeline(1500, finalized_stops_at=100, head_finalized_rate=0.0)),
    )
    assert restarts(decisions) == []
    assert "chain_finality_halted" in reasons(decisions)


def test_finality_holds_without_the_references_finalized_block(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    decisions = replay(capsys, tmp_path, list(timeline(1200, finalized_stops_at=100)))
    assert restarts(decisions) == []
    held = [d for d in decisions if d.get("reason") == "signal_unknown"]
    assert held
    assert "reference's finalized block is unknown or stale" in str(held[-1]["detail"])


def test_finality_lag_holds_in_major_sync(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    decisions = replay(
        capsys,
        tmp_path,
        list(timeline(1200, finalized_stops_at=100, head_finalized_rate=1.0, syncing=True)),
    )
    assert restarts(decisions) == []
    assert "major_sync" in reasons(decisions)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"at": 1, "node": 5}', '"node" must be an object'),
        ('{"at": 1, "node": {"height": 5}}', "unknown \"node\" field(s) 'height'"),
        ('{"at": 1, "node": {"best": -1}}', "\"node\" 'best' must be an integer >= 0"),
        ('{"at": 1, "node": {"syncing": 1}}', "\"node\" 'syncing' must be true or false"),
        ('{"at": 1, "node_error": 5}', '"node_error" must be a string'),
        ('{"at": 1, "head_finalized": "x"}', '"head_finalized" must be a block number'),
        ('{"at": 1, "node": {}, "head": 5}', "expected exactly one of"),
    ],
)
def test_malformed_node_records_are_refused(line: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match="line 1") as error:
        list(read_records([line]))
    assert problem in error.value.problem


def test_a_node_record_may_carry_any_subset() -> None:
    (record,) = read_records(['{"at": 2, "node": {"ready": true}}'])
    assert record.at == 2.0
    assert repr(record.event) == (
        "NodeSample(best=None, finalized=None, peers=None, syncing=None, ready=True, genesis=None)"
    )


def test_a_log_that_falls_silent_hands_over_to_the_node_channel(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Log lines for 120 s, then silence; the node's RPC tells it stopped importing at 200 s.

    Without the node channel the silence only holds (log_silent); with it, severe lag."""
    records: list[dict[str, object]] = []
    for at in range(0, 121):
        line = (
            "2025-03-21 13:00:00.000  INFO tokio-runtime-worker substrate: "
            f"✨ Imported #{BLOCK + at} (0x1234…5678)    "
        )
        records.append({"at": at, "log": line})
    node = [r for r in timeline(500) if "node" in r or "head" in r]
    for record in node:
        if "node" in record and float(record["at"]) >= 200:  # type: ignore[arg-type]
            record["node"] = {"best": BLOCK + 200, "syncing": False}
    merged = sorted(records + node, key=lambda r: float(r["at"]))  # type: ignore[arg-type]
    decisions = replay(capsys, tmp_path, merged)
    # At 310 s the head is 110 ahead of the node's best of 9.5 s before: lag 102 > 100.
    assert restarts(decisions) == [(310.0, "severe_lag")]
    silent_only = [r for r in merged if "node" not in r]
    assert restarts(replay(capsys, tmp_path, silent_only)) == []
