"""A real Prometheus scrapes a live azwatch /metrics endpoint, evaluates the alert rules and
answers the dashboard's queries.

No Docker: azwatch's own HTTP app (:func:`azwatch.http.build_app`) serves a hand-built
snapshot on 127.0.0.1, and Debian's prometheus binary runs with the scrape job of
examples/prometheus/prometheus.yml (pointed at that port, scraping every second) and the rules
of azwatch-rules.yml; then every query of examples/grafana/azwatch-dashboard.json must return
data. Everything listens on 127.0.0.1 and is bounded in time; Prometheus is
stopped in a ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import yaml
from loopback import start_on_loopback, stop
from promkit import RULES, SCRAPE_CONFIG, dashboard, queries, snapshot, substitute, tool, view

from azwatch.http import build_app

CONTAINER = "aleph-node"
#: Long enough for a slow CI machine to start Prometheus, scrape and evaluate a few times.
DEADLINE = 60.0


def free_port() -> int:
    """A port free on 127.0.0.1 right now (Prometheus binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prometheus_config(tmp_path: Path, azwatch_port: int) -> Path:
    """The example configuration, scraping 127.0.0.1:*azwatch_port* every second."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{azwatch_port}"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def start_prometheus(tmp_path: Path, config: Path, port: int) -> subprocess.Popen[bytes]:
    log = (tmp_path / "prometheus.log").open("wb")
    try:
        return subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()  # the child has its own copy


def stop_prometheus(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; reaps the process either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def exited(proc: subprocess.Popen[bytes], log: Path) -> str:
    return f"prometheus exited with {proc.returncode}:\n{log.read_text(errors='replace')}"


async def poll(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    done: Callable[[Any], bool],
    proc: subprocess.Popen[bytes],
    log: Path,
) -> Any:
    """GET *url* (JSON) every 0.25 s until ``done(answer)``; fails if Prometheus exits or
    rejects the request (a query it cannot parse or run)."""
    while True:
        if proc.poll() is not None:
            raise AssertionError(exited(proc, log))
        try:
            async with session.get(url, params=params) as reply:
                if 400 <= reply.status < 500:
                    raise AssertionError(f"{url} {params}: {reply.status} {await reply.text()}")
                if reply.status == 200:
                    answer = await reply.json()
                    if done(answer):
                        return answer
        except aiohttp.ClientError:
            pass  # not listening yet
        await anyio.sleep(0.25)


def has_result(answer: Any) -> bool:
    return bool(answer["data"]["result"])


async def test_prometheus_scrapes_azwatch_and_evaluates_the_rules(tmp_path: Path) -> None:
    tool("prometheus")
    lagging = snapshot(view(CONTAINER, lag=50, head=1050, best=1000))
    runner, azwatch_port = await start_on_loopback(build_app(lambda: lagging))
    proc: subprocess.Popen[bytes] | None = None
    log = tmp_path / "prometheus.log"
    try:
        port = free_port()
        proc = start_prometheus(tmp_path, prometheus_config(tmp_path, azwatch_port), port)
        api = f"http://127.0.0.1:{port}/api/v1"
        timeout = aiohttp.ClientTimeout(total=5)
        with anyio.fail_after(DEADLINE):
            async with aiohttp.ClientSession(timeout=timeout) as session:
                # The scrape reached azwatch's endpoint: the lag of the watched container.
                query = f'azwatch_lag_blocks{{job="azwatch", container="{CONTAINER}"}}'
                answer = await poll(
                    session,
                    f"{api}/query",
                    {"query": query},
                    has_result,
                    proc,
                    log,
                )
                (series,) = answer["data"]["result"]
                assert series["metric"]["container"] == CONTAINER
                assert series["metric"]["instance"] == f"127.0.0.1:{azwatch_port}"
                assert float(series["value"][1]) == 50

                up = await poll(
                    session,
                    f"{api}/query",
                    {"query": 'up{job="azwatch"}'},
                    has_result,
                    proc,
                    log,
                )
                assert [float(s["value"][1]) for s in up["data"]["result"]] == [1.0]

                # The rules loaded and evaluate without error against the real series; the
                # lag of 50 makes AzwatchNodeLagging pending (its `for: 5m` has not passed).
                # (An evaluation may have run before the first scrape: wait for one after it.)
                def evaluated(answer: Any) -> bool:
                    rules = {r["name"]: r for g in answer["data"]["groups"] for r in g["rules"]}
                    return all(r["health"] != "unknown" for r in rules.values()) and (
                        rules.get("AzwatchNodeLagging", {}).get("state", "inactive") != "inactive"
                    )

                answer = await poll(session, f"{api}/rules", {}, evaluated, proc, log)
                rules = {r["name"]: r for group in answer["data"]["groups"] for r in group["rules"]}
                assert {name: r["health"] for name, r in rules.items()} == dict.fromkeys(
                    rules, "ok"
                ), {name: r.get("lastError") for name, r in rules.items()}
                lag_alert = rules["AzwatchNodeLagging"]
                assert lag_alert["state"] == "pending"
                assert [a["labels"]["container"] for a in lag_alert["alerts"]] == [CONTAINER]
                # A healthy watcher with a target: neither of these is even pending.
                assert rules["AzwatchDown"]["state"] == "inactive"
                assert rules["AzwatchAbsent"]["state"] == "inactive"

                # Every query of the Grafana dashboard runs and shows data from these series.
                for where, expr in queries(dashboard()).items():
                    params = {"query": substitute(expr, "30s")}
                    answer = await poll(session, f"{api}/query", params, has_result, proc, log)
                    assert answer["status"] == "success", where
    finally:
        try:
            if proc is not None:
                stop_prometheus(proc)
        finally:
            await stop(runner)
    assert proc.returncode == 0, log.read_text(errors="replace")
