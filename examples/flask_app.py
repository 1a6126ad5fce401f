"""An iris classifier served by Flask, instrumented with otel-mlmon.

A scikit-learn model is trained at start-up on the iris data set that ships with scikit-learn
(nothing is downloaded). Run it with one command from the repository root, on Flask's
development server or on gunicorn:

    .venv/bin/python examples/flask_app.py                                  # 127.0.0.1:8001
    .venv/bin/gunicorn -w 1 -b 127.0.0.1:8001 --chdir examples 'flask_app:create_app()'

The endpoints are those of ``examples/fastapi_app.py`` (``/predict`` single and batch,
``/feedback``, ``/health``). Telemetry: ``opentelemetry-instrumentation-flask`` makes the
server span and ``http.server.request.duration``; ``otel_mlmon.instrument_flask`` applies it
and adds request IDs, ML attributes on the server span and the ``predict iris`` span below it.
Under gunicorn, ``create_app()`` runs ``otel_mlmon.configure()`` in the worker (after the
fork), so each worker has its own exporters.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from flask import Flask, jsonify, request
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import otel_mlmon
from otel_mlmon.context import get_request_id
from otel_mlmon.logs import log_prediction

MODEL_NAME = "iris"
MODEL_VERSION = "1.0.0"
FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
N_FEATURES = len(FEATURE_NAMES)
MAX_BATCH = 256
#: Drift settings: those of examples/fastapi_app.py (the defaults: 1000 rows, scored from 500).
DRIFT = otel_mlmon.DriftConfig(window=1000, min_samples=500)


class IrisModel:
    """The model: a logistic regression trained on the bundled iris data at start-up."""

    def __init__(self) -> None:
        data = load_iris()
        self.estimator = LogisticRegression(max_iter=500).fit(data.data, data.target)
        self.train_accuracy = float(self.estimator.score(data.data, data.target))
        self.reference = np.asarray(data.data, dtype=np.float64)
        self.classes = [int(c) for c in self.estimator.classes_]

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes and confidences of ``rows``; raises ``ValueError`` on NaN or infinity."""
        probabilities = self.estimator.predict_proba(rows)
        return probabilities.argmax(axis=1), probabilities.max(axis=1)


def _is_row(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == N_FEATURES
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _parse_features(body: object) -> tuple[list[list[float]], bool] | None:
    """``(rows, batch)`` from a request body, or ``None`` when it is malformed."""
    if not isinstance(body, dict):
        return None
    features = body.get("features")
    if _is_row(features):
        return [features], False  # type: ignore[list-item]
    if (
        isinstance(features, list)
        and 0 < len(features) <= MAX_BATCH
        and all(_is_row(row) for row in features)
    ):
        return features, True
    return None


def build_monitor(model: IrisModel, **providers: Any) -> otel_mlmon.ModelMonitor:
    """The ``ModelMonitor`` of the service: the training data and the model's predictions on it
    are the drift reference of the features and of the predictions."""
    monitor = otel_mlmon.ModelMonitor(
        MODEL_NAME,
        version=MODEL_VERSION,
        task="classification",
        framework="sklearn",
        classes=model.classes,
        feature_names=list(FEATURE_NAMES),
        reference=model.reference,
        reference_predictions=model.estimator.predict(model.reference),
        drift=DRIFT,
        **providers,
    )
    monitor.model_loaded(framework="sklearn", metrics={"train_accuracy": model.train_accuracy})
    return monitor


def create_app(
    *,
    model: IrisModel | None = None,
    monitor: otel_mlmon.ModelMonitor | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    configure: bool | None = None,
) -> Flask:
    """The service. Without providers (a WSGI server calling ``create_app()``) it runs
    ``otel_mlmon.configure()`` first; tests pass in-memory providers instead."""
    if configure is None:
        configure = tracer_provider is None and meter_provider is None
    if configure:
        otel_mlmon.configure(service_name="iris-flask")
    providers = {
        k: v
        for k, v in (("tracer_provider", tracer_provider), ("meter_provider", meter_provider))
        if v is not None
    }
    model = model or IrisModel()
    monitor = monitor or build_monitor(model, **providers)
    app = Flask("iris")

    @app.post("/predict")
    def predict() -> Any:
        parsed = _parse_features(request.get_json(silent=True))
        if parsed is None:
            # Rejected before the model: no predict span, as FastAPI's validation does.
            return jsonify(
                detail=f"features: {N_FEATURES} numbers, or up to {MAX_BATCH} rows of them"
            ), 422
        rows_list, batch = parsed
        rows = np.asarray(rows_list, dtype=np.float64)
        with monitor.predict(features=rows) as p:
            classes, confidences = model.predict(rows)
            if batch:
                p.record(classes, confidences)
                log_prediction(
                    [int(c) for c in classes], prediction_id=p.id, batch_size=len(classes)
                )
            else:
                p.record(int(classes[0]), float(confidences[0]))
                log_prediction(
                    int(classes[0]), confidence=float(confidences[0]), prediction_id=p.id
                )
        body: dict[str, Any] = {"prediction_id": p.id, "request_id": get_request_id()}
        if batch:
            body["predictions"] = [int(c) for c in classes]
            body["confidences"] = [round(float(c), 6) for c in confidences]
        else:
            body["prediction"] = int(classes[0])
            body["confidence"] = round(float(confidences[0]), 6)
        return jsonify(body)

    @app.post("/feedback")
    def feedback() -> Any:
        body = request.get_json(silent=True)
        if not (
            isinstance(body, dict)
            and isinstance(body.get("prediction_id"), str)
            and 0 < len(body["prediction_id"]) <= 64
            and "label" in body
        ):
            return jsonify(detail="prediction_id (string) and label are required"), 422
        monitor.record_label(body["prediction_id"], body["label"])
        return jsonify(accepted=True), 202

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok", model=MODEL_NAME, version=monitor.version)

    otel_mlmon.instrument_flask(app, monitor=monitor, **providers)
    app.config["MODEL"] = model
    app.config["MONITOR"] = monitor
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    telemetry = otel_mlmon.configure(service_name="iris-flask")
    if telemetry.prometheus_address:
        host, port = telemetry.prometheus_address
        print(f"metrics: http://{host}:{port}/metrics", flush=True)
    try:
        create_app(configure=False).run(host=args.host, port=args.port, threaded=True)
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
