"""ModelMonitor: spans, prediction metrics, errors, cardinality bounds, labels and lifecycle."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import numpy as np
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from otel_mlmon import ConfigurationError, ModelMonitor, _guard, semconv
from otel_mlmon.context import get_model
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
    monitor = _monitor(telemetry, max_classes=3, trace=False)
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


def test_delayed_labels_give_the_same_quality_as_scikit_learn(
    telemetry: InMemoryTelemetry,
) -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(7)
    predicted = rng.integers(0, 4, 300)
    actual = np.where(rng.random(300) < 0.7, predicted, rng.integers(0, 4, 300))
    monitor = _monitor(telemetry, trace=False)
    for y, label in zip(predicted, actual, strict=True):
        with monitor.predict() as p:
            p.record(y, 0.5)
        monitor.record_label(p.id, int(label))

    precision, recall, f1, _ = precision_recall_fscore_support(
        actual, predicted, average="macro", zero_division=0
    )
    expected = {
        semconv.ML_MODEL_ACCURACY: accuracy_score(actual, predicted),
        semconv.ML_MODEL_PRECISION: precision,
        semconv.ML_MODEL_RECALL: recall,
        semconv.ML_MODEL_F1_SCORE: f1,
    }
    metrics = telemetry.metrics()
    for name, value in expected.items():
        (point,) = metrics[name].data.data_points
        assert pytest.approx(value, abs=1e-12) == point.value
    assert metrics[semconv.ML_MODEL_QUALITY_SAMPLES].data.data_points[0].value == 300
    assert _value_by(telemetry, semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME) == {
        "matched": 300
    }


def test_batch_labels_join_row_by_row(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(np.array([1, 0, 1, 1]))
    monitor.record_label(p.id, np.array([1, 0, 0, 1]))
    assert telemetry.metric_points(semconv.ML_MODEL_ACCURACY)[0].value == 0.75


def test_regression_reports_mae_and_rmse(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, task="regression")
    for prediction, label in [(1.0, 2.0), (3.0, 3.0), (5.0, 2.0)]:
        with monitor.predict() as p:
            p.record(prediction)
        monitor.record_label(p.id, label)
    metrics = telemetry.metrics()
    assert pytest.approx(4 / 3) == metrics[semconv.ML_MODEL_MAE].data.data_points[0].value
    assert (
        pytest.approx((10 / 3) ** 0.5) == metrics[semconv.ML_MODEL_RMSE].data.data_points[0].value
    )
    assert semconv.ML_MODEL_ACCURACY not in metrics


def test_unknown_expired_and_malformed_labels_are_counted_not_raised(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = _monitor(telemetry, trace=False, label_ttl=60, pending_labels=2)
    clock = [1000.0]
    monkeypatch.setattr("otel_mlmon.monitor.time.monotonic", lambda: clock[0])
    ids = []
    for y in range(3):  # the first is evicted: only 2 may wait
        with monitor.predict() as p:
            p.record(y)
        ids.append(p.id)
    monitor.record_label(ids[0], 0)
    monitor.record_label("no-such-id", 1)
    monitor.record_label(None, 1)  # type: ignore[arg-type]
    monitor.record_label(ids[1], {"unhashable": []})
    clock[0] += 61
    monitor.record_label(ids[2], 2)
    monitor.record_label(ids[2], 2)  # already consumed

    assert _value_by(telemetry, semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME) == {
        "unknown_id": 4,
        "invalid": 1,
        "expired": 1,
    }
    assert telemetry.metric_points(semconv.ML_MODEL_ACCURACY) == []


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
        {"task": "ranking"},
        {"max_classes": 0},
        {"quality_window": -1},
        {"pending_labels": 1.5},
        {"label_ttl": 0},
        {"version": ""},
    ],
)
def test_invalid_configuration_fails_fast(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ModelMonitor("iris", **kwargs)


def test_empty_name_fails_fast() -> None:
    with pytest.raises(ConfigurationError, match="name"):
        ModelMonitor(" ")


def test_an_internal_telemetry_error_never_reaches_the_caller(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = _monitor(telemetry)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(monitor._predictions, "add", broken)
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
    monkeypatch.setattr(monitor._predictions, "add", lambda *a, **k: 1 / 0)
    monkeypatch.setenv("OTEL_MLMON_STRICT", "true")
    with pytest.raises(ZeroDivisionError), monitor.predict() as p:
        p.record(1)


def test_monitor_records_into_the_global_providers_by_default() -> None:
    # Without providers it uses the API's globals: a no-op here, and never an error.
    monitor = ModelMonitor("iris")
    with monitor.predict() as p:
        p.record(1, 0.5)
    monitor.record_label(p.id, 1)
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_label_joins_whether_the_id_is_read_before_or_after_record(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as early:
        early_id = early.id  # read before record: awaited from record on
        early.record(1)
    with monitor.predict() as late:
        late.record(2)
    late_id = late.id  # read after the block: awaited from this read on
    monitor.record_label(early_id, 1)
    monitor.record_label(late_id, 0)

    assert {"matched": 2} == _value_by(telemetry, semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)
    assert [0.5] == [p.value for p in telemetry.metric_points(semconv.ML_MODEL_ACCURACY)]


def test_an_id_read_after_update_model_does_not_join_the_new_version(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(1)
    monitor.update_model("1.3.0")
    monitor.record_label(p.id, 1)

    assert {"unknown_id": 1} == _value_by(
        telemetry, semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


def test_the_id_is_stable_and_16_hex_digits(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, trace=False)
    with monitor.predict() as p:
        p.record(1)
    assert p.id == p.id
    assert 16 == len(p.id)
    int(p.id, 16)


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

    for name in (
        semconv.ML_MODEL_INFO,
        semconv.ML_MODEL_LOAD_TIME,
        semconv.ML_MODEL_ACCURACY,
        semconv.ML_MODEL_QUALITY_SAMPLES,
        semconv.ML_MODEL_LABELS,
    ):
        assert ["iris", "wine"] == models(name), name
    del monitors[0]
    import gc

    gc.collect()
    assert ["wine"] == models(semconv.ML_MODEL_INFO)  # a discarded monitor stops reporting
