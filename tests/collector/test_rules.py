"""Alerting rules, their promtool unit tests, and the Alertmanager config that routes them,
checked as docker-compose.yml mounts them: the repo's files laid out at their container paths in
a temporary folder, Prometheus' and Alertmanager's config paths taken from the compose commands."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from stack_files import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULES_GLOB,
    alert_expressions,
    command_flag,
    compose_command,
    known_label_names,
    known_series_names,
    label_names,
    load_yaml,
    metric_names,
    recorded_names,
    reproduce_mounts,
    rule_expressions,
    rule_files,
    rule_test_files,
    rules,
    series_read,
)


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding Prometheus' and Alertmanager's files at their container paths."""
    root = tmp_path_factory.mktemp("compose")
    for service in ("prometheus", "alertmanager"):
        reproduce_mounts(service, root)
    return root


def _prometheus_config(root: Path) -> Path:
    return Path(command_flag(compose_command("prometheus", root), "--config.file"))


def _rules_checked_by(output: str, root: Path) -> set[str]:
    """The rule files promtool reports checking, as paths inside the container."""
    checked = re.findall(r"^Checking (\S+)$", output, flags=re.MULTILINE)
    return {"/" + str(Path(path).relative_to(root)) for path in checked if path.endswith(".yml")
            and Path(path) != _prometheus_config(root)}  # fmt: skip


def test_promtool_accepts_the_prometheus_config_as_compose_mounts_it(
    promtool: str, mounted: Path
) -> None:
    result = run(promtool, "check", "config", str(_prometheus_config(mounted)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_every_rules_file_and_no_unit_test_file(
    promtool: str, mounted: Path
) -> None:
    # promtool resolves the config's rule_files globs as Prometheus does and names each file.
    result = run(promtool, "check", "config", str(_prometheus_config(mounted)))
    expected = {f"/etc/prometheus/rules/{path.name}" for path in rule_files()}
    assert rule_test_files()
    assert expected == _rules_checked_by(result.stdout, mounted), result.stdout


def test_promtool_accepts_every_rules_file(promtool: str, mounted: Path) -> None:
    paths = [str(mounted / "etc/prometheus/rules" / path.name) for path in rule_files()]
    result = run(promtool, "check", "rules", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", rule_test_files(), ids=lambda path: path.name)
def test_promtool_unit_tests_pass_on_the_mounted_rules(
    promtool: str, mounted: Path, test_file: Path
) -> None:
    rules_dir = mounted / "etc/prometheus/rules"
    result = run(promtool, "test", "rules", test_file.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_test_the_rules_files_prometheus_loads() -> None:
    tested = {name for path in rule_test_files() for name in load_yaml(path)["rule_files"]}
    assert {path.name for path in rule_files()} == tested
    assert all(Path(name).match(RULES_GLOB) for name in tested)


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for path in rule_test_files()
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
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
    assert expected <= {name for name, _ in rule_expressions()}


def test_every_alert_waits_with_for_and_has_a_severity_and_summary() -> None:
    incomplete = [
        rule["alert"]
        for rule in rules()
        if "alert" in rule
        and (
            not rule.get("for")
            or rule.get("labels", {}).get("severity") not in ("warning", "critical")
            or not rule.get("annotations", {}).get("summary")
        )
    ]
    assert incomplete == []


def test_rules_read_only_metrics_and_labels_the_sdk_emits() -> None:
    # Directly or through the bundled recording rules; an unknown recorded name is unknown.
    series, labels = set(known_series_names()), known_label_names()
    unknown = {
        rule: sorted((series_read(expr) - series) | (label_names(expr) - labels))
        for rule, expr in rule_expressions()
        if (series_read(expr) - series) or (label_names(expr) - labels) or not series_read(expr)
    }
    assert unknown == {}


def test_the_accuracy_alert_reads_the_fleet_accuracy_of_the_last_hour() -> None:
    (expr,) = [expr for alert, expr in alert_expressions() if alert == "MLModelLowAccuracy"]
    assert {"ml:model_accuracy:1h", "ml:model_labels_matched:increase1h"} == recorded_names(expr)
    assert set() == metric_names(expr)


def test_prometheus_scrapes_the_collector_keeping_the_exporters_job_labels() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    exporter_job = next(
        job for job in config["scrape_configs"] if job["job_name"] == "otel-collector"
    )
    assert exporter_job["honor_labels"] is True


def test_amtool_accepts_the_alertmanager_config_as_compose_mounts_it(
    amtool: str, mounted: Path
) -> None:
    config = command_flag(compose_command("alertmanager", mounted), "--config.file")
    result = run(amtool, "check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_critical_alerts_are_routed_to_their_own_receiver_route() -> None:
    route = load_yaml(ALERTMANAGER_CONFIG)["route"]
    assert route["routes"][0]["matchers"] == ['severity="critical"']
