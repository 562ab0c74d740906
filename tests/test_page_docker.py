"""The status page and the maintenance pause, live: a watcher, a fake node container, the
fake reference RPC, a real browser (headless Chromium) and the real CLI.

What is checked is what a person sees (the page's text as Chromium builds it, a screenshot)
and what Docker itself reports (its events), not only what the watcher believes. Chromium
only ever opens the watcher's page on 127.0.0.1. Without Chromium these tests skip, and fail
under ``CI=true`` (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from dockerkit import DockerEvents, FakeNodeFactory, skip_or_fail
from fakerpc import FakeRpc
from test_cli import without_containers
from watchkit import NODE, HeadMover, eventually, running, scaled

from azwatch.watcher import Watcher

pytestmark = pytest.mark.docker

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        skip_or_fail("chromium is not installed (Debian package chromium; .ci/run installs it)")
    return found


async def browse(url: str, workdir: Path, *mode: str) -> str:
    """Run headless Chromium on *url* (127.0.0.1 only) in a fresh profile; its stdout."""
    assert url.startswith("http://127.0.0.1:"), url
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *mode, url]
    with anyio.fail_after(90):
        done = await anyio.run_process(command, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


async def screenshot(url: str, path: Path, width: int, height: int) -> tuple[int, int]:
    """A PNG of *url* at *path*; its size in pixels."""
    await browse(url, path.parent, f"--screenshot={path}", f"--window-size={width},{height}")
    data = await anyio.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    size: tuple[int, int] = struct.unpack(">II", data[16:24])
    return size


class Text(HTMLParser):
    """The text a person reads on the page, card by card, and the chart's lines."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.cards: dict[str, list[str]] = {}
        self.polylines: list[str] = []
        self.restart_marks = 0
        self._card: list[str] | None = None
        self._depth = 0
        self._hidden = 0
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and values.get("class") == "card":
            self._card = self.cards.setdefault(str(values.get("id")), [])
        if tag == "polyline":
            self.polylines.append(values.get("points") or "")
        if tag == "line" and values.get("class") == "restart":
            self.restart_marks += 1
        if tag in ("style", "title"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._hidden -= 1
        if tag == "section":
            self._card = None

    def handle_data(self, data: str) -> None:
        if self._card is not None and not self._hidden and data.strip():
            self._card.append(" ".join(data.split()))

    def card(self, name: str) -> str:
        return " ".join(self.cards[f"container-{name}"])


async def status(base: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/status") as reply,
    ):
        document: dict[str, Any] = json.loads(await reply.text())
    return document


async def dump_dom_beside_status(base: str, name: str, workdir: Path) -> tuple[str, set[int]]:
    """The page's DOM as Chromium built it, and every lag /status said meanwhile."""
    lags: set[int] = set()
    dom = ""

    async def sample() -> None:
        while True:
            lag = (await status(base))["containers"][name]["lag"]
            if isinstance(lag, int):
                lags.add(lag)
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as group:
        group.start_soon(sample)
        await anyio.sleep(0.1)
        dom = await browse(f"{base}/", workdir, "--dump-dom")
        await anyio.sleep(0.1)
        group.cancel_scope.cancel()
    return dom, lags


def latest_verdict(watcher: Watcher, name: str) -> str | None:
    records = watcher.supervisor.books[name].restart_log.records()
    return records[-1].verdict if records else None


async def cli(*argv: str) -> tuple[int, str, str]:
    done = await anyio.run_process(
        [sys.executable, "-m", "azwatch", *argv], env=without_containers(), check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_the_status_page_in_a_real_browser(
    fake_node: FakeNodeFactory, tmp_path: Path
) -> None:
    """Chromium shows the container, the lag /status gives, a chart with points, and the
    restart once one is decided, with its rule and whether it helped."""
    chromium()
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node)
        config = scaled((node.name,), rpc.url, http_port=0, cooldown=3.0)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                assert watcher.http_address is not None
                base = f"http://127.0.0.1:{watcher.http_address[1]}"
                book = watcher.supervisor.books[node.name]
                await eventually(
                    lambda: book.chart is not None and len(book.chart) >= 8 and book.decision,
                    within=10,
                    what="a few head polls charted and a decision",
                )
                dom, lags = await dump_dom_beside_status(base, node.name, tmp_path)
                page = Text(dom)
                card = page.card(node.name)
                assert card.startswith(f"{node.name} running")
                shown = re.search(r"lag now (-?\d+) blocks?", card)
                assert shown is not None, card
                assert int(shown[1]) in lags, (shown[1], lags)
                assert "decision now hold:" in card
                assert "No restart since azwatch started." in card
                points = [line.split() for line in page.polylines]
                assert len(points) >= 3  # best, head, lag
                assert all(len(line) >= 2 for line in points)

                mover.offset = 500  # the node falls badly behind: a severe-lag restart
                with anyio.fail_after(20):
                    await events.wait_for_async("restart")
                mover.offset = 0  # and the restart helped
                await eventually(
                    lambda: latest_verdict(watcher, node.name),
                    within=10,
                    what="the restart judged",
                )
                await anyio.sleep(1.5)  # a few points of the recovery on the chart
                dom, _ = await dump_dom_beside_status(base, node.name, tmp_path)
                page = Text(dom)
                card = page.card(node.name)
                restarts = card.split("Last restarts", 1)[1]
                assert re.search(
                    r"\d\d:\d\d:\d\d UTC severe_lag lag \d+ > BLOCK_LAG_100=100", restarts
                )
                assert "yes: lag" in restarts  # it helped
                assert "restarts 1 since azwatch started" in card
                assert page.restart_marks == 1
                desktop = tmp_path / "status-page.png"
                phone = tmp_path / "status-page-phone.png"
                assert await screenshot(f"{base}/", desktop, 1100, 1000) == (1100, 1000)
                assert await screenshot(f"{base}/", phone, 412, 1500) == (412, 1500)
                print(f"\nscreenshots: {desktop} {phone}")
    assert events.actions().count("restart") == 1


async def test_a_paused_container_is_not_restarted_until_resumed(
    fake_node: FakeNodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """`azwatch pause`: the watcher keeps deciding and says it would restart, Docker reports
    no restart; `azwatch resume`: the restart comes at once. A new watcher starts unpaused."""
    caplog.set_level(logging.INFO, logger="azwatch")
    node = fake_node(**NODE)
    async with FakeRpc() as rpc:
        mover = HeadMover(rpc, node, offset=500)  # lagging from the start
        config = scaled((node.name,), rpc.url, http_port=0, cooldown=6.0)
        with DockerEvents(node.name) as events:
            async with running(config, mover) as watcher:
                assert watcher.http_address is not None
                base = f"http://127.0.0.1:{watcher.http_address[1]}"
                code, out, err = await cli(
                    "pause", node.name, "--for", "10m", "--reason", "maintenance", "--url", base
                )
                assert (code, err) == (0, ""), err
                assert out.startswith(f"paused {node.name} for 10m00s")
                would = await eventually(
                    lambda: (
                        [
                            r.getMessage()
                            for r in caplog.records
                            if "paused: would restart: severe_lag" in r.getMessage()
                        ]
                        or None
                    ),
                    within=15,
                    what="the paused watcher says it would restart",
                )
                assert "maintenance" in would[0]
                await anyio.sleep(3 * config.check_interval)  # still deciding, still not
                assert "restart" not in events.actions()
                assert "kill" not in events.actions()
                document = (await status(base))["containers"][node.name]
                assert document["paused"] is True
                assert document["pause"]["reason"] == "maintenance"
                assert document["decision"]["action"] == "paused"
                assert document["restarts"] == 0
                code, out, _ = await cli("status", "--url", base)
                assert code == 0
                assert "paused" in out.splitlines()[1]
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{base}/metrics") as reply,
                ):
                    metrics = await reply.text()
                assert f'azwatch_paused{{container="{node.name}"}} 1.0' in metrics

                code, out, err = await cli("resume", node.name, "--url", base)
                assert (code, out, err) == (0, f"resumed {node.name}\n", "")
                with anyio.fail_after(10):
                    await events.wait_for_async("restart")
                mover.offset = 0
                # Pause again, then stop this watcher while paused...
                code, _, err = await cli("pause", node.name, "--url", base)
                assert (code, err) == (0, "")
                assert watcher.snapshot().containers[0].paused
        assert events.actions().count("restart") == 1
        # ...and a new watcher, like a restarted azwatch, starts unpaused.
        async with running(config, mover) as again:
            assert isinstance(again, Watcher)
            assert again.http_address is not None
            base = f"http://127.0.0.1:{again.http_address[1]}"
            document = (await status(base))["containers"][node.name]
            assert (document["paused"], document["pause"]) == (False, None)
