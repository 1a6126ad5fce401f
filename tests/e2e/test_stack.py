"""End to end: the FastAPI example's telemetry through the bundled collector config into
Jaeger, Prometheus and an OTLP log store, and every dashboard panel and alert rule answered by
that Prometheus. The programs are real (see e2e_stack.py); nothing is faked."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import Stack, eventually, http_get, version_selector
from stack_files import (
    OTELCOL_CONFIG,
    OTELCOL_DEBUG_OVERLAY,
)

from otel_mlmon import semconv

pytestmark = pytest.mark.e2e


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _spans_by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["operationName"]: span for span in trace["spans"]}


def _selector(traffic: dict[str, Any]) -> str:
    """The stable version's series (tests/e2e/traffic.py: the canary's are its own)."""
    return version_selector(traffic)


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
    # The signed id the service answered with, which /feedback joined a label to.
    assert traffic["ok_prediction_id"] == tags[semconv.ML_PREDICTION_ID]
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
        f"sum by (job, ml_model_name, ml_model_version, ml_prediction_class) "
        f"(ml_model_predictions_total{{{_selector(traffic)}}})"
    )
    by_class = {item["metric"]["ml_prediction_class"]: float(item["value"][1]) for item in result}
    labels = {(item["metric"]["job"], item["metric"]["ml_model_version"])
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
        f"sum by (job, ml_model_name, error_type) (ml_model_errors_total{{{_selector(traffic)}}})"
    )
    names = {(item["metric"]["job"], item["metric"]["ml_model_name"]) for item in result}
    assert {(traffic["service_name"], traffic["model_name"])} == names
    assert {error_type: float(count) for error_type, count in traffic["errors"].items()} == {
        item["metric"]["error_type"]: float(item["value"][1]) for item in result
    }


def test_prometheus_has_drift_scores_by_feature_and_method(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    selector = _selector(traffic)
    result = stack.promql(
        f"max by (ml_feature_name, ml_drift_method) (ml_drift_detected{{{selector}}})"
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
    # The example's structlog line inside the predict span, and the request_completed event
    # inside the server span, through configure()'s logging bridge and the collector.
    trace_id = traffic["ok_trace_id"]
    records = eventually(
        lambda: len(stack.logs_by_trace_id(trace_id)) >= 2 and stack.logs_by_trace_id(trace_id),
        "the request's two log records by trace ID",
    )
    spans = stack.jaeger_trace(trace_id)["spans"]
    predict = _spans_by_name({"spans": spans})[f"predict {traffic['model_name']}"]
    (server,) = [s for s in spans if _tags(s).get("span.kind") == "server"]
    assert [
        (
            "prediction_made",
            predict["spanID"],
            traffic["service_name"],
            "INFO",
            traffic["ok_request_id"],
            _tags(predict)[semconv.ML_PREDICTION_ID],
            traffic["model_name"],
        ),
        (
            "request_completed",
            server["spanID"],
            traffic["service_name"],
            "INFO",
            traffic["ok_request_id"],
            None,
            None,
        ),
    ] == sorted(
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
    )


# --- exemplars ---------------------------------------------------------------------------------


def _exemplar_traces(stack: Stack, metric: str, traffic: dict[str, Any]) -> dict[str, set[str]]:
    """``{"ok": ..., "failed": ...}``: the trace IDs of the exemplars on the series of ``metric``
    of the example's job, split by whether the series counts failures (``error_type``, or an
    HTTP 5xx status)."""
    found: dict[str, set[str]] = {"ok": set(), "failed": set()}
    selector = f'{metric}{{job="{traffic["service_name"]}"}}'
    for series in stack.prometheus.exemplars(selector, traffic["started_at"]):
        labels = series["seriesLabels"]
        failed = "error_type" in labels or labels.get("http_response_status_code", "")[:1] == "5"
        found["failed" if failed else "ok"].update(
            exemplar["labels"]["trace_id"] for exemplar in series["exemplars"]
        )
    return found if found["ok"] | found["failed"] else {}


@pytest.mark.parametrize("histogram", [
    "ml_model_prediction_duration_seconds_bucket", "http_server_request_duration_seconds_bucket",
])  # fmt: skip
def test_latency_exemplars_lead_to_traces_in_jaeger_the_slow_and_the_failed_among_them(
    stack: Stack, traffic: dict[str, Any], histogram: str
) -> None:
    # The SDK keeps, per series and bucket, the last sampled measurement of each export
    # interval: the last slow call (alone above 0.5 s) and the last failed call (no later one
    # on its series) are exemplars for sure; earlier ones may have been replaced.
    found = eventually(lambda: _exemplar_traces(stack, histogram, traffic),
                       f"exemplars of {histogram}")  # fmt: skip
    assert traffic["slow_trace_ids"][-1] in found["ok"]
    assert traffic["error_trace_ids"][-1] in found["failed"]
    # The canary's failures are exemplars of its own series.
    assert found["failed"] <= {*traffic["error_trace_ids"], *traffic["canary"]["error_trace_ids"]}
    missing = []
    for trace_id in sorted(found["ok"] | found["failed"]):
        try:
            stack.jaeger_trace(trace_id)
        except urllib.error.HTTPError:
            missing.append(trace_id)
    assert missing == []


def test_error_counter_exemplars_are_failed_calls(stack: Stack, traffic: dict[str, Any]) -> None:
    # The errors panels' exemplars: ml.model.errors is a counter, its exemplars the traces of
    # failed predict calls only (a counter keeps a random one of each export interval).
    found = eventually(
        lambda: _exemplar_traces(stack, "ml_model_errors_total", traffic), "error exemplars"
    )
    failed = {*traffic["error_trace_ids"], *traffic["canary"]["error_trace_ids"]}
    assert (set(), True) == (found["ok"], found["failed"] <= failed)


# --- Prometheus as compose runs it -------------------------------------------------------------


def test_prometheus_runs_with_exemplar_storage_as_compose_starts_it(
    stack: Stack, traffic: dict[str, Any]
) -> None:
    flags = http_get(f"{stack.prometheus.url}/api/v1/status/flags")["data"]
    assert "exemplar-storage" == flags["enable-feature"]
