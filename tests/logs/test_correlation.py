"""Correlation under concurrency: 200 requests at once through an instrumented FastAPI app, over
asyncio and over a real uvicorn server's thread pool, each line and record with its own
request's IDs."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _uvicorn import serving
from opentelemetry import trace
from opentelemetry.trace import SpanKind

import otel_mlmon
import otel_mlmon.instrumentation
from logs._lines import lines
from otel_mlmon import context
from otel_mlmon.logs import get_logger
from otel_mlmon.testing import InMemoryTelemetry

HEX16 = re.compile(r"^[0-9a-f]{16}$")

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
        get_logger("app").info("child", n=n)

    @app.get("/async/{n}")
    async def async_endpoint(n: int) -> dict[str, Any]:
        get_logger("app").info("handling", n=n)
        await asyncio.sleep(0.001 * (n % 5))
        logging.getLogger("lib").info("stdlib line %d", n)
        await asyncio.gather(child(n), child(n + 1))
        get_logger("app").info("handled", n=n)
        return seen()

    @app.get("/sync/{n}")
    def sync_endpoint(n: int) -> dict[str, Any]:
        get_logger("app").info("handling", n=n)
        time.sleep(0.001 * (n % 5))
        logging.getLogger("lib").info("stdlib line %d", n)
        get_logger("app").info("handled", n=n)
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

    app = _instrumented_app(telemetry, instrumented)

    async def main(base: str) -> dict[str, dict[str, Any]]:
        async with httpx.AsyncClient(base_url=base) as client:
            return await _fire(client, "/sync")

    with serving(app, log_config=None, access_log=False, lifespan="off") as base:
        answers = asyncio.run(main(base))
    _assert_no_bleeding(telemetry, stream, answers, lines_per_request=3)
