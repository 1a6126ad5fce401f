"""otel_mlmon.logs.processors: trace, request, model and service context on every line."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from logs._lines import lines
from otel_mlmon import ModelMonitor, context
from otel_mlmon.logs import SHARED_PROCESSORS, add_trace_context, get_logger
from otel_mlmon.testing import InMemoryTelemetry

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def test_trace_context_is_32_and_16_lower_case_hex_of_the_current_span(
    telemetry: InMemoryTelemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("s") as span:
        event = add_trace_context(None, "info", {"event": "e"})
    ctx = span.get_span_context()
    assert (format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")) == (
        event["trace_id"],
        event["span_id"],
    )
    assert HEX32.match(event["trace_id"]) and HEX16.match(event["span_id"])


def test_trace_context_is_absent_outside_a_span() -> None:
    assert {"event": "e"} == add_trace_context(None, "info", {"event": "e"})


def test_request_and_model_context_come_from_the_contextvars() -> None:
    request_token = context.bind_request_id("req-7")
    model_token = context.bind_model(context.ModelContext("iris", "1.2"))
    try:
        event: dict[str, Any] = {"event": "e"}
        for processor in SHARED_PROCESSORS:
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
            for processor in SHARED_PROCESSORS:
                event = processor(None, "info", event)
    finally:
        context.reset_request_id(token)
    assert {k: event[k] for k in mine} == mine


def test_model_context_is_set_inside_model_monitor_predict(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    monitor = ModelMonitor("iris", version="1.2.0", **telemetry.providers)
    with monitor.predict(features=[1.0, 2.0]) as p:
        get_logger("app").info("inside")
        logging.getLogger("lib").info("stdlib inside")
        p.record(1, 0.9)
    get_logger("app").info("outside")
    by_event = {line["event"]: line for line in lines(stream)}
    for name in ("inside", "stdlib inside"):
        assert ("iris", "1.2.0") == (
            by_event[name]["ml.model.name"],
            by_event[name]["ml.model.version"],
        )
    assert "ml.model.name" not in by_event["outside"]


def test_service_name_comes_from_the_logger_provider_resource(stream: io.StringIO) -> None:
    get_logger("app").info("e")
    assert "test" == lines(stream)[0]["service.name"]
