"""Alerting rules, their promtool unit tests, and the Alertmanager config that routes them."""

from __future__ import annotations

import subprocess

from stack_files import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULES,
    RULES_TEST,
    known_label_names,
    known_series_names,
    label_names,
    load_yaml,
    metric_names,
    rule_expressions,
)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(RULES_TEST)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {name for name, _ in rule_expressions()}
    assert alerts == tested


def test_the_seeds_alert_conditions_are_all_there() -> None:
    expected = {
        "MLModelHighErrorRate",
        "MLModelHighLatencyP99",
        "MLModelLowAccuracy",
        "MLFeatureDrift",
        "MLFeatureDriftCritical",
        "GPUMemoryHigh",
    }
    assert expected == {name for name, _ in rule_expressions()}


def test_every_alert_waits_with_for_and_has_a_severity_and_summary() -> None:
    rules = [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]
    incomplete = [
        rule["alert"]
        for rule in rules
        if not rule.get("for")
        or rule.get("labels", {}).get("severity") not in ("warning", "critical")
        or not rule.get("annotations", {}).get("summary")
    ]
    assert incomplete == []


def test_rules_read_only_metrics_and_labels_the_sdk_emits() -> None:
    series, labels = set(known_series_names()), known_label_names()
    unknown = {
        alert: sorted((metric_names(expr) - series) | (label_names(expr) - labels))
        for alert, expr in rule_expressions()
        if (metric_names(expr) - series) or (label_names(expr) - labels)
    }
    assert unknown == {}


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    result = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_loads_the_rules_and_keeps_the_exporters_job_labels() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    exporter_job = next(
        job for job in config["scrape_configs"] if job["job_name"] == "otel-collector"
    )
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert exporter_job["honor_labels"] is True


def test_amtool_accepts_the_alertmanager_config(amtool: str) -> None:
    result = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_critical_alerts_are_routed_to_their_own_receiver_route() -> None:
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    assert route["routes"][0]["matchers"] == ['severity="critical"']
