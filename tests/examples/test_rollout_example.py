"""The examples in a rollout: the version a service serves, its business outcomes on
``/outcome``, a challenger in the shadow of the served model (issue 16)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from otel_mlmon import semconv
from otel_mlmon.instrumentation import uninstrument_fastapi
from otel_mlmon.testing import InMemoryTelemetry

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def shadowed(
    fastapi_example: ModuleType, telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Any]]:
    """The FastAPI example with the shadow of ``EXAMPLE_SHADOW_VERSION`` beside it."""
    monkeypatch.setenv("EXAMPLE_SHADOW_VERSION", "2.0.0")
    app = fastapi_example.create_app(telemetry=dict(telemetry.providers))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, app
    uninstrument_fastapi(app)


def _by_version(telemetry: InMemoryTelemetry, name: str) -> dict[tuple[str, Any], float]:
    totals: dict[tuple[str, Any], float] = {}
    for point in telemetry.metric_points(name):
        attributes = telemetry.attributes_of(point)
        key = (attributes[semconv.ML_MODEL_VERSION], attributes.get(semconv.ML_MODEL_ROLE))
        totals[key] = totals.get(key, 0) + (getattr(point, "count", None) or point.value)
    return totals


def test_the_shadow_records_every_served_request_and_its_agreement(
    shadowed: tuple[TestClient, Any], telemetry: InMemoryTelemetry, iris_example: ModuleType
) -> None:
    client, app = shadowed
    for row in ROWS:
        assert 200 == client.post("/predict", json={"features": row}).status_code
    assert 200 == client.post("/predict", json={"features": ROWS}).status_code
    nan = json.dumps({"features": [float("nan"), 1.0, 1.0, 1.0]})  # httpx's json= refuses NaN
    failed = client.post("/predict", content=nan, headers={"content-type": "application/json"})

    assert 500 == failed.status_code  # the served model failed: no shadow prediction
    assert {("1.0.0", None): 6, ("2.0.0", "shadow"): 6} == _by_version(
        telemetry, semconv.ML_MODEL_PREDICTIONS
    )
    comparisons = {
        telemetry.attributes_of(p)[semconv.ML_SHADOW_AGREEMENT]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_SHADOW_COMPARISONS)
    }
    challenger = iris_example.model_for("2.0.0").predict(np.asarray(ROWS * 2))[0]
    champion = app.state.model.predict(np.asarray(ROWS * 2))[0]
    agree = int((challenger == champion).sum())
    assert {"agree": agree, "disagree": 6 - agree} == comparisons


def test_a_failing_shadow_never_fails_the_request(
    shadowed: tuple[TestClient, Any], telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, app = shadowed

    def broken(rows: Any) -> Any:
        raise RuntimeError("the challenger broke")

    shadow = app.state.service.shadow
    monkeypatch.setattr(shadow.model, "predict", broken)

    response = client.post("/predict", json={"features": ROWS[0]})

    assert 200 == response.status_code
    (error,) = telemetry.metric_points(semconv.ML_MODEL_ERRORS)
    assert ("2.0.0", "shadow", "RuntimeError") == (
        telemetry.attributes_of(error)[semconv.ML_MODEL_VERSION],
        telemetry.attributes_of(error)[semconv.ML_MODEL_ROLE],
        telemetry.attributes_of(error)[semconv.ERROR_TYPE],
    )


def test_outcomes_are_taken_on_the_outcome_route(
    fastapi_example: ModuleType, telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_MODEL_VERSION", "1.1.0")
    app = fastapi_example.create_app(telemetry=dict(telemetry.providers))
    with TestClient(app, raise_server_exceptions=False) as client:
        prediction_id = client.post("/predict", json={"features": ROWS[0]}).json()["prediction_id"]
        answers = [
            client.post("/outcome", json=body).status_code
            for body in (
                {"prediction_id": prediction_id, "kind": "revenue", "value": 12.5},
                {"prediction_id": prediction_id, "kind": "rating", "value": 4},
                {"prediction_id": prediction_id, "kind": "x" * 65, "value": 1},
                {"prediction_id": prediction_id, "kind": "revenue", "value": "lots"},
            )
        ]
    uninstrument_fastapi(app)

    assert [202, 202, 422, 422] == answers
    assert {("1.1.0", None): 12.5} == _by_version(telemetry, semconv.ML_MODEL_OUTCOME_VALUE)
    assert {("1.1.0", None): 1} == _by_version(telemetry, semconv.ML_MODEL_OUTCOME_SCORE)
    assert "1.1.0" == app.state.monitor.version
