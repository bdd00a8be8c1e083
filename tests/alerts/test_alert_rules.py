"""Sluice's alert rules (deploy/prometheus/sluice-alerts.yaml) pass `promtool check rules`, and their unit tests
(deploy/prometheus/tests/) pass `promtool test rules`; every alert has a case where it fires and one where it must
not; and promtool really fails a wrong expectation or a broken rule (so these tests can fail)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.conftest import DASHBOARDS, REPOSITORY_ROOT, RULE_TESTS, RULES


def run(promtool: Path, *arguments: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *map(str, arguments)], capture_output=True, text=True, check=False, timeout=60
    )


def alert_names() -> list[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*.yaml"))


def test_promtool_check_rules_passes(promtool: Path) -> None:
    result = run(promtool, "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: Path) -> None:
    files = rule_test_files()
    assert files
    result = run(promtool, "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in rule_test_files():
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = set(alert_names())
    assert len(alerts) == 10
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_a_wrong_expectation_fails(promtool: Path, tmp_path: Path) -> None:
    """The lag test expecting silence at 15 minutes, when the email group's lag has been high for 10: promtool must
    say so and exit non-zero."""
    document: dict[str, Any] = yaml.safe_load((RULE_TESTS / "sluice-alerts-test.yaml").read_text(encoding="utf-8"))
    document["rule_files"] = [str(RULES)]
    lag_case = next(case for case in document["tests"] if case["name"].startswith("lag above"))
    for check in lag_case["alert_rule_test"]:
        check["exp_alerts"] = []
    document["tests"] = [lag_case]
    wrong = tmp_path / "wrong-test.yaml"
    wrong.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = run(promtool, "test", "rules", wrong)
    assert result.returncode != 0
    assert "SluiceConsumerLagHigh" in result.stdout + result.stderr
    assert 'group="email"' in result.stdout + result.stderr


def test_a_broken_rule_fails_the_check(promtool: Path, tmp_path: Path) -> None:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules["groups"][0]["rules"][0]["expr"] = "max by (stream, group) (sluice_consumer_lag_events > "
    broken = tmp_path / "broken-rules.yaml"
    broken.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = run(promtool, "check", "rules", broken)
    assert result.returncode != 0
    assert "SluiceConsumerLagHigh" in result.stdout + result.stderr or "parse error" in result.stdout + result.stderr


def test_the_docs_list_every_alert_and_dashboard() -> None:
    """docs/observability.md's tables name every alert and every dashboard (title and uid)."""
    text = (REPOSITORY_ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    missing = [f"alert {name}" for name in alert_names() if f"`{name}`" not in text]
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        if f"{dashboard['title']} (`{dashboard['uid']}`)" not in text:
            missing.append(f"dashboard {dashboard['title']} ({dashboard['uid']})")
    assert missing == []


WIDENED = {
    "SluiceConsumerLagHigh": ("> 10000", "> 0"),
    "SluiceConsumerLagSecondsGrowing": ("> 0.5", "> -1"),
    "SluiceConsumerGroupNoActiveMember": ("(sluice_consumer_lag_events) > 0", "(sluice_consumer_lag_events) >= 0"),
    "SluiceQueueDeadLettersGrowing": ("[15m])) > 0", "[15m])) >= 0"),
    "SluiceConsumerGroupDeadLettersGrowing": ("[15m])) > 0", "[15m])) >= 0"),
    "SluiceProjectionDeadLettersGrowing": ("[15m])) > 0", "[15m])) >= 0"),
    "SluiceDatabaseUnreachable": ("== 0", "<= 1"),
    "SluiceProjectionNotReady": ('{kind="Projection"}', ""),
    "SluiceReplayFailed": ("== 1", ">= 0"),
    "SluiceOperatorReconcileErrors": ('{result="error"}', ""),
}
"""Per alert, a change that makes it fire where it must not (a looser threshold or a dropped filter)."""


def run_tests_against(promtool: Path, rules: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The unit tests of deploy/prometheus/tests/ run against the rules ``rules``."""
    rules_path = tmp_path / "mutated-rules.yaml"
    rules_path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    tests: dict[str, Any] = yaml.safe_load((RULE_TESTS / "sluice-alerts-test.yaml").read_text(encoding="utf-8"))
    tests["rule_files"] = [str(rules_path)]
    tests_path = tmp_path / "tests.yaml"
    tests_path.write_text(yaml.safe_dump(tests), encoding="utf-8")
    return run(promtool, "test", "rules", tests_path)


def alerts_with_for() -> list[str]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return sorted(rule["alert"] for group in rules["groups"] for rule in group["rules"] if "for" in rule)


CHANGES = [
    *((alert, "widened") for alert in sorted(WIDENED)),
    *((alert, "silenced") for alert in sorted(WIDENED)),
    *((alert, "without for") for alert in alerts_with_for()),
]


@pytest.mark.parametrize(("alert", "change"), CHANGES)
def test_a_changed_alert_fails_its_unit_tests(promtool: Path, tmp_path: Path, alert: str, change: str) -> None:
    """The cases are tight: an alert that fires on more series, never fires, or fires before its ``for`` has
    passed fails ``promtool test rules``."""
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    (rule,) = [rule for group in rules["groups"] for rule in group["rules"] if rule["alert"] == alert]
    if change == "widened":
        old, new = WIDENED[alert]
        assert old in rule["expr"]
        rule["expr"] = rule["expr"].replace(old, new)
    elif change == "silenced":
        rule["expr"] = "vector(1) == 0"
    else:
        del rule["for"]
    result = run_tests_against(promtool, rules, tmp_path)
    assert result.returncode != 0, f"{alert} {change}: promtool still passed"
    assert alert in result.stdout + result.stderr
