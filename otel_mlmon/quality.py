"""Model quality from delayed labels: a bounded sliding window and the scores computed on it.

Labels arrive after their predictions (``ModelMonitor.record_label``). Each joined
(prediction, label) pair goes into a fixed-size ring; the scores are computed from a snapshot of
that ring when a metric reader collects, never on the request path, and cached until the next
label so several gauges (and several readers) share one computation.

Classification scores follow scikit-learn's definitions with ``average="macro"`` and
``zero_division=0`` over the classes seen in either predictions or labels; regression reports
MAE and RMSE. Pure numpy: scikit-learn is not imported.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from otel_mlmon import semconv


@dataclass(frozen=True)
class QualityScores:
    """Scores of one snapshot: metric name (from :mod:`otel_mlmon.semconv`) to value."""

    samples: int
    values: dict[str, float]


_EMPTY: Final = QualityScores(0, {})


def classification_scores(predictions: list[Hashable], labels: list[Hashable]) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 of ``predictions`` against ``labels``.

    Equal to scikit-learn's ``accuracy_score`` and ``precision_recall_fscore_support(average=
    "macro", zero_division=0)`` on the same lists. Empty input gives an empty dict.
    """
    if not labels:
        return {}
    index: dict[Hashable, int] = {}
    y_pred = np.fromiter((index.setdefault(p, len(index)) for p in predictions), np.intp)
    y_true = np.fromiter((index.setdefault(t, len(index)) for t in labels), np.intp)
    n_classes = len(index)
    correct = y_pred == y_true
    true_positive = np.bincount(y_true[correct], minlength=n_classes).astype(np.float64)
    predicted = np.bincount(y_pred, minlength=n_classes).astype(np.float64)
    actual = np.bincount(y_true, minlength=n_classes).astype(np.float64)
    precision = np.divide(true_positive, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(n_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros(n_classes), where=denominator > 0
    )
    return {
        semconv.ML_MODEL_ACCURACY: float(correct.mean()),
        semconv.ML_MODEL_PRECISION: float(precision.mean()),
        semconv.ML_MODEL_RECALL: float(recall.mean()),
        semconv.ML_MODEL_F1_SCORE: float(f1.mean()),
    }


def regression_scores(predictions: list[float], labels: list[float]) -> dict[str, float]:
    """MAE and RMSE of ``predictions`` against ``labels``; empty input gives an empty dict."""
    if not labels:
        return {}
    error = np.asarray(predictions, dtype=np.float64) - np.asarray(labels, dtype=np.float64)
    return {
        semconv.ML_MODEL_MAE: float(np.abs(error).mean()),
        semconv.ML_MODEL_RMSE: float(np.sqrt(np.square(error).mean())),
    }


class QualityWindow:
    """The last ``size`` labelled predictions of one model, and their cached scores.

    ``add`` is O(1) under a short lock; ``scores`` computes at most once per change.
    """

    def __init__(self, size: int, *, regression: bool) -> None:
        self._size = size
        self._regression = regression
        self._predictions: list[Any] = [None] * size
        self._labels: list[Any] = [None] * size
        self._next = 0
        self._count = 0
        self._version = 0
        self._cached_version = -1
        self._cached = _EMPTY
        self._lock = threading.Lock()

    def add(self, prediction: object, label: object) -> None:
        """Append one joined pair, overwriting the oldest once the window is full."""
        with self._lock:
            self._predictions[self._next] = prediction
            self._labels[self._next] = label
            self._next = (self._next + 1) % self._size
            self._count = min(self._count + 1, self._size)
            self._version += 1

    def clear(self) -> None:
        """Forget every pair, for a new model version."""
        with self._lock:
            self._predictions = [None] * self._size
            self._labels = [None] * self._size
            self._next = self._count = 0
            self._version += 1

    def reset_after_fork(self) -> None:
        """Give the child process a fresh lock: the parent's may have been held at fork."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def scores(self) -> QualityScores:
        """Scores over the current window, computed once per change of the window."""
        with self._lock:
            if self._version == self._cached_version:
                return self._cached
            version, count = self._version, self._count
            predictions = self._predictions[:count]
            labels = self._labels[:count]
        if self._regression:
            values = regression_scores(predictions, labels)
        else:
            values = classification_scores(predictions, labels)
        result = QualityScores(count, values)
        with self._lock:
            if version >= self._cached_version:
                self._cached_version, self._cached = version, result
        return result
