"""otel_mlmon.logs.bridge: configure_logging() routes structlog and stdlib records through one
chain, renders one JSON object per line, and is idempotent."""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import numpy as np
import pytest
import structlog

from logs._lines import lines
from otel_mlmon import ModelMonitor, context, semconv
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.logs import SHARED_PROCESSORS, bridge, configure_logging, get_logger
from otel_mlmon.testing import InMemoryTelemetry


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
    get_logger("app").info("e", value=np.int64(3), row=np.array([1.5, 2.5]))
    line = lines(stream)[0]
    assert (3, [1.5, 2.5]) == (line["value"], line["row"])


def test_console_renderer_writes_readable_text_not_json(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, renderer="console", stream=out)
    token = context.bind_request_id("req-console")
    try:
        get_logger("app").info("hello", answer=42)
    finally:
        context.reset_request_id(token)
    text = out.getvalue()
    assert ("hello", "answer=42", "request_id=req-console") == tuple(
        part for part in ("hello", "answer=42", "request_id=req-console") if part in text
    )
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_renderer_prints_the_stack_trace_without_the_message(
    telemetry: InMemoryTelemetry,
) -> None:
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, renderer="console", stream=out)
    secret = "-".join(["secret", "key", "value"])  # not in the traceback's source lines
    try:
        raise KeyError(secret)
    except KeyError:
        logging.getLogger("lib").exception("failed")
    text = out.getvalue()
    assert ("Traceback (most recent call last):", "KeyError") == tuple(
        part for part in ("Traceback (most recent call last):", "KeyError") if part in text
    )
    assert secret not in text


def test_level_filters_structlog_and_stdlib_lines(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=out, level="WARNING")
    get_logger("app").info("dropped")
    logging.getLogger("lib").info("dropped too")
    get_logger("app").warning("kept")
    assert ["kept"] == [line["event"] for line in lines(out)]
    assert ["kept"] == [r.log_record.body for r in telemetry.logs()]


def test_configure_logging_twice_installs_one_handler(telemetry: InMemoryTelemetry) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=first)
    configure_logging(logger_provider=telemetry.logger_provider, stream=second)
    get_logger("app").info("once")
    assert ("", ["once"]) == (first.getvalue(), [line["event"] for line in lines(second)])
    assert 1 == len(telemetry.logs())
    assert 1 == logging.getLogger("uvicorn.error").filters.count(bridge._already_logged)


def test_an_application_structlog_configuration_is_kept(telemetry: InMemoryTelemetry) -> None:
    captured: list[dict[str, Any]] = []

    def capture(_: Any, __: str, event_dict: Any) -> str:
        captured.append(dict(event_dict))
        return ""

    structlog.configure(processors=[*SHARED_PROCESSORS, capture])
    configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
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
        configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
        get_logger("app").info("once")
        ours = structlog.get_config()["processors"] is bridge._our_processors
    finally:
        instrumentor.uninstrument()
    assert ours
    assert 1 == [r.log_record.body for r in telemetry.logs()].count("once")


def test_structlog_instrumented_after_configure_still_exports_each_event_once(
    telemetry: InMemoryTelemetry,
) -> None:
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
    instrumentor = StructlogInstrumentor()
    instrumentor.instrument(logger_provider=telemetry.logger_provider)
    try:
        get_logger("app").info("once")
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
        configure_logging(stream=io.StringIO(), **kwargs)


def test_default_stream_follows_sys_stdout(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging(logger_provider=telemetry.logger_provider)
    redirected = io.StringIO()
    monkeypatch.setattr(sys, "stdout", redirected)
    get_logger("app").info("to the new stdout")
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
        get_logger("app").info("after configure")
        (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    finally:
        telemetry.shutdown()
    assert ("after configure", "svc-from-configure") == (line["event"], line["service.name"])


def test_unconfigure_logging_puts_back_what_configure_logging_changed(
    telemetry: InMemoryTelemetry,
) -> None:
    from otel_mlmon.logs import unconfigure_logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level, list(logging.getLogger("uvicorn.error").filters))
    configure_logging(
        logger_provider=telemetry.logger_provider, level="DEBUG", stream=io.StringIO()
    )
    configure_logging(
        logger_provider=telemetry.logger_provider, level="ERROR", stream=io.StringIO()
    )
    unconfigure_logging()
    after = (list(root.handlers), root.level, list(logging.getLogger("uvicorn.error").filters))
    assert (before, False) == (after, structlog.is_configured())
