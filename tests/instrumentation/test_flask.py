"""The Flask ML layer on the contrib Flask instrumentation: test client and werkzeug's server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask
import httpx
import pytest
from _served import clean_environment
from flask.testing import FlaskClient
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from werkzeug.serving import make_server

from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.context import get_request_id
from otel_mlmon.instrumentation import instrument_flask, uninstrument_flask
from otel_mlmon.instrumentation.flask import FlaskMLInstrumentor, instrumented
from otel_mlmon.testing import InMemoryTelemetry


def make_app(monitor: ModelMonitor) -> flask.Flask:
    # Through the module attribute, so that a global instrument() applies.
    app = flask.Flask("test")

    @app.post("/predict")
    def predict() -> Any:
        body = flask.request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("x"), (int, float)):
            return flask.jsonify(detail="x must be a number"), 422
        x = body["x"]
        with monitor.predict(features=[x]) as p:
            if x < 0:
                raise ValueError("negative input")
            p.record(int(x > 1), 0.75)
        return flask.jsonify(id=p.id, request_id=get_request_id())

    @app.get("/health")
    def health() -> Any:
        return flask.jsonify(status="ok", request_id=get_request_id())

    return app


@pytest.fixture
def monitor(telemetry: InMemoryTelemetry) -> ModelMonitor:
    return ModelMonitor("clf", version="2.0", **telemetry.providers)


@pytest.fixture
def app(telemetry: InMemoryTelemetry, monitor: ModelMonitor) -> Iterator[flask.Flask]:
    application = make_app(monitor)
    instrument_flask(application, monitor=monitor, **telemetry.providers)
    yield application
    uninstrument_flask(application)


@pytest.fixture
def client(app: flask.Flask) -> FlaskClient:
    return app.test_client()


def server_spans(telemetry: InMemoryTelemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if s.kind == SpanKind.SERVER]


def predict_spans(telemetry: InMemoryTelemetry) -> list[ReadableSpan]:
    return [s for s in telemetry.spans() if s.name == "predict clf"]


def test_predict_span_is_the_only_child_of_one_server_span(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    response = client.post("/predict", json={"x": 2})

    assert response.status_code == 200
    (server,) = server_spans(telemetry)
    (predict,) = predict_spans(telemetry)
    assert len(telemetry.spans()) == 2
    assert predict.parent is not None
    assert server.context.span_id == predict.parent.span_id
    assert server.instrumentation_scope.name == "opentelemetry.instrumentation.flask"
    attributes = dict(server.attributes or {})
    assert attributes[semconv.ML_MODEL_NAME] == "clf"
    assert attributes[semconv.ML_MODEL_VERSION] == "2.0"
    assert response.json is not None
    assert attributes[semconv.ML_PREDICTION_ID] == response.json["id"]


def test_query_string_values_are_redacted_on_the_server_span(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    client.post("/predict?email=someone%40example.com&debug&a%20b=1&tok%40en=2", json={"x": 2})

    (server,) = server_spans(telemetry)
    # Names are kept; values, bare tokens and keys that are no parameter name are not.
    assert (
        "email=REDACTED&REDACTED&REDACTED=REDACTED&REDACTED=REDACTED"
        == (server.attributes or {})["url.query"]
    )
    assert "example.com" not in repr(dict(server.attributes or {}))


def test_a_query_of_many_parameters_is_cut_to_the_bound(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    client.get("/health?" + "&".join(f"p{i}={i}" for i in range(1_000)))

    (server,) = server_spans(telemetry)
    query = (server.attributes or {})["url.query"]
    assert [f"p{i}=REDACTED" for i in range(32)] == query.split("&")


def test_server_address_is_the_servers_own_not_the_clients_host_header(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    client.get("/health", headers={"Host": "attacker.example:6666"})

    (server,) = server_spans(telemetry)
    attributes = dict(server.attributes or {})
    assert ("localhost", 80) == (attributes["server.address"], attributes["server.port"])
    assert "attacker" not in repr(attributes)


def test_stable_http_duration_metric_and_ml_metrics_are_recorded(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    client.post("/predict", json={"x": 2})

    (duration,) = telemetry.metric_points("http.server.request.duration")
    assert duration.count == 1
    assert telemetry.attributes_of(duration)["http.route"] == "/predict"
    (predictions,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    assert predictions.value == 1


CONVENTIONS_READ_FIRST = """
import json
import flask
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from otel_mlmon import instrument_flask
from otel_mlmon.testing import InMemoryTelemetry

telemetry = InMemoryTelemetry()
# As otel_mlmon.configure() does before the app is instrumented: the first instrumentation of
# the process reads the HTTP conventions choice (OTEL_SEMCONV_STABILITY_OPT_IN is unset).
SystemMetricsInstrumentor(config={"process.memory.usage": None}).instrument(
    meter_provider=telemetry.meter_provider
)
app = flask.Flask("late")

@app.get("/")
def root():
    return {}

instrument_flask(app, **telemetry.providers)
app.test_client().get("/")
print(json.dumps(sorted(name for name in telemetry.metrics() if name.startswith("http."))))
"""


def test_stable_http_duration_even_when_the_conventions_were_chosen_before_flask() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CONVENTIONS_READ_FIRST],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(),
        check=True,
    )

    assert ["http.server.active_requests", "http.server.request.duration"] == json.loads(
        done.stdout.strip().splitlines()[-1]
    )
    assert "" == done.stderr


def test_rejected_input_is_422_without_a_predict_span(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    response = client.post("/predict", json={"x": "nope"})

    assert response.status_code == 422
    assert response.headers["X-Request-ID"]
    (server,) = server_spans(telemetry)
    assert predict_spans(telemetry) == []
    assert "error.type" not in (server.attributes or {})


def test_model_error_is_500_with_the_exception_type_on_the_server_span(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    response = client.post("/predict", json={"x": -1}, headers={"X-Request-ID": "f-500"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "f-500"
    (server,) = server_spans(telemetry)
    (predict,) = predict_spans(telemetry)
    assert (server.attributes or {})["error.type"] == "ValueError"
    assert (predict.attributes or {})["error.type"] == "ValueError"
    assert (server.attributes or {})[semconv.ML_REQUEST_ID] == "f-500"


def test_request_id_is_honoured_echoed_and_bound(
    telemetry: InMemoryTelemetry, client: FlaskClient
) -> None:
    response = client.get("/health", headers={"X-Request-ID": "flask-1"})

    assert response.headers["X-Request-ID"] == "flask-1"
    assert response.json == {"status": "ok", "request_id": "flask-1"}
    (server,) = server_spans(telemetry)
    assert (server.attributes or {})[semconv.ML_REQUEST_ID] == "flask-1"
    assert get_request_id() is None


def test_malformed_request_id_is_replaced(client: FlaskClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "a\tb"})

    assert response.headers["X-Request-ID"] != "a\tb"
    assert len(response.headers.getlist("X-Request-ID")) == 1


def test_uninstrument_removes_our_layer_and_the_contrib_one_it_added(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    application = make_app(monitor)
    original_wsgi = application.wsgi_app
    instrument_flask(application, **telemetry.providers)
    uninstrument_flask(application)
    response = application.test_client().get("/health")

    assert "X-Request-ID" not in response.headers
    assert server_spans(telemetry) == []
    assert application.wsgi_app == original_wsgi
    assert not instrumented(application)
    assert not getattr(application, "_is_instrumented_by_opentelemetry", False)


def test_uninstrument_keeps_a_contrib_instrumentation_it_did_not_add(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    application = make_app(monitor)
    FlaskInstrumentor.instrument_app(application, **telemetry.providers)
    instrument_flask(application)
    uninstrument_flask(application)
    response = application.test_client().get("/health")
    FlaskInstrumentor.uninstrument_app(application)

    assert "X-Request-ID" not in response.headers
    (server,) = server_spans(telemetry)
    assert semconv.ML_REQUEST_ID not in (server.attributes or {})


def test_instrument_twice_adds_one_layer(telemetry: InMemoryTelemetry, app: flask.Flask) -> None:
    instrument_flask(app)
    response = app.test_client().get("/health")

    assert len(response.headers.getlist("X-Request-ID")) == 1
    assert len(server_spans(telemetry)) == 1


def test_global_instrument_instruments_apps_created_afterwards_and_undoes_it(
    monitor: ModelMonitor,
) -> None:
    instrumentor = FlaskMLInstrumentor()
    instrumentor.instrument()
    try:
        application = make_app(monitor)
        assert instrumented(application)
    finally:
        instrumentor.uninstrument()
    assert not instrumented(application)
    assert not instrumented(make_app(monitor))


def test_over_a_real_socket_with_werkzeug_threads(
    telemetry: InMemoryTelemetry, app: flask.Flask
) -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with httpx.Client(base_url=base) as client:

            def one(i: int) -> tuple[str, Any]:
                response = client.get("/health", headers={"X-Request-ID": f"w-{i}"})
                return f"w-{i}", (response.headers["x-request-id"], response.json()["request_id"])

            with ThreadPoolExecutor(max_workers=8) as pool:
                results = list(pool.map(one, range(200)))
            failed = client.post("/predict", json={"x": -2})
    finally:
        server.shutdown()
        thread.join(timeout=5)

    for sent, (echoed, bound) in results:
        assert (sent, sent) == (echoed, bound)
    assert failed.status_code == 500
    servers = server_spans(telemetry)
    assert len(servers) == 201
    assert len({(s.attributes or {})[semconv.ML_REQUEST_ID] for s in servers}) == 201
