"""examples/flask_app.py: behaviour and telemetry, on Flask's server and under gunicorn."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from _wait import free_port, wait_healthy
from flask.testing import FlaskClient
from opentelemetry.trace import SpanKind

from otel_mlmon import semconv
from otel_mlmon.demo.scrape import parse_samples
from otel_mlmon.instrumentation import uninstrument_flask
from otel_mlmon.testing import InMemoryTelemetry

ROW = [6.7, 3.0, 5.2, 2.3]  # an iris virginica from the data set
GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.fixture
def client(flask_example: ModuleType, telemetry: InMemoryTelemetry) -> Iterator[FlaskClient]:
    app = flask_example.create_app(**telemetry.providers)
    yield app.test_client()
    uninstrument_flask(app)


def test_prediction_is_one_server_span_with_the_predict_span_below(
    client: FlaskClient, telemetry: InMemoryTelemetry
) -> None:
    response = client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": "fl-1"})

    assert response.json is not None
    assert (response.status_code, response.json["prediction"]) == (200, 2)
    assert response.headers["X-Request-ID"] == "fl-1"
    server, predict = sorted(telemetry.spans(), key=lambda s: s.kind != SpanKind.SERVER)
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    assert (server.attributes or {})[semconv.ML_MODEL_NAME] == "iris"
    (duration,) = telemetry.metric_points("http.server.request.duration")
    assert telemetry.attributes_of(duration)["http.route"] == "/predict"


def test_batch_and_feedback(client: FlaskClient, telemetry: InMemoryTelemetry) -> None:
    body = client.post("/predict", json={"features": [ROW, ROW]}).json
    assert body is not None
    status = client.post(
        "/feedback", json={"prediction_id": body["prediction_id"], "label": [2, 1]}
    ).status_code

    assert (body["predictions"], status) == ([2, 2], 202)
    matched = {  # the confusion matrix: (predicted, label) class -> labels
        (p.attributes[semconv.ML_PREDICTION_CLASS], p.attributes[semconv.ML_LABEL_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if p.attributes[semconv.ML_LABEL_OUTCOME] == semconv.LABEL_MATCHED
    }
    assert {("2", "2"): 1, ("2", "1"): 1} == matched


def test_a_full_batch_is_labelled_by_its_batch_id(
    client: FlaskClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    # A batch id grows with its rows: a full batch's is far longer than one prediction's.
    rows = [iris_example.IrisModel().reference[i % 150].tolist()
            for i in range(iris_example.MAX_BATCH)]  # fmt: skip
    body = client.post("/predict", json={"features": rows}).json
    assert body is not None
    status = client.post(
        "/feedback", json={"prediction_id": body["prediction_id"], "label": body["predictions"]}
    ).status_code

    assert 202 == status
    matched = telemetry.total(semconv.ML_MODEL_LABELS, ml__label__outcome=semconv.LABEL_MATCHED)
    assert iris_example.MAX_BATCH == matched


@pytest.mark.parametrize("body", [{"features": [1, 2]}, {"features": [[1, 2, 3, True]]}, {}])
def test_malformed_input_is_422_without_a_predict_span(
    client: FlaskClient, telemetry: InMemoryTelemetry, body: object
) -> None:
    response = client.post("/predict", json=body)

    assert response.status_code == 422
    assert [s.kind for s in telemetry.spans()] == [SpanKind.SERVER]


@pytest.mark.parametrize(
    "body", [{"features": [1, 2, 3, "SECRET-INPUT"]}, {"prediction_id": "SECRET-INPUT"}]
)
def test_a_422_never_echoes_the_input(client: FlaskClient, body: dict[str, object]) -> None:
    path = "/feedback" if "prediction_id" in body else "/predict"

    response = client.post(path, json=body)

    assert (422, False) == (response.status_code, b"SECRET-INPUT" in response.data)


def test_feedback_takes_an_integer_or_a_bounded_list_of_them(client: FlaskClient) -> None:
    statuses = [
        client.post("/feedback", json={"prediction_id": "p", "label": label}).status_code
        for label in (1, [0, 2], True, "1", [], [1] * 257)
    ]

    assert [202, 202, 422, 422, 422, 422] == statuses


def test_outcomes_of_a_prediction_are_counted_for_its_version(
    client: FlaskClient, telemetry: InMemoryTelemetry
) -> None:
    prediction_id = client.post("/predict", json={"features": ROW}).json["prediction_id"]
    statuses = [
        client.post("/outcome", json={"prediction_id": prediction_id, **outcome}).status_code
        for outcome in (
            {"kind": "revenue", "value": 12.5},
            {"kind": "rating", "value": 4},
            {"kind": "revenue", "value": "12.5"},  # not a number: refused before the monitor
            {"kind": "x" * 65, "value": 1},
            {"kind": "refund-of-another-shop", "value": 1},  # undeclared: counted as _OTHER
            {"value": 1},
        )
    ]

    assert [202, 202, 422, 422, 202, 422] == statuses
    assert {("revenue", "matched"): 1, ("rating", "matched"): 1, ("_OTHER", "unknown_kind"): 1} == (
        telemetry.values_by(semconv.ML_MODEL_OUTCOMES, semconv.ML_OUTCOME_KIND,
                            semconv.ML_OUTCOME_STATUS)
    )  # fmt: skip
    assert 12.5 == telemetry.total(semconv.ML_MODEL_OUTCOME_VALUE, ml__outcome__kind="revenue")


def test_a_shadow_version_records_beside_the_served_one_and_answers_nothing(
    flask_example: ModuleType, telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_SHADOW_VERSION", "2.0.0")
    app = flask_example.create_app(**telemetry.providers)
    try:
        body = app.test_client().post("/predict", json={"features": ROW}).json
    finally:
        uninstrument_flask(app)

    assert {"prediction_id", "request_id", "prediction", "confidence"} == set(body)
    assert {"1.0.0": 1, "2.0.0": 1} == telemetry.values_by(
        semconv.ML_MODEL_PREDICTIONS, semconv.ML_MODEL_VERSION
    )
    assert 1 == telemetry.total(semconv.ML_MODEL_SHADOW_COMPARISONS)


def test_model_error_is_500_with_error_type(
    client: FlaskClient, telemetry: InMemoryTelemetry
) -> None:
    response = client.post(
        "/predict", data='{"features": [NaN, 3, 5, 2]}', content_type="application/json"
    )

    assert response.status_code == 500
    server = next(s for s in telemetry.spans() if s.kind == SpanKind.SERVER)
    assert (server.attributes or {})["error.type"] == "ValueError"


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn not installed")
def test_documented_gunicorn_command_serves_telemetry_from_the_worker(
    run_command: Callable[..., subprocess.Popen[str]],
) -> None:
    port, metrics_port = free_port(), free_port()
    process = run_command(
        [str(GUNICORN), "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", "examples",
         "flask_app:create_app()"],
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        OTEL_MLMON_CONSOLE_SPANS="true",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process)
    headers = {"X-Request-ID": "g-1"}
    response = httpx.post(f"{base}/predict", json={"features": ROW}, headers=headers)
    scraped = parse_samples(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)

    assert (response.status_code, response.headers["x-request-id"]) == (200, "g-1")
    routes = {
        labels.get("http_route")
        for name, labels, _ in scraped
        if name == "http_server_request_duration_seconds_count"
    }
    assert "/predict" in routes
    assert any(name == "ml_model_predictions_total" for name, _, _ in scraped)
    # The worker flushed its spans at exit: the server span and the predict span below it.
    assert '"name": "POST /predict"' in stdout, stderr
    assert '"name": "predict iris"' in stdout
    assert '"ml.request.id": "g-1"' in stdout
