"""The request events of the HTTP integrations: request_completed and request_failed, each one
line and one OTel record inside the request's trace, an unhandled exception written once.

The last test runs the FastAPI example by its documented command under uvicorn (its default log
configuration) and reads its stdout, stderr and what a real OTLP receiver gets."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _otlp import OtlpHttpServer
from _wait import wait_healthy
from opentelemetry.trace import SpanKind

from logs._apps import ServiceError, call, fastapi_app, flask_app, uninstrument
from logs._lines import lines
from otel_mlmon.testing import InMemoryTelemetry

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = f"SENTINEL-{uuid.uuid4().hex}"
FRAMEWORKS: dict[str, Callable[[InMemoryTelemetry], Any]] = {
    "fastapi": fastapi_app,
    "flask": flask_app,
}
ROUTE = {"fastapi": "/items/{item_id}", "flask": "/items/<int:item_id>"}
SERVICE_ERROR = f"{ServiceError.__module__}.{ServiceError.__qualname__}"


@pytest.fixture(params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _serve(
    telemetry: InMemoryTelemetry, framework: str, method: str, path: str, body: bytes = b""
) -> int:
    app = FRAMEWORKS[framework](telemetry)
    try:
        return call(app, method, path, body=body, headers={"x-request-id": "req-42"})
    finally:
        uninstrument(app)


def _server_span(telemetry: InMemoryTelemetry) -> Any:
    (span,) = [s for s in telemetry.spans() if s.kind is SpanKind.SERVER]
    return span


def test_request_completed_carries_the_route_status_and_the_request_s_ids(
    telemetry: InMemoryTelemetry, stream: io.StringIO, framework: str
) -> None:
    assert 200 == _serve(telemetry, framework, "GET", "/items/7")
    (line,) = [x for x in lines(stream) if x["event"] == "request_completed"]
    span = _server_span(telemetry).context
    assert {
        "http.request.method": "GET",
        "http.route": ROUTE[framework],
        "http.response.status_code": 200,
        "request_id": "req-42",
        "trace_id": format(span.trace_id, "032x"),
        "span_id": format(span.span_id, "016x"),
    } == {key: line[key] for key in (
        "http.request.method", "http.route", "http.response.status_code", "request_id",
        "trace_id", "span_id")}  # fmt: skip
    assert line["duration_s"] > 0
    (record,) = [r.log_record for r in telemetry.logs() if r.log_record.body == "request_completed"]
    assert (span.trace_id, "req-42") == (record.trace_id, (record.attributes or {})["request_id"])


def test_an_unmatched_path_is_completed_without_a_route(
    telemetry: InMemoryTelemetry, stream: io.StringIO, framework: str
) -> None:
    assert 404 == _serve(telemetry, framework, "GET", f"/nowhere/{SENTINEL}")
    (line,) = [x for x in lines(stream) if x["event"] == "request_completed"]
    assert (404, False) == (line["http.response.status_code"], "http.route" in line)
    assert SENTINEL not in json.dumps(line)


def test_an_unknown_method_is_logged_as_other(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    assert 405 == _serve(telemetry, "fastapi", "PURGE", "/items/7")
    (line,) = [x for x in lines(stream) if x["event"] == "request_completed"]
    assert "_OTHER" == line["http.request.method"]


def test_an_unhandled_exception_is_one_request_failed_line_without_its_message(
    telemetry: InMemoryTelemetry, stream: io.StringIO, framework: str
) -> None:
    assert 500 == _serve(telemetry, framework, "POST", "/fail", body=SENTINEL.encode())
    written = lines(stream)
    (failed,) = [x for x in written if x["event"] == "request_failed"]
    span = _server_span(telemetry).context
    assert {
        "level": "error",
        "http.request.method": "POST",
        "http.route": "/fail",
        "http.response.status_code": 500,
        "error.type": SERVICE_ERROR,
        "exception.type": SERVICE_ERROR,
        "request_id": "req-42",
        "trace_id": format(span.trace_id, "032x"),
    } == {key: failed[key] for key in (
        "level", "http.request.method", "http.route", "http.response.status_code",
        "error.type", "exception.type", "request_id", "trace_id")}  # fmt: skip
    # The stack trace is written once: by request_failed, or (Flask) by Flask's own line
    # inside the same request, which request_failed then only names.
    (traced,) = [x for x in written if "exception.stacktrace" in x]
    assert traced["exception.stacktrace"].endswith(f"\n{SERVICE_ERROR}\n")
    assert ("req-42", format(span.trace_id, "032x")) == (traced["request_id"], traced["trace_id"])
    # No exception message on any line or record: the request body reached it.
    exported = "\n".join(record.to_json() for record in telemetry.logs())
    assert "request_failed" in exported
    assert SENTINEL not in stream.getvalue()
    with_message = [
        r.instrumentation_scope.name
        for r in telemetry.logs()
        if "exception.message" in (r.log_record.attributes or {})
    ]
    # FastAPI's own record bypasses the bridge: configure() puts the redactor on its provider
    # (tests/reliability/test_privacy.py); these in-memory providers have none.
    assert set() == set(with_message) - {"fastapi"}


def test_the_exception_message_is_there_when_opted_in(telemetry: InMemoryTelemetry) -> None:
    from otel_mlmon.logs import configure_logging

    out = io.StringIO()
    configure_logging(
        logger_provider=telemetry.logger_provider, stream=out, record_exception_messages=True
    )
    assert 500 == _serve(telemetry, "fastapi", "POST", "/fail", body=SENTINEL.encode())
    (failed,) = [x for x in lines(out) if x["event"] == "request_failed"]
    assert f"cannot score {SENTINEL}" == failed["exception.message"]


# --- the FastAPI example under uvicorn, by its documented command -------------------------------


def _attributes(record: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in record.attributes}


def test_the_fastapi_example_writes_an_unhandled_exception_as_one_json_line(
    otlp_http: OtlpHttpServer, free_port: int
) -> None:
    port = free_port
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        EXAMPLE_FAULTS="1",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
        OTEL_MLMON_GPU_METRICS="false",
        OTEL_MLMON_STRICT="true",
    )
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "fastapi_app.py"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, process)
        response = httpx.post(
            f"{base}/predict",
            json={"features": [5.1, 3.5, 1.4, 0.2]},
            headers={"x-example-fault": "error", "x-request-id": "req-example-1"},
        )
        assert 500 == response.status_code
        process.send_signal(signal.SIGTERM)  # configure()'s handler flushes the records
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    error_type = "otel_mlmon.examples.iris.InjectedFault"  # examples/iris.py, shared
    written = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    (failed,) = [line for line in written if line.get("exception.type") == error_type]
    assert ("request_failed", "req-example-1", "/predict") == (
        failed["event"],
        failed["request_id"],
        failed["http.route"],
    )
    assert len(failed["trace_id"]) == 32 and len(failed["span_id"]) == 16
    assert failed["exception.stacktrace"].endswith(f"\n{error_type}\n")
    assert "Traceback" not in stderr, stderr
    # ... and one OTel record of it, in the same trace, at the receiver.
    records = otlp_http.receiver.log_records()
    (exported,) = [r for r in records if r.body.string_value == "request_failed"]
    attributes = _attributes(exported)
    assert (failed["trace_id"], "req-example-1", error_type) == (
        exported.trace_id.hex(),
        attributes["request_id"],
        attributes["exception.type"],
    )
    # No record, FastAPI's own "Unhandled exception" one included, carries the message (the
    # example's source line that raises it is in the stack trace, as code).
    with_exception = [_attributes(r) for r in records if "exception.type" in _attributes(r)]
    assert 2 == len(with_exception)  # request_failed and FastAPI's own record
    assert [(False, True)] * 2 == [
        ("exception.message" in a, a["exception.stacktrace"].endswith(f"\n{error_type}\n"))
        for a in with_exception
    ]
