"""An iris classifier served by FastAPI, instrumented with otel-mlmon.

A scikit-learn model is trained at start-up on the iris data set that ships with scikit-learn
(nothing is downloaded). Run it with one command from the repository root:

    .venv/bin/python examples/fastapi_app.py            # http://127.0.0.1:8000, metrics on :9464

    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"features": [5.1, 3.5, 1.4, 0.2]}'                       # single
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}' # batch
    curl -s localhost:8000/feedback -H 'content-type: application/json' \\
         -d '{"prediction_id": "<id from /predict>", "label": 0}'
    curl -s localhost:8000/health
    curl -s localhost:9464/metrics | grep ml_model

Telemetry: FastAPI's native OpenTelemetry telemetry makes the server span and
``http.server.request.duration``; ``otel_mlmon.instrument_fastapi`` adds request IDs, ML
attributes on the server span and the ``predict iris`` span below it; each prediction logs a
``prediction_made`` line (structlog, through ``configure()``'s logging bridge: JSON on stdout
and an OTel log record with the trace ID). Drift: the training data is the reference, scored
once :data:`DRIFT` has enough live rows (docs/drift.md). To export to a collector instead of
the Prometheus endpoint, set ``OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318``.

Fault injection, for tests and the demo only and OFF by default: with ``EXAMPLE_FAULTS=1`` in
the environment, ``/predict`` honours the request header ``X-Example-Fault``: ``slow`` sleeps
:data:`SLOW_FAULT_SECONDS` inside the predict span (above the p99 latency alert's 0.5 s),
``error`` raises :class:`InjectedFault` there (a 500 with ``error.type``). Without the
variable the header is ignored.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Header
from pydantic import BaseModel, Field
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

#: Drift settings of the service: the library defaults, a window of the last 1000 rows scored
#: from 500 rows on, against the 150 training rows. At the demo's default rate (20 requests/s,
#: about 26 rows/s) the first scores appear after about 20 s and the drift injected at 48 s is
#: detected within about 2 s (docs/instrumentation.md, "The demo"). A window of 500 rows scored
#: from 200 showed the scores sooner, but its noisier Wasserstein score crossed 0.15 on
#: undrifted traffic once in a 120 s run: a false alarm.
DRIFT = otel_mlmon.DriftConfig(window=1000, min_samples=500)

#: Environment variable that enables the ``X-Example-Fault`` header (off unless ``1``/``true``).
FAULTS_ENV = "EXAMPLE_FAULTS"
#: Seconds a ``slow`` fault sleeps: above the p99 latency alert's threshold (0.5 s).
SLOW_FAULT_SECONDS = 0.6


class InjectedFault(RuntimeError):
    """What an ``error`` fault raises inside the predict span (only with EXAMPLE_FAULTS=1)."""


def faults_enabled() -> bool:
    """Whether ``EXAMPLE_FAULTS`` turns fault injection on (``1``, ``true`` or ``yes``)."""
    return os.environ.get(FAULTS_ENV, "").strip().lower() in ("1", "true", "yes")


Row = Annotated[list[float], Field(min_length=N_FEATURES, max_length=N_FEATURES)]


class PredictRequest(BaseModel):
    """One row of four measurements, or a batch of rows (at most 256)."""

    features: Row | Annotated[list[Row], Field(min_length=1, max_length=MAX_BATCH)]


class FeedbackRequest(BaseModel):
    """The true class of an earlier prediction (one per row for a batch)."""

    prediction_id: Annotated[str, Field(min_length=1, max_length=64)]
    label: int | list[int]


class IrisModel:
    """The model: a logistic regression trained on the bundled iris data at start-up."""

    def __init__(self) -> None:
        data = load_iris()
        started = time.perf_counter()
        self.estimator = LogisticRegression(max_iter=500).fit(data.data, data.target)
        self.train_seconds = time.perf_counter() - started
        self.train_accuracy = float(self.estimator.score(data.data, data.target))
        self.reference = np.asarray(data.data, dtype=np.float64)
        self.targets = np.asarray(data.target)
        self.classes = [int(c) for c in self.estimator.classes_]

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes and confidences of ``rows``; raises ``ValueError`` on NaN or infinity."""
        probabilities = self.estimator.predict_proba(rows)
        return probabilities.argmax(axis=1), probabilities.max(axis=1)


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
    telemetry: dict[str, Any] | None = None,
    faults: bool | None = None,
) -> FastAPI:
    """The service. ``telemetry`` is FastAPI's native telemetry configuration (providers for
    tests); by default the global providers, without FastAPI's operation spans. ``faults``
    enables the ``X-Example-Fault`` header (default: :func:`faults_enabled`)."""
    model = model or IrisModel()
    faults = faults_enabled() if faults is None else faults
    providers = {
        k: v for k, v in (telemetry or {}).items() if k in ("tracer_provider", "meter_provider")
    }
    monitor = monitor or build_monitor(model, **providers)
    app = FastAPI(
        title="iris",
        # One server span per request: the operation spans (dependencies, endpoint,
        # serialization) add three spans and ~90 us per request and nothing a model service
        # needs; the predict span already times the model.
        telemetry={"operation_spans": False, **(telemetry or {})},
    )

    @app.post("/predict")
    def predict(
        request: PredictRequest,
        x_example_fault: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> dict[str, Any]:
        # A sync endpoint: scikit-learn holds the GIL, FastAPI runs it in its thread pool.
        batch = bool(request.features) and isinstance(request.features[0], list)
        rows = np.asarray(request.features if batch else [request.features], dtype=np.float64)
        with monitor.predict(features=rows) as p:
            if faults and x_example_fault == "slow":
                time.sleep(SLOW_FAULT_SECONDS)
            elif faults and x_example_fault == "error":
                raise InjectedFault("fault injected by the X-Example-Fault header")
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
        return body

    @app.post("/feedback", status_code=202)
    async def feedback(request: FeedbackRequest) -> dict[str, Any]:
        monitor.record_label(request.prediction_id, request.label)
        return {"accepted": True}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": MODEL_NAME, "version": monitor.version}

    otel_mlmon.instrument_fastapi(app, monitor=monitor, **providers)
    app.state.model = model
    app.state.monitor = monitor
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--prometheus-port", type=int, default=None, help="default 9464")
    args = parser.parse_args()

    import uvicorn

    telemetry = otel_mlmon.configure(
        service_name="iris-fastapi", prometheus_port=args.prometheus_port
    )
    if telemetry.prometheus_address:
        host, port = telemetry.prometheus_address
        print(f"metrics: http://{host}:{port}/metrics", flush=True)
    try:
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
