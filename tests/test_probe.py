"""Probe mode's pure core: the new-run detector and the /livez verdict, as tables."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azwatch.config import Config, ConfigError
from azwatch.policy import Facts, Restart, Rule
from azwatch.probe import RunTracker, Verdict

PERIOD = 10.0

#: One observation: at time t, the node answered with best (``int``) or did not (``None``);
#: "answer" answers without telling its best.
Step = tuple[float, int | str | None]


def runs_seen(steps: list[Step], period: float = PERIOD) -> list[tuple[float, int]]:
    """Feed *steps* to a tracker; the (time, run number) of every new run it reports."""
    tracker = RunTracker(period)
    seen: list[tuple[float, int]] = []
    for at, best in steps:
        if best is None:
            tracker = tracker.unreachable(at)
            continue
        tracker, run = tracker.answered(None if best == "answer" else int(best), at)
        if run is not None:
            seen.append((run.started_at, run.number))
    return seen


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param([(0, 100), (10, 110), (20, 120)], [(0, 1)], id="first-answer-is-run-1"),
        pytest.param([(0, None), (10, None), (20, 50)], [(20, 1)], id="first-after-silence"),
        pytest.param(
            [(0, 100), (10, None), (20, 90)], [(0, 1), (20, 2)], id="back-below-previous-best"
        ),
        pytest.param(
            [(0, 100), (10, None), (20, 100)],
            [(0, 1)],
            id="one-lost-poll-same-best-is-a-blip",
        ),
        pytest.param(
            [(0, 100), (10, None), (20.0, 200)],
            [(0, 1)],
            id="gap-equal-to-period-is-not-longer",
        ),
        pytest.param(
            [(0, 100), (10, None), (20, None), (20.5, 130)],
            [(0, 1), (20.5, 2)],
            id="gap-just-past-period",
        ),
        pytest.param(
            [(0, 100), (10, None), (15, None), (40, 200)],
            [(0, 1), (40, 2)],
            id="long-gap-best-above",
        ),
        pytest.param(
            [(0, 100), (10, 80), (20, 70)],
            [(0, 1)],
            id="best-falls-while-answering-is-the-same-run",
        ),
        pytest.param(
            [(0, 100), (10, None), (20, 95), (30, None), (35, 96)],
            [(0, 1), (20, 2)],
            id="new-run-compares-with-its-own-best",
        ),
        pytest.param(
            [(0, 100), (10, 150), (20, None), (25, 120)],
            [(0, 1), (25, 2)],
            id="below-the-highest-not-the-latest",
        ),
        pytest.param(
            [(0, 100), (10, None), (30, "answer")],
            [(0, 1), (30, 2)],
            id="answer-without-best-after-long-gap",
        ),
        pytest.param(
            [(0, 100), (10, None), (15, "answer"), (20, None), (40, 100)],
            [(0, 1), (40, 2)],
            id="short-blips-do-not-add-up",
        ),
    ],
)
def test_new_runs(steps: list[Step], expected: list[tuple[float, int]]) -> None:
    assert runs_seen(steps) == expected


def test_the_gap_counts_from_the_first_unanswered_poll() -> None:
    """Later failures do not move the start of the gap."""
    tracker = RunTracker(PERIOD)
    tracker, _ = tracker.answered(100, 0.0)
    tracker = tracker.unreachable(5.0).unreachable(9.0).unreachable(14.0)
    assert tracker.unreachable_since == 5.0
    _, run = tracker.answered(100, 15.5)
    assert run is not None
    assert run.run_id == "probe-run-2"
    assert "10s without an answer" in run.reason
    assert "PROBE_PERIOD=10s" in run.reason


def test_reason_names_both_bests() -> None:
    tracker, _ = RunTracker(PERIOD).answered(5000, 0.0)
    _, run = tracker.unreachable(1.0).answered(12, 3.0)
    assert run is not None
    assert "best #12 below the previous run's #5000" in run.reason


FACTS = Facts(
    lag=230,
    best=1000,
    head=1230,
    finalized=998,
    major_sync=False,
    producing=False,
    session=None,
    peers=0,
    catch_up_rate=0.0,
    cooldown=300.0,
    run_age=400.0,
)
RESTART = Restart(Rule.SEVERE_LAG, "lag 230 > BLOCK_LAG_100=100", FACTS)


def test_verdict_alive_until_decided() -> None:
    verdict = Verdict()
    assert verdict.alive
    assert verdict.document(5.0) == {
        "alive": True,
        "text": "ok: the rules hold; no restart needed",
    }


def test_verdict_keeps_the_first_restart_and_its_numbers() -> None:
    verdict = Verdict().decided(RESTART, 100.0)
    later = Restart(Rule.STALL, "stalled", FACTS)
    assert verdict.decided(later, 130.0) == verdict
    document = verdict.document(142.0)
    assert document["alive"] is False
    assert document["rule"] == "severe_lag"
    assert document["decided_seconds_ago"] == 42.0
    assert document["numbers"]["lag"] == 230
    assert document["numbers"]["head"] == 1230
    assert document["text"].startswith("restart: severe_lag: lag 230 > BLOCK_LAG_100=100")
    assert "decided 42s ago" in document["text"]
    json.dumps(document)  # serialisable as it is


# --- the probe mode's settings ----------------------------------------------------------


#: The least a kubelet-mode configuration needs.
KUBELET = {"RESTART_VIA": "kubelet", "NODE_RPC_URL": "http://127.0.0.1:9944", "HTTP_PORT": "9616"}


def test_kubelet_mode_needs_no_container_name() -> None:
    config = Config.from_env(KUBELET | {"RESTART_VIA": "KUBELET", "PROBE_PERIOD": "20"})
    assert (config.restart_via, config.probe_period, config.container_names) == (
        "kubelet",
        20.0,
        (),
    )
    assert Config.from_env({"CONTAINER_NAME": "x"}).restart_via == "docker"


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"RESTART_VIA": "k8s"}, "RESTART_VIA='k8s': expected docker or kubelet"),
        ({"PROBE_PERIOD": "0"}, "PROBE_PERIOD='0': expected a number of seconds > 0"),
        (
            {"CONTAINER_LABEL": "azwatch.enable"},
            "CONTAINER_LABEL='azwatch.enable': expected unset with RESTART_VIA=kubelet "
            "(there is no Docker to list containers)",
        ),
        (
            {"NODE_RPC_URL": ""},
            "NODE_RPC_URL is not set: expected the node's RPC with RESTART_VIA=kubelet, e.g. "
            "http://127.0.0.1:9944 (the pod's containers share the network)",
        ),
        (
            {"NODE_RPC_URL": "ws://127.0.0.1:9944"},
            "NODE_RPC_URL='ws://127.0.0.1:9944': expected an http(s) URL, or off",
        ),
        (
            {"HTTP_PORT": ""},
            "HTTP_PORT is not set: expected a TCP port with RESTART_VIA=kubelet: /livez is "
            "served there",
        ),
        (
            {"CONTAINER_NAME": "a,b"},
            "CONTAINER_NAME='a,b': expected at most one name with RESTART_VIA=kubelet "
            "(the pod's node container)",
        ),
    ],
)
def test_bad_kubelet_settings_are_named(env: dict[str, str], line: str) -> None:
    environ = KUBELET | {"CONTAINER_NAME": "node"} | env
    with pytest.raises(ConfigError) as caught:
        Config.from_env(environ)
    assert line in [str(problem) for problem in caught.value.problems]


def test_direct_construction_checks_restart_via() -> None:
    with pytest.raises(ConfigError, match="RESTART_VIA='ssh': expected docker or kubelet"):
        Config(container_names=("node",), restart_via="ssh")  # type: ignore[arg-type]


# --- properties of the detector ---------------------------------------------------------

#: A poll: seconds since the previous one, and the best answered (``None``: no answer).
Poll = tuple[float, int | None]
polls = st.lists(
    st.tuples(
        st.floats(min_value=0.01, max_value=30.0),
        st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
    ),
    max_size=60,
)


@given(polls)
def test_a_new_run_only_follows_silence_or_is_the_first(sequence: list[Poll]) -> None:
    """Runs are counted one by one; after the first, each follows an unanswered poll, and
    follows it by more than PROBE_PERIOD or comes back below the run's highest best."""
    tracker, now = RunTracker(PERIOD), 0.0
    silent_since: float | None = None
    highest: int | None = None
    for step, best in sequence:
        now += step
        if best is None:
            tracker = tracker.unreachable(now)
            silent_since = now if silent_since is None else silent_since
            continue
        before = tracker.runs
        tracker, run = tracker.answered(best, now)
        if run is None:
            assert tracker.runs == before
            highest = best if highest is None else max(highest, best)
        else:
            assert run.number == before + 1 == tracker.runs
            if before:
                assert silent_since is not None
                assert now - silent_since > PERIOD or (highest is not None and best < highest)
            highest = best
        silent_since = None


@given(polls, st.floats(min_value=PERIOD + 0.01, max_value=600.0))
def test_silence_longer_than_the_period_always_ends_in_a_new_run(
    sequence: list[Poll], silence: float
) -> None:
    tracker, now = RunTracker(PERIOD), 0.0
    for step, best in sequence:
        now += step
        tracker = tracker.unreachable(now) if best is None else tracker.answered(best, now)[0]
    tracker, _ = tracker.answered(100, now + 1.0)
    tracker = tracker.unreachable(now + 2.0)
    _, run = tracker.answered(100, now + 2.0 + silence)
    assert run is not None
