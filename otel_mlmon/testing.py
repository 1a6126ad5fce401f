"""In-memory OpenTelemetry wiring for tests: ours and our users'.

.. code-block:: python

    from otel_mlmon.testing import InMemoryTelemetry

    def test_my_service() -> None:
        with InMemoryTelemetry() as telemetry:
            monitor = ModelMonitor("m", **telemetry.providers)
            ...
            assert telemetry.metric_points("ml.model.predictions")

Real SDK providers, an ``InMemoryMetricReader`` and an ``InMemorySpanExporter`` behind a
``SimpleSpanProcessor``, nothing global touched and nothing printed or served: pass
``telemetry.providers`` to whatever takes ``tracer_provider=`` / ``meter_provider=``
(``ModelMonitor``, ``instrument_fastapi``, ``instrument_flask``) and assert on what was
recorded with :meth:`InMemoryTelemetry.total` and :meth:`InMemoryTelemetry.values_by`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def _point_value(point: Any) -> float:
    """What a point counts: a histogram's count, else its value."""
    count = getattr(point, "count", None)
    return float(count) if count is not None else float(point.value)


class InMemoryTelemetry:
    """SDK providers that keep every span, metric and log record in memory.

    .. versionadded:: 0.1.0
    """

    def __init__(self, resource: Resource | None = None) -> None:
        resource = resource or Resource.create({"service.name": "test"})
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(
            metric_readers=[self.metric_reader], resource=resource, shutdown_on_exit=False
        )
        self.log_exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
        self.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    @property
    def providers(self) -> dict[str, Any]:
        """``tracer_provider`` and ``meter_provider``, to pass as keyword arguments."""
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span finished so far."""
        return tuple(self.span_exporter.get_finished_spans())

    def logs(self) -> tuple[ReadableLogRecord, ...]:
        """Every log record emitted so far."""
        return tuple(self.log_exporter.get_finished_logs())

    def metrics(self) -> dict[str, Metric]:
        """Collect now and return each metric by name (one scope's data per name)."""
        data = self.metric_reader.get_metrics_data()
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    found[metric.name] = metric
        return found

    def metric_points(self, name: str) -> list[Any]:
        """Collect now and return the data points of metric ``name`` (empty if absent)."""
        metric = self.metrics().get(name)
        return [] if metric is None else list(metric.data.data_points)

    @staticmethod
    def attributes_of(point: Any) -> Mapping[str, Any]:
        """A data point's attributes as a plain dict."""
        return dict(point.attributes or {})

    def total(self, name: str, **attributes: str) -> float:
        """Collect now and add up metric ``name`` over the points carrying ``attributes``
        (dots in attribute keys written as ``__``: ``ml__model__version="2"``): the sum of a
        counter, the last value of a gauge, the count of a histogram. 0 if absent.

        .. versionadded:: 0.2.0
        """
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        return sum(
            _point_value(point)
            for point in self.metric_points(name)
            if wanted.items() <= self.attributes_of(point).items()
        )

    def values_by(self, name: str, key: str, *more_keys: str) -> dict[Any, float]:
        """Collect now and return metric ``name`` added up by the value of attribute ``key``
        (by the tuple of the values of ``key`` and ``more_keys`` when more are given; points
        without one of them are left out), as :meth:`total` adds them.

        .. versionadded:: 0.2.0
        .. versionchanged:: 0.3.0 ``more_keys``.
        """
        keys = (key, *more_keys)
        values: dict[Any, float] = {}
        for point in self.metric_points(name):
            attributes = self.attributes_of(point)
            if all(k in attributes for k in keys):
                found = tuple(attributes[k] for k in keys) if more_keys else attributes[key]
                values[found] = values.get(found, 0) + _point_value(point)
        return values

    def shutdown(self) -> None:
        """Shut the providers down."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()

    def __enter__(self) -> InMemoryTelemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()
