"""Prometheus metrics, read from a snapshot taken when scraped.

A collector registered in a registry private to each ``watch()`` call (never the global
one, which would clash when a process watches twice and would mix our series into the host
application's). Collecting a fresh :class:`~azwatch.snapshot.Snapshot` at scrape time means
there is no second copy of the state to keep in sync: the numbers are exactly what the
decision task knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from azwatch.policy import Rule
from azwatch.snapshot import Snapshot


class SnapshotCollector(Collector):
    """Exposes a snapshot as ``azwatch_*`` series with a ``container`` label."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        label = ["container"]
        gauges = {
            "local_best": GaugeMetricFamily(
                "azwatch_local_best",
                "Highest block the node imported in its current run",
                labels=label,
            ),
            "local_finalized": GaugeMetricFamily(
                "azwatch_local_finalized",
                "Finalized block from the node's status line",
                labels=label,
            ),
            "network_head": GaugeMetricFamily(
                "azwatch_network_head", "Network head from the reference RPC", labels=label
            ),
            "lag": GaugeMetricFamily(
                "azwatch_lag_blocks", "Network head minus local best", labels=label
            ),
            "major_sync": GaugeMetricFamily(
                "azwatch_major_sync", "1 while the node reports major sync", labels=label
            ),
            "producing": GaugeMetricFamily(
                "azwatch_producing", "1 while the node produces blocks this session", labels=label
            ),
            "peers": GaugeMetricFamily(
                "azwatch_peers", "Sync peers from the node's network status report", labels=label
            ),
            "running": GaugeMetricFamily(
                "azwatch_container_running", "1 while the container runs", labels=label
            ),
            "cooldown": GaugeMetricFamily(
                "azwatch_effective_cooldown_seconds",
                "Cooldown after back-off before the next restart may happen",
                labels=label,
            ),
            "last_restart": GaugeMetricFamily(
                "azwatch_last_restart_timestamp_seconds",
                "Unix time of the watcher's latest restart (or dry-run decision)",
                labels=label,
            ),
            "paused": GaugeMetricFamily(
                "azwatch_paused",
                "1 while the operator's maintenance pause keeps azwatch from restarting",
                labels=label,
            ),
            "crash_loop": GaugeMetricFamily(
                "azwatch_crash_loop",
                "1 while the container keeps exiting by itself (azwatch restarts nothing)",
                labels=label,
            ),
        }
        restarts = CounterMetricFamily(
            "azwatch_restarts",
            "Restarts decided by the watcher (dry-run decisions included), by rule",
            labels=["container", "rule"],
        )
        failed = CounterMetricFamily(
            "azwatch_restart_failures", "Restart calls that failed", labels=label
        )
        wrong_chain = GaugeMetricFamily(
            "azwatch_reference_wrong_chain",
            "1 for each reference endpoint that serves another chain than the node (not used)",
            labels=["container", "endpoint"],
        )
        lines = CounterMetricFamily(
            "azwatch_log_lines", "Log lines read from the container", labels=label
        )
        crashes = CounterMetricFamily(
            "azwatch_crashes",
            "Exits of the container by itself (not by a restart or stop someone asked for)",
            labels=label,
        )
        for view in snapshot.containers:
            name = view.name
            values: dict[str, float | None] = {
                "local_best": view.best,
                "local_finalized": view.finalized,
                "network_head": view.head,
                "lag": view.lag,
                "major_sync": float(view.major_sync),
                "producing": float(view.producing),
                "peers": view.peers,
                "running": float(view.running),
                "cooldown": view.effective_cooldown,
                "last_restart": view.last_restart_time,
                "paused": float(view.paused),
                "crash_loop": float(view.crash_loop),
            }
            for key, value in values.items():
                if value is not None:
                    gauges[key].add_metric([name], value)
            by_rule = dict(view.restarts_by_rule)
            for rule in Rule:
                restarts.add_metric([name, rule.value], by_rule.get(rule.value, 0))
            failed.add_metric([name], view.failed_restarts)
            lines.add_metric([name], view.log.lines)
            crashes.add_metric([name], view.crashes)
            for endpoint in view.wrong_chain:
                wrong_chain.add_metric([name, endpoint], 1)
        yield from gauges.values()
        yield restarts
        yield failed
        yield lines
        yield crashes
        yield wrong_chain
        yield from _rpc_errors(snapshot)
        yield from _node_errors(snapshot)


def _rpc_errors(snapshot: Snapshot) -> Iterable[Metric]:
    errors = CounterMetricFamily(
        "azwatch_rpc_errors",
        "Failed polls of a reference endpoint, by endpoint host and kind",
        labels=["endpoint", "kind"],
    )
    for endpoint, kind, count in snapshot.head.errors:
        errors.add_metric([endpoint, kind], count)
    yield errors


def _node_errors(snapshot: Snapshot) -> Iterable[Metric]:
    errors = CounterMetricFamily(
        "azwatch_node_channel_errors",
        "Failed polls of a container's node channel (its own RPC or metrics), by kind",
        labels=["container", "interface", "kind"],
    )
    for view in snapshot.containers:
        if view.node is not None:
            for interface, kind, count in view.node.errors:
                errors.add_metric([view.name, interface, kind], count)
    yield errors


def registry_for(snapshot: Callable[[], Snapshot]) -> CollectorRegistry:
    """A fresh registry holding only a collector of the snapshots *snapshot* takes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return registry
