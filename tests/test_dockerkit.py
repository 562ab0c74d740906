"""The Docker test infrastructure itself, against the live daemon: the fake node image,
its log format, its parameters, and how it behaves under docker restart/stop."""

from __future__ import annotations

import re
import time
from pathlib import Path

import aiodocker
import anyio
import pytest
from dockerkit import (
    FAKE_NODE_IMAGE,
    LABEL,
    DockerEvents,
    FakeNode,
    FakeNodeFactory,
    collect_events,
    docker,
    wait_until,
)

pytestmark = pytest.mark.docker

TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
WORKER = "INFO tokio-runtime-worker"
SHORT = r"0x[0-9a-f]{4}…[0-9a-f]{4}"
HASH = r"0x[0-9a-f]{64}"
IMPORTED = re.compile(rf"^{TS}  {WORKER} substrate: ✨ Imported #(\d+) \({SHORT}\)    $")


def imported_numbers(text: str) -> list[int]:
    return [int(m[1]) for line in text.splitlines() if (m := IMPORTED.match(line))]


def test_image_builds_from_scratch(fake_node_image: str) -> None:
    assert fake_node_image == FAKE_NODE_IMAGE
    info = docker("image", "inspect", "--format", "{{json .Config.Labels}}", fake_node_image)
    assert f'"{LABEL}":"1"' in info.stdout
    # busybox applets are installed, and the script is in place
    out = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/ls", fake_node_image, "/"
    )
    assert "fakenode.sh" in out.stdout.split()


def test_banner_and_imported_lines_exact_format_on_stderr(fake_node: FakeNodeFactory) -> None:
    node = fake_node(START=1798, STEP=2, TICK=0.2)
    node.wait_for_log("Imported #1802")
    assert node.logs(stderr=False) == "", "the node log must go to stderr only"
    lines = node.logs(stdout=False).splitlines()
    main = "INFO                 main"
    expected_banner = [
        rf"{TS}  {main} sc_cli::runner: Aleph Node    ",
        rf"{TS}  {main} sc_cli::runner: ✌️  version 15\.1\.0-f2a00c1dbd3    ",
        rf"{TS}  {main} sc_service::builder: 📦 Highest known block at #1798    ",
        rf"{TS}  {WORKER} aleph-block-sync: Switched to major sync state\.    ",
        rf"{TS}  {WORKER} aleph-party: Running session 1\.    ",
    ]
    banner = iter(lines)
    for pattern in expected_banner:  # in this order, other lines may come in between
        assert any(re.fullmatch(pattern, line) for line in banner), pattern
    assert all(line.endswith("    ") for line in lines)
    numbers = imported_numbers("\n".join(lines))
    assert numbers[:4] == [1799, 1800, 1801, 1802]
    # a session boundary (1800 = 2 * 900) right after its block
    i = lines.index(next(ln for ln in lines if "Imported #1800 " in ln))
    assert re.fullmatch(rf"{TS}  {WORKER} aleph-party: Running session 2\.    ", lines[i + 1])
    # synced by default: leaves major sync at the first tick
    assert any(ln.endswith("aleph-block-sync: No longer in major sync state.    ") for ln in lines)
    assert node.wait_best(1802) >= 1802


def test_status_report_and_block_production_format(fake_node: FakeNodeFactory) -> None:
    node = fake_node(START=100, STEP=8, TICK=0.2, PRODUCE=1, PEERS=7, STATUS_EVERY=1)
    node.wait_for_log("aleph-block-sync: Imported: #")
    node.wait_for_log("Imported #120 ")
    text = node.logs()
    for kind in ("sync", "auth"):
        assert re.search(
            rf"^{TS}  {WORKER} aleph-network: Network status report: "
            rf"/0x7025…344e/{kind}/0 connected peers - 7;     $",
            text,
            re.M,
        ), kind
    status = re.search(
        rf"^{TS}  {WORKER} aleph-block-sync: Imported: #(\d+) \({SHORT}\), "
        rf"finalized: #(\d+) \({SHORT}\), favourite: #(\d+) \({SHORT}\)\.    $",
        text,
        re.M,
    )
    assert status, text
    assert int(status[2]) == int(status[1]) - 2
    assert status[3] == status[1]
    prepared = re.search(
        rf"^{TS}  {WORKER} sc_basic_authorship::basic_authorship: 🎁 Prepared block for "
        rf"proposing at 112 \(3 ms\) \[hash: ({HASH}); parent_hash: ({HASH}); "
        rf"extrinsics \(1\): \[{HASH}\]\]    $",
        text,
        re.M,
    )
    assert prepared, text
    sealed = re.search(
        rf"^{TS}  {WORKER} aura: 🔖 Pre-sealed block for proposal at 112\. "
        rf"Hash now ({HASH}), previously ({HASH})\.    $",
        text,
        re.M,
    )
    assert sealed, text
    assert sealed[2] == prepared[1]
    # the imported block's short hash is the short form of "Hash now"
    final = sealed[1]
    assert f"Imported #112 ({final[:6]}…{final[-4:]})" in text
    # ...and the parent is block 111
    imported_111 = re.search(r"Imported #111 \((0x[0-9a-f]{4})…([0-9a-f]{4})\)", text)
    assert imported_111
    assert prepared[2].startswith(imported_111[1])
    assert prepared[2].endswith(imported_111[2])
    # only every 8th block
    assert "proposing at 113 " not in text


def test_step_zero_stalls_and_params_file_takes_effect(fake_node: FakeNodeFactory) -> None:
    node = fake_node(START=500, STEP=1, TICK=0.1)
    node.wait_best(503)
    node.set(STEP=0)
    time.sleep(0.3)  # a tick or two to pick it up
    before = node.logs()
    best = node.best()
    assert best is not None
    time.sleep(0.6)
    assert imported_numbers(node.logs()) == imported_numbers(before)
    assert node.best() == best

    node.set(STEP=5, MAJOR_SYNC=1, PEERS=3, STATUS_EVERY=1)
    assert node.params() == {"STEP": "5", "MAJOR_SYNC": "1", "PEERS": "3", "STATUS_EVERY": "1"}
    node.wait_for_log("connected peers - 3;")
    node.wait_best(best + 10)
    text = node.logs()
    new = imported_numbers(text)[len(imported_numbers(before)) :]
    assert new[:10] == list(range(best + 1, best + 11))
    assert text.count("Switched to major sync state.") == 2  # banner + the change

    node.set(MAJOR_SYNC=None)  # back to the environment's value (0)
    node.wait_for_log("No longer in major sync state.", count=2)


def test_restart_continues_from_saved_best(fake_node: FakeNodeFactory) -> None:
    node = fake_node(START=5000, STEP=10, TICK=0.1)
    node.wait_best(5050)
    started = node.started_at()
    with DockerEvents(node.name) as events:
        t0 = time.monotonic()
        node.restart(t=10)
        elapsed = time.monotonic() - t0
        events.wait_for("restart")
    assert elapsed < 5, f"docker restart -t 10 took {elapsed:.1f} s: SIGTERM not handled?"
    assert node.started_at() != started
    actions = events.actions()
    assert {"kill", "die", "start", "restart"} <= set(actions), actions
    die = next(e for e in events.events if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "0"
    node.wait_for_log(re.compile(r"Highest known block at #(?!5000 )"))
    highest = [
        int(m[1]) for m in re.finditer(r"Highest known block at #(\d+)", node.logs(stdout=False))
    ]
    assert highest[0] == 5000
    assert highest[1] >= 5050
    # the numbering goes on from there, without a gap or a repeat
    after = imported_numbers(node.logs())[-1]
    node.wait_best(after + 20)
    numbers = imported_numbers(node.logs())
    assert numbers == list(range(5001, numbers[-1] + 1))


def test_stop_is_prompt_unless_term_is_ignored(fake_node: FakeNodeFactory) -> None:
    polite = fake_node(TICK=0.5)
    stubborn = fake_node(TICK=0.5, IGNORE_TERM=1)
    polite.wait_for_log("Imported #")
    stubborn.wait_for_log("Imported #")

    t0 = time.monotonic()
    polite.stop(t=10)
    assert time.monotonic() - t0 < 3
    assert polite.exit_code() == 0

    t0 = time.monotonic()
    stubborn.stop(t=1)
    assert time.monotonic() - t0 >= 0.9  # waited for the timeout, then SIGKILL
    assert stubborn.exit_code() == 137

    polite.start()  # a stopped node starts again (instance start = docker start)
    polite.wait_status("running")


def test_quiet_prints_nothing_but_runs(fake_node: FakeNodeFactory) -> None:
    node = fake_node(START=10, STEP=1, TICK=0.1, QUIET=1)
    node.wait_best(15)
    assert node.logs() == ""
    assert node.status() == "running"
    node.set(QUIET=0)
    node.wait_for_log("Imported #")


def test_exit_code_and_restart_policy(fake_node: FakeNodeFactory) -> None:
    node = fake_node(TICK=0.1, restart_policy="on-failure:2")
    node.wait_for_log("Imported #")
    since = time.time()
    node.set(EXIT=3)  # stays in /ctl/params: it fails again after each restart
    wait_until(
        lambda: node.status() == "exited" and node.restart_count() == 2,
        what="two restarts by the policy, then exited",
    )
    assert node.exit_code() == 3
    dies = [e for e in collect_events(node.name, since) if e["Action"] == "die"]
    assert [e["Actor"]["Attributes"]["exitCode"] for e in dies] == ["3", "3", "3"]
    node.set(EXIT=None)
    node.start()
    node.wait_for_log("Aleph Node", count=4)


def test_without_ctl_mount_starts_from_start_each_run(fake_node_image: str, tmp_path: Path) -> None:
    name = f"azwatch-test-noctl-{time.monotonic_ns()}"
    args = ["run", "-d", "--name", name, "--network", "none", "--label", f"{LABEL}=1"]
    cid = docker(*args, "-e", "START=77", "-e", "TICK=0.1", fake_node_image).stdout.strip()
    node = FakeNode(name, tmp_path, fake_node_image, cid)  # only for its log helpers
    try:
        node.wait_for_log("Imported #80 ")
        node.restart(t=5)
        node.wait_for_log("Highest known block at #77 ", count=2)
        assert node.logs(stderr=False) == ""  # no complaint on stdout either
        assert node.best() is None
    finally:
        node.remove()


def test_class_start_and_manual_cleanup(fake_node_image: str, tmp_path: Path) -> None:
    node = FakeNode.start(f"azwatch-test-manual-{time.monotonic_ns()}", tmp_path, TICK=0.2)
    try:
        assert node.status() == "running"
        assert node.inspect()["Config"]["Env"].count("TICK=0.2") == 1
        assert node.inspect()["HostConfig"]["NetworkMode"] == "none"
    finally:
        node.remove()
    node.remove()  # idempotent
    with pytest.raises(Exception, match="No such"):
        node.inspect()


async def test_aiodocker_follows_the_fake_node_log_until_it_stops(
    docker_engine: str, fake_node: FakeNodeFactory
) -> None:
    node = await anyio.to_thread.run_sync(lambda: fake_node(STEP=3, TICK=0.1))
    seen: list[str] = []
    async with aiodocker.Docker(url=docker_engine) as client:
        container = await client.containers.get(node.name)
        # Read to the end of the stream: aiodocker 0.27 leaks the HTTP response (an
        # "Unclosed connection" ResourceWarning) when a follow=True stream is left early,
        # even through aclosing(). The stream ends when the container stops.
        with anyio.fail_after(10):
            async for chunk in container.log(stdout=True, stderr=True, follow=True):
                seen.append(chunk)
                if len(imported_numbers("".join(seen))) == 3:
                    await anyio.to_thread.run_sync(node.stop)
    numbers = imported_numbers("".join(seen))
    assert numbers[:3] == [1001, 1002, 1003]
    assert numbers == list(range(1001, numbers[-1] + 1))
    assert node.status() == "exited"
