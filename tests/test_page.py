"""The status page (``/``) rendered from hand-built snapshots, and the history behind its chart.

No watcher, no browser: :func:`azwatch.page.render` is a function of a snapshot, so these
tests hand it one and read the HTML. tests/test_page_docker.py opens the live page in a real
browser.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from test_snapshot_http import SNAPSHOT, VIEW

from azwatch.config import Config
from azwatch.events import BlockImported, HeadSample, HeadUnavailable, LogCaughtUp, RunStarted
from azwatch.history import (
    CHART_SPAN,
    MAX_CHART_POINTS,
    MAX_RESTART_RECORDS,
    Chart,
    ChartPoint,
    RestartLog,
    RestartRecord,
    chart_capacity,
)
from azwatch.page import MAX_DRAWN, chart, render
from azwatch.snapshot import DecisionView, PauseView, RestartView, take
from azwatch.supervisor import ContainerEvents, HeadPolled, Supervisor

NOW = SNAPSHOT.time  # 2023-11-14 22:15:00 UTC


class Page(HTMLParser):
    """The parts of a page the tests look at: the text a person reads, and the SVG lines."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.words: list[str] = []
        self.polylines: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.meta: list[dict[str, str]] = []
        self._skip = 0
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {key: value or "" for key, value in attrs}
        if tag == "polyline":
            self.polylines.append(values)
        elif tag == "meta":
            self.meta.append(values)
        elif tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.words.append(" ".join(data.split()))

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def lines(self, series: str) -> list[list[tuple[float, float]]]:
        found = []
        for line in self.polylines:
            if line.get("class") == f"s-{series}":
                pairs = (pair.split(",") for pair in line["points"].split())
                found.append([(float(x), float(y)) for x, y in pairs])
        return found


POINTS = (
    ChartPoint(NOW - 100, 1000, 1002, 2),
    ChartPoint(NOW - 50, 1005, 1007, 2),
    ChartPoint(NOW, 1010, 1012, 2),
)


def test_the_page_is_one_self_contained_document_that_reloads_itself() -> None:
    text = render(SNAPSHOT, refresh=15)
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.meta
    assert {"http-equiv": "refresh", "content": "15"} in page.meta
    # Nothing to run, nothing to fetch: no script, no external resource, no URL at all.
    assert "script" not in page.tags
    assert not {"link", "img", "iframe", "object", "embed"} & set(page.tags)
    assert "://" not in text
    assert "style" in page.tags
    assert "svg" in page.tags


def test_a_card_says_what_the_container_is_doing() -> None:
    view = replace(
        VIEW,
        history=POINTS,
        effective_cooldown=600.0,
        cooldown_left=120.0,
        recent_restarts=(
            RestartView(NOW - 3600, "severe_lag", "lag 500 > BLOCK_LAG_100=100", False, "yes: x"),
            RestartView(NOW - 60, "stall", "best #1 has not advanced", False, None),
        ),
    )
    page = Page(render(replace(SNAPSHOT, containers=(view,))))
    text = page.text
    for said in (
        "node running",
        "state running",
        "sync mode not in major sync",
        "producing yes",
        "peers 7",
        "best block #1000",
        "network head #1003",
        "lag now 3 blocks",
        "decision now hold: healthy lag 3 within thresholds",
        "cooldown 10m00s, ends 22:17:00 UTC (in 2m00s)",
        "pause not paused",
        "restarts 2 since azwatch started, 1 failed",
    ):
        assert said in text, said
    # The newest restart first, each with its rule and whether it helped.
    table = text.split("Last restarts", 1)[1]
    assert table.index("22:14:00 UTC stall") < table.index("21:15:00 UTC severe_lag")
    assert "not judged yet" in table
    assert "yes: x" in table


def test_names_and_texts_are_escaped() -> None:
    name = '<script>alert("x")</script>&'
    view = replace(
        VIEW,
        name=name,
        decision=DecisionView("hold", "healthy", "<b>bold</b>", 1.0, None),
        fatal="Error: <oops>",
    )
    text = render(replace(SNAPSHOT, containers=(view,), problems=("<problem>",)))
    assert "<script>" not in text
    assert "<b>bold</b>" not in text
    assert "<oops>" not in text
    assert "<problem>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in text
    page = Page(text)
    assert name in page.text
    assert "Error: <oops>" in page.text


def test_unknown_values_say_unknown_never_none() -> None:
    view = replace(
        VIEW,
        best=None,
        head=None,
        lag=None,
        peers=None,
        finalized=None,
        session=None,
        decision=None,
        last_restart_time=None,
    )
    head = replace(SNAPSHOT.head, last_poll_age=None, last_ok_age=None)
    text = Page(render(replace(SNAPSHOT, containers=(view,), head=head))).text
    for said in (
        "peers unknown",
        "best block unknown",
        "network head unknown",
        "lag now unknown",
        "decision now unknown",
        "last head poll never",
    ):
        assert said in text, said
    assert "None" not in text


def test_the_chart_draws_each_series_through_its_points() -> None:
    svg = chart(POINTS, VIEW, NOW)
    page = Page(svg)
    # x from 4 to 396 over the 100 s; best and head share the blocks panel (y 132 up to 22).
    assert page.lines("best") == [[(4.0, 132.0), (200.0, 86.2), (396.0, 40.3)]]
    assert page.lines("head") == [[(4.0, 113.7), (200.0, 67.8), (396.0, 22.0)]]
    (lag,) = page.lines("lag")
    assert [x for x, _ in lag] == [4.0, 200.0, 396.0]
    assert len({y for _, y in lag}) == 1  # a steady lag is a flat line...
    assert 152 < lag[0][1] < 212  # ...inside the lag panel, not on its edge
    assert "last 1m40s" in page.text
    assert "now" in page.text


def test_an_unknown_value_breaks_the_line() -> None:
    points = (*POINTS[:2], ChartPoint(NOW - 25, 1007, None, None), POINTS[2])
    page = Page(chart(points, VIEW, NOW))
    assert [len(line) for line in page.lines("head")] == [2, 1]
    assert [len(line) for line in page.lines("best")] == [4]


def test_restarts_are_marked_on_the_chart() -> None:
    view = replace(VIEW, recent_restarts=(RestartView(NOW - 50, "stall", "d", False, None),))
    svg = chart(POINTS, view, NOW)
    assert '<line class="restart" x1="200.0"' in svg
    assert "<title>restart: stall</title>" in svg


def test_a_chart_of_six_hours_draws_a_bounded_number_of_points_and_keeps_spikes() -> None:
    points = [ChartPoint(NOW - 4000 * 5 + i * 5, 1000 + i, 1003 + i, 3) for i in range(4000)]
    points[2345] = replace(points[2345], lag=400)  # one spike
    page = Page(chart(points, VIEW, NOW))
    for series in ("best", "head", "lag"):
        (line,) = page.lines(series)
        assert len(line) <= MAX_DRAWN + 1
    (lag,) = page.lines("lag")
    assert min(y for _, y in lag) == pytest.approx(152 + 60 * 40 / 440, abs=0.2)  # the spike


def test_too_few_points_say_the_chart_is_being_collected() -> None:
    assert "collecting data" in chart((), VIEW, NOW)
    assert "collecting data" in chart(POINTS[:1], VIEW, NOW)


def test_a_paused_container_shows_its_pause_and_what_it_would_do() -> None:
    view = replace(
        VIEW,
        decision=DecisionView("paused", "severe_lag", "lag 500 > BLOCK_LAG_100=100", 0.2, None),
        pause=PauseView(NOW - 600, NOW + 3000, 3000.0, "resyncing <db>"),
    )
    page = Page(render(replace(SNAPSHOT, containers=(view,))))
    assert "node running restarts paused" in page.text
    assert "decision now paused: would restart: severe_lag lag 500 > BLOCK_LAG_100=100" in (
        page.text
    )
    assert "pause paused until 23:05:00 UTC (another 50m00s) resyncing <db>" in page.text


def test_dry_run_and_problems_are_in_the_header() -> None:
    sick = replace(SNAPSHOT, dry_run=True, problems=("the head poller has not polled recently",))
    text = Page(render(sick)).text
    assert "watcher not healthy the head poller has not polled recently" in text
    assert "dry run: no container is touched" in text
    assert "watcher healthy" in Page(render(SNAPSHOT)).text


def test_a_snapshot_without_containers_still_renders() -> None:
    text = Page(render(replace(SNAPSHOT, containers=()))).text
    assert "No container is watched yet." in text


# --- the history behind it: kept by the supervisor, bounded --------------------------------


def fed_supervisor(config: Config) -> Supervisor:
    supervisor = Supervisor(config)
    supervisor.watch("node", 0.0)
    events = (RunStarted("run-1", -100.0), LogCaughtUp(), BlockImported(1000))
    supervisor.handle(ContainerEvents("node", events), 0.0)
    return supervisor


def poll(supervisor: Supervisor, polls: range, interval: float) -> None:
    for index in polls:
        at = index * interval
        supervisor.handle(ContainerEvents("node", (BlockImported(1000 + index),)), at)
        supervisor.handle(HeadPolled(HeadSample(1003 + index)), at + 0.1)


def test_the_supervisor_keeps_a_point_per_head_poll_for_the_snapshot() -> None:
    supervisor = fed_supervisor(Config(container_names=("node",)))
    supervisor.handle(HeadPolled(HeadSample(1004)), 1.0)
    supervisor.handle(HeadPolled(HeadUnavailable("refused")), 11.0)
    supervisor.handle(HeadPolled(HeadSample(1010)), 21.0)
    snapshot = take(supervisor, now=21.0, wall=1_700_000_000.0, logs={}, head=SNAPSHOT.head)
    view = snapshot.container("node")
    assert view is not None
    assert view.history == (
        ChartPoint(1_700_000_000.0 - 20, 1000, 1004, 4),
        ChartPoint(1_700_000_000.0 - 10, 1000, None, None),  # no sample: no head, no lag
        ChartPoint(1_700_000_000.0, 1000, 1010, 10),
    )


def test_no_best_is_charted_while_the_log_history_is_read() -> None:
    supervisor = Supervisor(Config(container_names=("node",)))
    supervisor.watch("node", 0.0)
    supervisor.handle(ContainerEvents("node", (RunStarted("r", -5.0), BlockImported(7))), 0.0)
    supervisor.handle(HeadPolled(HeadSample(1000)), 1.0)
    chart_points = supervisor.books["node"].chart
    assert chart_points is not None
    assert list(chart_points) == [ChartPoint(1.0, None, 1000, None)]


def test_chart_capacity_is_six_hours_of_polls_capped() -> None:
    assert chart_capacity(10.0) == 2161
    assert chart_capacity(0.3) == MAX_CHART_POINTS
    assert chart_capacity(3600.0) == 7


def test_chart_memory_stays_bounded_after_many_more_polls() -> None:
    """Ten times the chart's capacity in polls: the chart holds its capacity, six hours at
    most, and memory after the first 3x is what it is after the 10x."""
    interval = 60.0  # 361 points: a test that runs in a moment under tracemalloc
    supervisor = fed_supervisor(Config(container_names=("node",), rpc_poll_interval=interval))
    capacity = chart_capacity(interval)
    tracemalloc.start()
    try:
        poll(supervisor, range(3 * capacity), interval)
        settled, _ = tracemalloc.get_traced_memory()
        poll(supervisor, range(3 * capacity, 10 * capacity), interval)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    points = supervisor.books["node"].chart
    assert points is not None
    assert len(points) == capacity
    kept = list(points)
    assert kept[-1].at - kept[0].at <= CHART_SPAN
    assert after - settled < 64 * 1024, (settled, after)


def test_chart_points_older_than_six_hours_are_dropped_when_polls_come_slower() -> None:
    chart_points = Chart(poll_interval=10.0)
    for minute in range(1000):  # a poll a minute, for longer than six hours
        chart_points.add(ChartPoint(minute * 60.0, 1, 1, 0))
    kept = list(chart_points)
    assert len(kept) == 361
    assert kept[-1].at - kept[0].at == CHART_SPAN


def test_restart_records_are_bounded_and_the_latest_gets_its_verdict() -> None:
    log = RestartLog()
    for index in range(3 * MAX_RESTART_RECORDS):
        log.judge("no: earlier")
        log.add(RestartRecord(float(index), "stall", "d", False))
    records = log.records()
    assert len(records) == MAX_RESTART_RECORDS
    assert records[0].at == 2 * MAX_RESTART_RECORDS
    assert records[-1].verdict is None
    log.judge("yes: lag 3")
    log.judge("no: judged twice")  # only once
    assert log.records()[-1].verdict == "yes: lag 3"
    assert all(record.verdict == "no: earlier" for record in log.records()[:-1])


def test_times_on_the_page_are_utc() -> None:
    assert time.strftime("%H:%M:%S", time.gmtime(NOW)) == "22:15:00"
    text = render(SNAPSHOT)
    assert re.search(r"as of 22:15:00 UTC", text)
