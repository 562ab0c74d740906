"""examples/grafana/azwatch-dashboard.json: its structure, and every query checked by promtool.

Grafana cannot run here, so the dashboard's queries are checked the way Prometheus would see
them: each ``expr`` (and each variable's ``label_values`` selector), with Grafana's variables
replaced by values, becomes a recording rule in a temporary rules file that
``promtool check rules`` must accept. tests/test_prometheus_live.py also runs them against a
real Prometheus scraping azwatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from promkit import (
    BUILTINS,
    PENDING_METRICS,
    dashboard,
    exported_metric_names,
    metric_names,
    panels,
    promtool,
    queries,
    substitute,
    used_variables,
    variables,
)


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    document = dashboard()
    assert document["title"]
    assert document["uid"] == "azwatch"
    assert isinstance(document["schemaVersion"], int)
    assert "id" not in document or document["id"] is None  # Grafana assigns its own on import
    ids = [panel["id"] for panel in panels(document)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def datasource_references(node: object) -> Iterator[object]:
    """The value of every "datasource" key in *node*, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasource_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_references(item)


def test_the_data_source_is_a_variable() -> None:
    document = dashboard()
    source = variables(document)["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    references = list(datasource_references(document))
    assert references
    # No data source is named or pinned by uid: every reference goes through the variable
    # (but for Grafana's own built-in annotations).
    for reference in references:
        if isinstance(reference, dict) and reference.get("type") == "grafana":
            continue
        assert reference == {"type": "prometheus", "uid": "${datasource}"}, reference


def test_every_panel_has_a_title_and_every_target_an_expr() -> None:
    document = dashboard()
    for panel in panels(document):
        assert panel.get("title", "").strip(), panel
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description", "").strip(), f"{panel['title']}: say what it shows"
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']}: no query"
        for target in targets:
            assert target.get("expr", "").strip(), f"{panel['title']} {target.get('refId')}"
        refs = [target["refId"] for target in targets]
        assert len(refs) == len(set(refs)), panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    used = set().union(*(metric_names(expr) for expr in queries(dashboard()).values()))
    wanted = {
        "azwatch_lag_blocks",
        "azwatch_local_best",
        "azwatch_network_head",
        "azwatch_restarts_total",
        "azwatch_effective_cooldown_seconds",
        "azwatch_peers",
        "azwatch_producing",
        "azwatch_major_sync",
        "azwatch_rpc_errors_total",
    }
    assert wanted <= used, wanted - used


def test_every_variable_a_query_uses_is_defined() -> None:
    document = dashboard()
    defined = set(variables(document)) | BUILTINS
    for where, expr in queries(document).items():
        assert used_variables(expr) <= defined, (where, used_variables(expr) - defined)


def test_the_queries_use_only_metrics_azwatch_exports() -> None:
    exported = exported_metric_names() | {"up"}
    for where, expr in queries(dashboard()).items():
        missing = metric_names(expr) - exported - PENDING_METRICS
        assert not missing, (where, missing)


@pytest.mark.parametrize("interval", ["1m", "5m"])
def test_promtool_accepts_every_query(tmp_path: Path, interval: str) -> None:
    found = queries(dashboard())
    rules = [
        {"record": f"dashboard:query_{index}", "expr": substitute(expr, interval)}
        for index, expr in enumerate(found.values())
    ]
    for rule in rules:
        assert "$" not in rule["expr"], rule["expr"]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout
