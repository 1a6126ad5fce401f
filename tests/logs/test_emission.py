"""otel_mlmon.logs.emission: each line's OTel log record, and what happens when export fails."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from logs._lines import attributes_of, lines, record_of
from otel_mlmon import context
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.logs import configure_logging, flatten_attributes, get_logger
from otel_mlmon.testing import InMemoryTelemetry


def test_exported_record_has_body_severity_trace_context_and_flat_attributes(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        get_logger("app").warning(
            "drift_detected", score=0.3, metrics={"psi": {"age": 0.2}}, tags=["a", "b"]
        )
    exported = record_of(telemetry, "drift_detected")
    record, ctx = exported.log_record, span.get_span_context()
    assert (ctx.trace_id, ctx.span_id, SeverityNumber.WARN, "WARN", "app") == (
        record.trace_id,
        record.span_id,
        record.severity_number,
        record.severity_text,
        exported.instrumentation_scope.name,
    )
    assert {
        "score": 0.3,
        "metrics.psi.age": 0.2,
        "tags": ("a", "b"),
    } == dict(record.attributes or {})


@pytest.mark.parametrize(
    ("method", "severity"),
    [
        ("debug", SeverityNumber.DEBUG),
        ("info", SeverityNumber.INFO),
        ("warning", SeverityNumber.WARN),
        ("error", SeverityNumber.ERROR),
        ("critical", SeverityNumber.FATAL),
    ],
)
def test_severity_is_mapped_from_the_level(
    telemetry: InMemoryTelemetry, method: str, severity: SeverityNumber
) -> None:
    configure_logging(
        logger_provider=telemetry.logger_provider, stream=io.StringIO(), level="DEBUG"
    )
    getattr(get_logger("app"), method)("structlog")
    getattr(logging.getLogger("lib"), method)("stdlib")
    assert [severity, severity] == [r.log_record.severity_number for r in telemetry.logs()]


@pytest.mark.parametrize("source", ["structlog", "stdlib"])
def test_a_logged_exception_is_its_type_and_stack_trace_on_the_line_and_the_record(
    telemetry: InMemoryTelemetry, stream: io.StringIO, source: str
) -> None:
    message = "bad value " + "x" * 3  # kept out of the traceback's source lines
    try:
        raise ConfigurationError(message)
    except ConfigurationError:
        if source == "structlog":
            get_logger("app").exception("failed")
        else:
            logging.getLogger("lib").exception("failed")
    attributes = attributes_of(telemetry, "failed")
    (line,) = lines(stream)
    expected_type = "otel_mlmon.exceptions.ConfigurationError"
    assert (expected_type, expected_type) == (line["exception.type"], attributes["exception.type"])
    assert line["exception.stacktrace"] == attributes["exception.stacktrace"]
    assert attributes["exception.stacktrace"].startswith("Traceback (most recent call last):")
    assert attributes["exception.stacktrace"].endswith(f"\n{expected_type}\n")
    assert "exception.message" not in attributes and "exception.message" not in line
    assert message not in stream.getvalue()


def test_exception_messages_are_there_when_opted_in(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    configure_logging(
        logger_provider=telemetry.logger_provider, stream=out, record_exception_messages=True
    )
    try:
        raise ValueError("opted in")
    except ValueError:
        logging.getLogger("lib").exception("failed")
    attributes = attributes_of(telemetry, "failed")
    assert ("opted in", "opted in") == (
        attributes["exception.message"],
        lines(out)[0]["exception.message"],
    )
    assert attributes["exception.stacktrace"].endswith("ValueError: opted in\n")


def test_correlation_fields_are_not_duplicated_as_attributes(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    token = context.bind_request_id("r-1")
    try:
        with tracer.start_as_current_span("s"):
            get_logger("app").info("e")
    finally:
        context.reset_request_id(token)
    assert {"request_id": "r-1"} == attributes_of(telemetry, "e")


def test_flatten_attributes_documents_each_value_shape() -> None:
    flat = flatten_attributes(
        {
            "n": np.float32(0.5),
            "i": np.int64(2),
            "none": None,
            "nested": {"a": {"b": 1}},
            "deep": {"a": {"b": {"c": {"d": 1}}}},
            "same": [1, 2],
            "mixed": [1, "a"],
            "array": np.array([1, 2]),
            "obj": Path("/x"),
        }
    )
    assert {
        "n": 0.5,
        "i": 2,
        "nested.a.b": 1,
        "deep.a.b.c": '{"d":1}',
        "same": (1, 2),
        "mixed": '[1,"a"]',
        "array": "[1,2]",
        "obj": "/x",
    } == flat


def test_export_false_renders_without_exporting(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=out, export=False)
    get_logger("app").info("local only")
    assert (["local only"], ()) == ([line["event"] for line in lines(out)], telemetry.logs())


class _HungExporter(LogRecordExporter):
    """An exporter whose backend never answers until released: a collector that is down."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.release.wait(10)
        return LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return False


def test_a_full_queue_drops_with_a_counter_and_never_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    exporter = _HungExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "q"}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            exporter,
            max_queue_size=20,
            max_export_batch_size=10,
            schedule_delay_millis=5,
            meter_provider=meter_provider,
        )
    )
    out = io.StringIO()
    configure_logging(logger_provider=provider, stream=out)
    log = get_logger("app")
    for i in range(500):
        log.info("e", i=i)
    # Every call returned while the exporter was still hung: nothing waited on the backend.
    assert not exporter.release.is_set()
    exporter.release.set()
    provider.shutdown()
    data = reader.get_metrics_data()
    dropped = sum(
        point.value
        for rm in (data.resource_metrics if data else ())
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "otel.sdk.processor.log.processed"
        for point in metric.data.data_points
        if (point.attributes or {}).get("error.type") == "queue_full"
    )
    assert dropped >= 500 - 20 - 10 * 2
    # Every line is still written; the SDK's "Queue full" warning (deduplicated by the SDK) is
    # rendered, never exported back into the queue it reports on.
    rendered = lines(out)
    assert 500 == sum(1 for line in rendered if line["event"] == "e")
    assert ["Queue full, dropping Log."] == [
        line["event"] for line in rendered if line["event"].startswith("Queue full")
    ]


class _FailingExporter(LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        raise ConnectionRefusedError("collector is down")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_an_exporter_that_raises_never_reaches_the_caller() -> None:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(_FailingExporter()))
    out = io.StringIO()
    configure_logging(logger_provider=provider, stream=out)
    get_logger("app").info("still logged")
    events = [line["event"] for line in lines(out)]
    # The SDK reports the failure through logging; that line is rendered, never re-exported.
    assert ["Exception while exporting logs.", "still logged"] == events
    provider.shutdown()


def test_a_line_that_cannot_be_written_is_dropped_and_counted(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from otel_mlmon import _guard

    monkeypatch.delenv("OTEL_MLMON_STRICT", raising=False)
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=out)
    out.close()
    before = _guard.internal_error_count("logs.handler")
    first_report = "logs.handler" not in _guard._reported
    get_logger("app").info("lost line")
    logging.getLogger("lib").info("lost stdlib line")
    # The two lines, and the guard's warning about the first if this is the first report
    # (written to the same closed stream).
    assert 2 + first_report == _guard.internal_error_count("logs.handler") - before
    # The OTel record is still exported: only the local line was lost.
    assert {"lost line", "lost stdlib line"} <= {r.log_record.body for r in telemetry.logs()}
