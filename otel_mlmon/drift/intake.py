"""Live rows into a stream's ring: the conversions behind ``DriftProcessor.append``.

A :class:`Stream` is one schema's live window, its reference and its optional learning buffer.
:func:`append_features` turns whatever a caller passes (a row, a batch, a DataFrame, mappings)
into float64 rows of the schema and copies them into the ring; what cannot be used is reported
through ``reject(reason, count)`` and never raises. Numeric arrays and lists take fast paths
that copy straight into the ring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from otel_mlmon import semconv
from otel_mlmon.drift.config import DriftConfig, fleet_selection
from otel_mlmon.drift.encoding import (
    Schema,
    infer_categorical,
    is_dataframe,
    numeric_column,
    table_columns,
)
from otel_mlmon.drift.reference import Reference, features_reference, predictions_reference
from otel_mlmon.drift.window import RingWindow
from otel_mlmon.exceptions import ConfigurationError

if TYPE_CHECKING:
    from otel_mlmon.drift.bins import LiveBins

#: ``reject(reason, count)``: counts unusable input under ``ml.monitor.rejected_inputs``.
Reject = Callable[[str, int], None]


class Stream:
    """One schema's live window, reference and optional learning buffer."""

    def __init__(self, schema: Schema, config: DriftConfig, counted: bool = False) -> None:
        """``counted``: some feature of the stream is counted per bin (fleet drift), so the
        window holds ``config.fleet_buffer`` windows of rows to count at collection."""
        self.schema = schema
        spare = (config.fleet_buffer - 1) * config.window if counted else 0
        self.window = RingWindow(config.window, schema.width, spare)
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
        # Fleet drift: the window's rows counted per reference bin (set with the reference).
        self.bins: LiveBins | None = None

    def learned(self) -> None:
        """The reference is known: rows go to the window from now on."""
        self.learning = None
        if self.numeric_only:
            self.fast = self.window

    def target(self) -> RingWindow:
        """The ring new rows go to: the learning buffer until it is full, then the window."""
        learning = self.learning
        if learning is not None and len(learning) < learning.capacity:
            return learning
        return self.window


@dataclass(frozen=True)
class Streams:
    """A processor's streams, and the names its fleet-drift counters count."""

    features: Stream | None
    predictions: Stream | None
    counted: frozenset[str]


def build_streams(
    config: DriftConfig,
    feature_names: tuple[str, ...] | None,
    reference: object,
    reference_predictions: object,
    predictions_categorical: bool,
) -> Streams:
    """The feature stream (with its prepared reference, or learning one) and the prediction
    stream, as the processor's arguments ask.

    Raises:
        ConfigurationError: a reference or configuration that does not fit.
    """
    names: Sequence[str] = feature_names or ()
    columns: list[npt.NDArray[np.generic]] = []
    if reference is not None:
        names, columns = table_columns(reference, feature_names)
    # Chosen first: a counted stream's window holds more rows (DriftConfig.fleet_buffer).
    chosen = fleet_selection(config, names)
    counted = any(n in chosen for n in names)
    features = predictions = None
    if reference is not None:
        flags = infer_categorical(names, columns, config.categorical, config.numeric)
        features = Stream(Schema.build(names, flags, config.max_categories), config, counted)
        features.reference = features_reference(features.schema, columns, config.bins)
        features.learned()
    elif config.learn_reference_from is not None and feature_names is not None:
        infer_categorical(feature_names, [np.zeros(0)] * len(feature_names),
                          config.categorical, config.numeric)  # fmt: skip
        flags = tuple(n in set(config.categorical) for n in feature_names)
        schema = Schema.build(feature_names, flags, config.max_categories)
        features = Stream(schema, config, counted)
    prediction_schema = Schema.build(
        (semconv.PREDICTION_FEATURE,), (predictions_categorical,), config.max_categories
    )
    counted = semconv.PREDICTION_FEATURE in chosen
    if reference_predictions is not None:
        predictions = Stream(prediction_schema, config, counted)
        predictions.reference = predictions_reference(
            prediction_schema, reference_predictions, config.bins
        )
        predictions.learned()
    elif config.learn_reference_from is not None:
        # Without feature_names only the predictions can be learned: prediction drift.
        predictions = Stream(prediction_schema, config, counted)
    return Streams(features, predictions, chosen)


def append_features(stream: Stream, features: object, reject: Reject) -> None:
    """Append one row or a batch of ``features`` to ``stream``; unusable input is rejected."""
    width = stream.schema.width
    # Fast paths: a numeric array or a list of numbers, copied straight into the ring.
    if type(features) is np.ndarray:
        if features.dtype.kind in "fiub" and not stream.categorical_index:
            if features.ndim == 1:
                if features.shape[0] == width:
                    stream.target().append_row(features)
                else:
                    reject(semconv.REJECT_DRIFT_WRONG_WIDTH, 1)
                return
            if features.ndim == 2:
                if features.shape[1] == width:
                    stream.target().append_rows(features.astype(np.float64, copy=False))
                else:
                    reject(semconv.REJECT_DRIFT_WRONG_WIDTH, features.shape[0])
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
    _append_general(stream, features, reject)


def _append_general(stream: Stream, features: object, reject: Reject) -> None:
    schema = stream.schema
    if is_dataframe(features):
        try:
            _, columns = table_columns(features, schema.names, what="features")
        except ConfigurationError:
            reject(semconv.REJECT_DRIFT_WRONG_WIDTH, len(features))  # type: ignore[arg-type]
            return
        matrix, bad = schema.encode(columns)
    else:
        rows = _rows(features)
        if rows is None:
            reject(semconv.REJECT_DRIFT_INVALID_ROW, 1)
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
            reject(semconv.REJECT_DRIFT_WRONG_WIDTH, wrong)
        if not good:
            return
        table = np.empty((len(good), schema.width), dtype=object)
        table[:] = good
        matrix, bad = schema.encode([table[:, i] for i in range(schema.width)])
    if bad:
        reject(semconv.REJECT_DRIFT_NOT_NUMERIC, bad)
        stream.not_numeric_pending += bad
    if matrix.shape[0] == 1:
        stream.target().append_row(matrix[0])
    else:
        stream.target().append_rows(matrix)


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


def append_predictions(stream: Stream, predictions: object, reject: Reject) -> None:
    """Append one prediction or a batch (sequence or array) to ``stream``'s one column."""
    encoder = stream.schema.encoders[0]
    if encoder is None and not isinstance(predictions, (str, bytes)):
        # Numbers (a scalar, a list, an array) convert in one call; None becomes NaN and is
        # counted as missing with the window's other non-finite values.
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
        # fromiter keeps each value one object: np.array would try to stack sequence-valued
        # predictions and raise on ragged ones.
        column, bad = numeric_column(np.fromiter(values, dtype=object, count=len(values)))
        if bad:
            reject(semconv.REJECT_DRIFT_NOT_NUMERIC, bad)
            stream.not_numeric_pending += bad
    stream.target().append_rows(column.reshape(-1, 1))
