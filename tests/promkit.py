"""Helpers for the tests of examples/prometheus: the Prometheus tools, a hand-built snapshot
with every series set, and the metric names azwatch really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from dockerkit import skip_or_fail
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from azwatch.metrics import registry_for
from azwatch.snapshot import ContainerView, DecisionView, HeadView, LogView, Snapshot

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "examples" / "prometheus"
RULES = PROMETHEUS_DIR / "azwatch-rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "azwatch-rules.test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"

#: Metrics the rules or the dashboard use that azwatch does not export yet (being added).
PENDING_METRICS = frozenset({"azwatch_crash_loop"})

#: Metric names in a PromQL expression: azwatch's own, and Prometheus' `up`.
_METRIC_NAME = re.compile(r"\b(azwatch_[a-z_]+|up)\b")


def tool(name: str) -> str:
    """The path of the command *name* (Debian's prometheus package ships promtool and
    prometheus); skips the test without it, and fails it under ``CI=true``."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(
            f"{name} is not installed (Debian package prometheus; bash .ci/run installs it)"
        )
    return path


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` (bounded in time) and return what it did; never raises on failure."""
    return subprocess.run(
        [tool("promtool"), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (``azwatch_*`` and ``up``)."""
    return set(_METRIC_NAME.findall(expr))


def view(name: str = "aleph-node", **changes: object) -> ContainerView:
    """A watched container with every value that becomes a series set."""
    values: dict[str, object] = {
        "name": name,
        "running": True,
        "status": "running",
        "run_id": "abc@t",
        "run_age": 400.0,
        "log_live": True,
        "best": 1000,
        "best_advanced_age": 1.0,
        "finalized": 998,
        "major_sync": False,
        "producing": True,
        "session": 12,
        "peers": 7,
        "fatal": None,
        "head": 1050,
        "lag": 50,
        "restarts": 2,
        "restarts_by_rule": (("severe_lag", 1), ("stall", 1)),
        "failed_restarts": 1,
        "unhelped_restarts": 4,
        "restart_in_flight": False,
        "effective_cooldown": 3600.0,
        "cooldown_left": 0.0,
        "last_restart_time": 1_700_000_000.0,
        "decision": DecisionView("hold", "cooldown", "lag 50 > BLOCK_LAG_20=20", 0.5, None),
        "log": LogView(attached=True, detail="following", lines=420, last_line_age=0.4),
    }
    values.update(changes)
    return ContainerView(**values)  # type: ignore[arg-type]


def snapshot(*views: ContainerView, time: float = 1_700_000_100.0) -> Snapshot:
    """A healthy watcher's snapshot of *views* (one default container when none given)."""
    head = HeadView(last_poll_age=2.0, last_ok_age=2.0, errors=(("rpc.azero.dev", "timeout", 3),))
    return Snapshot(time=time, dry_run=False, head=head, containers=views or (view(),), problems=())


def exported_metric_names() -> set[str]:
    """The sample names azwatch's /metrics shows for a snapshot with every series set."""
    text = generate_latest(registry_for(lambda: snapshot())).decode()
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
