"""End to end: the FastAPI example's telemetry through the bundled collector config into
Jaeger, Prometheus and an OTLP log store, and every dashboard panel and alert rule answered by
that Prometheus. The programs are real (see e2e_stack.py); nothing is faked."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Stack, eventually, http_get
from stack_files import (
    OTELCOL_CONFIG,
    OTELCOL_DEBUG_OVERLAY,
    PROCESS_METRIC_NAMES,
    dashboard_expressions,
    known_series_names,
    metric_names,
    prometheus_name,
    rule_expressions,
    substitute_grafana_variables,
)

from otel_mlmon import semconv

pytestmark = pytest.mark.e2e

#: Metrics that this traffic cannot produce, and why. An expression that reads only these
#: need not return data; every other expression must.
NO_DATA_YET: dict[str, str] = {
    prometheus_name(semconv.metric_spec(name)): "no GPU on the test machines"
    for name in (
        semconv.HW_GPU_UTILIZATION,
        semconv.HW_GPU_MEMORY_USAGE,
        semconv.HW_GPU_MEMORY_LIMIT,
        semconv.HW_TEMPERATURE,
        semconv.HW_POWER,
        semconv.ML_PROCESS_GPU_MEMORY_USAGE,
    )
}


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _spans_by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["operationName"]: span for span in trace["spans"]}


def _selector(traffic: dict[str, Any]) -> str:
    return f'service_name="{traffic["service_name"]}", ml_model_name="{traffic["model_name"]}"'


# --- the collector -----------------------------------------------------------------------------


def _validate(binaries: dict[str, Path], *configs: Path) -> subprocess.CompletedProcess[str]:
    command = [str(binaries["otelcol-mlmon"]), "validate"]
    command += [f"--config={config}" for config in configs]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_otelcol_validates_the_bundled_config_and_its_debug_overlay(
    binaries: dict[str, Path],
) -> None:
    plain = _validate(binaries, OTELCOL_CONFIG)
    with_debug = _validate(binaries, OTELCOL_CONFIG, OTELCOL_DEBUG_OVERLAY)
    assert (plain.returncode, with_debug.returncode) == (0, 0), plain.stderr + with_debug.stderr


def test_otelcol_validate_rejects_a_component_the_slim_build_lacks(
    binaries: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        OTELCOL_CONFIG.read_text().replace("exporters: [prometheus]", "exporters: [kafka]")
    )
    result = _validate(binaries, broken)
    assert result.returncode != 0
    assert "kafka" in result.stderr


# --- traces ------------------------------------------------------------------------------------


def test_jaeger_returns_the_request_trace_with_its_predict_span_and_ml_attributes(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    trace = stack.jaeger_trace(traffic["ok_trace_id"])
    spans = _spans_by_name(trace)
    server, predict = spans["POST /predict"], spans[f"predict {traffic['model_name']}"]
    tags = _tags(predict)

    assert [{"refType": "CHILD_OF", "traceID": traffic["ok_trace_id"],
             "spanID": server["spanID"]}] == predict["references"]  # fmt: skip
    # FastAPI's native telemetry made the server span; our layer added the request ID to it.
    assert ("server", "fastapi", traffic["ok_request_id"]) == (
        _tags(server)["span.kind"],
        _tags(server)["otel.scope.name"],
        _tags(server)[semconv.ML_REQUEST_ID],
    ), _tags(server)
    assert {
        semconv.ML_MODEL_NAME: traffic["model_name"],
        semconv.ML_MODEL_VERSION: traffic["model_version"],
        semconv.ML_MODEL_TASK: "classification",
        semconv.ML_PREDICTION_CLASS: traffic["ok_class"],
    }.items() <= tags.items()
    assert len(tags[semconv.ML_PREDICTION_ID]) == 16
    assert traffic["service_name"] == trace["processes"][predict["processID"]]["serviceName"]


def test_jaeger_shows_the_failed_prediction_with_its_error_type(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    spans = _spans_by_name(stack.jaeger_trace(traffic["error_trace_id"]))
    tags = _tags(spans[f"predict {traffic['model_name']}"])
    assert (traffic["error_type"], "ERROR", True) == (
        tags[semconv.ERROR_TYPE],
        tags["otel.status_code"],
        tags["error"],
    )


# --- metrics -----------------------------------------------------------------------------------


def test_prometheus_counts_predictions_by_class_with_service_and_model_labels(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    result = stack.promql(
        f"sum by (service_name, ml_model_name, ml_model_version, ml_prediction_class) "
        f"(ml_model_predictions_total{{{_selector(traffic)}}})"
    )
    by_class = {item["metric"]["ml_prediction_class"]: float(item["value"][1]) for item in result}
    labels = {(item["metric"]["service_name"], item["metric"]["ml_model_version"])
              for item in result}  # fmt: skip
    assert {"0", "1", "2"} == set(by_class)  # the example's classes: iris target indices
    assert traffic["predictions"] == sum(by_class.values())
    assert {(traffic["service_name"], traffic["model_version"])} == labels


def test_prometheus_has_the_latency_histogram_of_every_call(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    selector = _selector(traffic)
    count = stack.promql(f"sum(ml_model_prediction_duration_seconds_count{{{selector}}})")
    slow = stack.promql(
        f'sum(ml_model_prediction_duration_seconds_bucket{{{selector}, le="+Inf"}})'
        f' - sum(ml_model_prediction_duration_seconds_bucket{{{selector}, le="0.5"}})'
    )
    assert traffic["calls"] == float(count[0]["value"][1])
    assert traffic["slow_calls"] == float(slow[0]["value"][1])  # the calls slowed to 0.6 s


def test_prometheus_counts_errors_by_type(stack: Stack, traffic: dict[str, Any]) -> None:
    result = stack.promql(
        f"sum by (service_name, ml_model_name, error_type) "
        f"(ml_model_errors_total{{{_selector(traffic)}}})"
    )
    names = {(item["metric"]["service_name"], item["metric"]["ml_model_name"]) for item in result}
    assert {(traffic["service_name"], traffic["model_name"])} == names
    assert {error_type: float(count) for error_type, count in traffic["errors"].items()} == {
        item["metric"]["error_type"]: float(item["value"][1]) for item in result
    }


def test_prometheus_has_drift_scores_by_feature_and_method(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    selector = _selector(traffic)
    result = stack.promql(
        f"max by (ml_feature_name, ml_drift_method) (ml_drift_detected_ratio{{{selector}}})"
    )
    detected = {
        (item["metric"]["ml_feature_name"], item["metric"]["ml_drift_method"]): float(
            item["value"][1]
        )
        for item in result
    }
    # Every feature and the predictions, by every method that applies to each, all drifting.
    features = {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    expected = {(f, m): 1.0 for f in features - {"sepal_length"}
                for m in ("ks", "psi", "jensen_shannon", "wasserstein")}  # fmt: skip
    expected.update({("_prediction", m): 1.0 for m in ("chi_square", "jensen_shannon")})
    assert expected.items() <= detected.items(), detected


def test_series_arrive_under_the_names_derived_from_semconv(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    result = stack.promql(
        f'count by (__name__) ({{__name__=~"(ml|process)_.+", '
        f'service_name="{traffic["service_name"]}"}})'
    )
    arrived = {item["metric"]["__name__"] for item in result}
    # Everything this traffic records: all ml.model.* but regression quality and overflows,
    # the rejected inputs, and the process gauges.
    not_recorded = {semconv.ML_MODEL_MAE, semconv.ML_MODEL_RMSE, semconv.ML_MODEL_CLASS_OVERFLOWS}
    expected = {
        name
        for name, metric in known_series_names().items()
        if name not in NO_DATA_YET and metric not in not_recorded
    }
    assert expected == arrived
    assert arrived >= PROCESS_METRIC_NAMES


def test_prometheus_scrapes_the_exporter_and_the_collectors_own_metrics(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    result = stack.promql("up")
    assert {item["metric"]["job"]: float(item["value"][1]) for item in result} == {
        "otel-collector": 1.0,
        "otel-collector-self": 1.0,
    }
    # The collector's own counters carry no _total suffix in this release.
    assert stack.promql_has_data('otelcol_receiver_accepted_log_records{receiver="otlp"}')


# --- logs --------------------------------------------------------------------------------------


def test_log_store_returns_the_requests_log_record_by_trace_id(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    # The example's structlog line, through configure()'s logging bridge and the collector.
    trace_id = traffic["ok_trace_id"]
    records = eventually(lambda: stack.logs_by_trace_id(trace_id), "the log record by trace ID")
    predict = _spans_by_name(stack.jaeger_trace(trace_id))[f"predict {traffic['model_name']}"]
    assert [
        (
            "prediction_made",
            predict["spanID"],
            traffic["service_name"],
            "INFO",
            traffic["ok_request_id"],
            _tags(predict)[semconv.ML_PREDICTION_ID],
            traffic["model_name"],
        )
    ] == [
        (
            r["_msg"],
            r["span_id"],
            r["service.name"],
            r["severity_text"],
            r.get("request_id"),
            r.get(semconv.ML_PREDICTION_ID),
            r.get(semconv.ML_MODEL_NAME),
        )
        for r in records
    ]


# --- every panel and every rule ----------------------------------------------------------------


def _exempt(expr: str) -> bool:
    return metric_names(expr) <= set(NO_DATA_YET)


def _has_data_soon(stack: Stack, expr: str, timeout: float = 15.0) -> bool:
    """Whether ``expr`` returns data within ``timeout``: rate() and increase() need two scrapes
    of a series, and the last series of the traffic may have arrived a moment ago."""
    deadline = time.monotonic() + timeout
    while not stack.promql_has_data(expr):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_every_dashboard_expression_returns_data(stack: Stack, traffic: dict[str, Any]) -> None:
    variables = {"service": traffic["service_name"], "model": traffic["model_name"]}
    empty = [
        where
        for where, expr in dashboard_expressions()
        if not _exempt(expr)
        and not _has_data_soon(stack, substitute_grafana_variables(expr, variables))
    ]
    assert empty == [], "\n".join(empty)


def test_every_alert_rule_fires_on_the_traffic_built_to_trigger_it(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    silent = [alert for alert, expr in rule_expressions()
              if not _exempt(expr) and not _has_data_soon(stack, expr)]  # fmt: skip
    assert silent == []


def test_prometheus_holds_every_alert_pending_with_the_drifting_features(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    # Every rule that does not read GPU metrics is active (pending for its `for:` duration);
    # the drift rules name the features the traffic shifted, by p-value and distance alike.
    expected = {alert for alert, expr in rule_expressions() if not _exempt(expr)}

    def active() -> dict[str, set[tuple[str, str]]] | None:
        alerts = http_get(f"{stack.prometheus}/api/v1/alerts")["data"]["alerts"]
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


def test_prometheus_loaded_every_rule_and_evaluates_it_without_error(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    groups = http_get(f"{stack.prometheus}/api/v1/rules")["data"]["groups"]
    health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert {alert: "ok" for alert, _ in rule_expressions()} == health
