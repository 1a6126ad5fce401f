"""Attacker-controlled values (predicted labels from a model gone wrong, prediction ids,
exception types) cannot grow the number of time series past the configured bounds.

HTTP headers and URL paths come with the FastAPI/Flask instrumentation (another branch): when it
lands, add a case that sends 100,000 distinct paths and header values through a real app and
counts the http.server.* series the same way (route templates, never raw paths).
"""

from __future__ import annotations

import pytest

from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.testing import InMemoryTelemetry

DISTINCT = 100_000
MAX_CLASSES = 50


def _series(telemetry: InMemoryTelemetry) -> dict[str, int]:
    """Number of time series (data points with distinct attributes) per metric."""
    return {name: len(metric.data.data_points) for name, metric in telemetry.metrics().items()}


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return InMemoryTelemetry()


def test_100k_distinct_predicted_labels_stay_within_the_class_bound(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("attacked", max_classes=MAX_CLASSES, trace=False, **telemetry.providers)
    for start in range(0, 1_000, 100):  # a few scalars first, then batches of distinct labels
        for i in range(start, start + 100):
            with monitor.predict() as p:
                p.record(f"label-{i}", 0.5)
    with monitor.predict() as p:
        p.record(["label-0", "label-1"])
    after_first_thousand = _series(telemetry)
    for start in range(1_000, DISTINCT, 1_000):
        with monitor.predict() as p:
            p.record([f"label-{i}" for i in range(start, start + 1_000)])
    after_all = _series(telemetry)

    assert MAX_CLASSES + 1 == after_all[semconv.ML_MODEL_PREDICTIONS]  # the bound and _OTHER
    assert after_first_thousand == after_all  # no metric grew between 1,000 and 100,000 labels
    points = telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    assert DISTINCT + 2 == sum(p.value for p in points)
    overflows = telemetry.metric_points(semconv.ML_MODEL_CLASS_OVERFLOWS)
    assert DISTINCT - MAX_CLASSES == sum(p.value for p in overflows)


def test_100k_distinct_prediction_ids_never_become_series(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor(
        "ids", max_classes=MAX_CLASSES, pending_labels=100, **telemetry.providers
    )
    for i in range(1_000):
        with monitor.predict() as p:
            p.record(i % 3)
        monitor.record_label(p.id, i % 3)
    baseline = _series(telemetry)
    for i in range(DISTINCT):
        monitor.record_label(f"{i:016x}-forged", 1)  # ids nobody issued
    after = _series(telemetry)

    assert baseline | {semconv.ML_MODEL_LABELS: baseline[semconv.ML_MODEL_LABELS] + 1} == after
    outcomes = {
        p.attributes[semconv.ML_LABEL_OUTCOME]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }
    assert {semconv.LABEL_MATCHED: 1_000, semconv.LABEL_UNKNOWN_ID: DISTINCT} == outcomes
    # The ids are on spans only, one attribute per span, never on a metric.
    for metric in telemetry.metrics().values():
        for point in metric.data.data_points:
            assert semconv.ML_PREDICTION_ID not in point.attributes


def test_distinct_exception_types_stay_within_the_error_bound(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("errors", **telemetry.providers)
    for i in range(300):
        error = type(f"Error{i}", (ValueError,), {})
        with pytest.raises(ValueError), monitor.predict():
            raise error("x")
    series = _series(telemetry)
    assert 64 + 1 == series[semconv.ML_MODEL_ERRORS]  # 64 types, then _OTHER
    assert 300 == sum(p.value for p in telemetry.metric_points(semconv.ML_MODEL_ERRORS))


def test_predictions_waiting_for_labels_are_bounded(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor("pending", pending_labels=100, trace=False, **telemetry.providers)
    ids = []
    for i in range(1_000):  # labels never come for most: the oldest are forgotten first
        with monitor.predict() as p:
            p.record(i % 2)
        ids.append(p.id)
    for i, prediction_id in enumerate(ids):
        monitor.record_label(prediction_id, i % 2)
    outcomes = {
        p.attributes[semconv.ML_LABEL_OUTCOME]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }
    assert {semconv.LABEL_UNKNOWN_ID: 900, semconv.LABEL_MATCHED: 100} == outcomes
