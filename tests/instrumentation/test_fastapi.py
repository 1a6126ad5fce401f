"""The FastAPI ML layer on FastAPI's native telemetry: test client, raw ASGI and real sockets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import fastapi
import httpx
import pytest
from _uvicorn import serving
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.context import get_request_id
from otel_mlmon.instrumentation import instrument_fastapi, uninstrument_fastapi
from otel_mlmon.instrumentation.fastapi import FastAPIMLInstrumentor, instrumented
from otel_mlmon.monitor import ModelMonitor as MonitorClass
from otel_mlmon.testing import InMemoryTelemetry


class Row(BaseModel):
    x: float


def make_app(telemetry: InMemoryTelemetry, monitor: ModelMonitor) -> FastAPI:
    # Through the module attribute, so that a global instrument() applies.
    app = fastapi.FastAPI(
        telemetry={
            "operation_spans": False,
            "logger_provider": telemetry.logger_provider,
            **telemetry.providers,
        }
    )

    @app.post("/sync")
    def sync_predict(row: Row) -> dict[str, Any]:
        with monitor.predict(features=[row.x]) as p:
            if row.x < 0:
                raise ValueError("negative input")
            p.record(int(row.x > 1), 0.75)
        return {"id": p.id, "request_id": get_request_id()}

    @app.post("/async")
    async def async_predict(row: Row) -> dict[str, Any]:
        await asyncio.sleep(0)
        with monitor.predict(features=[row.x]) as p:
            p.record(int(row.x > 1), 0.75)
        return {"id": p.id, "request_id": get_request_id()}

    @app.get("/ids")
    async def ids() -> dict[str, Any]:
        async def child() -> str | None:
            await asyncio.sleep(0.001)
            return get_request_id()

        children = await asyncio.gather(child(), child())
        return {"request_id": get_request_id(), "children": children}

    @app.get("/thread")
    def in_thread() -> dict[str, Any]:
        time.sleep(0.001)
        return {"request_id": get_request_id()}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
def monitor(telemetry: InMemoryTelemetry) -> ModelMonitor:
    return ModelMonitor("clf", version="2.0", **telemetry.providers)


@pytest.fixture
def app(telemetry: InMemoryTelemetry, monitor: ModelMonitor) -> Iterator[FastAPI]:
    application = make_app(telemetry, monitor)
    instrument_fastapi(application, monitor=monitor)
    yield application
    uninstrument_fastapi(application)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def server_spans(telemetry: InMemoryTelemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]


def predict_spans(telemetry: InMemoryTelemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if s.name == "predict clf"]


@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_predict_span_is_the_only_child_of_one_server_span(
    telemetry: InMemoryTelemetry, client: TestClient, path: str
) -> None:
    response = client.post(path, json={"x": 2})

    assert response.status_code == 200
    (server,) = server_spans(telemetry)
    (predict,) = predict_spans(telemetry)
    assert len(telemetry.spans()) == 2
    assert server.context.span_id == predict.parent.span_id  # type: ignore[union-attr]
    assert server.context.trace_id == predict.context.trace_id
    assert f"POST {path}" == server.name
    assert server.instrumentation_scope.name == "fastapi"  # FastAPI's own span, not ours
    attributes = dict(server.attributes or {})
    assert attributes[semconv.ML_MODEL_NAME] == "clf"
    assert attributes[semconv.ML_MODEL_VERSION] == "2.0"
    assert response.json()["id"] == attributes[semconv.ML_PREDICTION_ID]
    assert response.json()["id"] == (predict.attributes or {})[semconv.ML_PREDICTION_ID]
    assert (predict.attributes or {})[semconv.ML_PREDICTION_CLASS] == "1"


def test_request_without_prediction_has_no_ml_attributes(
    telemetry: InMemoryTelemetry, client: TestClient
) -> None:
    client.get("/health")

    (server,) = server_spans(telemetry)
    assert semconv.ML_MODEL_NAME not in (server.attributes or {})
    assert predict_spans(telemetry) == []


def test_http_and_ml_metrics_are_recorded(telemetry: InMemoryTelemetry, client: TestClient) -> None:
    client.post("/sync", json={"x": 2})
    client.post("/sync", json={"x": 0})

    (duration,) = telemetry.metric_points("http.server.request.duration")
    assert duration.count == 2
    assert telemetry.attributes_of(duration)["http.route"] == "/sync"
    predictions = {
        telemetry.attributes_of(p)[semconv.ML_PREDICTION_CLASS]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    }
    assert predictions == {"1": 1, "0": 1}


def test_validation_error_is_422_without_a_predict_span(
    telemetry: InMemoryTelemetry, client: TestClient
) -> None:
    response = client.post("/sync", json={"x": "not a number"})

    assert response.status_code == 422
    assert response.headers["x-request-id"]
    (server,) = server_spans(telemetry)
    assert predict_spans(telemetry) == []
    assert "error.type" not in (server.attributes or {})
    assert response.headers["x-request-id"] == (server.attributes or {})[semconv.ML_REQUEST_ID]


def test_model_error_is_500_with_error_type_on_both_spans(
    telemetry: InMemoryTelemetry, client: TestClient
) -> None:
    response = client.post("/sync", json={"x": -1}, headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    (server,) = server_spans(telemetry)
    (predict,) = predict_spans(telemetry)
    assert (server.attributes or {})["error.type"] == "ValueError"
    assert (predict.attributes or {})["error.type"] == "ValueError"
    assert (server.attributes or {})["http.response.status_code"] == 500
    (errors,) = telemetry.metric_points(semconv.ML_MODEL_ERRORS)
    assert errors.value == 1


def test_well_formed_request_id_is_echoed_and_put_on_the_server_span(
    telemetry: InMemoryTelemetry, client: TestClient
) -> None:
    response = client.post("/sync", json={"x": 2}, headers={"X-Request-ID": "abc-123"})

    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    (server,) = server_spans(telemetry)
    assert (server.attributes or {})[semconv.ML_REQUEST_ID] == "abc-123"


@pytest.mark.parametrize("sent", ["has space", "x" * 129, "<script>", ""])
def test_malformed_request_id_is_replaced(client: TestClient, sent: str) -> None:
    response = client.get("/health", headers={"X-Request-ID": sent})

    echoed = response.headers["x-request-id"]
    assert sent != echoed
    assert len(echoed) == 32
    assert [echoed] == response.headers.get_list("x-request-id")


def test_request_id_reaches_gather_children_and_the_sync_thread_pool(client: TestClient) -> None:
    gathered = client.get("/ids", headers={"X-Request-ID": "gather-1"}).json()
    threaded = client.get("/thread", headers={"X-Request-ID": "thread-1"}).json()

    assert gathered == {"request_id": "gather-1", "children": ["gather-1", "gather-1"]}
    assert threaded == {"request_id": "thread-1"}
    assert get_request_id() is None


def test_concurrent_requests_never_see_each_others_request_id(app: FastAPI) -> None:
    async def run() -> list[tuple[str, dict[str, Any]]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def one(i: int) -> tuple[str, dict[str, Any]]:
                path = ("/ids", "/thread")[i % 2]
                response = await client.get(path, headers={"X-Request-ID": f"r-{i}"})
                return f"r-{i}", response.json()

            return await asyncio.gather(*(one(i) for i in range(200)))

    results = asyncio.run(run())

    for sent, body in results:
        assert sent == body["request_id"]
        assert all(sent == child for child in body.get("children", []))


def test_uninstrument_leaves_the_app_without_our_layer(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    application = make_app(telemetry, monitor)
    instrument_fastapi(application, monitor=monitor)
    with TestClient(application) as client:
        client.post("/sync", json={"x": 2})
        uninstrument_fastapi(application)
        response = client.post("/sync", json={"x": 2})

    assert "x-request-id" not in response.headers
    assert not instrumented(application)
    first, second = server_spans(telemetry)
    assert semconv.ML_REQUEST_ID in (first.attributes or {})
    assert semconv.ML_REQUEST_ID not in (second.attributes or {})
    assert semconv.ML_MODEL_NAME not in (second.attributes or {})
    # FastAPI's own telemetry is untouched: it still makes the server span.
    assert second.instrumentation_scope.name == "fastapi"


def test_instrument_twice_adds_one_layer(telemetry: InMemoryTelemetry, app: FastAPI) -> None:
    instrument_fastapi(app)
    with TestClient(app) as client:
        response = client.get("/health")

    assert len(response.headers.get_list("x-request-id")) == 1
    assert len(server_spans(telemetry)) == 1


def test_global_instrument_instruments_apps_created_afterwards_and_undoes_it(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    instrumentor = FastAPIMLInstrumentor()
    instrumentor.instrument()
    try:
        application = make_app(telemetry, monitor)
        assert instrumented(application)
    finally:
        instrumentor.uninstrument()
    assert not instrumented(application)
    assert not instrumented(make_app(telemetry, monitor))


def test_providers_passed_to_instrument_reach_an_app_without_its_own() -> None:
    with InMemoryTelemetry() as telemetry:
        application = FastAPI()

        @application.get("/")
        async def root() -> dict[str, str]:
            return {}

        instrument_fastapi(application, **telemetry.providers)
        with TestClient(application) as client:
            client.get("/")
        uninstrument_fastapi(application)

        assert len(server_spans(telemetry)) == 1
        assert application._telemetry["tracer_provider"] is None


def test_monitor_filter_ignores_other_monitors(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    shadow = ModelMonitor("shadow", **telemetry.providers)
    application = FastAPI(telemetry={"operation_spans": False, **telemetry.providers})

    @application.get("/shadow")
    def only_shadow() -> dict[str, str]:
        with shadow.predict() as p:
            p.record(1)
        return {}

    instrument_fastapi(application, monitor=monitor)
    try:
        with TestClient(application) as client:
            client.get("/shadow")
    finally:
        uninstrument_fastapi(application)

    (server,) = server_spans(telemetry)
    assert semconv.ML_MODEL_NAME not in (server.attributes or {})


def test_contrib_fastapi_instrumentation_is_detected_and_gives_one_server_span(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    application = make_app(telemetry, monitor)
    FastAPIInstrumentor.instrument_app(application, **telemetry.providers)
    instrument_fastapi(application, monitor=monitor)
    caplog.set_level(logging.WARNING, logger="otel_mlmon")
    from otel_mlmon import _guard

    _guard._reported.discard("fastapi-contrib")
    try:
        with TestClient(application) as client:
            response = client.post("/sync", json={"x": 2}, headers={"X-Request-ID": "c-1"})
    finally:
        uninstrument_fastapi(application)
        FastAPIInstrumentor.uninstrument_app(application)

    (server,) = server_spans(telemetry)
    (predict,) = predict_spans(telemetry)
    assert server.instrumentation_scope.name == "opentelemetry.instrumentation.fastapi"
    assert response.headers["x-request-id"] == "c-1"
    assert (server.attributes or {})[semconv.ML_REQUEST_ID] == "c-1"
    assert (server.attributes or {})[semconv.ML_MODEL_NAME] == "clf"
    assert server.context.trace_id == predict.context.trace_id
    message = "opentelemetry-instrumentation-fastapi is active"
    assert any(message in record.message for record in caplog.records)


def test_instrumenting_never_patches_model_monitor(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    original = MonitorClass.predict
    first, second = make_app(telemetry, monitor), make_app(telemetry, monitor)
    instrument_fastapi(first)
    instrument_fastapi(second)
    assert original is MonitorClass.predict
    uninstrument_fastapi(first)
    uninstrument_fastapi(second)
    assert original is MonitorClass.predict


def test_over_a_real_socket_with_uvicorn(telemetry: InMemoryTelemetry, app: FastAPI) -> None:
    with (
        serving(app, log_level="warning", lifespan="on") as base,
        httpx.Client(base_url=base) as client,
    ):
        ok = client.post("/sync", json={"x": 2}, headers={"X-Request-ID": "sock-1"})
        invalid = client.post("/async", json={})
        failed = client.post("/sync", json={"x": -3})

    assert (ok.status_code, invalid.status_code, failed.status_code) == (200, 422, 500)
    assert ok.headers["x-request-id"] == "sock-1"
    assert failed.headers["x-request-id"]
    servers = server_spans(telemetry)
    assert len(servers) == 3
    assert len(predict_spans(telemetry)) == 2
    by_id = {(s.attributes or {})[semconv.ML_REQUEST_ID]: s for s in servers}
    assert (by_id["sock-1"].attributes or {})["server.address"] == "127.0.0.1"
    statuses = sorted(
        p.attributes["http.response.status_code"]
        for p in telemetry.metric_points("http.server.request.duration")
    )
    assert statuses == [200, 422, 500]
