"""Raw features and labels never leave the process: sentinel values planted in features and labels
are searched for in every exported signal (spans, metric attributes, log records), in memory
and in the bytes a real OTLP receiver gets; with the logging bridge on, in the rendered JSON
lines and the exported log records of the request and prediction events too; and through an
instrumented FastAPI app, with sentinels in the request body, the query string and a header.
Only an explicit opt-in (include_features=True) logs features, and then it does. An exception
message carrying the request body leaves through none of the records FastAPI, Starlette and
uvicorn make of an unhandled exception, served by a real uvicorn through configure(), nor
the predict span or the HTTP server span of Flask (contrib instrumentation) or FastAPI (native
telemetry).
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import certifi
import flask
import numpy as np
import pytest
from _otlp import OtlpHttpServer
from _uvicorn import serving
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode

import otel_mlmon
from otel_mlmon import ModelMonitor, logs, semconv
from otel_mlmon.instrumentation import (
    instrument_fastapi,
    instrument_flask,
    uninstrument_fastapi,
    uninstrument_flask,
)
from otel_mlmon.testing import InMemoryTelemetry

FEATURE = f"SENTINEL-FEATURE-{uuid.uuid4().hex}"
LABEL = f"SENTINEL-LABEL-{uuid.uuid4().hex}"
NUMBER = 271828.182845  # a planted numeric feature value


def _features() -> list[object]:
    return [
        {"email": FEATURE, "age": NUMBER},
        np.array([[NUMBER, 1.0]]),
        np.array([FEATURE], dtype=object),
        [FEATURE, NUMBER],
        FEATURE,
    ]


def _use(monitor: ModelMonitor) -> None:
    """Every recording path, with sentinels in features and labels."""
    for features in _features():
        with monitor.predict(features=features) as p:
            p.record("approved", 0.75)
        monitor.record_label(p.id, LABEL)
    with monitor.predict(features=_features()[0]) as p:
        p.record(["approved", "denied"], [0.5, 0.25])
    monitor.record_label(p.id, [LABEL, LABEL])
    monitor.model_loaded(framework="sklearn")
    monitor.update_model("2.0", reason="retrained")


def _in_memory_text(telemetry: InMemoryTelemetry) -> str:
    spans = [span.to_json() for span in telemetry.spans()]
    logs = [record.to_json() for record in telemetry.logs()]
    data = telemetry.metric_reader.get_metrics_data()
    metrics = data.to_json() if data is not None else ""
    return "\n".join([*spans, *logs, metrics])


def _assert_no_sentinel(text: str) -> None:
    assert FEATURE not in text
    assert LABEL not in text
    assert str(NUMBER) not in text


def test_features_and_labels_appear_in_no_span_metric_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with InMemoryTelemetry() as telemetry:
        # With the model's classes known, a label outside them is reported _OTHER (a matched
        # label's class is a metric attribute, like the predicted class).
        monitor = ModelMonitor("privacy", classes=["approved", "denied"], **telemetry.providers)
        _use(monitor)
        text = _in_memory_text(telemetry)
    assert "approved" in text  # the search does see exported values
    _assert_no_sentinel(text)
    _assert_no_sentinel("\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records))


def test_features_and_labels_appear_in_nothing_sent_over_otlp(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    telemetry = otel_mlmon.configure(
        otlp_endpoint=otlp_http.endpoint,
        set_global=False,
        logs=False,
        prometheus=False,
        gpu_metrics=False,
        handle_sigterm=False,
    )
    monitor = ModelMonitor(
        "privacy",
        classes=["approved", "denied"],
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    _use(monitor)
    telemetry.logger_provider.get_logger("app").emit(body="served")
    assert telemetry.shutdown()
    received = b"".join(
        message.SerializeToString()
        for messages in otlp_http.receiver.requests.values()
        for message in messages
    )
    assert b"approved" in received and b"served" in received
    assert FEATURE.encode() not in received
    assert LABEL.encode() not in received


def test_an_exception_message_carrying_features_is_not_exported() -> None:
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("privacy", **telemetry.providers)
        with pytest.raises(ValueError), monitor.predict(features=[FEATURE]):
            raise ValueError(f"Expected 2D array, got 1D array instead: array=[{FEATURE!r}]")
        text = _in_memory_text(telemetry)
    assert "ValueError" in text
    _assert_no_sentinel(text)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_otlp_over_tls_trusts_the_ca_from_the_environment(
    tmp_path: Path, otel_env: pytest.MonkeyPatch
) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = OtlpHttpServer(tls=(str(certificate), str(key)))
    try:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
        # A container-wide CA bundle must not override the one OpenTelemetry's variable names.
        otel_env.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
        for trusted in (False, True):
            if trusted:
                otel_env.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(certificate))
            telemetry = otel_mlmon.configure(
                set_global=False, logs=False, gpu_metrics=False, handle_sigterm=False
            )
            monitor = ModelMonitor("tls", tracer_provider=telemetry.tracer_provider)
            with monitor.predict() as p:
                p.record(1)
            telemetry.shutdown()
            # An unknown CA is refused; the CA named by the environment is trusted.
            assert (1 if trusted else 0) == len(server.receiver.spans())
    finally:
        server.close()


@contextmanager
def _logging_restored() -> Iterator[None]:
    """What configure_logging() (directly or through configure()) installs, undone after."""
    try:
        yield
    finally:
        logs.unconfigure_logging()


@pytest.fixture
def logging_on(telemetry: InMemoryTelemetry) -> Iterator[io.StringIO]:
    """configure_logging() onto the in-memory providers, JSON lines into a buffer."""
    with _logging_restored():
        out = io.StringIO()
        logs.configure_logging(logger_provider=telemetry.logger_provider, stream=out)
        yield out


def _log_events(monitor: ModelMonitor) -> None:
    """The request and prediction events around every recording path, as a service logs them."""
    for features in _features():
        with monitor.predict(features=features) as p:
            p.record("approved", 0.75)
            logs.log_prediction("approved", confidence=0.75, prediction_id=p.id,
                                features=features)  # fmt: skip
        monitor.record_label(p.id, LABEL)
    logs.emit_event(semconv.EVENT_REQUEST_COMPLETED, **{"http.request.method": "POST",
                    "http.route": "/predict", "http.response.status_code": 200})  # fmt: skip


def test_with_logging_on_features_and_labels_appear_in_no_line_or_record(
    telemetry: InMemoryTelemetry, logging_on: io.StringIO
) -> None:
    # A matched label's class is a metric attribute (ml.label.class, the confusion matrix), like
    # the predicted class: with the model's classes known, any other label is reported _OTHER.
    monitor = ModelMonitor("privacy", classes=["approved", "denied"], **telemetry.providers)
    _use(monitor)
    _log_events(monitor)
    rendered = logging_on.getvalue()
    assert "prediction_made" in rendered and "request_completed" in rendered
    text = _in_memory_text(telemetry)
    assert "prediction_made" in text  # the exported records are searched
    _assert_no_sentinel(rendered)
    _assert_no_sentinel(text)


def test_include_features_opts_in_to_logging_them(
    telemetry: InMemoryTelemetry, logging_on: io.StringIO
) -> None:
    monitor = ModelMonitor("privacy", **telemetry.providers)
    with monitor.predict(features=[FEATURE, NUMBER]) as p:
        p.record("approved")
        logs.log_prediction("approved", features=[FEATURE, NUMBER], include_features=True)
    assert FEATURE in logging_on.getvalue()
    assert FEATURE in _in_memory_text(telemetry)


HEADER_SENTINEL = f"SENTINEL-HEADER-{uuid.uuid4().hex}"
QUERY_SENTINEL = f"SENTINEL-QUERY-{uuid.uuid4().hex}"


def _asgi_call(app: Any, method: str, path: str, query: str, headers: list[tuple[bytes, bytes]],
               body: bytes) -> tuple[int, bytes]:  # fmt: skip
    """One request straight into the ASGI app (no socket): status and body."""
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _serve_with_sentinels(telemetry: InMemoryTelemetry, rendered: io.StringIO) -> str:
    """One request through an instrumented FastAPI app with sentinels in the body (the
    features), the query string and two headers; everything exported and logged, as text."""
    import json

    monitor = ModelMonitor("privacy", **telemetry.providers)
    app = FastAPI(
        telemetry={
            "operation_spans": False,
            "logger_provider": telemetry.logger_provider,
            **telemetry.providers,
        }
    )
    log = logs.get_logger("service")

    @app.post("/predict/{model}")
    async def predict(model: str, request: Request) -> dict[str, Any]:
        payload = await request.json()
        with monitor.predict(features=payload["features"]) as p:
            p.record("approved", 0.75)
            logs.log_prediction("approved", prediction_id=p.id, features=payload["features"])
        log.info("served", model=model)
        return {"id": p.id}

    instrument_fastapi(app, monitor=monitor, **telemetry.providers)
    try:
        body = json.dumps({"features": {"email": FEATURE, "age": NUMBER}}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"x-customer", HEADER_SENTINEL.encode()),
            (b"authorization", f"Bearer {HEADER_SENTINEL}".encode()),
        ]
        query = f"email={QUERY_SENTINEL}"
        status, _ = _asgi_call(app, "POST", "/predict/iris", query, headers, body)
        assert 200 == status
    finally:
        uninstrument_fastapi(app)
    text = rendered.getvalue() + _in_memory_text(telemetry)
    # The search sees the request: the app's line and the layer's request_completed.
    assert "served" in text and "/predict/{model}" in text and "request_completed" in text
    return text


def test_sentinels_in_the_body_and_headers_leave_no_trace_through_fastapi(
    telemetry: InMemoryTelemetry, logging_on: io.StringIO
) -> None:
    text = _serve_with_sentinels(telemetry, logging_on)
    _assert_no_sentinel(text)
    assert HEADER_SENTINEL not in text


def test_a_sentinel_in_the_query_string_leaves_no_trace_through_fastapi(
    telemetry: InMemoryTelemetry, logging_on: io.StringIO
) -> None:
    text = _serve_with_sentinels(telemetry, logging_on)
    assert QUERY_SENTINEL not in text


# --- exception messages through the frameworks' and the server's records -------------------


@pytest.mark.parametrize("instrumented", [True, False], ids=["instrumented", "plain-fastapi"])
def test_an_exception_message_carrying_the_request_leaves_through_no_framework_record(
    otlp_http: OtlpHttpServer,
    otel_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    instrumented: bool,
) -> None:
    import httpx

    for name in ("uvicorn", "uvicorn.error"):  # as a fresh process with log_config=None has them
        otel_env.setattr(logging.getLogger(name), "handlers", [])
        otel_env.setattr(logging.getLogger(name), "propagate", True)
    with _logging_restored():
        telemetry = otel_mlmon.configure(
            otlp_endpoint=otlp_http.endpoint,
            set_global=False,
            prometheus=False,
            gpu_metrics=False,
            process_metrics=False,
            handle_sigterm=False,
        )
        app = FastAPI(
            telemetry={
                "operation_spans": False,
                "tracer_provider": telemetry.tracer_provider,
                "meter_provider": telemetry.meter_provider,
                "logger_provider": telemetry.logger_provider,
            }
        )

        @app.post("/score")
        async def score(request: Request) -> None:
            raise ValueError(f"could not convert string to float: {(await request.body())!r}")

        if instrumented:
            instrument_fastapi(app, tracer_provider=telemetry.tracer_provider)
        try:
            # Its loggers left to the root logger, as with log_config=None.
            with serving(app, log_config=None, access_log=False, lifespan="off") as base:
                assert 500 == httpx.post(f"{base}/score", content=FEATURE.encode()).status_code
        finally:
            if instrumented:
                uninstrument_fastapi(app)
            assert telemetry.shutdown()
    rendered = capsys.readouterr().out
    received = b"".join(
        message.SerializeToString()
        for messages in otlp_http.receiver.requests.values()
        for message in messages
    )
    # The exception is there (its type on a line and on records), its message is not.
    assert '"exception.type": "ValueError"' in rendered
    assert b"Unhandled exception in FastAPI request" in received
    assert FEATURE not in rendered
    assert FEATURE.encode() not in received


EXCEPTION_SENTINEL = f"SENTINEL-EXCEPTION-{uuid.uuid4().hex}"


def _spans_text(telemetry: InMemoryTelemetry) -> str:
    return "\n".join(span.to_json() for span in telemetry.spans())


def _server_span_of_a_failed_request(telemetry: InMemoryTelemetry) -> tuple[Any, Any, Any]:
    """``(error.type, status code, status description)`` of the one server span."""
    (server,) = [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]
    attributes = dict(server.attributes or {})
    return attributes.get("error.type"), server.status.status_code, server.status.description


def test_an_exception_message_carrying_request_data_leaves_no_trace_on_flasks_spans(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("privacy", **telemetry.providers)
    app = flask.Flask("privacy")

    @app.get("/fail")
    def fail() -> Any:
        raise ValueError(f"bad input: {flask.request.args['value']}")

    @app.get("/predict")
    def predict() -> Any:
        with monitor.predict(features=[1.0]):
            raise ValueError(f"bad input: {flask.request.args['value']}")

    instrument_flask(app, monitor=monitor, **telemetry.providers)
    try:
        client = app.test_client()
        statuses = [
            client.get(f"{path}?value={EXCEPTION_SENTINEL}").status_code
            for path in ("/fail", "/predict")
        ]
    finally:
        uninstrument_flask(app)

    assert [500, 500] == statuses
    servers = [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]
    assert [("ValueError", StatusCode.ERROR, None)] * 2 == [
        ((s.attributes or {}).get("error.type"), s.status.status_code, s.status.description)
        for s in servers
    ]
    # The exception is still on the span: its type and where it was raised.
    assert [["exception"]] * 2 == [[event.name for event in s.events] for s in servers]
    assert "ValueError" in str(servers[0].events[0].attributes)
    assert EXCEPTION_SENTINEL not in _spans_text(telemetry)


def test_an_exception_message_carrying_request_data_leaves_no_trace_on_fastapis_span(
    telemetry: InMemoryTelemetry,
) -> None:
    app = FastAPI(telemetry={"operation_spans": False, **telemetry.providers})

    @app.get("/fail")
    def fail(value: str) -> None:
        raise ValueError(f"bad input: {value}")

    instrument_fastapi(app, **telemetry.providers)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get(f"/fail?value={EXCEPTION_SENTINEL}")
    finally:
        uninstrument_fastapi(app)

    assert 500 == response.status_code
    assert ("ValueError", StatusCode.ERROR, None) == _server_span_of_a_failed_request(telemetry)
    assert EXCEPTION_SENTINEL not in _spans_text(telemetry)
