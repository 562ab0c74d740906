"""Helpers for the tests of examples/prometheus and examples/grafana: the Prometheus tools, a
hand-built snapshot with every series set, and the metric names azwatch really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
DASHBOARD = ROOT / "examples" / "grafana" / "azwatch-dashboard.json"

#: Metrics the rules or the dashboard use that azwatch does not export yet (none now).
PENDING_METRICS: frozenset[str] = frozenset()

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


# --- the Grafana dashboard ------------------------------------------------------------------

#: Grafana's own variables the queries may use.
BUILTINS = {"__rate_interval", "__interval", "__range"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.S)


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def variables(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in document["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def queries(document: dict[str, Any]) -> dict[str, str]:
    """Every PromQL expression of the dashboard, by where it is."""
    found = {
        f"panel {panel['id']} {panel['title']!r} target {target['refId']}": target["expr"]
        for panel in panels(document)
        for target in panel.get("targets", [])
    }
    for name, variable in variables(document).items():
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable_query(variable).strip())
            assert match, f"variable {name}: expected label_values(selector, label)"
            found[f"variable {name}"] = match.group(1)
    return found


def used_variables(expr: str) -> set[str]:
    return {braced or plain for braced, plain in _VARIABLE.findall(expr)}


def substitute(expr: str, interval: str = "5m") -> str:
    """*expr* as Grafana sends it: ranges become *interval*, selections match everything."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return interval if name in BUILTINS else ".*"

    return _VARIABLE.sub(value, expr)
