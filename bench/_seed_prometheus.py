"""The seed's recording path on ``prometheus_client``, rewritten small, as a baseline.

What the seed's ``ModelMonitoring`` does per prediction without a label: count the request and
observe its latency (its ``track_request`` decorator), count the prediction by class and
confidence level and observe the confidence (``track_prediction``), each through
``Metric.labels(**kwargs)``. Its per-prediction sklearn report once labels exist is left out:
that defect is measured apart. A private registry, so nothing global is touched.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram


def _confidence_level(confidence: float) -> str:
    if confidence >= 0.9:
        return "high"
    if confidence >= 0.7:
        return "medium"
    return "low"


class SeedMonitoring:
    """Seed-style metrics for one model."""

    def __init__(self, model_name: str, model_version: str) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.registry = CollectorRegistry()
        self.request_count = Counter(
            "model_request_count",
            "Total number of requests",
            ["model_name", "model_version", "endpoint", "method"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "model_request_latency_seconds",
            "Request latency in seconds",
            ["model_name", "model_version", "endpoint"],
            buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            registry=self.registry,
        )
        self.prediction_count = Counter(
            "model_prediction_count",
            "Total number of predictions",
            ["model_name", "model_version", "prediction_class", "confidence_level"],
            registry=self.registry,
        )
        self.prediction_confidence = Histogram(
            "model_prediction_confidence",
            "Prediction confidence distribution",
            ["model_name", "model_version", "prediction_class"],
            buckets=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            registry=self.registry,
        )

    def predict(self, prediction: object, confidence: float) -> None:
        """One tracked prediction: request count and latency, class count and confidence."""
        self.request_count.labels(
            model_name=self.model_name,
            model_version=self.model_version,
            endpoint="/predict",
            method="POST",
        ).inc()
        start = time.time()
        self.prediction_count.labels(
            model_name=self.model_name,
            model_version=self.model_version,
            prediction_class=str(prediction),
            confidence_level=_confidence_level(confidence),
        ).inc()
        self.prediction_confidence.labels(
            model_name=self.model_name,
            model_version=self.model_version,
            prediction_class=str(prediction),
        ).observe(confidence)
        self.request_latency.labels(
            model_name=self.model_name, model_version=self.model_version, endpoint="/predict"
        ).observe(time.time() - start)
