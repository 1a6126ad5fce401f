"""SDK providers the benchmarks record into, as a service would configure them.

A MeterProvider with otel-mlmon's default Views and a pull reader (nothing is collected while
the hot path is timed; collection is measured apart), and a TracerProvider with the standard
``BatchSpanProcessor`` in front of an exporter that drops what it gets, so the cost measured is
the SDK's and ours, not a network's.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_mlmon import ModelMonitor, default_views


class NullSpanExporter(SpanExporter):
    """Accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Providers:
    """One MeterProvider (pull reader) and one TracerProvider (batch processor, null export)."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader], views=default_views(), shutdown_on_exit=False
        )
        self.tracer_provider = TracerProvider(shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(NullSpanExporter()))

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def collect(self) -> None:
        self.reader.get_metrics_data()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def drift_available() -> bool:
    """Whether this checkout has the drift processor (``otel_mlmon.drift`` and the
    ``ModelMonitor(drift=...)`` argument)."""
    if importlib.util.find_spec("otel_mlmon.drift") is None:
        return False
    parameters = inspect.signature(ModelMonitor.__init__).parameters
    return "drift" in parameters


DRIFT_MISSING = "skipped: otel_mlmon.drift is not in this checkout (issue 3)"
