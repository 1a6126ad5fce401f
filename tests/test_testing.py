"""otel_mlmon.testing: what users' own tests read their telemetry with."""

from __future__ import annotations

from otel_mlmon import ModelMonitor
from otel_mlmon.testing import InMemoryTelemetry


def test_totals_and_values_by_attribute_read_what_a_monitor_recorded() -> None:
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("iris", version="2", trace=False, **telemetry.providers)
        for label in ("a", "b", "a"):
            with monitor.predict() as p:
                p.record(label, confidence=0.5)
        assert 3 == telemetry.total("ml.model.predictions")
        assert 2 == telemetry.total("ml.model.predictions", ml__prediction__class="a")
        assert 0 == telemetry.total("ml.model.predictions", ml__model__version="1")
        assert {"a": 2, "b": 1} == telemetry.values_by(
            "ml.model.predictions", "ml.prediction.class"
        )
        assert {("2", "a"): 2, ("2", "b"): 1} == telemetry.values_by(
            "ml.model.predictions", "ml.model.version", "ml.prediction.class"
        )
        assert {} == telemetry.values_by("ml.model.predictions", "ml.prediction.class", "no.such")
        assert 3 == telemetry.total("ml.model.prediction.duration")  # a histogram's count
        assert 0 == telemetry.total("ml.no.such.metric")
