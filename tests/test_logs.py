"""otel_mlmon.logs: correlated structlog/stdlib lines and their OTel log records."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
from opentelemetry import trace
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
from opentelemetry.trace import SpanKind

import otel_mlmon
import otel_mlmon.instrumentation
from otel_mlmon import ModelMonitor, context, logs, semconv
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.testing import InMemoryTelemetry

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "logging.md"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging() changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    structlog.reset_defaults()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    structlog.reset_defaults()
    logs._our_processors = None
    logs._Service.name = None
    logs._settings.sample_predictions = 1.0
    logs._settings.include_features = False


@pytest.fixture
def stream(telemetry: InMemoryTelemetry) -> io.StringIO:
    """configure_logging() onto the in-memory providers, rendering JSON into a buffer."""
    out = io.StringIO()
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=out)
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def record_of(telemetry: InMemoryTelemetry, body: str) -> ReadableLogRecord:
    (found,) = [r for r in telemetry.logs() if r.log_record.body == body]
    return found


# --- processors -----------------------------------------------------------------------------


def test_trace_context_is_32_and_16_lower_case_hex_of_the_current_span(
    telemetry: InMemoryTelemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        event = logs.add_trace_context(None, "info", {"event": "e"})
    ctx = span.get_span_context()
    assert (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")) == (
        event["trace_id"],
        event["span_id"],
    )
    assert HEX32.match(event["trace_id"]) and HEX16.match(event["span_id"])


def test_trace_context_is_absent_outside_a_span() -> None:
    assert {"event": "e"} == logs.add_trace_context(None, "info", {"event": "e"})


def test_request_and_model_context_come_from_the_contextvars() -> None:
    request_token = context.bind_request_id("req-7")
    model_token = context.bind_model(context.ModelContext("iris", "1.2"))
    try:
        event: dict[str, Any] = {"event": "e"}
        for processor in logs.SHARED_PROCESSORS:
            event = processor(None, "info", event)
    finally:
        context.reset_model(model_token)
        context.reset_request_id(request_token)
    assert ("req-7", "iris", "1.2") == (
        event["request_id"],
        event["ml.model.name"],
        event["ml.model.version"],
    )


def test_processors_never_overwrite_fields_the_caller_passed(
    telemetry: InMemoryTelemetry,
) -> None:
    token = context.bind_request_id("from-context")
    tracer = telemetry.tracer_provider.get_tracer("t")
    mine = {"event": "e", "request_id": "mine", "trace_id": "t", "span_id": "s"}
    try:
        with tracer.start_as_current_span("s"):
            event = dict(mine)
            for processor in logs.SHARED_PROCESSORS:
                event = processor(None, "info", event)
    finally:
        context.reset_request_id(token)
    assert {k: event[k] for k in mine} == mine


def test_model_context_is_set_inside_model_monitor_predict(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    monitor = ModelMonitor("iris", version="1.2.0", **telemetry.providers)
    with monitor.predict(features=[1.0, 2.0]) as p:
        logs.get_logger("app").info("inside")
        logging.getLogger("lib").info("stdlib inside")
        p.record(1, 0.9)
    logs.get_logger("app").info("outside")
    by_event = {line["event"]: line for line in lines(stream)}
    for name in ("inside", "stdlib inside"):
        assert ("iris", "1.2.0") == (
            by_event[name]["ml.model.name"],
            by_event[name]["ml.model.version"],
        )
    assert "ml.model.name" not in by_event["outside"]


def test_service_name_comes_from_the_logger_provider_resource(stream: io.StringIO) -> None:
    logs.get_logger("app").info("e")
    assert "test" == lines(stream)[0]["service.name"]


# --- rendering ------------------------------------------------------------------------------


def test_every_event_of_the_vocabulary_is_one_json_object_per_line(
    telemetry: InMemoryTelemetry,
) -> None:
    stream = io.StringIO()
    logs.configure_logging(
        logger_provider=telemetry.logger_provider, stream=stream, level=logging.DEBUG
    )
    for spec in logs.EVENTS:
        fields = {key.replace(".*", ".type").replace("<name>", "x"): 1 for key, _ in spec.fields}
        logs.log_event(spec.name, **fields)
        logging.getLogger("otel_mlmon.events").warning(spec.name, extra=fields)
    parsed = lines(stream)
    expected = [name for spec in logs.EVENTS for name in (spec.name, spec.name)]
    assert expected == [line["event"] for line in parsed]
    assert [spec.level for spec in logs.EVENTS] == [line["level"] for line in parsed[::2]]


def test_event_vocabulary_is_exactly_the_semconv_event_names() -> None:
    names = {v for k, v in vars(semconv).items() if k.startswith("EVENT_")}
    assert names == {spec.name for spec in logs.EVENTS}
    assert len(names) == len(logs.EVENTS)


def test_docs_list_every_event_with_its_fields() -> None:
    assert logs.render_events_markdown() in DOCS.read_text()


def test_stdlib_extra_fields_appear_flat_on_the_line(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    monitor = ModelMonitor("iris", version="3", **telemetry.providers)
    monitor.model_loaded(framework="sklearn", metrics={"accuracy": 0.97})
    (line,) = [x for x in lines(stream) if x["event"] == semconv.EVENT_MODEL_LOADED]
    assert ("iris", "3", "sklearn", {"accuracy": 0.97}) == (
        line["ml.model.name"],
        line["ml.model.version"],
        line["ml.model.framework"],
        line["metrics"],
    )


def test_json_line_serialises_numpy_values(stream: io.StringIO) -> None:
    logs.get_logger("app").info("e", value=np.int64(3), row=np.array([1.5, 2.5]))
    line = lines(stream)[0]
    assert (3, [1.5, 2.5]) == (line["value"], line["row"])


def test_console_renderer_writes_readable_text_not_json(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    logs.configure_logging(
        logger_provider=telemetry.logger_provider, renderer="console", stream=out
    )
    token = context.bind_request_id("req-console")
    try:
        logs.get_logger("app").info("hello", answer=42)
    finally:
        context.reset_request_id(token)
    text = out.getvalue()
    assert ("hello", "answer=42", "request_id=req-console") == tuple(
        part for part in ("hello", "answer=42", "request_id=req-console") if part in text
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_level_filters_structlog_and_stdlib_lines(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=out, level="WARNING")
    logs.get_logger("app").info("dropped")
    logging.getLogger("lib").info("dropped too")
    logs.get_logger("app").warning("kept")
    assert ["kept"] == [line["event"] for line in lines(out)]
    assert ["kept"] == [r.log_record.body for r in telemetry.logs()]


def test_configure_logging_twice_installs_one_handler(telemetry: InMemoryTelemetry) -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=first)
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=second)
    logs.get_logger("app").info("once")
    assert ("", ["once"]) == (first.getvalue(), [line["event"] for line in lines(second)])
    assert 1 == len(telemetry.logs())


def test_an_application_structlog_configuration_is_kept(telemetry: InMemoryTelemetry) -> None:
    captured: list[dict[str, Any]] = []

    def capture(_: Any, __: str, event_dict: Any) -> str:
        captured.append(dict(event_dict))
        return ""

    structlog.configure(processors=[*logs.SHARED_PROCESSORS, capture])
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
    token = context.bind_request_id("r")
    try:
        structlog.get_logger().info("mine")
    finally:
        context.reset_request_id(token)
    assert [{"event": "mine", "request_id": "r", "service.name": "test"}] == captured


def test_the_structlog_instrumentation_does_not_export_events_twice(
    telemetry: InMemoryTelemetry,
) -> None:
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    instrumentor = StructlogInstrumentor()
    instrumentor.instrument(logger_provider=telemetry.logger_provider)
    try:
        logs.configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
        logs.get_logger("app").info("once")
        ours = structlog.get_config()["processors"] is logs._our_processors
    finally:
        instrumentor.uninstrument()
    assert ours
    assert 1 == [r.log_record.body for r in telemetry.logs()].count("once")


def test_structlog_instrumented_after_configure_still_exports_each_event_once(
    telemetry: InMemoryTelemetry,
) -> None:
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
    instrumentor = StructlogInstrumentor()
    instrumentor.instrument(logger_provider=telemetry.logger_provider)
    try:
        logs.get_logger("app").info("once")
        logging.getLogger("lib").info("stdlib once")
    finally:
        instrumentor.uninstrument()
    bodies = [r.log_record.body for r in telemetry.logs()]
    assert (1, 1) == (bodies.count("once"), bodies.count("stdlib once"))


@pytest.mark.parametrize(
    "kwargs",
    [{"renderer": "xml"}, {"level": "LOUD"}, {"sample_predictions": 1.5}],
)
def test_invalid_configuration_raises(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        logs.configure_logging(stream=io.StringIO(), **kwargs)


# --- export ---------------------------------------------------------------------------------


def test_exported_record_has_body_severity_trace_context_and_flat_attributes(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        logs.get_logger("app").warning(
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
    logs.configure_logging(
        logger_provider=telemetry.logger_provider, stream=io.StringIO(), level="DEBUG"
    )
    getattr(logs.get_logger("app"), method)("structlog")
    getattr(logging.getLogger("lib"), method)("stdlib")
    assert [severity, severity] == [r.log_record.severity_number for r in telemetry.logs()]


@pytest.mark.parametrize("source", ["structlog", "stdlib"])
def test_log_exception_records_the_otel_exception_attributes(
    telemetry: InMemoryTelemetry, stream: io.StringIO, source: str
) -> None:
    try:
        raise ConfigurationError("bad value")
    except ConfigurationError:
        if source == "structlog":
            logs.get_logger("app").exception("error_occurred")
        else:
            logging.getLogger("lib").exception("error_occurred")
    attributes = dict(record_of(telemetry, "error_occurred").log_record.attributes or {})
    assert ("otel_mlmon.exceptions.ConfigurationError", "bad value") == (
        attributes["exception.type"],
        attributes["exception.message"],
    )
    assert "raise ConfigurationError" in attributes["exception.stacktrace"]
    assert "ConfigurationError: bad value" in lines(stream)[0]["exception"]


def test_correlation_fields_are_not_duplicated_as_attributes(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    token = context.bind_request_id("r-1")
    try:
        with tracer.start_as_current_span("s"):
            logs.get_logger("app").info("e")
    finally:
        context.reset_request_id(token)
    assert {"request_id": "r-1"} == dict(record_of(telemetry, "e").log_record.attributes or {})


def test_flatten_attributes_documents_each_value_shape() -> None:
    flat = logs.flatten_attributes(
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
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=out, export=False)
    logs.get_logger("app").info("local only")
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
    logs.configure_logging(logger_provider=provider, stream=out)
    log = logs.get_logger("app")
    started = time.perf_counter()
    for i in range(500):
        log.info("e", i=i)
    elapsed = time.perf_counter() - started
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
    assert elapsed < 2.0
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
    logs.configure_logging(logger_provider=provider, stream=out)
    logs.get_logger("app").info("still logged")
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
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=out)
    out.close()
    before = _guard.internal_error_count("logs.handler")
    logs.get_logger("app").info("lost line")
    logging.getLogger("lib").info("lost stdlib line")
    assert _guard.internal_error_count("logs.handler") - before >= 2
    # The OTel record is still exported: only the local line was lost.
    assert {"lost line", "lost stdlib line"} <= {r.log_record.body for r in telemetry.logs()}


# --- prediction events ------------------------------------------------------------------------


def test_log_prediction_leaves_features_out_unless_opted_in(stream: io.StringIO) -> None:
    logs.log_prediction(1, confidence=0.9, features=[5.1, 3.5])
    logs.log_prediction(2, features=[5.1, 3.5], include_features=True)
    first, second = lines(stream)
    assert ("prediction_made", 1, 0.9) == (
        first["event"],
        first["prediction"],
        first["ml.prediction.confidence"],
    )
    assert "features" not in first
    assert [5.1, 3.5] == second["features"]


def test_log_prediction_sampling_keeps_the_configured_fraction(
    telemetry: InMemoryTelemetry,
) -> None:
    out = io.StringIO()
    logs.configure_logging(
        logger_provider=telemetry.logger_provider, stream=out, sample_predictions=0.25
    )
    tracer = telemetry.tracer_provider.get_tracer("t")
    kept = 0
    for _ in range(2000):
        with tracer.start_as_current_span("request"):
            kept += logs.log_prediction(1)
    assert kept == len(lines(out))
    # Binomial(2000, 0.25): 500 +- 19.4; outside +- 6 sigma is a bug, not bad luck.
    assert 384 <= kept <= 616
    assert (0, 5) == (
        sum(logs.log_prediction(1, sample_rate=0.0) for _ in range(5)),
        sum(logs.log_prediction(1, sample_rate=1.0) for _ in range(5)),
    )


def test_prediction_sampling_keeps_or_drops_a_whole_trace(telemetry: InMemoryTelemetry) -> None:
    logs.configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
    tracer = telemetry.tracer_provider.get_tracer("t")
    decisions = []
    for _ in range(50):
        with tracer.start_as_current_span("request"):
            decisions.append({logs.log_prediction(1, sample_rate=0.5) for _ in range(10)})
    assert all(len(d) == 1 for d in decisions)


# --- concurrent requests through an instrumented app ------------------------------------------

REQUESTS = 200
APP_LOGGERS = ("app", "lib")


@pytest.fixture
def instrumented() -> Iterator[list[Any]]:
    """Apps given to instrument_fastapi() in a test, uninstrumented after it."""
    apps: list[Any] = []
    yield apps
    for app in apps:
        otel_mlmon.instrumentation.uninstrument_fastapi(app)


def _instrumented_app(telemetry: InMemoryTelemetry, instrumented: list[Any]) -> Any:
    """A FastAPI app with its native OTel telemetry (a SERVER span per request) and otel-mlmon's
    layer (request IDs from X-Request-ID), as a user would build it."""
    from fastapi import FastAPI

    app = FastAPI(
        telemetry={
            "tracer_provider": telemetry.tracer_provider,
            "meter_provider": telemetry.meter_provider,
            "logger_provider": telemetry.logger_provider,
            "operation_spans": False,
        }
    )
    otel_mlmon.instrument_fastapi(
        app, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    instrumented.append(app)

    def seen() -> dict[str, Any]:
        ctx = trace.get_current_span().get_span_context()
        return {"request_id": context.get_request_id(), "trace_id": format(ctx.trace_id, "032x")}

    async def child(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 3))
        logs.get_logger("app").info("child", n=n)

    @app.get("/async/{n}")
    async def async_endpoint(n: int) -> dict[str, Any]:
        logs.get_logger("app").info("request_started", n=n)
        await asyncio.sleep(0.001 * (n % 5))
        logging.getLogger("lib").info("stdlib line %d", n)
        await asyncio.gather(child(n), child(n + 1))
        logs.get_logger("app").info("request_completed", n=n)
        return seen()

    @app.get("/sync/{n}")
    def sync_endpoint(n: int) -> dict[str, Any]:
        logs.get_logger("app").info("request_started", n=n)
        time.sleep(0.001 * (n % 5))
        logging.getLogger("lib").info("stdlib line %d", n)
        logs.get_logger("app").info("request_completed", n=n)
        return seen()

    return app


async def _fire(client: Any, path: str) -> dict[str, dict[str, Any]]:
    async def one(n: int) -> tuple[str, dict[str, Any]]:
        request_id = f"req-{n:04d}"
        response = await client.get(f"{path}/{n}", headers={"x-request-id": request_id})
        assert 200 == response.status_code
        assert request_id == response.headers["x-request-id"]  # echoed by our layer
        return request_id, response.json()

    return dict(await asyncio.gather(*(one(n) for n in range(REQUESTS))))


def _assert_no_bleeding(
    telemetry: InMemoryTelemetry,
    out: io.StringIO,
    answers: dict[str, dict[str, Any]],
    lines_per_request: int,
) -> None:
    # Each endpoint saw its own request ID, inside its own trace.
    assert {rid: rid for rid in answers} == {rid: a["request_id"] for rid, a in answers.items()}
    trace_of = {rid: a["trace_id"] for rid, a in answers.items()}
    assert REQUESTS == len(set(trace_of.values()))

    # Each rendered line (structlog and stdlib) carries its own request's IDs.
    by_request: dict[str, list[dict[str, Any]]] = {}
    for line in lines(out):
        if line.get("logger") in APP_LOGGERS:
            by_request.setdefault(line["request_id"], []).append(line)
    assert set(answers) == set(by_request)
    for rid, request_lines in by_request.items():
        assert lines_per_request == len(request_lines)
        assert {trace_of[rid]} == {line["trace_id"] for line in request_lines}
        assert all(HEX16.match(line["span_id"]) for line in request_lines)
        assert {"lib"} == {line["logger"] for line in request_lines if "stdlib" in line["event"]}

    # ... equal to the trace ID of the exported SERVER span of that request.
    server_traces = {
        format(span.context.trace_id, "032x")
        for span in telemetry.spans()
        if span.kind is SpanKind.SERVER
    }
    assert set(trace_of.values()) <= server_traces

    # ... and the exported OTel log records carry the same IDs on the record itself.
    exported = [r for r in telemetry.logs() if r.instrumentation_scope.name in APP_LOGGERS]
    assert REQUESTS * lines_per_request == len(exported)
    for record in exported:
        rid = (record.log_record.attributes or {})["request_id"]
        assert trace_of[str(rid)] == format(record.log_record.trace_id or 0, "032x")


def test_200_concurrent_asyncio_requests_keep_their_own_ids(
    telemetry: InMemoryTelemetry, stream: io.StringIO, instrumented: list[Any]
) -> None:
    import httpx

    app = _instrumented_app(telemetry, instrumented)

    async def main() -> dict[str, dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await _fire(client, "/async")

    answers = asyncio.run(main())
    _assert_no_bleeding(telemetry, stream, answers, lines_per_request=5)


def test_200_concurrent_threaded_requests_over_a_real_server_keep_their_own_ids(
    telemetry: InMemoryTelemetry, stream: io.StringIO, instrumented: list[Any]
) -> None:
    import httpx
    import uvicorn

    app = _instrumented_app(telemetry, instrumented)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]

    async def main() -> dict[str, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            return await _fire(client, "/sync")

    try:
        answers = asyncio.run(main())
    finally:
        server.should_exit = True
        thread.join(10)
    _assert_no_bleeding(telemetry, stream, answers, lines_per_request=3)


def test_default_stream_follows_sys_stdout(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs.configure_logging(logger_provider=telemetry.logger_provider)
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stdout", redirected)
    logs.get_logger("app").info("to the new stdout")
    assert ["to the new stdout"] == [line["event"] for line in lines(redirected)]


def test_configure_routes_logging_through_its_logger_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import otel_mlmon

    telemetry = otel_mlmon.configure(
        service_name="svc-from-configure",
        set_global=False,
        prometheus=False,
        process_metrics=False,
        gpu_metrics=False,
    )
    try:
        capsys.readouterr()
        logs.get_logger("app").info("after configure")
        (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    finally:
        telemetry.shutdown()
    assert ("after configure", "svc-from-configure") == (line["event"], line["service.name"])
