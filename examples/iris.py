"""The model and its telemetry, shared by the example services and the demo's traffic.

:class:`IrisModel` stands in for your model: a logistic regression trained at start-up on the
iris data set that ships with scikit-learn (nothing is downloaded). :func:`build_monitor` and
:class:`IrisService` are the parts to copy into your own service: a ``ModelMonitor`` whose drift
reference is the training data, and one recorded prediction per request (the ``predict iris``
span, the ML metrics, a ``prediction_made`` log line), one delayed label per ``/feedback``.
``fastapi_app.py`` and ``flask_app.py`` add only their framework: parsing and validation,
routes, the request-size bound and the HTTP instrumentation.

Rollouts: ``EXAMPLE_MODEL_VERSION`` names the version a service serves (default
:data:`MODEL_VERSION`), and a version other than the default is the canary model
(:data:`CANARY_REGULARIZATION`); ``OTEL_MLMON_FLEET_VERSIONS`` lists the versions of the fleet,
so that a label or an outcome posted to any replica counts for the version that made the
prediction. ``/outcome`` takes the business outcomes of :data:`OUTCOMES`.
``EXAMPLE_SHADOW_VERSION`` runs a challenger model in the shadow of the served one: recorded on
every request (``ml.model.role=shadow``, its agreement with the served prediction), never
answered.

Fault injection, for tests and the demo only and OFF by default: with ``EXAMPLE_FAULTS=1`` in
the environment, ``/predict`` honours the request header ``X-Example-Fault``: ``slow`` sleeps
:data:`SLOW_FAULT_SECONDS` inside the predict span (above the p99 latency alert's 0.5 s),
``error`` raises :class:`InjectedFault` there (a 500 with ``error.type``). Without the
variable the header is ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import otel_mlmon
from otel_mlmon.context import get_request_id
from otel_mlmon.logs import log_prediction

MODEL_NAME = "iris"
MODEL_VERSION = "1.0.0"
#: The version the demo rolls out beside :data:`MODEL_VERSION`.
CANARY_VERSION = "1.1.0"
#: The challenger the demo runs in the shadow of the served version.
SHADOW_VERSION = "2.0.0"
#: Environment variable naming the version a service serves (default :data:`MODEL_VERSION`).
VERSION_ENV = "EXAMPLE_MODEL_VERSION"
#: Environment variable naming a version run in the shadow of the served one (default: none).
SHADOW_ENV = "EXAMPLE_SHADOW_VERSION"
#: Inverse regularization strength of each version's model: the canary's is stronger, a little
#: less accurate on iris (0.93 on the training data against 0.97), the shadow's stronger still
#: (0.87), so that a rollout has something to show. Any other version gets the canary's.
REGULARIZATION = {MODEL_VERSION: 1.0, CANARY_VERSION: 0.03, SHADOW_VERSION: 0.01}
#: The business outcomes ``/outcome`` takes: revenue in US dollars (summed) and a 1-5 rating
#: (a distribution).
OUTCOMES = otel_mlmon.Outcomes(kinds=("revenue",), scores=("rating",), unit="{USD}")
FEATURE_NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
N_FEATURES = len(FEATURE_NAMES)
#: Rows in one ``/predict`` batch, and labels in one ``/feedback``, at most.
MAX_BATCH = 256
#: Bytes of a request body at most: a full batch (256 rows of 4 numbers) is under 30 KB of
#: JSON. A larger body is answered 413 before it is read, so it never sits in memory.
MAX_BODY_BYTES = 64 * 1024
#: Characters of a ``/feedback`` prediction id at most: one prediction's is 28 to 40, a batch's
#: grows with its rows (a full batch of iris classes: 368).
MAX_PREDICTION_ID_CHARS = 512
#: Longest outcome kind ``/outcome`` takes (an undeclared one is counted as ``_OTHER``).
MAX_OUTCOME_KIND_CHARS = 64

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


def served_version() -> str:
    """The version this service serves: ``EXAMPLE_MODEL_VERSION``, else :data:`MODEL_VERSION`."""
    return os.environ.get(VERSION_ENV, "").strip() or MODEL_VERSION


class IrisModel:
    """The model: a logistic regression trained on the bundled iris data at start-up
    (``regularization``: its inverse regularization strength, ``C``)."""

    def __init__(self, regularization: float = 1.0) -> None:
        data = load_iris()
        self.estimator = LogisticRegression(max_iter=500, C=regularization).fit(
            data.data, data.target
        )
        self.train_accuracy = float(self.estimator.score(data.data, data.target))
        #: The training rows (the drift reference) and their true classes.
        self.reference = np.asarray(data.data, dtype=np.float64)
        self.targets = np.asarray(data.target)
        self.classes = [int(c) for c in self.estimator.classes_]

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Classes and confidences of ``rows``; raises ``ValueError`` on NaN or infinity."""
        probabilities = self.estimator.predict_proba(rows)
        return probabilities.argmax(axis=1), probabilities.max(axis=1)


def model_for(version: str) -> IrisModel:
    """The model of ``version`` (see :data:`REGULARIZATION`)."""
    return IrisModel(REGULARIZATION.get(version, REGULARIZATION[CANARY_VERSION]))


@dataclass
class Shadow:
    """A challenger run in the shadow of the served model: its monitor and its model."""

    monitor: otel_mlmon.ShadowMonitor
    model: IrisModel


def shadow_for(monitor: otel_mlmon.ModelMonitor, version: str | None = None) -> Shadow | None:
    """The shadow of ``version`` (default ``EXAMPLE_SHADOW_VERSION``) beside ``monitor``'s
    served version, or None when there is none."""
    version = version or os.environ.get(SHADOW_ENV, "").strip()
    return Shadow(monitor.shadow(version), model_for(version)) if version else None


def build_monitor(
    model: IrisModel,
    version: str = MODEL_VERSION,
    labels: otel_mlmon.Labels | None = None,
    **providers: Any,
) -> otel_mlmon.ModelMonitor:
    """The ``ModelMonitor`` of the service: the training data and the model's predictions on it
    are the drift reference of the features and of the predictions; business outcomes are
    :data:`OUTCOMES`. ``labels``: how ids join (default: the environment's key and fleet
    versions). ``providers``: ``tracer_provider=`` / ``meter_provider=`` (tests), else the
    global ones."""
    monitor = otel_mlmon.ModelMonitor(
        MODEL_NAME,
        version=version,
        task="classification",
        framework="sklearn",
        classes=model.classes,
        drift=otel_mlmon.Drift(
            feature_names=list(FEATURE_NAMES),
            reference=model.reference,
            predictions=model.estimator.predict(model.reference),
            config=DRIFT,
        ),
        labels=labels,
        outcomes=OUTCOMES,
        **providers,
    )
    monitor.model_loaded(framework="sklearn", metrics={"train_accuracy": model.train_accuracy})
    return monitor


@dataclass
class IrisService:
    """What the routes call, whatever the framework: rows in, a JSON-ready body out."""

    model: IrisModel
    monitor: otel_mlmon.ModelMonitor
    #: Whether the ``X-Example-Fault`` header is honoured (see the module docstring).
    faults: bool = False
    #: A challenger recorded on every request, never answered (see :func:`shadow_for`).
    shadow: Shadow | None = None

    def predict(
        self, features: list[float] | list[list[float]], fault: str | None = None
    ) -> dict[str, Any]:
        """Predict one row (``features`` a list of numbers) or a batch (a list of rows), record
        it, and return the response body. The model's own errors propagate (a 500)."""
        batch = bool(features) and isinstance(features[0], list)
        rows = np.asarray(features if batch else [features], dtype=np.float64)
        with self.monitor.predict(features=rows) as p:
            if self.faults and fault == "slow":
                time.sleep(SLOW_FAULT_SECONDS)
            elif self.faults and fault == "error":
                raise InjectedFault("fault injected by the X-Example-Fault header")
            classes, confidences = self.model.predict(rows)
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
        if self.shadow is not None:
            self._in_the_shadow(rows, p, batch)
        body: dict[str, Any] = {"prediction_id": p.id, "request_id": get_request_id()}
        if batch:
            body["predictions"] = [int(c) for c in classes]
            body["confidences"] = [round(float(c), 6) for c in confidences]
        else:
            body["prediction"] = int(classes[0])
            body["confidence"] = round(float(confidences[0]), 6)
        return body

    def _in_the_shadow(self, rows: np.ndarray, served: otel_mlmon.Prediction, batch: bool) -> None:
        """The challenger on the same rows, recorded against the served prediction. Its
        failure is recorded (``ml.model.errors`` of the shadow) and never reaches the caller."""
        assert self.shadow is not None
        with contextlib.suppress(Exception), self.shadow.monitor.predict(served) as s:
            classes, confidences = self.shadow.model.predict(rows)
            if batch:
                s.record(classes, confidences)
            else:
                s.record(int(classes[0]), float(confidences[0]))

    def feedback(self, prediction_id: str, label: int | list[int]) -> dict[str, Any]:
        """Join the true class (one per row of a batch) to an earlier prediction."""
        self.monitor.record_label(prediction_id, label)
        return {"accepted": True}

    def outcome(self, prediction_id: str, kind: str, value: float | None) -> dict[str, Any]:
        """Count a business outcome of an earlier prediction (see :data:`OUTCOMES`)."""
        self.monitor.record_outcome(prediction_id, kind, value)
        return {"accepted": True}

    def health(self) -> dict[str, Any]:
        """The ``/health`` body: the model served and its version."""
        return {"status": "ok", "model": MODEL_NAME, "version": self.monitor.version}


def build_service(
    *,
    model: IrisModel | None = None,
    monitor: otel_mlmon.ModelMonitor | None = None,
    faults: bool | None = None,
    shadow: str | None = None,
    **providers: Any,
) -> IrisService:
    """What both frameworks serve: the model of the served version (``EXAMPLE_MODEL_VERSION``),
    its monitor, fault injection (default ``EXAMPLE_FAULTS``) and the shadow of ``shadow``
    (default ``EXAMPLE_SHADOW_VERSION``). ``providers``: as for :func:`build_monitor`."""
    version = served_version()
    model = model or model_for(version)
    monitor = monitor or build_monitor(model, version, **providers)
    return IrisService(
        model,
        monitor,
        faults=faults_enabled() if faults is None else faults,
        shadow=shadow_for(monitor, shadow),
    )


def command_line(description: str, port: int) -> argparse.Namespace:
    """The options of a service's command: ``--host``, ``--port`` (of the service, default
    ``port``) and ``--prometheus-port``, named as in ``otel-mlmon demo``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address of the service")
    parser.add_argument("--port", type=int, default=port, help=f"port of the service ({port})")
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        help="port of the Prometheus endpoint (default 9464 or OTEL_EXPORTER_PROMETHEUS_PORT)",
    )
    return parser.parse_args()


def start_telemetry(service_name: str, prometheus_port: int | None) -> otel_mlmon.Telemetry:
    """``otel_mlmon.configure()`` for a service's command, printing where its metrics are."""
    telemetry = otel_mlmon.configure(service_name=service_name, prometheus_port=prometheus_port)
    if telemetry.prometheus_address:
        host, bound = telemetry.prometheus_address
        print(f"metrics: http://{host}:{bound}/metrics", flush=True)
    return telemetry
