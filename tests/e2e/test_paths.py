"""One set of names on both paths, checked on real programs: the FastAPI example's metrics on
its own embedded /metrics endpoint under several uvicorn workers (the default path) and through
the bundled collector (the collector path), each scraped by a Prometheus run as compose runs
it; every dashboard panel and rule answered on each path, no panel split by worker; the labels
sent all matched; promtool's lint clean on the default path's merged endpoint."""

from __future__ import annotations

import json
import math
import re
import subprocess
import urllib.request
from typing import Any

import pytest
from e2e_stack import WORKERS, MetricsPath, Stack, eventually, http_get, version_selector
from stack_files import (
    DEFAULT_PATH_ONLY_SERIES,
    PROCESS_METRIC_NAMES,
    REPO,
    WORKER_LABEL,
    alert_expressions,
    dashboard_expressions,
    gauge_series,
    known_series_names,
    label_names,
    prometheus_name,
    rule_expressions,
    rule_files,
    rule_test_files,
    series_read,
    substitute_grafana_variables,
)

from otel_mlmon import semconv

pytestmark = pytest.mark.e2e

#: Series that this traffic cannot produce, and why. An expression that reads one of these
#: need not return data (exactly the ones test_only_gpu_and_regression_expressions_may_lack_data
#: names); every other expression must.
NO_DATA_YET: dict[str, str] = {
    **{
        prometheus_name(spec): "no GPU on the test machines"
        for spec in semconv.METRICS
        if semconv.HW_ID in spec.attributes  # the GPU metrics
    },
    **{
        prometheus_name(spec): "the example is a classifier: no regression labels"
        for spec in semconv.METRICS
        if spec.name in semconv.REGRESSION_QUALITY_METRICS
    },
}
#: Metrics no panel or rule reads that this traffic does not record either: the class bound's
#: overflows (three classes), and the embedded endpoint's failures to take its port (free here;
#: the collector path has no such endpoint).
NOT_RECORDED = {semconv.ML_MODEL_CLASS_OVERFLOWS, semconv.ML_MONITOR_ENDPOINT_ERRORS}
#: Rules no traffic of a few minutes can trigger, and why; their promtool tests trigger them.
NOT_TRIGGERED: dict[str, str] = {
    "MLModelAccuracyTrendingBelowThreshold": "needs 3 hours of accuracy history, above 0.8 now",
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
    # Directly or through the recording rules the expression reads.
    families = _families(path)
    series = set(families)
    labels = set().union(*families.values())
    missing = {}
    for where, expr in [*dashboard_expressions(), *rule_expressions()]:
        if _exempt(expr):  # their own labels (hw_id, ...) come with them
            continue
        absent = (series_read(expr) - series) | (label_names(expr) - labels)
        if absent:
            missing[where] = sorted(absent)
    assert missing == {}


def test_both_paths_give_one_set_of_series_and_label_names(
    stack: Stack, traffic: dict[str, Any], embedded: MetricsPath
) -> None:
    # The same series names with the same label names, but for what only the default path
    # has (docs/stack.md): a pid label on every gauge and on nothing else (one series per live
    # worker on the one port), and the endpoint's own error counter.
    collector = _families(MetricsPath("collector", stack.prometheus, traffic))
    default = _families(embedded)
    gauges = gauge_series()
    assert {name for name, labels in default.items() if WORKER_LABEL in labels} == (
        set(default) & gauges
    )
    assert collector == {
        name: labels - {WORKER_LABEL}
        for name, labels in default.items()
        if name not in DEFAULT_PATH_ONLY_SERIES
    }


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
    """Whether ``expr`` reads a series this traffic cannot produce (:data:`NO_DATA_YET`)."""
    return bool(series_read(expr) & set(NO_DATA_YET))


def test_only_gpu_and_regression_expressions_may_lack_data() -> None:
    exempt = {where for where, expr in [*dashboard_expressions(), *rule_expressions()]
              if _exempt(expr)}  # fmt: skip
    assert {
        "panel 'GPU utilisation' A",
        "panel 'GPU memory' A", "panel 'GPU memory' B", "panel 'GPU memory' C",
        "panel 'GPU temperature and power' A", "panel 'GPU temperature and power' B",
        "GPUMemoryHigh",
        "panel 'MAE, RMSE (regression)' A", "panel 'MAE, RMSE (regression)' B",
        "ml:model_absolute_error:increase1h", "ml:model_squared_error:increase1h",
        "ml:model_mae:1h", "ml:model_rmse:1h",
    } == exempt  # fmt: skip


def test_the_rules_no_traffic_here_triggers_are_triggered_by_their_promtool_tests() -> None:
    tested = "".join(p.read_text() for p in rule_test_files())
    assert {alert for alert, _ in alert_expressions()} >= set(NOT_TRIGGERED)
    assert [] == [alert for alert in NOT_TRIGGERED if f"alertname: {alert}" not in tested]


def _wait_for_data(path: MetricsPath, expressions: list[tuple[str, str]]) -> None:
    """Until every ``(where, expr)`` returns data: rate() and increase() need two scrapes of a
    series, and the last series of the traffic may have arrived a moment ago. A timeout names
    the ones still empty."""
    empty = expressions

    def answered() -> bool:
        nonlocal empty
        empty = [(where, expr) for where, expr in empty
                 if not path.prometheus.promql_has_data(expr)]  # fmt: skip
        if empty:
            raise LookupError(f"no data yet from {[where for where, _ in empty]}")
        return True

    eventually(answered, "every expression to return data")


def test_every_dashboard_expression_returns_data(path: MetricsPath) -> None:
    variables = {"service": path.traffic["service_name"], "model": path.traffic["model_name"]}
    _wait_for_data(path, [
        (where, substitute_grafana_variables(expr, variables))
        for where, expr in dashboard_expressions() if not _exempt(expr)
    ])  # fmt: skip


def test_every_rule_returns_data_on_the_traffic_built_to_trigger_it(path: MetricsPath) -> None:
    # Every alert's condition holds, and every recording rule records (the quality scores from
    # the labels sent).
    _wait_for_data(path, [(rule, expr) for rule, expr in rule_expressions()
                          if rule not in NOT_TRIGGERED and not _exempt(expr)])  # fmt: skip


def test_no_panel_shows_a_line_per_worker(path: MetricsPath) -> None:
    # On the default path every gauge has one series per worker (pid); each panel aggregates
    # them, so that a server is one line whatever its number of workers.
    selector = f'job="{path.traffic["service_name"]}"'
    workers = path.prometheus.promql(
        f'count(count by ({WORKER_LABEL}) (ml_model_info{{{selector}, {WORKER_LABEL}!=""}}))'
    )
    # Two servers (the stable version and the canary) of WORKERS workers each.
    assert (2 * WORKERS if path.name == "default" else 0) == (
        int(workers[0]["value"][1]) if workers else 0
    )
    variables = {"service": path.traffic["service_name"], "model": path.traffic["model_name"]}
    split = {
        where
        for where, expr in dashboard_expressions()
        if where.startswith("panel")
        for item in path.prometheus.promql(substitute_grafana_variables(expr, variables))
        if WORKER_LABEL in item["metric"]
    }
    assert set() == split


def test_every_label_sent_matched_into_the_confusion_matrix_sent(path: MetricsPath) -> None:
    # Signed prediction ids join on any worker: every label the traffic posted to /feedback
    # (each over a new connection) matched, and the matrix summed over workers is the one sent.
    selector = version_selector(path.traffic)
    counted = {}
    for item in path.prometheus.promql(
        "sum by (ml_label_outcome, ml_prediction_class, ml_label_class) "
        f"(ml_model_labels_total{{{selector}}})"
    ):
        labels = item["metric"]
        cell = (labels["ml_label_outcome"], labels.get("ml_prediction_class", ""),
                labels.get("ml_label_class", ""))  # fmt: skip
        counted[cell] = int(float(item["value"][1]))
    sent = {("matched", *cell.split("|")): n for cell, n in path.traffic["confusion"].items()}
    assert sent == counted


def test_the_quality_rules_score_exactly_the_labels_sent(path: MetricsPath) -> None:
    # The fleet recording rules on real traffic: the hour's matrix is the one sent, the
    # scores scikit-learn's on it.
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    selector = version_selector(path.traffic)
    predicted: list[str] = []
    actual: list[str] = []
    for cell, count in path.traffic["confusion"].items():
        p, t = cell.split("|")
        predicted += [p] * count
        actual += [t] * count
    precision, recall, f1, _ = precision_recall_fscore_support(
        actual, predicted, average="macro", zero_division=0
    )
    expected = {
        "ml:model_labels_matched:increase1h": float(len(actual)),
        "ml:model_accuracy:1h": accuracy_score(actual, predicted),
        "ml:model_precision:1h": precision, "ml:model_recall:1h": recall,
        "ml:model_f1_score:1h": f1,
    }  # fmt: skip

    def settled() -> dict[str, float] | None:
        """The recorded scores once an evaluation after the last label has run."""
        found = {}
        for record in expected:
            (item,) = path.prometheus.promql(f"{record}{{{selector}}}")
            found[record] = float(item["value"][1])
        matched = "ml:model_labels_matched:increase1h"
        return found if found[matched] == expected[matched] else None

    got = eventually(settled, "the recorded quality of every label sent")
    assert all(math.isclose(expected[k], got[k], rel_tol=1e-12) for k in expected), (expected, got)
    matrix = {
        "|".join((item["metric"]["ml_prediction_class"], item["metric"]["ml_label_class"])):
            float(item["value"][1])
        for item in path.prometheus.promql(f"ml:model_confusion:increase1h{{{selector}}}")
    }  # fmt: skip
    assert {cell: float(n) for cell, n in path.traffic["confusion"].items()} == matrix


def test_the_promql_of_docs_stack_returns_data(path: MetricsPath) -> None:
    text = (REPO / "docs" / "stack.md").read_text()
    queries = re.findall(r"```promql\n(.*?)```", text, flags=re.DOTALL)
    assert queries
    _wait_for_data(path, [(f"docs/stack.md query {i}", query) for i, query in enumerate(queries)])


def test_prometheus_holds_every_alert_pending_with_the_drifting_features(
    path: MetricsPath,
) -> None:
    # Every alert that does not read GPU metrics is active (pending for its `for:` duration);
    # the drift rules name the features the traffic shifted, by p-value and distance alike.
    expected = {alert for alert, expr in alert_expressions()
                if alert not in NOT_TRIGGERED and not _exempt(expr)}  # fmt: skip

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


# --- a rollout: the stable version, a canary, a shadow -----------------------------------------


def _versions_by_panel(path: MetricsPath, row: str) -> dict[str, set[str]]:
    """``where -> the ml_model_version values it shows`` for every target of the dashboard row
    titled ``row``."""
    variables = {"service": path.traffic["service_name"], "model": path.traffic["model_name"]}
    dashboard = json.loads((REPO / "collector" / "grafana" / "dashboards" /
                            "otel-mlmon.json").read_text())  # fmt: skip
    panels = dashboard["panels"]
    start = next(i for i, panel in enumerate(panels) if panel["title"] == row)
    end = next((i for i, panel in enumerate(panels) if i > start and panel["type"] == "row"),
               len(panels))  # fmt: skip
    return {
        f"panel {panel['title']!r} {target['refId']}": {
            item["metric"].get("ml_model_version", "")
            for item in path.prometheus.promql(
                substitute_grafana_variables(target["expr"], variables)
            )
        }
        for panel in panels[start + 1 : end]
        for target in panel["targets"]
    }


def test_the_version_comparison_row_shows_the_stable_version_and_the_canary(
    path: MetricsPath,
) -> None:
    # Every panel has a line for each served version; the shadow agreement panel one for the
    # challenger in the shadow (it serves nothing, so no other panel shows it).
    stable, canary = path.traffic["model_version"], path.traffic["canary_version"]
    expected = {where: {stable, canary} for where in _versions_by_panel(path, "Version comparison")}
    expected["panel 'Shadow agreement with the served version' A"] = {
        path.traffic["shadow_version"]
    }

    def both() -> dict[str, set[str]] | None:
        found = _versions_by_panel(path, "Version comparison")
        return found if found == expected else None

    eventually(both, "every version comparison panel with each version")


def test_each_versions_labels_and_outcomes_are_its_own_whichever_service_received_them(
    path: MetricsPath,
) -> None:
    # The stable service's outcomes went to the canary, the canary's labels and outcomes to the
    # stable service: each counts for the version that made the prediction, summed exactly.
    traffic = path.traffic
    job = f'job="{traffic["service_name"]}"'

    def summed(by: str, series: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(item["metric"][label] for label in by.split(", ")): float(item["value"][1])
            for item in path.prometheus.promql(f"sum by ({by}) ({series})")
        }

    counts = summed("ml_model_version, ml_outcome_kind",
                    f'ml_model_outcomes_total{{{job}, ml_outcome_status="matched"}}')  # fmt: skip
    revenue = summed("ml_model_version", f"ml_model_outcome_value_total{{{job}}}")
    ratings = summed("ml_model_version", f"ml_model_outcome_score_sum{{{job}}}")
    sent = traffic["outcomes"]
    assert {(version, kind): float(len(values)) for version, kinds in sent.items()
            for kind, values in kinds.items()} == counts  # fmt: skip
    assert {(version,): sum(kinds["revenue"]) for version, kinds in sent.items()} == revenue
    assert {(version,): sum(kinds["rating"]) for version, kinds in sent.items()} == ratings
    canary = version_selector(traffic, traffic["canary_version"])
    (labels,) = path.prometheus.promql(
        f'sum(ml_model_labels_total{{{canary}, ml_label_outcome="matched"}})'
    )
    assert traffic["canary"]["labels"] == float(labels["value"][1])


def test_the_canary_alerts_name_the_canary(path: MetricsPath) -> None:
    # The canary fails on half its calls (the stable version on 17 %) and three of its six served
    # calls are slow (the stable version's p95 is a fast call): both canary alerts are active
    # for the canary, never for the stable version.
    canary_alerts = {"MLCanaryErrorRateAboveStable", "MLCanaryLatencyAboveStable"}

    def active() -> set[tuple[str, str]] | None:
        alerts = http_get(f"{path.prometheus.url}/api/v1/alerts")["data"]["alerts"]
        found = {(alert["labels"]["alertname"], alert["labels"]["ml_model_version"])
                 for alert in alerts if alert["labels"]["alertname"] in canary_alerts
                 and alert["state"] in ("pending", "firing")}  # fmt: skip
        return found if {name for name, _ in found} == canary_alerts else None

    found = eventually(active, "both canary alerts active")
    assert {(name, path.traffic["canary_version"]) for name in canary_alerts} == found
