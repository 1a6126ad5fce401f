"""examples/fastapi_app.py: the service's behaviour and telemetry, and its documented command."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind

from otel_mlmon import semconv
from otel_mlmon.instrumentation import uninstrument_fastapi
from otel_mlmon.testing import InMemoryTelemetry

ROW = [5.1, 3.5, 1.4, 0.2]  # an iris setosa from the data set


@pytest.fixture
def client(fastapi_example: ModuleType, telemetry: InMemoryTelemetry) -> Iterator[TestClient]:
    app = fastapi_example.create_app(telemetry=dict(telemetry.providers))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    uninstrument_fastapi(app)


def post_raw(client: TestClient, body: str) -> Any:
    return client.post("/predict", content=body, headers={"content-type": "application/json"})


def test_single_prediction_is_one_server_span_with_the_predict_span_below(
    client: TestClient, telemetry: InMemoryTelemetry
) -> None:
    response = client.post("/predict", json={"features": ROW})

    body = response.json()
    assert (response.status_code, body["prediction"]) == (200, 0)
    assert 0 < body["confidence"] <= 1
    server, predict = sorted(telemetry.spans(), key=lambda s: s.kind != SpanKind.SERVER)
    assert predict.parent is not None and predict.parent.span_id == server.context.span_id
    assert (server.attributes or {})[semconv.ML_PREDICTION_ID] == body["prediction_id"]
    assert (server.attributes or {})[semconv.ML_REQUEST_ID] == body["request_id"]
    assert (predict.attributes or {})[semconv.ML_PREDICTION_CLASS] == "0"
    # The confidence the client got (to 6 places) is the one recorded, on the span and in the
    # histogram.
    recorded = (predict.attributes or {})[semconv.ML_PREDICTION_CONFIDENCE]
    (histogram,) = telemetry.metric_points(semconv.ML_MODEL_PREDICTION_CONFIDENCE)
    assert (1, body["confidence"], body["confidence"]) == (
        histogram.count, round(histogram.sum, 6), round(recorded, 6))  # fmt: skip


def test_batch_prediction_counts_every_row(
    client: TestClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    rows = iris_example.IrisModel().reference[[0, 60, 120]].tolist()

    body = client.post("/predict", json={"features": rows}).json()

    assert body["predictions"] == [0, 1, 2]
    counted = {
        telemetry.attributes_of(p)[semconv.ML_PREDICTION_CLASS]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    }
    assert counted == {"0": 1, "1": 1, "2": 1}
    (batch,) = telemetry.metric_points(semconv.ML_MODEL_BATCH_SIZE)
    assert batch.sum == 3


def test_a_full_batch_is_labelled_by_its_batch_id(
    client: TestClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    # A batch id grows with its rows: a full batch's is far longer than one prediction's.
    rows = [iris_example.IrisModel().reference[i % 150].tolist()
            for i in range(iris_example.MAX_BATCH)]  # fmt: skip
    body = client.post("/predict", json={"features": rows}).json()
    status = client.post(
        "/feedback", json={"prediction_id": body["prediction_id"], "label": body["predictions"]}
    ).status_code

    assert 202 == status
    matched = telemetry.total(semconv.ML_MODEL_LABELS, ml__label__outcome=semconv.LABEL_MATCHED)
    assert iris_example.MAX_BATCH == matched


def test_feedback_joins_the_label_and_feeds_accuracy(
    client: TestClient, telemetry: InMemoryTelemetry
) -> None:
    right = client.post("/predict", json={"features": ROW}).json()["prediction_id"]
    wrong = client.post("/predict", json={"features": ROW}).json()["prediction_id"]

    statuses = [
        client.post("/feedback", json={"prediction_id": right, "label": 0}).status_code,
        client.post("/feedback", json={"prediction_id": wrong, "label": 2}).status_code,
    ]

    assert statuses == [202, 202]
    matched = {  # the confusion matrix: (predicted, label) class -> labels
        (p.attributes[semconv.ML_PREDICTION_CLASS], p.attributes[semconv.ML_LABEL_CLASS]): p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if p.attributes[semconv.ML_LABEL_OUTCOME] == semconv.LABEL_MATCHED
    }
    assert {("0", "0"): 1, ("0", "2"): 1} == matched


@pytest.mark.parametrize(
    "body", ['{"features": [1, 2]}', '{"features": []}', '{"features": "x"}', "not json"]
)
def test_malformed_input_is_422_without_a_predict_span(
    client: TestClient, telemetry: InMemoryTelemetry, body: str
) -> None:
    response = post_raw(client, body)

    assert response.status_code == 422
    assert [s.kind for s in telemetry.spans()] == [SpanKind.SERVER]


def test_a_422_says_where_and_what_without_the_input(client: TestClient) -> None:
    response = post_raw(client, '{"features": [5.1, 3.5, 1.4, "SECRET-INPUT"]}')

    assert 422 == response.status_code
    assert "SECRET-INPUT" not in response.text
    assert {("loc", "msg", "type")} == {tuple(e) for e in response.json()["detail"]}


def test_model_error_is_500_with_error_type(
    client: TestClient, telemetry: InMemoryTelemetry
) -> None:
    response = post_raw(client, '{"features": [NaN, 3.5, 1.4, 0.2]}')

    assert response.status_code == 500
    server = next(s for s in telemetry.spans() if s.kind == SpanKind.SERVER)
    assert (server.attributes or {})["error.type"] == "ValueError"
    (errors,) = telemetry.metric_points(semconv.ML_MODEL_ERRORS)
    assert telemetry.attributes_of(errors)["error.type"] == "ValueError"


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "model": "iris", "version": "1.0.0"}


def test_fault_header_is_ignored_unless_faults_are_enabled(
    client: TestClient, iris_example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(iris_example.FAULTS_ENV, raising=False)

    response = client.post("/predict", json={"features": ROW}, headers={"X-Example-Fault": "error"})

    assert (200, False) == (response.status_code, iris_example.faults_enabled())


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False)])
def test_faults_env_switch(
    iris_example: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv(iris_example.FAULTS_ENV, value)
    assert expected == iris_example.faults_enabled()


@pytest.fixture
def faulty_client(
    fastapi_example: ModuleType, telemetry: InMemoryTelemetry
) -> Iterator[TestClient]:
    app = fastapi_example.create_app(telemetry=dict(telemetry.providers), faults=True)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
    uninstrument_fastapi(app)


def test_injected_error_fault_is_a_500_with_its_error_type(
    faulty_client: TestClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    response = faulty_client.post(
        "/predict", json={"features": ROW}, headers={"X-Example-Fault": "error"}
    )

    assert response.status_code == 500
    (errors,) = telemetry.metric_points(semconv.ML_MODEL_ERRORS)
    error_type = telemetry.attributes_of(errors)["error.type"]
    assert error_type.endswith(iris_example.InjectedFault.__qualname__)


def test_injected_slow_fault_slows_the_predict_span(
    faulty_client: TestClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    response = faulty_client.post(
        "/predict", json={"features": ROW}, headers={"X-Example-Fault": "slow"}
    )

    assert response.status_code == 200
    predict = next(s for s in telemetry.spans() if s.kind != SpanKind.SERVER)
    assert predict.end_time is not None and predict.start_time is not None
    assert (predict.end_time - predict.start_time) / 1e9 >= iris_example.SLOW_FAULT_SECONDS


def test_shifted_rows_are_scored_as_drift_against_the_training_data(
    client: TestClient, telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    reference = iris_example.IrisModel().reference
    rows = [[r[0], r[1], r[2] + 2.5, r[3]] for r in reference.tolist()]
    # Enough rows to reach the example's min_samples, in batches of at most MAX_BATCH.
    while len(rows) < iris_example.DRIFT.min_samples:
        rows += rows
    for start in range(0, len(rows), iris_example.MAX_BATCH):
        batch = rows[start : start + iris_example.MAX_BATCH]
        assert client.post("/predict", json={"features": batch}).status_code == 200

    detected = {
        (telemetry.attributes_of(p)[semconv.ML_FEATURE_NAME],
         telemetry.attributes_of(p)[semconv.ML_DRIFT_METHOD]): p.value
        for p in telemetry.metric_points(semconv.ML_DRIFT_DETECTED)
    }  # fmt: skip
    assert 1 == detected[("petal_length", "ks")]
    assert 0 == detected[("sepal_length", "ks")]
