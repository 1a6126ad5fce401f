"""Model quality as counters a backend adds up across processes.

Every matched label is counted, never windowed or averaged here: ``ml.model.labels`` by
``ml.label.outcome``, and for a classifier by ``ml.prediction.class`` and ``ml.label.class`` (so
its matched series are the confusion matrix); for a regression, the sums of absolute and of
squared errors (``ml.model.absolute_error``, ``ml.model.squared_error``). Accuracy, macro
precision, recall and F1, MAE and RMSE over the whole fleet follow exactly from these sums in
the backend (``collector/prometheus/rules/otel-mlmon-quality.rules.yml``).

The counts live here and are reported when a reader collects (a synchronous ``Counter.add``
costs more than the rest of a label join). They belong to the version being served: a new
version starts from zero and the replaced version's series stop.

Replays: the MACs of at least the last :data:`RECENT_IDS` matched ids of this process (at
most twice as many) are remembered; a label for one of them counts as ``duplicate`` and is not
counted again. This is best effort (another process, or an id matched longer ago, counts
again) and bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Final

from opentelemetry.metrics import CallbackOptions, Observation

from otel_mlmon import semconv
from otel_mlmon.monitor._attributes import ModelAttributes

#: Matched ids remembered per process to recognise a replayed label.
RECENT_IDS: Final = 4096


class QualityCounts:
    """Labels of the served version: by outcome, the confusion matrix, the error sums."""

    def __init__(self, attributes: ModelAttributes) -> None:
        self._lock = threading.Lock()
        self.start(attributes)

    def start(self, attributes: ModelAttributes) -> None:
        """Count for the version of ``attributes`` from zero; the previous one's series stop."""
        with self._lock:
            self._attributes = attributes
            self._outcomes: dict[str, int] = {}
            self._matrix: dict[tuple[str, str], int] = {}
            self._absolute = self._squared = 0.0
            # Two generations of dicts: the older one is dropped whole when the newer fills,
            # cheaper per label than an ordered dict evicting one entry at a time.
            self._recent: dict[bytes, None] = {}
            self._older: dict[bytes, None] = {}

    def outcome(self, outcome: str) -> None:
        """One label that did not join (``invalid``, ``expired``)."""
        with self._lock:
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1

    def _first(self, mac: bytes) -> bool:
        """Whether ``mac`` is new (remember it); under the lock. A replay counts duplicate."""
        recent = self._recent
        if mac in recent or mac in self._older:
            self._outcomes[semconv.LABEL_DUPLICATE] = (
                self._outcomes.get(semconv.LABEL_DUPLICATE, 0) + 1
            )
            return False
        recent[mac] = None
        if len(recent) >= RECENT_IDS:
            self._older, self._recent = recent, {}
        self._outcomes[semconv.LABEL_MATCHED] = self._outcomes.get(semconv.LABEL_MATCHED, 0) + 1
        return True

    def pair(self, mac: bytes, predicted: str, actual: str) -> None:
        """One matched label of a classifier: its predicted and its true class text."""
        key = (predicted, actual)
        with self._lock:
            if self._first(mac):
                self._matrix[key] = self._matrix.get(key, 0) + 1

    def classes(self, mac: bytes, pairs: Sequence[tuple[str, str]]) -> None:
        """Matched labels of a classifier: (predicted class, label class) text pairs."""
        with self._lock:
            if self._first(mac):
                matrix = self._matrix
                for pair in pairs:
                    matrix[pair] = matrix.get(pair, 0) + 1
                if len(pairs) > 1:
                    self._outcomes[semconv.LABEL_MATCHED] += len(pairs) - 1

    def errors(self, mac: bytes, errors: Sequence[float]) -> None:
        """Matched labels of a regression: prediction minus label, per row."""
        with self._lock:
            if self._first(mac):
                self._absolute += sum(abs(e) for e in errors)
                self._squared += sum(e * e for e in errors)
                self._outcomes[semconv.LABEL_MATCHED] += len(errors) - 1

    def matched(self, mac: bytes, rows: int) -> None:
        """Matched labels of a model with nothing to score (task ``other``)."""
        with self._lock:
            if self._first(mac):
                self._outcomes[semconv.LABEL_MATCHED] += rows - 1

    def observe_labels(self, options: CallbackOptions) -> Iterator[Observation]:
        """``ml.model.labels``: by outcome; matched labels of a classifier by class pair."""
        with self._lock:
            base = self._attributes.base
            outcomes = list(self._outcomes.items())
            matrix = list(self._matrix.items())
        classified = self._attributes.classification
        for outcome, count in outcomes:
            if not (classified and outcome == semconv.LABEL_MATCHED):
                yield Observation(count, {**base, semconv.ML_LABEL_OUTCOME: outcome})
        matched = {**base, semconv.ML_LABEL_OUTCOME: semconv.LABEL_MATCHED}
        for (predicted, actual), count in matrix:
            yield Observation(
                count,
                {**matched, semconv.ML_PREDICTION_CLASS: predicted, semconv.ML_LABEL_CLASS: actual},
            )

    def observe_absolute_error(self, options: CallbackOptions) -> Iterator[Observation]:
        """``ml.model.absolute_error``: sum of |prediction - label| of matched labels."""
        if self._attributes.regression:
            yield Observation(self._absolute, self._attributes.base)

    def observe_squared_error(self, options: CallbackOptions) -> Iterator[Observation]:
        """``ml.model.squared_error``: sum of (prediction - label)^2 of matched labels."""
        if self._attributes.regression:
            yield Observation(self._squared, self._attributes.base)

    def reset_after_fork(self) -> None:
        """A fresh lock for the child: the parent's may have been held at fork."""
        self._lock = threading.Lock()
