"""One set of names on both paths, checked on real programs: the FastAPI example's metrics on
its own embedded /metrics endpoint (the default path) and through the bundled collector (the
collector path), each scraped by a Prometheus run as compose runs it; every dashboard panel and
alert rule answered on each path; promtool's lint clean on both endpoints."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from typing import Any

import pytest
from e2e_stack import MetricsPath, Stack, eventually, http_get
from stack_files import (
    PROCESS_METRIC_NAMES,
    dashboard_expressions,
    known_series_names,
    label_names,
    metric_names,
    prometheus_name,
    rule_expressions,
    rule_files,
    substitute_grafana_variables,
)

from otel_mlmon import semconv

pytestmark = pytest.mark.e2e

#: Metrics that this traffic cannot produce, and why. An expression that reads only these
#: need not return data; every other expression must.
NO_DATA_YET: dict[str, str] = {
    prometheus_name(spec): "no GPU on the test machines"
    for spec in semconv.METRICS
    if semconv.HW_ID in spec.attributes  # the GPU metrics
}
#: What this traffic does not record: regression quality and the class bound's overflows.
NOT_RECORDED = {
    semconv.ML_MODEL_ABSOLUTE_ERROR,
    semconv.ML_MODEL_SQUARED_ERROR,
    semconv.ML_MODEL_CLASS_OVERFLOWS,
}


def _families(path: MetricsPath) -> dict[str, set[str]]:
    """The example's series in ``path``'s Prometheus: name -> label names."""
    return path.prometheus.series(
        f'{{__name__=~"(ml|process|http)_.+", job="{path.traffic["service_name"]}"}}'
    )


def test_series_arrive_under_the_names_derived_from_semconv(path: MetricsPath) -> None:
    arrived = set(_families(path))
    expected = {
        name
        for name, metric in known_series_names().items()
        if name not in NO_DATA_YET and metric not in NOT_RECORDED
    }
    assert expected == arrived
    assert arrived >= PROCESS_METRIC_NAMES


def test_every_metric_and_label_of_the_dashboard_and_rules_exists_on_the_path(
    path: MetricsPath,
) -> None:
    families = _families(path)
    series = set(families)
    labels = set().union(*families.values())
    missing = {}
    for where, expr in [*dashboard_expressions(), *rule_expressions()]:
        if _exempt(expr):  # their own labels (hw_id, ...) come with them
            continue
        absent = (metric_names(expr) - series) | (label_names(expr) - labels)
        if absent:
            missing[where] = sorted(absent)
    assert missing == {}


def test_both_paths_give_one_set_of_series_and_label_names(
    stack: Stack, traffic: dict[str, Any], embedded: MetricsPath
) -> None:
    collector = MetricsPath("collector", stack.prometheus, traffic)
    assert _families(collector) == _families(embedded)


def _lint(exposition: bytes) -> str:
    result = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                            capture_output=True, timeout=60, check=False)  # fmt: skip
    return (result.stdout + result.stderr).decode()


def test_promtool_finds_nothing_to_lint_on_the_default_paths_endpoint(
    embedded: MetricsPath,
) -> None:
    assert embedded.metrics_url is not None
    with urllib.request.urlopen(embedded.metrics_url, timeout=10) as response:
        exposition = response.read()
    assert b"ml_model_prediction_duration_seconds_bucket" in exposition
    assert "" == _lint(exposition)


# --- every panel and every rule, on each path ------------------------------------------------


def _exempt(expr: str) -> bool:
    return metric_names(expr) <= set(NO_DATA_YET)


def _has_data_soon(path: MetricsPath, expr: str, timeout: float = 15.0) -> bool:
    """Whether ``expr`` returns data within ``timeout``: rate() and increase() need two scrapes
    of a series, and the last series of the traffic may have arrived a moment ago."""
    deadline = time.monotonic() + timeout
    while not path.prometheus.promql_has_data(expr):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_every_dashboard_expression_returns_data(path: MetricsPath) -> None:
    variables = {"service": path.traffic["service_name"], "model": path.traffic["model_name"]}
    empty = [
        where
        for where, expr in dashboard_expressions()
        if not _exempt(expr)
        and not _has_data_soon(path, substitute_grafana_variables(expr, variables))
    ]
    assert empty == [], "\n".join(empty)


def test_every_alert_rule_fires_on_the_traffic_built_to_trigger_it(path: MetricsPath) -> None:
    silent = [alert for alert, expr in rule_expressions()
              if not _exempt(expr) and not _has_data_soon(path, expr)]  # fmt: skip
    assert silent == []


def test_prometheus_holds_every_alert_pending_with_the_drifting_features(
    path: MetricsPath,
) -> None:
    # Every rule that does not read GPU metrics is active (pending for its `for:` duration);
    # the drift rules name the features the traffic shifted, by p-value and distance alike.
    expected = {alert for alert, expr in rule_expressions() if not _exempt(expr)}

    def active() -> dict[str, set[tuple[str, str]]] | None:
        alerts = http_get(f"{path.prometheus.url}/api/v1/alerts")["data"]["alerts"]
        found: dict[str, set[tuple[str, str]]] = {}
        for alert in alerts:
            if alert["state"] in ("pending", "firing"):
                labels = alert["labels"]
                found.setdefault(labels["alertname"], set()).add(
                    (labels.get("ml_feature_name", ""), labels.get("ml_drift_method", ""))
                )
        return found if set(found) >= expected else None

    found = eventually(active, f"alerts {sorted(expected)} pending")
    assert expected == set(found)
    shifted = {("petal_length", "ks"), ("petal_length", "psi"), ("_prediction", "chi_square")}
    assert shifted <= found["MLFeatureDrift"]
    assert shifted <= found["MLFeatureDriftCritical"]
    # sepal_length was not shifted: no rule names it.
    assert not {f for f, _ in found["MLFeatureDrift"] | found["MLFeatureDriftCritical"]} & {
        "sepal_length"
    }


def test_prometheus_loaded_every_mounted_rules_file_and_evaluates_every_rule_without_error(
    path: MetricsPath,
) -> None:
    groups = http_get(f"{path.prometheus.url}/api/v1/rules")["data"]["groups"]
    rules_dir = path.prometheus.config.parent / "rules"
    health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert {str(rules_dir / p.name) for p in rule_files()} == {group["file"] for group in groups}
    assert {alert: "ok" for alert, _ in rule_expressions()} == health
