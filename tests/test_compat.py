"""Every private name of a third-party package that otel-mlmon touches still exists."""

from __future__ import annotations

import pytest

from otel_mlmon import _compat


@pytest.mark.parametrize("check", _compat.CHECKED, ids=lambda c: c.name)
def test_each_private_name_we_depend_on_is_still_there(check: _compat.Check) -> None:
    assert check.probe(), f"{check.name} (checked against {check.checked_against}) moved"


def test_the_contrib_flask_instrumentation_marks_the_app() -> None:
    import flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    app = flask.Flask("compat")
    assert _compat.instrumented_by_contrib(app) is False
    FlaskInstrumentor.instrument_app(app)
    try:
        assert _compat.instrumented_by_contrib(app) is True
    finally:
        FlaskInstrumentor.uninstrument_app(app)


def test_fastapi_keeps_its_native_telemetry_settings_on_the_app() -> None:
    import fastapi

    config = _compat.fastapi_telemetry_config(fastapi.FastAPI())
    assert config is not None
    assert {"tracer_provider", "meter_provider"} <= set(config)


def test_the_system_metrics_instrumentor_binds_a_process_we_can_replace() -> None:
    import psutil
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider

    instrumentor = SystemMetricsInstrumentor(config={"process.memory.usage": None})
    instrumentor.instrument(meter_provider=MeterProvider())
    try:
        process = psutil.Process()
        assert _compat.rebind_system_metrics_process(instrumentor, process) is True
        assert process is instrumentor._proc
    finally:
        instrumentor.uninstrument()


def test_the_structlog_instrumentation_records_its_processor() -> None:
    import structlog
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    saved = structlog.get_config()
    instrumentor = StructlogInstrumentor()
    instrumentor.instrument()
    try:
        assert _compat.structlog_instrumentation_processor() in structlog.get_config()["processors"]
    finally:
        instrumentor.uninstrument()
        structlog.configure(**saved)


def test_placeholder_providers_are_recognised() -> None:
    from opentelemetry import metrics, trace
    from opentelemetry._logs._internal import ProxyLoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider

    assert _compat.is_proxy_provider(trace.ProxyTracerProvider())
    assert _compat.is_proxy_provider(ProxyLoggerProvider())
    assert _compat.is_proxy_provider(metrics._internal._ProxyMeterProvider())
    assert not _compat.is_proxy_provider(MeterProvider())
