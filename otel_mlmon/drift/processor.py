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

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from opentelemetry.metrics import CallbackOptions, Counter, Meter, Observation

from otel_mlmon import _observables, semconv
from otel_mlmon._guard import guarded, internal_error, warn_once
from otel_mlmon.drift import statistics
from otel_mlmon.drift.reference import (
    Reference,
    Schema,
    Score,
    evaluate,
    infer_categorical,
    is_dataframe,
    numeric_column,
    table_columns,
)
from otel_mlmon.drift.window import RingWindow
from otel_mlmon.exceptions import ConfigurationError

FloatArray = npt.NDArray[np.float64]

#: Live rows the statistics are computed on.
DEFAULT_WINDOW: Final = 1000
#: Usable values a feature needs in the window before any of its scores is reported.
DEFAULT_MIN_SAMPLES: Final = 500
#: Bins of PSI and Jensen-Shannon on numeric features (reference deciles).
DEFAULT_BINS: Final = 10
#: Seconds between two transition events of one feature and method.
DEFAULT_COOLDOWN: Final = 300.0
#: Distinct categories kept per categorical feature; later ones share one bucket.
DEFAULT_MAX_CATEGORIES: Final = 1000

_events: Final = logging.getLogger("otel_mlmon.events")
_FLOAT64: Final = np.dtype(np.float64)


@dataclass(frozen=True)
class DriftConfig:
    """Settings of the drift processor; every field has a measured default (docs/drift.md).

    Attributes:
        window: live rows kept (and scored).
        min_samples: usable values a feature needs in the window before it is scored.
        methods: ``ml.drift.method`` names to compute (default: all registered); each applies
            to the feature types it supports.
        thresholds: per-method overrides of the registered default thresholds.
        bins: quantile bins of the reference for PSI and Jensen-Shannon on numeric features.
        learn_reference_from: with no reference given, learn it from the first N rows (and the
            first N predictions).
        cooldown: seconds between two transition events of one feature and method.
        categorical / numeric: feature names whose type is forced (otherwise inferred from the
            reference; learned references treat unforced features as numeric).
        max_categories: distinct categories kept per categorical feature.

    Raises:
        ConfigurationError: for an invalid value, at construction.

    .. versionadded:: 0.1.0
    """

    window: int = DEFAULT_WINDOW
    min_samples: int = DEFAULT_MIN_SAMPLES
    methods: tuple[str, ...] | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    bins: int = DEFAULT_BINS
    learn_reference_from: int | None = None
    cooldown: float = DEFAULT_COOLDOWN
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    max_categories: int = DEFAULT_MAX_CATEGORIES

    def __post_init__(self) -> None:
        for label, value in (
            ("window", self.window),
            ("min_samples", self.min_samples),
            ("max_categories", self.max_categories),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"drift {label} must be a positive integer, not {value!r}")
        if self.min_samples > self.window:
            raise ConfigurationError(
                f"drift min_samples ({self.min_samples}) cannot exceed the window ({self.window})"
            )
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigurationError(f"drift bins must be an integer >= 2, not {self.bins!r}")
        learn = self.learn_reference_from
        if learn is not None and (
            isinstance(learn, bool) or not isinstance(learn, int) or learn < 1
        ):
            raise ConfigurationError(
                f"learn_reference_from must be a positive integer, not {learn!r}"
            )
        if not (isinstance(self.cooldown, (int, float)) and self.cooldown >= 0):
            raise ConfigurationError(f"drift cooldown must be >= 0 seconds, not {self.cooldown!r}")
        if self.methods is not None:
            if isinstance(self.methods, str) or not self.methods:
                raise ConfigurationError("drift methods must be a non-empty tuple of names")
            for method in self.methods:
                if method not in statistics.METHODS:
                    raise ConfigurationError(
                        f"unknown drift method {method!r}; known: {sorted(statistics.METHODS)}"
                    )
        for method, threshold in self.thresholds.items():
            if method not in statistics.METHODS:
                raise ConfigurationError(
                    f"threshold for unknown drift method {method!r}; "
                    f"known: {sorted(statistics.METHODS)}"
                )
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, (int, float))
                or not (math.isfinite(threshold) and threshold >= 0)
            ):
                raise ConfigurationError(
                    f"threshold of {method!r} must be a finite number >= 0, not {threshold!r}"
                )

    @property
    def active_methods(self) -> tuple[str, ...]:
        """The methods to compute, in registry order."""
        chosen = statistics.METHODS if self.methods is None else self.methods
        return tuple(name for name in statistics.METHODS if name in chosen)

    def threshold(self, method: str) -> float:
        """The threshold of ``method``: the override, else the registered default."""
        if method in self.thresholds:
            return float(self.thresholds[method])
        return statistics.METHODS[method].default_threshold


class _Stream:
    """One schema's live window, reference and optional learning buffer."""

    def __init__(self, schema: Schema, config: DriftConfig) -> None:
        self.schema = schema
        self.window = RingWindow(config.window, schema.width)
        self.reference: Reference | None = None
        self.learning: RingWindow | None = None
        if config.learn_reference_from is not None:
            self.learning = RingWindow(config.learn_reference_from, schema.width)
        self.categorical_index = [i for i, c in enumerate(schema.categorical) if c]
        self.numeric_only = not self.categorical_index
        self.row_shape = (schema.width,)
        # The ring the one-row fast path writes to: set once no learning is in progress and
        # every feature is numeric, else None.
        self.fast: RingWindow | None = (
            self.window if self.numeric_only and self.learning is None else None
        )
        # Values the conversion already counted as not numeric and stored as NaN: subtracted
        # from the window's non-finite count so no value is counted under two reasons.
        self.not_numeric_pending = 0

    def learned(self) -> None:
        """The reference is known: rows go to the window from now on."""
        self.learning = None
        if self.numeric_only:
            self.fast = self.window

    def target(self) -> RingWindow:
        learning = self.learning
        if learning is not None and len(learning) < learning.capacity:
            return learning
        return self.window


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
        if feature_names is not None:
            if isinstance(feature_names, str):
                raise ConfigurationError("feature_names must be a sequence of names")
            feature_names = tuple(str(n) for n in feature_names)
            if not feature_names or len(set(feature_names)) != len(feature_names):
                raise ConfigurationError("feature_names must be non-empty and distinct")
        self._config = config
        self._attributes = attributes
        self._clock = clock
        self._methods = config.active_methods
        self._thresholds = {m: config.threshold(m) for m in statistics.METHODS}
        self._features: _Stream | None = None
        self._predictions: _Stream | None = None
        self._predictions_categorical = predictions_categorical

        if reference is not None:
            names, columns = table_columns(reference, feature_names)
            flags = infer_categorical(names, columns, config.categorical, config.numeric)
            self._features = _Stream(Schema.build(names, flags, config.max_categories), config)
            self._features.reference = self._prepare(self._features.schema, columns)
            self._features.learned()
        elif learn and feature_names is not None:
            forced = set(config.categorical)
            infer_categorical(
                feature_names,
                [np.zeros(0)] * len(feature_names),
                config.categorical,
                config.numeric,
            )
            flags = tuple(n in forced for n in feature_names)
            self._features = _Stream(
                Schema.build(feature_names, flags, config.max_categories), config
            )
        prediction_schema = Schema.build(
            (semconv.PREDICTION_FEATURE,), (predictions_categorical,), config.max_categories
        )
        if reference_predictions is not None:
            self._predictions = _Stream(prediction_schema, config)
            self._predictions.reference = self._prepare_predictions(reference_predictions)
            self._predictions.learned()
        elif learn:
            # Without feature_names only the predictions can be learned: prediction drift.
            self._predictions = _Stream(prediction_schema, config)

        self._compute_lock = threading.Lock()
        self._cache_key: tuple[int, ...] | None = None
        self._scores: list[Score] = []
        self._reference_version = 0
        self._states: dict[tuple[str, str], tuple[bool, float]] = {}
        self._rejected = (
            rejected if rejected is not None else semconv.create_ml_monitor_rejected_inputs(meter)
        )
        self._transitions = semconv.create_ml_drift_transitions(meter)
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
            prepared = self._prepare(stream.schema, columns)
            with self._compute_lock:
                stream.reference = prepared
                stream.learned()
                self._reference_version += 1
        if predictions is not None:
            stream = self._predictions
            if stream is None:
                raise ConfigurationError("this monitor was built without prediction drift")
            prepared = self._prepare_predictions(predictions)
            with self._compute_lock:
                stream.reference = prepared
                stream.learned()
                self._reference_version += 1

    def model_updated(self) -> None:
        """A new model version: its predictions start a fresh window, and transitions are
        tracked afresh under the new ``ml.model.version``."""
        with self._compute_lock:
            if self._predictions is not None:
                self._predictions.window.clear()
            self._states.clear()
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
            self._append(stream, features)
        except Exception as exc:
            internal_error("DriftProcessor.append", exc)

    def append_predictions(self, predictions: object) -> None:
        """Append one prediction or a batch (sequence or array) to the prediction window;
        never raises."""
        stream = self._predictions
        if stream is None:
            return
        try:
            encoder = stream.schema.encoders[0]
            if encoder is None and not isinstance(predictions, (str, bytes)):
                # Numbers (a scalar, a list, an array) convert in one call; None becomes NaN
                # and is counted as missing with the window's other non-finite values.
                try:
                    column = np.asarray(predictions, dtype=np.float64).reshape(-1, 1)
                except (TypeError, ValueError):
                    pass  # text or objects: value by value below
                else:
                    if column.size:
                        stream.target().append_rows(column)
                    return
            if isinstance(predictions, np.ndarray):
                values: list[object] = predictions.reshape(-1).tolist()
            elif isinstance(predictions, (list, tuple)):
                values = list(predictions)
            else:
                values = [predictions]
            if not values:
                return
            if encoder is not None:
                column = np.array([encoder.code(v) for v in values], np.float64)
            else:
                # fromiter keeps each value one object: np.array would try to stack
                # sequence-valued predictions and raise on ragged ones.
                column, bad = numeric_column(np.fromiter(values, dtype=object, count=len(values)))
                if bad:
                    self._reject(semconv.REJECT_DRIFT_NOT_NUMERIC, bad)
                    stream.not_numeric_pending += bad
            stream.target().append_rows(column.reshape(-1, 1))
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

    # --- hot path -----------------------------------------------------------------------------

    def _reject(self, reason: str, count: int = 1) -> None:
        self._rejected.add(count, {**self._attributes(), semconv.ML_REJECTION_REASON: reason})

    def _append(self, stream: _Stream, features: object) -> None:
        width = stream.schema.width
        # Fast paths: a numeric array or a list of numbers, copied straight into the ring.
        if type(features) is np.ndarray:
            if features.dtype.kind in "fiub" and not stream.categorical_index:
                if features.ndim == 1:
                    if features.shape[0] == width:
                        stream.target().append_row(features)
                    else:
                        self._reject(semconv.REJECT_DRIFT_WRONG_WIDTH)
                    return
                if features.ndim == 2:
                    if features.shape[1] == width:
                        stream.target().append_rows(features.astype(np.float64, copy=False))
                    else:
                        self._reject(semconv.REJECT_DRIFT_WRONG_WIDTH, features.shape[0])
                    return
        elif (
            type(features) is list
            and not stream.categorical_index
            and len(features) == width
            and not isinstance(features[0], (list, tuple, dict))
        ):
            try:
                stream.target().append_row(features)
                return
            except (TypeError, ValueError):
                pass  # a value that is not a number: the general path says which
        self._append_general(stream, features)

    def _append_general(self, stream: _Stream, features: object) -> None:
        schema = stream.schema
        if is_dataframe(features):
            try:
                _, columns = table_columns(features, schema.names, what="features")
            except ConfigurationError:
                self._reject(semconv.REJECT_DRIFT_WRONG_WIDTH, len(features))  # type: ignore[arg-type]
                return
            matrix, bad = schema.encode(columns)
        else:
            rows = self._rows(features)
            if rows is None:
                self._reject(semconv.REJECT_DRIFT_INVALID_ROW)
                return
            good = []
            wrong = 0
            for row in rows:
                if isinstance(row, Mapping):
                    good.append([row.get(n) for n in schema.names])
                elif len(row) == schema.width:
                    good.append(list(row))
                else:
                    wrong += 1
            if wrong:
                self._reject(semconv.REJECT_DRIFT_WRONG_WIDTH, wrong)
            if not good:
                return
            table = np.empty((len(good), schema.width), dtype=object)
            table[:] = good
            matrix, bad = schema.encode([table[:, i] for i in range(schema.width)])
        if bad:
            self._reject(semconv.REJECT_DRIFT_NOT_NUMERIC, bad)
            stream.not_numeric_pending += bad
        if matrix.shape[0] == 1:
            stream.target().append_row(matrix[0])
        else:
            stream.target().append_rows(matrix)

    @staticmethod
    def _rows(features: object) -> list[Sequence[object] | Mapping[str, object]] | None:
        """The rows of a single row or a batch, or ``None`` when it is neither."""
        if isinstance(features, Mapping):
            return [features]
        if isinstance(features, np.ndarray):
            if features.ndim == 1:
                return [features.tolist()]
            if features.ndim == 2:
                return list(features.tolist())
            return None
        if isinstance(features, (str, bytes)) or not isinstance(features, Sequence):
            return None
        items = list(features)
        if not items:
            return []
        # A 0-d array is a scalar value, not a row.
        nested = [
            isinstance(x, (Mapping, list, tuple)) or (isinstance(x, np.ndarray) and x.ndim >= 1)
            for x in items
        ]
        if all(nested):
            return [x.tolist() if isinstance(x, np.ndarray) else x for x in items]
        if any(nested):
            return None
        return [items]

    # --- references -----------------------------------------------------------------------------

    def _prepare(self, schema: Schema, columns: list[npt.NDArray[np.generic]]) -> Reference:
        matrix, bad = schema.encode(columns)
        if bad:
            warn_once(
                "drift-reference-not-numeric",
                "otel-mlmon drift: %d reference values are not numbers and were ignored",
                bad,
            )
        return Reference.from_matrix(schema, matrix, self._config.bins)

    def _prepare_predictions(self, predictions: object) -> Reference:
        stream = self._predictions
        schema = stream.schema if stream is not None else None
        if schema is None:
            schema = Schema.build(
                (semconv.PREDICTION_FEATURE,),
                (self._predictions_categorical,),
                self._config.max_categories,
            )
        if is_dataframe(predictions) or isinstance(predictions, (str, bytes)):
            raise ConfigurationError("reference predictions must be a 1-D sequence or array")
        try:
            values = np.asarray(predictions, dtype=object).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"reference predictions are not a sequence: {exc}") from exc
        if values.size == 0:
            raise ConfigurationError("reference predictions are empty")
        if schema.encoders[0] is None:
            _, bad = numeric_column(values)
            if bad:
                raise ConfigurationError(
                    f"{bad} reference predictions are not numbers (numeric predictions)"
                )
        matrix, _ = schema.encode([values])
        return Reference.from_matrix(schema, matrix, self._config.bins)

    # --- collection -----------------------------------------------------------------------------

    def _finish_learning(self, stream: _Stream) -> None:
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
        self._reference_version += 1

    def _count_non_finite(self, stream: _Stream, window: RingWindow) -> None:
        missing = window.take_non_finite()
        correction = min(missing, stream.not_numeric_pending)
        stream.not_numeric_pending -= correction
        missing -= correction
        if missing:
            self._reject(semconv.REJECT_DRIFT_MISSING_VALUE, missing)

    def _compute(self) -> list[Score]:
        with self._compute_lock:
            streams = [s for s in (self._features, self._predictions) if s is not None]
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
            self._transition(scores)
            self._scores, self._cache_key = scores, key
            return scores

    def _transition(self, scores: Iterable[Score]) -> None:
        now = self._clock()
        base = self._attributes()
        for score in scores:
            key = (score.feature, score.method)
            state, changed_at = self._states.get(key, (False, -math.inf))
            if score.drifted == state or now - changed_at < self._config.cooldown:
                continue
            self._states[key] = (score.drifted, now)
            name = semconv.DRIFT_STATE_DRIFT if score.drifted else semconv.DRIFT_STATE_NO_DRIFT
            self._transitions.add(
                1,
                {
                    **base,
                    semconv.ML_FEATURE_NAME: score.feature,
                    semconv.ML_DRIFT_METHOD: score.method,
                    semconv.ML_DRIFT_STATE: name,
                },
            )
            _events.log(
                logging.WARNING if score.drifted else logging.INFO,
                semconv.EVENT_DRIFT_DETECTED,
                extra={
                    **base,
                    semconv.ML_FEATURE_NAME: score.feature,
                    semconv.ML_DRIFT_METHOD: score.method,
                    semconv.ML_DRIFT_STATE: name,
                    "score": score.score,
                    "threshold": score.threshold,
                    "samples": score.samples,
                },
            )

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
        applicable: set[str] = set()
        for stream in (self._features, self._predictions):
            if stream is None:
                continue
            for categorical in stream.schema.categorical:
                applicable.update(
                    m
                    for m in self._methods
                    if (
                        statistics.METHODS[m].categorical
                        if categorical
                        else statistics.METHODS[m].numeric
                    )
                )
        for method in self._methods:
            if method in applicable:
                yield Observation(
                    self._thresholds[method], {**base, semconv.ML_DRIFT_METHOD: method}
                )

    def _observe_window_samples(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self.window_samples(), self._attributes())
