"""Shadow predictions: a challenger recorded on the served traffic, never served; its agreement
with the served predictions counted row by row; its ids join labels and outcomes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from otel_mlmon import ConfigurationError, ModelMonitor, semconv
from otel_mlmon.monitor import Labels, Outcomes
from otel_mlmon.monitor.shadow import MAX_CHAMPIONS
from otel_mlmon.testing import InMemoryTelemetry


def _monitor(telemetry: InMemoryTelemetry, **kwargs: Any) -> ModelMonitor:
    kwargs.setdefault("trace", False)
    return ModelMonitor("iris", version="1.0", **telemetry.providers, **kwargs)


def _agreement(telemetry: InMemoryTelemetry) -> dict[tuple[str, str, str], float]:
    return telemetry.values_by(
        semconv.ML_MODEL_SHADOW_COMPARISONS,
        semconv.ML_MODEL_VERSION,
        semconv.ML_SHADOW_CHAMPION_VERSION,
        semconv.ML_SHADOW_AGREEMENT,
    )


def test_a_shadow_records_as_its_own_version_with_the_shadow_role(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    challenger = monitor.shadow("2.0")
    for served, candidate in [(0, 0), (1, 2), (2, 2), (1, 1)]:
        with monitor.predict() as p:
            p.record(served, 0.9)
        with challenger.predict(p) as s:
            s.record(candidate, 0.6)

    predictions = {
        (p.attributes[semconv.ML_MODEL_VERSION], p.attributes.get(semconv.ML_MODEL_ROLE),
         p.attributes[semconv.ML_PREDICTION_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    }  # fmt: skip
    assert {
        ("1.0", None, "0"): 1, ("1.0", None, "1"): 2, ("1.0", None, "2"): 1,
        ("2.0", "shadow", "0"): 1, ("2.0", "shadow", "2"): 2, ("2.0", "shadow", "1"): 1,
    } == predictions  # fmt: skip
    assert {("2.0", "1.0", "agree"): 3, ("2.0", "1.0", "disagree"): 1} == _agreement(telemetry)
    durations = {
        (p.attributes[semconv.ML_MODEL_VERSION], p.attributes.get(semconv.ML_MODEL_ROLE)): p.count
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTION_DURATION)
    }
    assert {("1.0", None): 4, ("2.0", "shadow"): 4} == durations
    assert (challenger.name, challenger.version) == ("iris", "2.0")


def test_batches_are_compared_row_by_row_and_regressions_within_a_tolerance(
    telemetry: InMemoryTelemetry,
) -> None:
    classifier = _monitor(telemetry)
    challenger = classifier.shadow("2.0")
    with classifier.predict() as p:
        p.record(np.array([0, 1, 2, 2]))
    with challenger.predict(p) as s:
        s.record([0, 1, 1, 2])
    regression = ModelMonitor("house", version="1", task="regression", trace=False,
                              **telemetry.providers)  # fmt: skip
    candidate = regression.shadow("2", tolerance=0.5)
    for served, shadowed in [(10.0, 10.4), (10.0, 9.0), (3.0, 3.5)]:
        with regression.predict() as r:
            r.record(served)
        with candidate.predict(r) as c:
            c.record(shadowed)

    assert {
        ("2.0", "1.0", "agree"): 3, ("2.0", "1.0", "disagree"): 1,
        ("2", "1", "agree"): 2, ("2", "1", "disagree"): 1,
    } == _agreement(telemetry)  # fmt: skip


def test_what_cannot_be_compared_is_counted_not_raised(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    challenger = monitor.shadow("2.0")
    with monitor.predict() as unrecorded:
        pass
    with challenger.predict(unrecorded) as s:
        s.record(1)
    with monitor.predict() as batch:
        batch.record([1, 2])
    with challenger.predict(batch) as s:
        s.record([1, 2, 3])
    with challenger.predict(batch) as s:
        s.record(1)
    with challenger.predict(batch) as s:
        s.record(None)
        s.record(1)  # a second record is rejected as on any prediction, and not compared

    rejected = telemetry.values_by(semconv.ML_MONITOR_REJECTED_INPUTS, semconv.ML_REJECTION_REASON)
    assert {"shadow_unpaired": 4, "prediction_invalid": 1, "recorded_twice": 1} == rejected
    assert {} == _agreement(telemetry)


def test_a_shadows_ids_join_labels_and_outcomes_for_the_shadow(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, outcomes=Outcomes(kinds=("revenue",)))
    challenger = monitor.shadow("2.0")
    with monitor.predict() as p:
        p.record(1)
    with challenger.predict(p) as s:
        s.record(2)
    monitor.record_label(p.id, 2)
    monitor.record_label(s.id, 2)
    monitor.record_outcome(s.id, "revenue", 3)

    labels = {
        (p.attributes[semconv.ML_MODEL_VERSION], p.attributes.get(semconv.ML_MODEL_ROLE),
         p.attributes[semconv.ML_PREDICTION_CLASS], p.attributes[semconv.ML_LABEL_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }  # fmt: skip
    assert {("1.0", None, "1", "2"): 1, ("2.0", "shadow", "2", "2"): 1} == labels
    (value,) = telemetry.metric_points(semconv.ML_MODEL_OUTCOME_VALUE)
    assert ("2.0", "shadow", 3) == (
        value.attributes[semconv.ML_MODEL_VERSION], value.attributes[semconv.ML_MODEL_ROLE],
        value.value,
    )  # fmt: skip


def test_a_traced_shadow_has_its_own_span_and_never_describes_the_request(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, trace=True)
    quiet, traced = monitor.shadow("2.0"), monitor.shadow("3.0", trace=True)
    with monitor.predict() as p:
        p.record(1)
    with quiet.predict(p) as s:
        s.record(1)
    with traced.predict(p) as t:
        t.record(2)
    spans = {span.attributes[semconv.ML_MODEL_VERSION]: span for span in telemetry.spans()}
    assert {"1.0", "3.0"} == set(spans)
    assert "shadow" == spans["3.0"].attributes[semconv.ML_MODEL_ROLE]
    assert "2" == spans["3.0"].attributes[semconv.ML_PREDICTION_CLASS]
    # A shadow's id is made only when read: not for its span.
    assert semconv.ML_PREDICTION_ID not in spans["3.0"].attributes
    assert semconv.ML_PREDICTION_ID in spans["1.0"].attributes


def test_a_failing_shadow_counts_its_error_and_raises_to_its_caller(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    challenger = monitor.shadow("2.0")
    with monitor.predict() as p:
        p.record(1)
    with pytest.raises(KeyError), challenger.predict(p):
        raise KeyError("the challenger failed")
    (error,) = telemetry.metric_points(semconv.ML_MODEL_ERRORS)
    assert ("2.0", "shadow", "KeyError") == (
        error.attributes[semconv.ML_MODEL_VERSION], error.attributes[semconv.ML_MODEL_ROLE],
        error.attributes[semconv.ERROR_TYPE],
    )  # fmt: skip


def test_promoting_a_shadow_serves_it_without_the_role(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    monitor.shadow("2.0")
    monitor.update_model("2.0")
    with monitor.predict() as p:
        p.record(1)
    monitor.record_label(p.id, 1)
    roles = {
        p.attributes.get(semconv.ML_MODEL_ROLE)
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }
    assert {None} == roles


def test_agreement_is_kept_against_a_bounded_number_of_served_versions(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    challenger = monitor.shadow("shadow")
    for n in range(3 * MAX_CHAMPIONS):
        monitor.update_model(f"v{n}")
        with monitor.predict() as p:
            p.record(1)
        with challenger.predict(p) as s:
            s.record(1)
    champions = {champion for _, champion, _ in _agreement(telemetry)}
    assert {f"v{n}" for n in range(2 * MAX_CHAMPIONS, 3 * MAX_CHAMPIONS)} == champions


@pytest.mark.parametrize(
    "version, kwargs",
    [
        ("1.0", {}),
        ("0.9", {}),
        ("", {}),
        ("2.0", {"tolerance": -1.0}),
        ("2.0", {"tolerance": float("nan")}),
    ],
)
def test_an_unusable_shadow_fails_fast(
    telemetry: InMemoryTelemetry, version: str, kwargs: dict[str, Any]
) -> None:
    monitor = _monitor(telemetry, labels=Labels(fleet_versions=["0.9"]))
    with pytest.raises(ConfigurationError):
        monitor.shadow(version, **kwargs)


def test_asking_twice_for_a_shadow_shares_its_counts(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    for _ in range(2):
        challenger = monitor.shadow("2.0")
        with monitor.predict() as p:
            p.record(1)
        with challenger.predict(p) as s:
            s.record(1)
    assert {("2.0", "1.0", "agree"): 2, ("2.0", "1.0", "disagree"): 0} == _agreement(telemetry)


def test_a_shadow_in_a_web_request_leaves_the_server_span_to_the_served_prediction(
    telemetry: InMemoryTelemetry,
) -> None:
    # Instrumented without a monitor, a request is described by whichever prediction runs in
    # it: the served one, never the shadow that answers nothing.
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from opentelemetry.trace import SpanKind

    from otel_mlmon.instrumentation import instrument_fastapi, uninstrument_fastapi

    monitor = _monitor(telemetry)
    challenger = monitor.shadow("2.0")
    app = FastAPI()

    @app.get("/predict")
    def predict() -> dict[str, int]:
        with monitor.predict() as p:
            p.record(1, 0.9)
        with challenger.predict(p) as s:
            s.record(2, 0.6)
        return {"prediction": 1}

    instrument_fastapi(app, **telemetry.providers)
    try:
        with TestClient(app) as client:
            assert 200 == client.get("/predict").status_code
    finally:
        uninstrument_fastapi(app)

    (server,) = [span for span in telemetry.spans() if span.kind == SpanKind.SERVER]
    assert server.attributes is not None
    assert "1.0" == server.attributes[semconv.ML_MODEL_VERSION]
