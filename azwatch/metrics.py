"""Prometheus metrics, read from the watcher's state when scraped.

A collector registered in a registry private to each ``watch()`` call (never the global
one, which would clash when a process watches twice and would mix our series into the host
application's). Collecting at scrape time means there is no second copy of the state to keep
in sync: the numbers are exactly what the decision task knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from azwatch.policy import Rule, effective_cooldown

if TYPE_CHECKING:
    from azwatch.watcher import Watcher


class WatcherCollector(Collector):
    """Exposes one watcher's view as ``azwatch_*`` series with a ``container`` label."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def collect(self) -> Iterator[Metric]:
        watcher = self.watcher
        now = watcher.clock()
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
        }
        restarts = CounterMetricFamily(
            "azwatch_restarts",
            "Restarts decided by the watcher (dry-run decisions included), by rule",
            labels=["container", "rule"],
        )
        failed = CounterMetricFamily(
            "azwatch_restart_failures", "Restart calls that failed", labels=label
        )
        lines = CounterMetricFamily(
            "azwatch_log_lines", "Log lines read from the container", labels=label
        )
        for name, tracked in sorted(watcher.tracked.items()):
            state, run = tracked.state, tracked.state.run
            values: dict[str, float | None] = {
                "local_best": run.best,
                "local_finalized": run.finalized,
                "network_head": state.head,
                "lag": state.lag,
                "major_sync": float(run.major_sync),
                "producing": float(run.producing(now)),
                "peers": run.peers,
                "running": float(state.running),
                "cooldown": effective_cooldown(state, tracked.config),
                "last_restart": tracked.last_restart_wall,
            }
            for key, value in values.items():
                if value is not None:
                    gauges[key].add_metric([name], value)
            for rule in Rule:
                restarts.add_metric([name, rule.value], tracked.restarts_by_rule.get(rule, 0))
            failed.add_metric([name], tracked.failed_restarts)
            lines.add_metric([name], tracked.follower.status.lines)
        yield from gauges.values()
        yield restarts
        yield failed
        yield lines
        yield from self._rpc_errors()

    def _rpc_errors(self) -> Iterable[Metric]:
        errors = CounterMetricFamily(
            "azwatch_rpc_errors",
            "Failed polls of a reference endpoint, by endpoint host and kind",
            labels=["endpoint", "kind"],
        )
        poller = self.watcher.poller
        if poller is not None:
            for (endpoint, kind), count in sorted(poller.errors.items()):
                errors.add_metric([endpoint, str(kind)], count)
        yield errors


def registry_for(watcher: Watcher) -> CollectorRegistry:
    """A fresh registry holding only *watcher*'s collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatcherCollector(watcher))
    return registry
