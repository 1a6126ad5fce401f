"""ModelMonitor: spans, prediction metrics, errors, cardinality bounds, labels and lifecycle."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry import metrics, trace
from opentelemetry.test.globals_test import reset_metrics_globals, reset_trace_globals
from opentelemetry.trace import SpanKind, StatusCode

from otel_mlmon import ConfigurationError, ModelMonitor, _compat, _guard, semconv
from otel_mlmon.context import get_model
from otel_mlmon.monitor import Classes, Drift, Labels
from otel_mlmon.monitor._versions import MAX_PREVIOUS
from otel_mlmon.testing import InMemoryTelemetry


def _points(telemetry: InMemoryTelemetry, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {
        tuple(sorted(InMemoryTelemetry.attributes_of(p).items())): p
        for p in telemetry.metric_points(name)
    }


def _value_by(telemetry: InMemoryTelemetry, name: str, key: str) -> dict[Any, float]:
    return {
        InMemoryTelemetry.attributes_of(p).get(key): p.value for p in telemetry.metric_points(name)
    }


def _monitor(telemetry: InMemoryTelemetry, **kwargs: Any) -> ModelMonitor:
    return ModelMonitor("iris", version="1.2.0", **telemetry.providers, **kwargs)


def test_predict_opens_an_internal_child_span_with_ml_attributes(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with (
        tracer.start_as_current_span("POST /predict", kind=SpanKind.SERVER) as server,
        monitor.predict(features=[[5.1, 3.5, 1.4, 0.2]]) as p,
    ):
        assert get_model() == ("iris", "1.2.0")
        p.record(prediction=2, confidence=0.93)
    assert get_model() is None

    predict, parent = telemetry.spans()
    assert predict.name == "predict iris"
    assert predict.kind == SpanKind.INTERNAL
    assert server.get_span_context().span_id == predict.parent.span_id  # type: ignore[union-attr]
    assert parent.name == "POST /predict"
    assert {
        semconv.ML_MODEL_NAME: "iris",
        semconv.ML_MODEL_VERSION: "1.2.0",
        semconv.ML_MODEL_TASK: "classification",
        semconv.ML_PREDICTION_ID: p.id,
        semconv.ML_PREDICTION_CLASS: "2",
        semconv.ML_PREDICTION_CONFIDENCE: 0.93,
    } == dict(predict.attributes or {})


def test_features_never_become_span_or_metric_attributes(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    sentinel = 987654.321
    with monitor.predict(features=[[sentinel, sentinel]]) as p:
        p.record(1, 0.5)
    exported = repr([dict(s.attributes or {}) for s in telemetry.spans()]) + repr(
        [
            InMemoryTelemetry.attributes_of(p)
            for m in telemetry.metrics().values()
            for p in m.data.data_points
        ]
    )
    assert str(sentinel) not in exported


def test_predictions_are_counted_by_class_with_duration_and_confidence(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    for y, conf in [(0, 0.9), (1, 0.8), (1, 0.7), (np.int64(1), np.float32(0.6))]:
        with monitor.predict() as p:
            p.record(y, conf)

    assert _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS) == {
        "0": 1,
        "1": 3,
    }
    (duration,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    assert duration.count == 4
    assert list(semconv.DURATION_BUCKETS) == list(duration.explicit_bounds)
    (confidence,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_CONFIDENCE)
    assert confidence.count == 4
    assert pytest.approx(0.9 + 0.8 + 0.7 + 0.6, abs=1e-6) == confidence.sum
    assert dict(duration.attributes) == {
        semconv.ML_MODEL_NAME: "iris",
        semconv.ML_MODEL_VERSION: "1.2.0",
    }


def test_a_batch_counts_each_row_and_records_its_size_once(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    with monitor.predict(features=np.zeros((5, 4))) as p:
        p.record(np.array([0, 1, 1, 2, 1]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]))

    assert _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS) == {
        "0": 1,
        "1": 3,
        "2": 1,
    }
    (size,) = telemetry.metric_points(semconv.ML_MODEL_BATCH_SIZE)
    assert (size.count, size.sum) == (1, 5)
    (confidence,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_CONFIDENCE)
    assert confidence.count == 5
    (duration,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    assert duration.count == 1
    (span,) = telemetry.spans()
    assert (span.attributes or {})[semconv.ML_BATCH_SIZE] == 5


def test_eight_threads_count_every_prediction_exactly(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    barrier = threading.Barrier(8)

    def work(seed: int) -> None:
        barrier.wait()
        for i in range(10_000):
            with monitor.predict() as p:
                p.record((seed + i) % 3, 0.5)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counts = _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS)
    assert sum(counts.values()) == 80_000
    (duration,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    assert duration.count == 80_000


class ModelBroken(RuntimeError):
    pass


def test_a_failing_predict_records_the_error_and_reraises_it_unchanged(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    raised = ModelBroken("weights missing")
    with pytest.raises(ModelBroken) as caught, monitor.predict() as p:
        raise raised
    assert raised is caught.value
    assert p.id

    (span,) = telemetry.spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    event = dict(span.events[0].attributes or {})
    assert "exception.message" not in event  # messages may carry the input: opt-in only
    assert "weights missing" not in event["exception.stacktrace"]
    assert "raise raised" in event["exception.stacktrace"]
    assert span.status.description is None
    error_type = f"{__name__}.ModelBroken"
    assert error_type == (span.attributes or {})[semconv.ERROR_TYPE]
    assert {error_type: 1} == _value_by(telemetry, semconv.ML_MODEL_ERRORS, semconv.ERROR_TYPE)
    (duration,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    assert error_type == duration.attributes[semconv.ERROR_TYPE]


def test_exception_messages_are_recorded_when_asked(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, record_exception_messages=True)
    with pytest.raises(ModelBroken), monitor.predict():
        raise ModelBroken("weights missing")
    (span,) = telemetry.spans()
    assert "weights missing" == (span.events[0].attributes or {})["exception.message"]
    assert "weights missing" == span.status.description


def test_builtin_exceptions_are_named_without_module(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    with pytest.raises(ValueError), monitor.predict():
        raise ValueError("bad")
    assert _value_by(telemetry, semconv.ML_MODEL_ERRORS, semconv.ERROR_TYPE) == {"ValueError": 1}


def test_classes_beyond_the_bound_fold_into_other_and_are_counted(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, classes=Classes(limit=3), trace=False)
    for y in range(10):
        with monitor.predict() as p:
            p.record(f"label-{y}")

    counts = _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS)
    assert counts == {"label-0": 1, "label-1": 1, "label-2": 1, semconv.OVERFLOW_CLASS: 7}
    (overflow,) = telemetry.metric_points(semconv.ML_MODEL_CLASS_OVERFLOWS)
    assert overflow.value == 7


def test_known_classes_admit_only_those_values(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, classes=["cat", "dog"], trace=False)
    with monitor.predict() as p:
        p.record(np.array(["dog", "cat", "emu"]))
    counts = _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS)
    assert counts == {"cat": 1, "dog": 1, semconv.OVERFLOW_CLASS: 1}


def test_max_classes_comes_from_the_environment(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_MLMON_MAX_CLASSES", "2")
    monitor = _monitor(telemetry, trace=False)
    for y in range(4):
        with monitor.predict() as p:
            p.record(y)
    assert telemetry.metric_points(semconv.ML_MODEL_CLASS_OVERFLOWS)[0].value == 2


def test_unusable_inputs_are_counted_by_reason_and_never_raise(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    with monitor.predict() as p:
        p.record(1, confidence=float("nan"))
        p.record(1)
    with monitor.predict() as p:
        p.record([1, 2], confidence=[0.5])
    with monitor.predict() as p:
        p.record([1, 2], confidence=[0.5, 7.0])
    with monitor.predict() as p:
        p.record(None)
    with monitor.predict() as p:
        p.record(0, confidence="high")

    reasons = _value_by(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS, semconv.ML_REJECTION_REASON)
    assert reasons == {
        "confidence_invalid": 3,
        "recorded_twice": 1,
        "confidence_length_mismatch": 1,
        "prediction_invalid": 1,
    }


def _matrix(telemetry: InMemoryTelemetry) -> dict[tuple[str, str], float]:
    """The confusion matrix in ml.model.labels: (predicted, label) class -> matched labels."""
    return {
        (p.attributes[semconv.ML_PREDICTION_CLASS], p.attributes[semconv.ML_LABEL_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if p.attributes[semconv.ML_LABEL_OUTCOME] == semconv.LABEL_MATCHED
    }


def test_matched_labels_are_the_confusion_matrix_scikit_learn_computes(
    telemetry: InMemoryTelemetry,
) -> None:
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(7)
    predicted = rng.integers(0, 4, 300)
    actual = np.where(rng.random(300) < 0.7, predicted, rng.integers(0, 4, 300))
    monitor = _monitor(telemetry, trace=False)
    for y, label in zip(predicted, actual, strict=True):
        with monitor.predict() as p:
            p.record(y, 0.5)
        monitor.record_label(p.id, int(label))

    expected = confusion_matrix(actual, predicted, labels=[0, 1, 2, 3])  # rows: true labels
    assert {
        (str(p), str(t)): int(expected[t, p]) for t in range(4) for p in range(4) if expected[t, p]
    } == _matrix(telemetry)
    assert {"matched": 300} == telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


def test_batch_labels_join_row_by_row(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(np.array([1, 0, 1, 1]))
    monitor.record_label(p.id, np.array([1, 0, 0, 1]))
    assert {("1", "1"): 2, ("0", "0"): 1, ("1", "0"): 1} == _matrix(telemetry)


def test_each_row_of_a_batch_has_an_id_of_its_own(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(["cat", "dog", "cat"])
    assert p.ids == p.ids and 3 == len(set(p.ids))
    monitor.record_label(p.ids[2], "dog")
    monitor.record_label(p.ids[0], "cat")
    assert {("cat", "dog"): 1, ("cat", "cat"): 1} == _matrix(telemetry)
    with monitor.predict() as single:
        single.record("emu")
    assert [single.id] == single.ids


def test_regression_counts_the_sums_mae_and_rmse_follow_from(telemetry: InMemoryTelemetry) -> None:
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    rng = np.random.default_rng(11)
    predictions, labels = rng.normal(5, 2, 50), rng.normal(5, 2, 50)
    monitor = _monitor(telemetry, task="regression", trace=False)
    for prediction, label in zip(predictions, labels, strict=True):
        with monitor.predict() as p:
            p.record(float(prediction))
        monitor.record_label(p.id, float(label))
    metrics = telemetry.metrics()
    (absolute,) = metrics[semconv.ML_MODEL_ABSOLUTE_ERROR].data.data_points
    (squared,) = metrics[semconv.ML_MODEL_SQUARED_ERROR].data.data_points
    matched = telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)
    assert {"matched": 50} == matched
    # What the dashboard divides (docs/semantic-conventions.md) is what scikit-learn computes.
    assert pytest.approx(mean_absolute_error(labels, predictions), rel=1e-9) == (
        absolute.value / matched["matched"]
    )
    assert pytest.approx(root_mean_squared_error(labels, predictions), rel=1e-9) == (
        (squared.value / matched["matched"]) ** 0.5
    )


def test_expired_invalid_and_replayed_labels_are_counted_not_raised(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = _monitor(telemetry, trace=False, labels=Labels(max_age=60))
    with monitor.predict() as p:
        p.record(1)
    monitor.record_label(p.id, 1)
    monitor.record_label(p.id, 1)  # a replay: counted once
    monitor.record_label("no-such-id", 1)
    monitor.record_label(None, 1)  # type: ignore[arg-type]
    monitor.record_label(p.id, {"unhashable": []})
    monitor.record_label(p.id, None)
    with monitor.predict() as late:
        late.record(2)
    real_time = __import__("time").time
    monkeypatch.setattr("otel_mlmon.monitor._join._time", lambda: real_time() + 61)
    monitor.record_label(late.id, 2)

    assert {"matched": 1, "duplicate": 1, "invalid": 4, "expired": 1} == telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


def test_model_info_and_update_switch_attributes_and_log_events(
    telemetry: InMemoryTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = _monitor(telemetry, framework="sklearn")
    caplog.set_level(logging.INFO, logger="otel_mlmon.events")
    monitor.model_loaded(metrics={"val_accuracy": 0.97})
    with monitor.predict() as p:
        p.record(1)
    monitor.update_model("1.3.0", reason="retrained", metrics={"val_accuracy": 0.98})
    with monitor.predict() as p:
        p.record(1)

    (info,) = telemetry.metric_points(semconv.ML_MODEL_INFO)
    assert dict(info.attributes) == {
        semconv.ML_MODEL_NAME: "iris",
        semconv.ML_MODEL_VERSION: "1.3.0",
        semconv.ML_MODEL_TASK: "classification",
        semconv.ML_MODEL_FRAMEWORK: "sklearn",
    }
    versions = {
        p.attributes[semconv.ML_MODEL_VERSION]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    }
    assert versions == {"1.2.0": 1, "1.3.0": 1}
    loaded, updated = caplog.records
    assert loaded.getMessage() == semconv.EVENT_MODEL_LOADED
    assert loaded.metrics == {"val_accuracy": 0.97}  # type: ignore[attr-defined]
    assert updated.getMessage() == semconv.EVENT_MODEL_UPDATED
    assert (
        updated.old_version,  # type: ignore[attr-defined]
        updated.new_version,  # type: ignore[attr-defined]
        updated.reason,  # type: ignore[attr-defined]
    ) == ("1.2.0", "1.3.0", "retrained")


def test_wrap_records_sync_and_async_predict_functions(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)

    @monitor.wrap
    def predict(features: list[float]) -> tuple[int, float]:
        return 1, 0.75

    @monitor.wrap
    async def apredict(features: list[float]) -> int:
        await asyncio.sleep(0)
        return 2

    assert predict([0.1]) == (1, 0.75)
    assert asyncio.run(apredict([0.2])) == 2
    assert _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS) == {
        "1": 1,
        "2": 1,
    }
    assert telemetry.metric_points(semconv.ML_MODEL_PREDICTION_CONFIDENCE)[0].count == 1
    assert [s.name for s in telemetry.spans()] == ["predict iris", "predict iris"]


@pytest.mark.parametrize(
    "kwargs",
    [
        lambda: {"task": "ranking"},
        lambda: {"classes": Classes(limit=0)},
        lambda: {"labels": Labels(max_age=0)},
        lambda: {"labels": Labels(max_age=float("nan"))},
        lambda: {"classes": "abc"},
        lambda: {"version": ""},
    ],
)
def test_invalid_configuration_fails_fast(kwargs: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(ConfigurationError):
        ModelMonitor("iris", **kwargs())


@pytest.mark.parametrize(
    ("keyword", "value", "replacement"),
    [
        ("max_classes", 3, "classes=Classes(limit=...)"),
        ("feature_names", ["a"], "drift=Drift(feature_names=...)"),
        ("reference", np.zeros((20, 1)), "drift=Drift(reference=...)"),
        ("reference_predictions", np.zeros(20), "drift=Drift(predictions=...)"),
        ("label_ttl", 60.0, "labels=Labels(max_age=...)"),
        ("pending_labels", 10, "nothing"),
        ("quality_window", 10, "nothing"),
    ],
)
def test_the_keywords_of_0_1_still_work_with_a_deprecation_warning(
    telemetry: InMemoryTelemetry, keyword: str, value: object, replacement: str
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{keyword}=.*{re.escape(replacement)}") as seen:
        monitor = ModelMonitor("iris", trace=False, **telemetry.providers, **{keyword: value})
    assert __file__ == seen[0].filename  # points at the caller, not at otel-mlmon
    with monitor.predict() as p:
        p.record(1)
    assert 1 == sum(p.value for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS))


def test_the_deprecated_keywords_land_in_their_groups(telemetry: InMemoryTelemetry) -> None:
    reference = np.zeros((20, 1))
    with pytest.warns(DeprecationWarning):
        monitor = ModelMonitor(
            "iris", max_classes=2, feature_names=["a"], reference=reference, **telemetry.providers
        )
    assert Classes(limit=2) == monitor._classes
    for y in range(4):
        with monitor.predict() as p:
            p.record(y)
    assert 2 == telemetry.metric_points(semconv.ML_MODEL_CLASS_OVERFLOWS)[0].value
    with monitor.predict(features=[[0.5]]) as p:
        p.record(0)
    assert {"window rows": {"iris": 1}, "reference rows": {"a": 20}} == _drift_seen(telemetry)


def test_an_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="colour"):
        ModelMonitor("iris", colour="red")  # type: ignore[call-arg]


def _drift_seen(telemetry: InMemoryTelemetry) -> dict[str, Any]:
    """What the drift gauges report: rows in each model's window, reference rows per feature."""
    return {
        "window rows": telemetry.values_by(semconv.ML_DRIFT_WINDOW_SAMPLES, semconv.ML_MODEL_NAME),
        "reference rows": telemetry.values_by(
            semconv.ML_DRIFT_REFERENCE_VALUES, semconv.ML_FEATURE_NAME
        ),
    }


def test_drift_group_enables_drift(telemetry: InMemoryTelemetry) -> None:
    monitors = [
        ModelMonitor("iris", drift=Drift(reference=np.zeros((20, 1)), feature_names=["a"]),
                     **telemetry.providers),
        ModelMonitor("wine", **telemetry.providers),
    ]  # fmt: skip
    for monitor in monitors:
        with monitor.predict(features=[[0.0], [1.0], [2.0]]) as p:
            p.record([1, 1, 1])
    # Only the monitor given a Drift group keeps a window, against its 20 reference rows.
    assert {"window rows": {"iris": 3}, "reference rows": {"a": 20}} == _drift_seen(telemetry)


def test_empty_name_fails_fast() -> None:
    with pytest.raises(ConfigurationError, match="name"):
        ModelMonitor(" ")


def test_an_internal_telemetry_error_never_reaches_the_caller(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = _monitor(telemetry)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(monitor._recorder.instruments.predictions, "add", broken)
    monkeypatch.setenv("OTEL_MLMON_STRICT", "false")
    before = _guard.internal_error_count("Prediction.record")
    for _ in range(3):
        with monitor.predict() as p:
            p.record(1, 0.5)
    assert _guard.internal_error_count("Prediction.record") - before == 3
    (duration,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    assert duration.count == 3


def test_strict_mode_surfaces_internal_errors(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = _monitor(telemetry)
    monkeypatch.setattr(monitor._recorder.instruments.predictions, "add", lambda *a, **k: 1 / 0)
    monkeypatch.setenv("OTEL_MLMON_STRICT", "true")
    with pytest.raises(ZeroDivisionError), monitor.predict() as p:
        p.record(1)


@pytest.fixture
def global_telemetry() -> Iterator[InMemoryTelemetry]:
    """In-memory providers set as the API's global tracer and meter providers for one test;
    the globals as they were before (unset, or a provider an earlier test set) come back."""
    before = (trace.get_tracer_provider(), metrics.get_meter_provider())
    with InMemoryTelemetry() as telemetry:
        reset_trace_globals()
        reset_metrics_globals()
        trace.set_tracer_provider(telemetry.tracer_provider)
        metrics.set_meter_provider(telemetry.meter_provider)
        try:
            yield telemetry
        finally:
            reset_trace_globals()
            reset_metrics_globals()
            if not _compat.is_proxy_provider(before[0]):
                trace.set_tracer_provider(before[0])
            if not _compat.is_proxy_provider(before[1]):
                metrics.set_meter_provider(before[1])


def test_monitor_records_into_the_global_providers_by_default(
    global_telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("iris")  # no providers given: the API's globals
    with monitor.predict() as p:
        p.record(1, 0.5)
    monitor.record_label(p.id, 1)

    assert ["predict iris"] == [s.name for s in global_telemetry.spans()]
    assert {"1": 1} == global_telemetry.values_by(
        semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS
    )
    assert {"matched": 1} == global_telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


def test_an_id_read_before_record_names_no_output_and_its_label_counts_invalid(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as early:
        early_id = early.id  # nothing recorded yet: the id cannot carry the class
        early.record(1)
    with monitor.predict() as late:
        late.record(2)
    assert early_id == early.id
    monitor.record_label(early_id, 1)
    monitor.record_label(late.id, 0)

    assert {"matched": 1, "invalid": 1} == telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )
    assert {("2", "0"): 1} == _matrix(telemetry)


def test_a_label_for_a_replaced_version_counts_for_the_version_that_made_it(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(1)
    monitor.update_model("1.3.0")
    monitor.record_label(p.id, 1)

    assert [("1.2.0", "matched", 1)] == [
        (p.attributes[semconv.ML_MODEL_VERSION], p.attributes[semconv.ML_LABEL_OUTCOME], p.value)
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    ]


def test_the_id_is_stable_url_safe_and_at_most_40_characters(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    regression = _monitor(telemetry, task="regression")
    known = _monitor(telemetry, classes=list(range(300)))
    made = []
    for m, value in [(monitor, 1), (monitor, -(2**62)), (monitor, "versicolor"), (known, 299),
                     (regression, 1e300)]:  # fmt: skip
        with m.predict() as p:
            p.record(value)
        assert p.id == p.id
        made.append(p.id)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{28,40}", i) for i in made), made
    spans = {(s.attributes or {})[semconv.ML_PREDICTION_ID] for s in telemetry.spans()}
    assert set(made) == spans


def test_two_monitors_on_one_provider_both_report_their_gauges(
    telemetry: InMemoryTelemetry,
) -> None:
    # The SDK keeps only the first callback registered under a name on a meter.
    monitors = [ModelMonitor(name, **telemetry.providers) for name in ("iris", "wine")]
    for monitor in monitors:
        with monitor.predict() as p:
            p.record(1)
        monitor.record_label(p.id, 1)

    def models(name: str) -> list[str]:
        return sorted(p.attributes[semconv.ML_MODEL_NAME] for p in telemetry.metric_points(name))

    for name in (semconv.ML_MODEL_INFO, semconv.ML_MODEL_LOAD_TIME, semconv.ML_MODEL_LABELS):
        assert ["iris", "wine"] == models(name), name
    del monitors[0]
    import gc

    gc.collect()
    assert ["wine"] == models(semconv.ML_MODEL_INFO)  # a discarded monitor stops reporting


# --- bounds on what a user value can make us keep (issue 17, items 10 and 12) ----------------

MB = 1 << 20


def _kept_bytes(run: Callable[[], None]) -> int:
    """Bytes still allocated after ``run()``, everything it dropped collected."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_hundred_classes_of_one_megabyte_keep_kilobytes_and_are_counted_as_cut(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)

    def predict() -> None:
        for i in range(100):
            with monitor.predict() as p:
                p.record(f"{i:03d}" + "x" * MB)

    kept = _kept_bytes(predict)
    texts = _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS)
    assert kept < 512 * 1024, kept
    assert {256} == {len(text) for text in texts}
    assert 100 == len(texts)
    reasons = _value_by(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS, semconv.ML_REJECTION_REASON)
    assert {semconv.REJECT_VALUE_TRUNCATED: 100} == reasons


def test_a_batch_of_long_classes_is_cut_row_by_row(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(["a" * 1000, "a" * 1000, "b"])
    counts = _value_by(telemetry, semconv.ML_MODEL_PREDICTIONS, semconv.ML_PREDICTION_CLASS)
    assert {"a" * 256: 2, "b": 1} == counts
    reasons = _value_by(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS, semconv.ML_REJECTION_REASON)
    assert {semconv.REJECT_VALUE_TRUNCATED: 2} == reasons


def test_a_thousand_labels_of_one_megabyte_keep_kilobytes(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    ids = []
    for i in range(1000):
        with monitor.predict() as p:
            p.record(i % 3)
        ids.append(p.id)

    def label() -> None:
        for i, prediction_id in enumerate(ids):
            monitor.record_label(prediction_id, f"{i:04d}" + "y" * MB)

    kept = _kept_bytes(label)
    assert kept < 2 * MB, kept
    reasons = _value_by(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS, semconv.ML_REJECTION_REASON)
    assert {semconv.REJECT_VALUE_TRUNCATED: 1000} == reasons


def test_the_attribute_value_length_limit_comes_from_otel(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "8")
    monitor = _monitor(telemetry)
    with monitor.predict() as p:
        p.record("abcdefghijkl")
    (span,) = telemetry.spans()
    assert "abcdefgh" == (span.attributes or {})[semconv.ML_PREDICTION_CLASS]
    with pytest.raises(ConfigurationError, match="version is 9 characters"):
        monitor.update_model("1.2.3.4.5")


def test_a_model_name_longer_than_the_limit_fails_fast() -> None:
    with pytest.raises(ConfigurationError, match="OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        ModelMonitor("m" * 257)


def test_update_model_keeps_the_last_replaced_versions_and_retires_older_ones(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)
    for version in range(2000):
        monitor.update_model(f"v{version}")
        with monitor.predict() as p:
            p.record(1)
        monitor.record_label(p.id, 1)
        if version % 500 == 0:
            telemetry.metrics()  # a reader collected while the old versions were current

    labels = telemetry.metric_points(semconv.ML_MODEL_LABELS)
    kept = [f"v{n}" for n in range(2000 - 1 - MAX_PREVIOUS, 2000)]
    assert [(version, "matched", "1", 1) for version in kept] == sorted(
        (
            p.attributes[semconv.ML_MODEL_VERSION],
            p.attributes[semconv.ML_LABEL_OUTCOME],
            p.attributes[semconv.ML_LABEL_CLASS],
            p.value,
        )
        for p in labels
    )
    for name in (semconv.ML_MODEL_INFO, semconv.ML_MODEL_LOAD_TIME):
        versions = [p.attributes[semconv.ML_MODEL_VERSION] for p in telemetry.metric_points(name)]
        assert ["v1999"] == versions, name
