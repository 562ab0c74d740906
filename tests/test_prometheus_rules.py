"""examples/prometheus: the scrape configuration and the alert rules, checked by promtool.

``promtool check config`` and ``check rules`` validate the files; ``promtool test rules``
runs examples/prometheus/azwatch-rules.test.yml, whose synthetic series make every alert
fire and not fire. The mutation tests at the end show that those unit tests would notice an alert
that never fires or one that fires without waiting its ``for``. promtool comes from Debian's
prometheus package: missing, these tests skip (and fail under ``CI=true``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from promkit import (
    PENDING_METRICS,
    RULE_TESTS,
    RULES,
    SCRAPE_CONFIG,
    exported_metric_names,
    metric_names,
    promtool,
)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alerts() -> dict[str, dict[str, Any]]:
    """The alerting rules of azwatch-rules.yml by name."""
    rules = [rule for group in load(RULES)["groups"] for rule in group["rules"]]
    return {rule["alert"]: rule for rule in rules if "alert" in rule}


ALERTS = sorted(alerts())


def test_promtool_accepts_the_scrape_config_and_its_rule_file() -> None:
    result = promtool("check", "config", SCRAPE_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ALERTS)} rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_scrape_job_is_the_one_the_rules_select() -> None:
    (job,) = load(SCRAPE_CONFIG)["scrape_configs"]
    assert job["job_name"] == "azwatch"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert [Path(name).name for name in load(SCRAPE_CONFIG)["rule_files"]] == [RULES.name]
    for rule in alerts().values():
        if "up" in metric_names(rule["expr"]):
            assert 'job="azwatch"' in rule["expr"], rule["alert"]


@pytest.mark.parametrize("name", ALERTS)
def test_every_alert_says_how_bad_and_what_to_do(name: str) -> None:
    rule = alerts()[name]
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert set(annotations) >= {"summary", "description"}
    assert annotations["summary"].strip()
    # A description is more than a restated summary: it says what to check or change.
    assert len(annotations["description"].split()) >= 20, annotations["description"]


@pytest.mark.parametrize("name", ALERTS)
def test_every_alert_is_tested_firing_and_not_firing(name: str) -> None:
    cases = [
        case
        for test in load(RULE_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == name
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{name} is never expected to fire"
    assert any(not case.get("exp_alerts") for case in cases), f"{name} is never expected quiet"


def test_the_rules_use_only_metrics_azwatch_exports() -> None:
    """A typo in a metric name makes an alert that never fires; promtool cannot see it."""
    exported = exported_metric_names() | {"up"}
    used = set().union(*(metric_names(rule["expr"]) for rule in alerts().values()))
    assert used - exported <= PENDING_METRICS, used - exported - PENDING_METRICS


def _failures(tmp_path: Path, **changes: str) -> dict[str, set[str]]:
    """Run the unit tests against the rules with *changes* made to every alert: for each
    alert, how its expectations failed ("quiet": it was expected quiet and fired, "firing":
    it was expected to fire and did not)."""
    document = load(RULES)
    for group in document["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule.update(changes)
    (tmp_path / RULES.name).write_text(yaml.safe_dump(document), encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    failures: dict[str, set[str]] = {}
    # promtool reports each failed expectation as "alertname: NAME, time: T, exp:[...], got:[...]".
    for chunk in (result.stdout + result.stderr).split("alertname: ")[1:]:
        name = chunk.split(",", 1)[0]
        expected_quiet = re.search(r"exp:\[\],", chunk) is not None
        failures.setdefault(name, set()).add("quiet" if expected_quiet else "firing")
    return failures


def test_the_unit_tests_notice_alerts_that_never_fire(tmp_path: Path) -> None:
    failures = _failures(tmp_path, expr="vector(0) > 1")
    assert {name for name, kinds in failures.items() if "firing" in kinds} == set(ALERTS)


def test_the_unit_tests_notice_alerts_that_do_not_wait(tmp_path: Path) -> None:
    """Each alert is expected quiet while its condition holds but its ``for`` has not passed."""
    assert all(rule.get("for") for rule in alerts().values())
    failures = _failures(tmp_path, **{"for": "0s"})
    assert {name for name, kinds in failures.items() if "quiet" in kinds} == set(ALERTS)
