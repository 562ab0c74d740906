"""`azwatch replay`: recorded scenarios through the same core, in virtual time."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from azwatch.cli import main

SCENARIOS = Path(__file__).parent / "scenarios"


def replay(capsys: pytest.CaptureFixture[str], name: str, *flags: str) -> list[dict[str, object]]:
    code = main(["replay", str(SCENARIOS / f"{name}.jsonl"), *flags], environ={})
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def restarts(decisions: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(d["at"], d["rule"]) for d in decisions if d["action"] == "restart"]


def reasons(decisions: list[dict[str, object]]) -> set[object]:
    return {d["reason"] for d in decisions if d["action"] == "hold"}


def test_scenario_files_match_their_generator() -> None:
    """The committed scenarios are what tests/scenarios/generate.py writes."""
    spec = importlib.util.spec_from_file_location("generate", SCENARIOS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    sys.modules["generate"] = generate  # dataclasses look their module up there
    try:
        spec.loader.exec_module(generate)
    finally:
        del sys.modules["generate"]
    for name in generate.SCENARIOS:
        assert (SCENARIOS / f"{name}.jsonl").read_text(encoding="utf-8") == generate.render(name)


def test_healthy_node_is_never_restarted_in_an_hour(capsys: pytest.CaptureFixture[str]) -> None:
    """A synced node: an hour of holds, all 'cooldown' then 'healthy'."""
    decisions = replay(capsys, "healthy", "--all")
    assert restarts(decisions) == []
    assert {"cooldown", "healthy"} == reasons(decisions)
    assert decisions[-1]["at"] >= 3540  # type: ignore[operator]
    # The head is polled every 10 s while best moves every second: in sync, lag is in [-10, 1].
    assert all(-10 <= d["lag"] <= 1 for d in decisions if d["lag"] is not None)  # type: ignore[operator]


def test_severe_lag_restarts_right_after_the_cooldown(capsys: pytest.CaptureFixture[str]) -> None:
    """Imports stop at 60 s; the restart comes exactly when the 300 s cooldown ends."""
    decisions = replay(capsys, "severe_lag")
    assert restarts(decisions) == [(300.0, "severe_lag")]
    (restart,) = decisions
    assert {"lag", "best", "head", "major_sync", "producing", "session"} <= set(restart)
    assert restart["head"] - restart["best"] == restart["lag"] == 230  # type: ignore[operator]


def test_catching_up_is_held_by_the_guard(capsys: pytest.CaptureFixture[str]) -> None:
    """20000 blocks behind, closing 39 blocks/s in major sync: never interrupted."""
    decisions = replay(capsys, "catching_up", "--all")
    assert restarts(decisions) == []
    assert "catching_up" in reasons(decisions)


def test_catching_up_is_restarted_once_the_guard_is_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CATCH_UP_RATE=0 behaves like the original tool: severe lag restarts after cooldown."""
    decisions = replay(capsys, "catching_up", "--catch-up-rate", "0")
    assert restarts(decisions) == [(300.0, "severe_lag")]


def test_stall_after_peers_are_gone(capsys: pytest.CaptureFixture[str]) -> None:
    """Imports stop at 400 s with 0 peers: a stall restart STALL_TIMEOUT later."""
    decisions = replay(
        capsys, "stall_no_peers", "--block-lag-100", "100000", "--block-lag-20", "50000"
    )
    assert restarts(decisions) == [(580.0, "stall")]


def test_stall_timeout_setting_moves_the_restart(capsys: pytest.CaptureFixture[str]) -> None:
    """The stall restart follows STALL_TIMEOUT, counted over time in which lines arrived: the
    stalled node's status line 190 s after its last import is at 600 s (one every 20 s)."""
    decisions = replay(
        capsys,
        "stall_no_peers",
        "--block-lag-100",
        "100000",
        "--block-lag-20",
        "50000",
        "--stall-timeout",
        "190",
    )
    assert restarts(decisions) == [(600.0, "stall")]


def test_stall_while_the_chain_halted_is_not_restarted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Local best and network head froze together: not this node's fault."""
    decisions = replay(capsys, "chain_halted", "--all")
    assert restarts(decisions) == []
    assert "chain_halted" in reasons(decisions)


def test_falling_behind_restarts_once_the_window_is_covered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """0.7 blocks/s against 1 block/s: the lag rises in every bucket; restart at 300 s."""
    decisions = replay(capsys, "falling_behind")
    assert restarts(decisions) == [(300.0, "falling_behind")]
    assert decisions[0]["major_sync"] is True


def test_falling_behind_waits_for_a_longer_window(capsys: pytest.CaptureFixture[str]) -> None:
    """With a 360 s window the run must be 360 s old."""
    decisions = replay(
        capsys,
        "falling_behind",
        "--trend-window",
        "360",
        "--trend-buckets",
        "6",
        "--block-lag-100",
        "1000",
    )
    assert restarts(decisions) == [(360.0, "falling_behind")]


def test_moderate_lag_on_a_node_not_producing(capsys: pytest.CaptureFixture[str]) -> None:
    """50 blocks behind, out of major sync, not producing: restart after the cooldown."""
    decisions = replay(capsys, "moderate_lag")
    assert restarts(decisions) == [(300.0, "moderate_lag")]
    assert decisions[0]["producing"] is False


def test_moderate_lag_on_a_producing_validator(capsys: pytest.CaptureFixture[str]) -> None:
    """The same lag on a committee validator producing its blocks: no restart, across sessions."""
    decisions = replay(capsys, "moderate_lag_producing", "--all")
    assert restarts(decisions) == []
    assert "producing_blocks" in reasons(decisions)
    assert len({d["session"] for d in decisions if d["session"] is not None}) >= 2


def test_rpc_down_for_ten_minutes(capsys: pytest.CaptureFixture[str]) -> None:
    """No reference for ten minutes while the node stalls: never restarted on local evidence."""
    decisions = replay(capsys, "rpc_down", "--all")
    assert restarts(decisions) == []
    assert "head_stale" in reasons(decisions)


def test_backoff_doubles_the_cooldown_up_to_the_cap(capsys: pytest.CaptureFixture[str]) -> None:
    """Restarts that do not help: each counts at once, so the gaps are 120, 240, 480, 500."""
    decisions = replay(capsys, "stuck_forever", "--cooldown", "60", "--max-cooldown", "500")
    times = [at for at, _ in restarts(decisions)]
    gaps = [round(later - earlier, 1) for earlier, later in itertools.pairwise(times)]  # type: ignore[operator]
    assert gaps == [120.0, 240.0, 480.0, 500.0, 500.0]
    assert [d["cooldown"] for d in decisions] == [60.0, 120.0, 240.0, 480.0, 500.0, 500.0]


def _never_recovers(seconds: int) -> str:
    """A node stuck at one block (still printing its status line) while the chain moves on."""
    status = (
        "2025-03-21 13:15:14.000  INFO tokio-runtime-worker aleph-block-sync: "
        "Imported: #1000 (0x9206…03f8), finalized: #998 (0x5597…1096), "
        "favourite: #1000 (0x9206…03f8).    "
    )
    lines = [{"at": 0, "start": True}]
    for at in range(0, seconds, 10):
        if at % 20 == 0:
            lines.append({"at": at, "log": status})
        lines.append({"at": at + 5, "head": 1000 + at})
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def test_backoff_sequence_at_the_default_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """README and SPEC §4: with the defaults a node that never recovers is restarted at about
    300, 900, 2100 and 4500 s (cooldowns 300, 600, 1200, 2400), then every 3600 s."""
    scenario = tmp_path / "never_recovers.jsonl"
    scenario.write_text(_never_recovers(9000), encoding="utf-8")
    assert main(["replay", str(scenario)], environ={}) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    times = [d["at"] for d in decisions]
    expected = [300, 900, 2100, 4500, 8100]
    assert len(times) == len(expected)
    # "About": a restart waits for the first status line (best) and head sample of its run.
    assert all(want <= got < want + 30 for got, want in zip(times, expected, strict=True)), times
    assert [d["cooldown"] for d in decisions] == [300.0, 600.0, 1200.0, 2400.0, 3600.0]


def test_backoff_factor_one_keeps_the_cooldown_fixed(capsys: pytest.CaptureFixture[str]) -> None:
    """BACKOFF_FACTOR=1: the original fixed cooldown."""
    decisions = replay(capsys, "stuck_forever", "--cooldown", "300", "--backoff-factor", "1")
    times = [at for at, _ in restarts(decisions)]
    assert [300.0] * (len(times) - 1) == [
        round(later - earlier, 1)
        for earlier, later in itertools.pairwise(times)  # type: ignore[operator]
    ]


def test_recovery_resets_the_backoff(capsys: pytest.CaptureFixture[str]) -> None:
    """Two restarts that did not help, then a long healthy spell: the next cooldown is base."""
    flags = ("--cooldown", "60", "--max-cooldown", "500")
    recovered = replay(capsys, "recovers", *flags, "--recovery-period", "300")
    never = replay(capsys, "recovers", *flags, "--recovery-period", "100000")
    assert [d["cooldown"] for d in recovered] == [60.0, 120.0, 60.0, 120.0, 240.0]
    assert [d["cooldown"] for d in never][:3] == [60.0, 120.0, 240.0]
    assert recovered[2]["at"] == never[2]["at"]  # the same problem, judged the same way
    assert len(recovered) > len(never)  # the base cooldown came back: restarts came sooner


def test_all_reports_holds_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    """--all prints holds too: every CHECK_INTERVAL and whenever the reason changes."""
    decisions = replay(capsys, "severe_lag", "--all")
    holds = [d for d in decisions if d["action"] == "hold"]
    assert all("reason" in d and "rule" not in d for d in holds)
    assert {0.0, 60.0, 120.0, 180.0, 240.0} <= {d["at"] for d in holds}
    assert len(restarts(decisions)) == 1


def _capture(lines: list[str]) -> str:
    start = datetime(2025, 3, 21, 13, 15, 14, 121434, tzinfo=UTC)
    out = []
    for offset, line in enumerate(lines):
        stamp = (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "512Z"
        out.append(f"{stamp} {line}\n")
    return "".join(out)


def test_a_docker_logs_capture_is_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A plain `docker logs -t` capture replays with no head samples: holds, never restarts."""
    node = (
        "2025-03-21 13:15:14.121  INFO tokio-runtime-worker substrate: "
        "✨ Imported #{} (0x14d8…20da)    "
    )
    lines = ["2025-03-21 13:15:14.100  INFO                 main sc_cli::runner: Aleph Node    "]
    lines += [node.format(105499803 + i) for i in range(400)]
    lines.insert(200, "Thread 'tokio-runtime-worker' panicked at 'boom', src/lib.rs:1")
    capture = tmp_path / "capture.log"
    capture.write_text(_capture(lines), encoding="utf-8")
    assert main(["replay", "--all", str(capture)], environ={}) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert restarts(decisions) == []
    assert {"cooldown", "no_head_sample"} == reasons(decisions)
    assert decisions[-1]["best"] >= 105499803 + 300  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"at": 0, "head": 5}\n{"at": 1, "head": 6\n', "line 2: not JSON"),
        ('{"at": 0, "head": 5}\n\n[1, 2]\n', "line 3: expected a JSON object"),
        ('{"head": 5}\n', 'line 1: "at" must be a number'),
        ('{"at": "soon", "head": 5}\n', 'line 1: "at" must be a number'),
        ('{"at": 5, "head": 5}\n{"at": 4, "head": 6}\n', 'line 2: "at" goes back in time'),
        ('{"at": 0, "head": 5, "log": "x"}\n', "line 1: expected exactly one of"),
        ('{"at": 0}\n', "line 1: expected exactly one of"),
        ('{"at": 0, "head": "0x10"}\n', 'line 1: "head" must be a block number'),
        ('{"at": 0, "head": -1}\n', 'line 1: "head" must be a block number'),
        ('{"at": 0, "log": 7}\n', 'line 1: "log" must be a string'),
        ('{"at": 0, "start": 1}\n', 'line 1: "start" must be true'),
        ('{"at": 0, "exit": "123"}\n', 'line 1: "exit" must be an exit code'),
        ('{"at": 0, "head_error": null}\n', 'line 1: "head_error" must be a string'),
        ('{"at": 0, "haed": 5}\n', "line 1: unknown key(s) 'haed'"),
        ("just some text\n", "line 1: neither a JSON scenario line nor a timestamped log line"),
    ],
)
def test_malformed_scenario_line_names_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, problem: str
) -> None:
    """A bad line: an error naming its line number, exit code 2, and no decisions printed."""
    scenario = tmp_path / "bad.jsonl"
    scenario.write_text(text, encoding="utf-8")
    assert main(["replay", str(scenario)], environ={}) == 2
    captured = capsys.readouterr()
    assert problem in captured.err
    assert captured.out == ""


def test_missing_file_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unreadable scenario file is a clear error, exit 2."""
    assert main(["replay", str(tmp_path / "nope.jsonl")], environ={}) == 2
    assert "cannot read" in capsys.readouterr().err


def test_replay_options_are_validated(capsys: pytest.CaptureFixture[str]) -> None:
    """Replay flags go through the same validation as the environment."""
    assert (
        main(["replay", "--block-lag-20", "x", str(SCENARIOS / "healthy.jsonl")], environ={}) == 2
    )
    assert "BLOCK_LAG_20='x'" in capsys.readouterr().err


def test_a_crash_loop_in_a_scenario_is_held_not_restarted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Three exits within 10 minutes, then a run lagging 500: held as a crash loop until that
    run has lasted a cooldown, then restarted (the rules decide again)."""
    lines = [{"at": 0, "start": True}]
    for at in (10, 20, 30):
        lines += [{"at": at, "exit": 123}, {"at": at + 1, "start": True}]
    for at in range(40, 120, 5):
        lines += [
            {"at": at, "log": f"2025-01-01 00:00:00 ✨ Imported #{1000 + at}"},
            {"at": at, "head": 1500 + at},
        ]
    scenario = tmp_path / "crash.jsonl"
    scenario.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    assert main(["replay", "--all", "--cooldown", "60", str(scenario)], environ={}) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert "crash_loop" in reasons(decisions)
    ((at, rule),) = restarts(decisions)
    assert rule == "severe_lag"
    assert isinstance(at, float)
    assert at >= 31 + 60  # a full cooldown of the run after the last exit
    held = [d["at"] for d in decisions if d.get("reason") == "crash_loop"]
    assert held
    assert max(held) < at  # type: ignore[operator]
