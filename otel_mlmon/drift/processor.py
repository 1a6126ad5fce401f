"""The in-process drift processor: a live window of features (and predictions) scored against a
reference when a metric reader collects.

Hot path (:meth:`DriftProcessor.append`, :meth:`DriftProcessor.append_predictions`): rows are
converted to float64 (categories to codes) and copied into a preallocated ring; nothing else.
Unusable input is counted under ``ml.monitor.rejected_inputs`` by reason and never raises.

Collection time: the first drift gauge a reader collects snapshots the window and computes every
score (:func:`otel_mlmon.drift.reference.evaluate`); the other gauges, and other readers, reuse
that result until the window or the reference changes. Transitions into and out of drift are
counted in ``ml.drift.transitions`` and logged once each as a ``drift_detected`` event on the
``otel_mlmon.events`` logger, at most one per feature and method per ``cooldown`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final

import numpy as np
from opentelemetry.metrics import CallbackOptions, Counter, Meter, Observation

from otel_mlmon import _observables, semconv
from otel_mlmon._guard import guarded, internal_error, warn_once
from otel_mlmon.drift import statistics
from otel_mlmon.drift.config import DriftConfig
from otel_mlmon.drift.encoding import (
    checked_names,
    table_columns,
)
from otel_mlmon.drift.fleet import FleetCounters
from otel_mlmon.drift.intake import Stream, append_features, append_predictions, build_streams
from otel_mlmon.drift.reference import (
    Reference,
    Score,
    evaluate,
    features_reference,
    predictions_reference,
)
from otel_mlmon.drift.transitions import Transitions
from otel_mlmon.drift.window import RingWindow
from otel_mlmon.exceptions import ConfigurationError

__all__ = ["DriftConfig", "DriftProcessor"]

_FLOAT64: Final = np.dtype(np.float64)


def _applicable(methods: Sequence[str], streams: Iterable[Stream]) -> tuple[str, ...]:
    """The methods some feature's type admits: those whose thresholds are reported."""
    kinds = {c for stream in streams for c in stream.schema.categorical}
    return tuple(
        m for m in methods
        if any(statistics.METHODS[m].categorical if c else statistics.METHODS[m].numeric
               for c in kinds)
    )  # fmt: skip


class DriftProcessor:
    """Feature and prediction drift of one model, reported through observable gauges.

    Args:
        meter: the meter the drift instruments are created on.
        attributes: returns the model's current base attributes (``ml.model.name``,
            ``ml.model.version``); called at collection time, so a model update shows at once.
        feature_names: names of the features, in row order. Optional when ``reference`` is a
            DataFrame or a sequence of mappings (its columns are used).
        reference: reference features (2-D array, DataFrame, sequence of mappings or rows).
        reference_predictions: reference model outputs, for prediction drift.
        config: :class:`DriftConfig`; the defaults when ``None``.
        predictions_categorical: whether predictions are classes (else numbers).
        rejected: the ``ml.monitor.rejected_inputs`` counter to count unusable input on.
        clock: monotonic seconds, for the cooldown.

    Raises:
        ConfigurationError: invalid configuration or reference, at construction.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        meter: Meter,
        *,
        attributes: Callable[[], Mapping[str, str]],
        feature_names: Sequence[str] | None = None,
        reference: object = None,
        reference_predictions: object = None,
        config: DriftConfig | None = None,
        predictions_categorical: bool = False,
        rejected: Counter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        config = config if config is not None else DriftConfig()
        if not isinstance(config, DriftConfig):
            raise ConfigurationError(f"drift must be a DriftConfig, not {type(config).__name__}")
        learn = config.learn_reference_from is not None
        if reference is None and reference_predictions is None and not learn:
            raise ConfigurationError(
                "drift needs a reference, reference predictions or learn_reference_from"
            )
        feature_names = checked_names(feature_names)
        self._config = config
        self._attributes = attributes
        self._methods = config.active_methods
        self._thresholds = {m: config.threshold(m) for m in statistics.METHODS}
        streams = build_streams(
            config, feature_names, reference, reference_predictions, predictions_categorical
        )
        self._features, self._predictions = streams.features, streams.predictions
        self._compute_lock = threading.Lock()
        self._cache_key: tuple[int, ...] | None = None
        self._scores: list[Score] = []
        self._reference_version = 0
        self._rejected = (
            rejected if rejected is not None else semconv.create_ml_monitor_rejected_inputs(meter)
        )
        self._transitions = Transitions(
            semconv.create_ml_drift_transitions(meter), config.cooldown, clock
        )
        # Shared with every other processor on this meter: the SDK keeps only the first
        # callback registered under a name.
        for name, create, callback in (
            (semconv.ML_DRIFT_SCORE, semconv.create_ml_drift_score,
             DriftProcessor._observe_scores),
            (semconv.ML_DRIFT_THRESHOLD, semconv.create_ml_drift_threshold,
             DriftProcessor._observe_thresholds),
            (semconv.ML_DRIFT_DETECTED, semconv.create_ml_drift_detected,
             DriftProcessor._observe_detected),
            (semconv.ML_DRIFT_WINDOW_SAMPLES, semconv.create_ml_drift_window_samples,
             DriftProcessor._observe_window_samples),
        ):  # fmt: skip
            _observables.observe(meter, name, create, self, callback)
        self._applicable = _applicable(self._methods, self._streams())
        self._fleet = FleetCounters(meter, attributes, streams.counted, self._streams)
        for stream in self._streams():
            if stream.reference is not None:
                self._fleet.attach(stream)

    # --- public API ---------------------------------------------------------------------------

    @property
    def config(self) -> DriftConfig:
        """The configuration in use."""
        return self._config

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The features scored (empty when only predictions are)."""
        return () if self._features is None else self._features.schema.names

    def window_nbytes(self) -> int:
        """Bytes held by the live windows (constant for the life of the processor)."""
        return sum(s.window.nbytes for s in (self._features, self._predictions) if s)

    def window_samples(self) -> int:
        """Rows in the live feature window (the prediction window when there are no
        features)."""
        stream = self._features or self._predictions
        return 0 if stream is None else len(stream.window)

    def set_reference(self, reference: object = None, predictions: object = None) -> None:
        """Replace the feature reference and/or the reference predictions (``None`` keeps the
        current one); the live window is kept and scored against the new reference at the next
        collection.

        Raises:
            ConfigurationError: a reference that does not match the features, or is empty.
        """
        if reference is not None:
            stream = self._features
            if stream is None:
                raise ConfigurationError("this monitor was built without feature drift")
            _, columns = table_columns(reference, stream.schema.names)
            self._use_reference(
                stream, features_reference(stream.schema, columns, self._config.bins)
            )
        if predictions is not None:
            stream = self._predictions
            if stream is None:
                raise ConfigurationError("this monitor was built without prediction drift")
            self._use_reference(
                stream, predictions_reference(stream.schema, predictions, self._config.bins)
            )

    def _use_reference(self, stream: Stream, reference: Reference) -> None:
        with self._compute_lock:
            stream.reference = reference
            stream.learned()
            self._fleet.attach(stream)
            self._reference_version += 1

    def model_updated(self) -> None:
        """A new model version: its predictions start a fresh window, and transitions are
        tracked afresh under the new ``ml.model.version``."""
        with self._compute_lock:
            self._fleet.model_updated()
            if self._predictions is not None:
                self._predictions.window.clear()
            self._transitions.clear()
            self._cache_key = None

    def scores(self) -> list[Score]:
        """The current scores (computed at most once per change of window or reference)."""
        with guarded("DriftProcessor.scores"):
            return list(self._compute())
        return []

    def append(self, features: object) -> None:
        """Append one row or a batch of feature rows to the live window; never raises.

        A row is a sequence (or 1-D array) in ``feature_names`` order or a mapping by name; a
        batch is a 2-D array, a DataFrame, or a sequence of rows.
        """
        stream = self._features
        if stream is None:
            return
        try:
            # Fast path, inlined because it is the hot path: one float64 row as an array, or a
            # list, copied straight into the ring.
            window = stream.fast
            if window is not None:
                kind = type(features)
                if kind is np.ndarray:
                    if features.dtype is _FLOAT64 and features.shape == stream.row_shape:  # type: ignore[attr-defined]
                        window.append_row(features)  # type: ignore[arg-type]
                        return
                elif (
                    kind is list
                    and len(features) == stream.schema.width  # type: ignore[arg-type]
                    and not isinstance(features[0], (list, tuple, dict))  # type: ignore[index]
                ):
                    try:
                        window.append_row(features)  # type: ignore[arg-type]
                        return
                    except (TypeError, ValueError):
                        pass  # nested rows or a value that is not a number: see below
            append_features(stream, features, self._reject)
        except Exception as exc:
            internal_error("DriftProcessor.append", exc)

    def append_predictions(self, predictions: object) -> None:
        """Append one prediction or a batch (sequence or array) to the prediction window;
        never raises."""
        stream = self._predictions
        if stream is None:
            return
        try:
            append_predictions(stream, predictions, self._reject)
        except Exception as exc:
            internal_error("DriftProcessor.append_predictions", exc)

    def reset_after_fork(self) -> None:
        """Give a forked child fresh locks: the parent's may have been held at fork."""
        self._compute_lock = threading.Lock()
        for stream in (self._features, self._predictions):
            if stream is None:
                continue
            stream.window.reset_after_fork()
            if stream.learning is not None:
                stream.learning.reset_after_fork()
            for encoder in stream.schema.encoders:
                if encoder is not None:
                    encoder.reset_after_fork()
        self._fleet.reset_after_fork()

    def _streams(self) -> Iterator[Stream]:
        yield from (s for s in (self._features, self._predictions) if s is not None)

    # --- hot path ---------------------------------------------------------------------------

    def _reject(self, reason: str, count: int = 1) -> None:
        self._rejected.add(count, {**self._attributes(), semconv.ML_REJECTION_REASON: reason})

    # --- references -----------------------------------------------------------------------------

    # --- collection -----------------------------------------------------------------------------

    def _finish_learning(self, stream: Stream) -> None:
        learning = stream.learning
        if learning is None or len(learning) < learning.capacity:
            return
        matrix, _ = learning.snapshot()
        try:
            stream.reference = Reference.from_matrix(stream.schema, matrix, self._config.bins)
        except ConfigurationError as exc:
            warn_once(
                "drift-learning-failed",
                "otel-mlmon drift: the learned reference is unusable (%s); learning again",
                exc,
            )
            learning.clear()
            return
        self._count_non_finite(stream, learning)
        stream.learned()
        self._fleet.attach(stream)
        self._reference_version += 1

    def _count_non_finite(self, stream: Stream, window: RingWindow) -> None:
        missing = window.take_non_finite()
        correction = min(missing, stream.not_numeric_pending)
        stream.not_numeric_pending -= correction
        missing -= correction
        if missing:
            self._reject(semconv.REJECT_DRIFT_MISSING_VALUE, missing)

    def _compute(self) -> list[Score]:
        with self._compute_lock:
            streams = list(self._streams())
            for stream in streams:
                self._finish_learning(stream)
                self._count_non_finite(stream, stream.window)
                if stream.learning is not None:
                    self._count_non_finite(stream, stream.learning)
            key = (self._reference_version, *(s.window.version for s in streams))
            if key == self._cache_key:
                return self._scores
            scores: list[Score] = []
            for stream in streams:
                if stream.reference is None:
                    continue
                current, _ = stream.window.snapshot()
                scores.extend(
                    evaluate(
                        stream.reference,
                        current,
                        self._methods,
                        self._thresholds,
                        self._config.min_samples,
                    )
                )
            self._transitions.update(scores, self._attributes())
            self._scores, self._cache_key = scores, key
            return scores

    def _point_attributes(self, score: Score) -> dict[str, str]:
        return {
            **self._attributes(),
            semconv.ML_FEATURE_NAME: score.feature,
            semconv.ML_DRIFT_METHOD: score.method,
        }

    def _observe_scores(self, options: CallbackOptions) -> Iterable[Observation]:
        for score in self.scores():
            yield Observation(score.score, self._point_attributes(score))

    def _observe_detected(self, options: CallbackOptions) -> Iterable[Observation]:
        for score in self.scores():
            yield Observation(1 if score.drifted else 0, self._point_attributes(score))

    def _observe_thresholds(self, options: CallbackOptions) -> Iterable[Observation]:
        base = self._attributes()
        for method in self._applicable:
            yield Observation(self._thresholds[method], {**base, semconv.ML_DRIFT_METHOD: method})

    def _observe_window_samples(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.window_samples(), self._attributes())
