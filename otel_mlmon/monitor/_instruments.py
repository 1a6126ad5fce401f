"""The synchronous instruments every monitor on one meter records into, made once per meter.

The SDK returns the existing instrument (with a warning) when one is created twice under a
name; making the bundle once per meter keeps that from happening for every new monitor.
"""

from __future__ import annotations

import threading
import weakref

from opentelemetry.metrics import Counter, Histogram, Meter

from otel_mlmon import _fork, semconv


class Instruments:
    """``ml.model.*`` counters and histograms written on the recording path."""

    __slots__ = (
        "__weakref__",
        "batch_size",
        "confidence",
        "duration",
        "errors",
        "outcome_scores",
        "overflows",
        "predictions",
        "rejected",
    )

    def __init__(self, meter: Meter) -> None:
        self.predictions: Counter = semconv.create_ml_model_predictions(meter)
        self.duration: Histogram = semconv.create_ml_model_prediction_duration(meter)
        self.confidence: Histogram = semconv.create_ml_model_prediction_confidence(meter)
        self.batch_size: Histogram = semconv.create_ml_model_batch_size(meter)
        self.errors: Counter = semconv.create_ml_model_errors(meter)
        self.overflows: Counter = semconv.create_ml_model_class_overflows(meter)
        self.rejected: Counter = semconv.create_ml_monitor_rejected_inputs(meter)
        self.outcome_scores: Histogram = semconv.create_ml_model_outcome_score(meter)


_lock = threading.Lock()
_bundles: weakref.WeakKeyDictionary[Meter, Instruments] = weakref.WeakKeyDictionary()


def instruments_for(meter: Meter) -> Instruments:
    """The bundle of ``meter``, made on first use."""
    with _lock:
        bundle = _bundles.get(meter)
        if bundle is None:
            bundle = _bundles[meter] = Instruments(meter)
        return bundle


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
