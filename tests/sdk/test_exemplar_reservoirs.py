"""The exemplar reservoirs default_views() chooses: the latest measurement of each latency
bucket with the ids of the span it was made in (not the span current at collection), none on
instruments no panel follows to a trace."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_mlmon import default_views, semconv
from otel_mlmon.sdk._exemplars import LatestPerBucket


def _ids(span: object) -> tuple[int, int]:
    context = span.get_span_context()  # type: ignore[attr-defined]
    return context.trace_id, context.span_id


def test_the_latest_measurement_of_each_bucket_with_the_span_it_was_made_in() -> None:
    tracer = TracerProvider().get_tracer("test")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], views=default_views()).get_meter("test")
    duration = semconv.create_ml_model_prediction_duration(meter)
    spans = {}
    for name, seconds in (("first", 0.0001), ("second", 0.0002), ("slow", 0.9)):
        with tracer.start_as_current_span(name) as span:
            duration.record(seconds, {"ml.model.name": "m"})
            spans[name] = _ids(span)
    with tracer.start_as_current_span("collecting"):
        (metric,) = [
            m
            for rm in reader.get_metrics_data().resource_metrics  # type: ignore[union-attr]
            for sm in rm.scope_metrics
            for m in sm.metrics
        ]
    (point,) = metric.data.data_points
    assert isinstance(point, HistogramDataPoint)
    by_value = {e.value: (e.trace_id, e.span_id) for e in point.exemplars}
    # Both small values fall in the first bucket: the later one is kept.
    assert {0.0002: spans["second"], 0.9: spans["slow"]} == by_value

    with tracer.start_as_current_span("again"):
        duration.record(0.9, {"ml.model.name": "m"})
    data = reader.get_metrics_data()
    (point,) = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points  # type: ignore[union-attr]
    assert [0.9] == [e.value for e in point.exemplars]  # reset at each collection, as the SDK's


def test_a_value_on_a_boundary_belongs_to_that_bucket() -> None:
    reservoir = LatestPerBucket(boundaries=[0.1, 0.5])
    for value in (0.1, 0.5, 0.7):
        reservoir.offer(value, 0, None, None)  # type: ignore[arg-type]
    assert {0: 0.1, 1: 0.5, 2: 0.7} == {i: v for i, (v, *_) in reservoir._latest.items()}


def test_instruments_no_panel_follows_keep_no_exemplar() -> None:
    tracer = TracerProvider().get_tracer("test")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], views=default_views()).get_meter("test")
    predictions = semconv.create_ml_model_predictions(meter)
    confidence = semconv.create_ml_model_prediction_confidence(meter)
    errors = semconv.create_ml_model_errors(meter)
    with tracer.start_as_current_span("predict"):
        predictions.add(1)
        confidence.record(0.9)
        errors.add(1)
    carrying = {
        m.name
        for rm in reader.get_metrics_data().resource_metrics  # type: ignore[union-attr]
        for sm in rm.scope_metrics
        for m in sm.metrics
        if any(p.exemplars for p in m.data.data_points)
    }
    assert {semconv.ML_MODEL_ERRORS} == carrying
