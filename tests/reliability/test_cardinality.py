"""Attacker-controlled values (predicted labels from a model gone wrong, prediction ids,
exception types, URL paths, query strings, Host headers, request IDs and header values) cannot
grow the number of time series past the configured bounds.

The HTTP cases here run in process, many requests fast; the same hostile requests through every
documented command, scraped over real sockets, are in
``tests/instrumentation/test_documented_commands.py``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import flask
import pytest
from fastapi import FastAPI

from otel_mlmon import Classes, ModelMonitor, semconv
from otel_mlmon.instrumentation import (
    instrument_fastapi,
    instrument_flask,
    uninstrument_fastapi,
    uninstrument_flask,
)
from otel_mlmon.testing import InMemoryTelemetry

DISTINCT = 100_000
#: Requests of the HTTP case: 100,000 distinct values, as issue 7 asks (about 25 s on the
#: 2-core VM); OTEL_MLMON_HTTP_DISTINCT=20000 (100 times past the point after which no series
#: may appear, about 4 s) for a quicker local run.
HTTP_DISTINCT = int(os.environ.get("OTEL_MLMON_HTTP_DISTINCT", "100000"))
#: Requests of the Flask case (its test client costs about ten times a raw ASGI call).
FLASK_DISTINCT = 3_000
MAX_CLASSES = 50


def _series(telemetry: InMemoryTelemetry) -> dict[str, int]:
    """Number of time series (data points with distinct attributes) per metric."""
    return {name: len(metric.data.data_points) for name, metric in telemetry.metrics().items()}


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return InMemoryTelemetry()


def test_100k_distinct_predicted_labels_stay_within_the_class_bound(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor(
        "attacked", classes=Classes(limit=MAX_CLASSES), trace=False, **telemetry.providers
    )
    for start in range(0, 1_000, 100):  # a few scalars first, then batches of distinct labels
        for i in range(start, start + 100):
            with monitor.predict() as p:
                p.record(f"label-{i}", 0.5)
    with monitor.predict() as p:
        p.record(["label-0", "label-1"])
    after_first_thousand = _series(telemetry)
    for start in range(1_000, DISTINCT, 1_000):
        with monitor.predict() as p:
            p.record([f"label-{i}" for i in range(start, start + 1_000)])
    after_all = _series(telemetry)

    assert MAX_CLASSES + 1 == after_all[semconv.ML_MODEL_PREDICTIONS]  # the bound and _OTHER
    assert after_first_thousand == after_all  # no metric grew between 1,000 and 100,000 labels
    points = telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    assert DISTINCT + 2 == sum(p.value for p in points)
    overflows = telemetry.metric_points(semconv.ML_MODEL_CLASS_OVERFLOWS)
    assert DISTINCT - MAX_CLASSES == sum(p.value for p in overflows)


def test_100k_distinct_prediction_ids_never_become_series(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor("ids", classes=Classes(limit=MAX_CLASSES), **telemetry.providers)
    for i in range(1_000):
        with monitor.predict() as p:
            p.record(i % 3)
        monitor.record_label(p.id, i % 3)
    baseline = _series(telemetry)
    for i in range(DISTINCT):
        monitor.record_label(f"{i:016x}-forged", 1)  # ids nobody issued
    after = _series(telemetry)

    assert baseline | {semconv.ML_MODEL_LABELS: baseline[semconv.ML_MODEL_LABELS] + 1} == after
    outcomes = {
        p.attributes[semconv.ML_LABEL_OUTCOME]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if semconv.ML_LABEL_CLASS not in p.attributes
    }
    matched = sum(
        p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if p.attributes[semconv.ML_LABEL_OUTCOME] == semconv.LABEL_MATCHED
    )
    assert (1_000, DISTINCT) == (matched, outcomes[semconv.LABEL_INVALID])
    # The ids are on spans only, one attribute per span, never on a metric.
    for metric in telemetry.metrics().values():
        for point in metric.data.data_points:
            assert semconv.ML_PREDICTION_ID not in point.attributes


def test_distinct_exception_types_stay_within_the_error_bound(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("errors", **telemetry.providers)
    for i in range(300):
        error = type(f"Error{i}", (ValueError,), {})
        with pytest.raises(ValueError), monitor.predict():
            raise error("x")
    series = _series(telemetry)
    assert 64 + 1 == series[semconv.ML_MODEL_ERRORS]  # 64 types, then _OTHER
    assert 300 == sum(p.value for p in telemetry.metric_points(semconv.ML_MODEL_ERRORS))


def test_no_prediction_waits_in_memory_for_its_label(telemetry: InMemoryTelemetry) -> None:
    # Ids are self-contained: a label joins however many predictions came since.
    monitor = ModelMonitor("pending", trace=False, **telemetry.providers)
    ids = []
    for i in range(1_000):
        with monitor.predict() as p:
            p.record(i % 2)
        ids.append(p.id)
    for i, prediction_id in enumerate(ids):
        monitor.record_label(prediction_id, i % 2)
    matched = {
        (p.attributes[semconv.ML_PREDICTION_CLASS], p.attributes[semconv.ML_LABEL_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }
    assert {("0", "0"): 500, ("1", "1"): 500} == matched


def _http_app(telemetry: InMemoryTelemetry, monitor: ModelMonitor) -> FastAPI:
    # Metrics only: series are what this test counts, and 100,000 spans in memory would
    # only slow it down.
    app = FastAPI(telemetry={"operation_spans": False, "meter_provider": telemetry.meter_provider})

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, Any]:
        with monitor.predict(features=[1.0]) as p:
            p.record(len(item_id) % 3, 0.5)
        return {"id": p.id}

    instrument_fastapi(app, monitor=monitor, meter_provider=telemetry.meter_provider)
    return app


async def _requests(app: FastAPI, start: int, stop: int) -> list[int]:
    """Requests ``start`` to ``stop``, straight into the ASGI app (no socket), each with its
    own path, Host header, X-Request-ID and header values: even ones to the route with a
    distinct item, odd ones to distinct paths that match no route (404)."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    for i in range(start, stop):
        path = f"/items/{i}" if i % 2 == 0 else f"/unknown/{i}/x"

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": f"q={i}".encode(),
            "headers": [(b"host", f"host-{i}.evil.example".encode()),
                        (b"x-request-id", f"req-{i:08d}".encode()),
                        (b"x-tenant", f"tenant-{i}".encode()),
                        (b"user-agent", f"agent/{i}".encode())],
            "client": ("127.0.0.1", 40000 + i % 20000), "server": ("127.0.0.1", 8000),
        }  # fmt: skip
        await app(scope, receive, send)
    return statuses


def test_distinct_paths_request_ids_and_headers_never_become_series(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("http", trace=False, **telemetry.providers)
    app = _http_app(telemetry, monitor)
    try:
        warm = asyncio.run(_requests(app, 0, 1_000))
        after_first_thousand = _series(telemetry)
        rest = asyncio.run(_requests(app, 1_000, HTTP_DISTINCT))
        after_all = _series(telemetry)
    finally:
        uninstrument_fastapi(app)
    assert {200, 404} == set(warm + rest)
    assert HTTP_DISTINCT == len(warm) + len(rest)
    assert after_first_thousand == after_all  # nothing grew past the first thousand
    # The route template, never the raw path; no request ID or header value on any series.
    routes = {
        p.attributes.get("http.route")
        for p in telemetry.metric_points("http.server.request.duration")
    }
    assert {"/items/{item_id}", None} == routes
    assert HTTP_DISTINCT == sum(
        p.count for p in telemetry.metric_points("http.server.request.duration")
    )
    _assert_no_request_value_on_any_series(telemetry)


def _assert_no_request_value_on_any_series(telemetry: InMemoryTelemetry) -> None:
    """No request ID, header value, Host header, raw path or query on any series."""
    for name, metric in telemetry.metrics().items():
        for point in metric.data.data_points:
            values = " ".join(str(v) for v in point.attributes.values())
            assert "req-" not in values and "tenant-" not in values and "agent/" not in values
            assert "/items/1" not in values and "/unknown/" not in values, name
            assert "evil.example" not in values and "q=" not in values, name


def _flask_app(telemetry: InMemoryTelemetry, monitor: ModelMonitor) -> flask.Flask:
    app = flask.Flask("attacked")

    @app.get("/items/<item_id>")
    def item(item_id: str) -> dict[str, Any]:
        with monitor.predict(features=[1.0]) as p:
            p.record(len(item_id) % 3, 0.5)
        return {"id": p.id}

    instrument_flask(app, monitor=monitor, meter_provider=telemetry.meter_provider)
    return app


def _flask_requests(client: Any, start: int, stop: int) -> list[int]:
    """As :func:`_requests`, through Flask's test client, each with its own Host header."""
    statuses = []
    for i in range(start, stop):
        path = f"/items/{i}?q={i}" if i % 2 == 0 else f"/unknown/{i}/x?q={i}"
        response = client.get(path, headers={
            "Host": f"host-{i}.evil.example", "X-Request-ID": f"req-{i:08d}",
            "X-Tenant": f"tenant-{i}", "User-Agent": f"agent/{i}"})  # fmt: skip
        statuses.append(response.status_code)
    return statuses


def test_flask_distinct_hosts_paths_request_ids_and_headers_never_become_series(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("http", trace=False, **telemetry.providers)
    app = _flask_app(telemetry, monitor)
    client = app.test_client()
    try:
        warm = _flask_requests(client, 0, 1_000)
        after_first_thousand = _series(telemetry)
        rest = _flask_requests(client, 1_000, FLASK_DISTINCT)
        after_all = _series(telemetry)
    finally:
        uninstrument_flask(app)
    assert {200, 404} == set(warm + rest)
    assert after_first_thousand == after_all
    points = telemetry.metric_points("http.server.request.duration")
    assert {"/items/<item_id>", None} == {p.attributes.get("http.route") for p in points}
    assert FLASK_DISTINCT == sum(p.count for p in points)
    _assert_no_request_value_on_any_series(telemetry)
