"""What one prediction records: :class:`Prediction` and the :class:`Recorder` behind it.

The recorder holds what every prediction of one monitor needs (the instrument bundle, the
current version's attributes, the tracer, the drift processor, where labels wait) as public
attributes; ``Prediction`` uses those and nothing of the monitor itself. ``ModelMonitor``
swaps ``Recorder.attributes`` on ``update_model()``.

This is the hot path: plain Python values take a fast lane decided by one set lookup, the
task is a flag, module lookups are bound once. A prediction keeps its recorded output (the
bounded class, the value) and makes its signed id only when the id is read (or a span needs
it): a prediction whose id nobody reads pays nothing for labels.
"""

from __future__ import annotations

import time
from collections import Counter as _Tally
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, Final, Literal, Self

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, Tracer

from otel_mlmon import semconv
from otel_mlmon._guard import internal_error, strict
from otel_mlmon.context import RequestScope
from otel_mlmon.context import _model as _model_var
from otel_mlmon.context import _request_scope as _request_scope_var
from otel_mlmon.monitor._attributes import ModelAttributes, invalid_class, scalar
from otel_mlmon.monitor._instruments import Instruments
from otel_mlmon.monitor._outputs import record_confidences, record_exception, valid_confidence
from otel_mlmon.monitor.labels import regression_value

# Types recorded as one prediction without further checks: the common case, decided by one
# set lookup instead of a chain of isinstance() calls (numpy scalars take the slower path).
_PLAIN: Final[frozenset[type]] = frozenset({int, float, str, bool})
# Bound once: module attribute lookups on every prediction add up.
_perf_counter: Final = time.perf_counter
_time: Final = time.time
# context.bind_model / reset_model without their call frames, twice per prediction.
_bind_model: Final = _model_var.set
_reset_model: Final = _model_var.reset


def _is_batch(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, (list, tuple))


class Recorder:
    """Everything a prediction of one monitor records into, as public attributes."""

    __slots__ = (
        "attributes",
        "drift",
        "exception_messages",
        "instruments",
        "owner",
        "span_name",
        "traced",
        "tracer",
    )

    def __init__(
        self,
        owner: object,
        attributes: ModelAttributes,
        instruments: Instruments,
        tracer: Tracer,
        *,
        traced: bool,
        exception_messages: bool,
    ) -> None:
        #: The monitor this records for (compared with a request scope's monitor filter).
        self.owner = owner
        self.attributes = attributes
        self.instruments = instruments
        self.tracer = tracer
        self.span_name = f"predict {attributes.model.name}"
        self.traced = traced
        self.exception_messages = exception_messages
        # Drift hooks in here (see otel_mlmon.drift); None keeps the hot path to one check.
        self.drift: Any = None

    def reject(self, reason: str, count: int = 1) -> None:
        """Count ``count`` inputs under ``ml.monitor.rejected_inputs`` for ``reason``."""
        self.instruments.rejected.add(count, self.attributes.rejected(reason))


class Prediction:
    """One prediction (or one batch) in progress; yielded by :meth:`ModelMonitor.predict`.

    ``id`` identifies it for :meth:`ModelMonitor.record_label`; call :meth:`record` once with
    the model's output. Leaving the ``with`` block ends the span and records the duration; an
    exception raised inside the block is recorded and then propagates unchanged.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_attributes",
        "_context_token",
        "_features",
        "_id",
        "_ids",
        "_model_token",
        "_output",
        "_recorded",
        "_recorder",
        "_scope",
        "_span",
        "_start",
    )
    # Set when the rows' ids are first read.
    _ids: list[str]
    #: Whether it describes the web request it runs in on the server span (a served
    #: prediction does; a shadow's, which answers nothing, does not).
    _DESCRIBES_REQUEST: ClassVar[bool] = True

    def __init__(self, recorder: Recorder, features: object) -> None:
        self._recorder = recorder
        self._features = features
        self._attributes = recorder.attributes
        self._recorded = False
        self._id: str | None = None
        # (_ids, the rows' ids, is set when first read: nothing to pay for on the hot path.)
        # What the id will carry: the bounded class, the regression value, a list for the rows
        # of a batch; None when nothing usable was recorded (a label for it counts invalid).
        self._output: Any = None
        self._scope: RequestScope | None = None

    @property
    def id(self) -> str:
        """The signed, self-contained id of this prediction (or of the whole batch) for
        :meth:`ModelMonitor.record_label`, and ``ml.prediction.id`` on its spans.

        Made on first read and the same on every later read. It carries the recorded output,
        so read it after :meth:`record`: read before, it names no output and a label for it
        counts ``invalid``. URL-safe; 28 to 40 characters for one prediction.
        """
        prediction_id = self._id
        if prediction_id is None:
            codec = self._attributes.ids
            assert codec is not None  # set by the monitor with the attributes
            if type(self._output) is list:  # a batch's rows
                prediction_id = codec.batch(self._output, _time())
            else:
                prediction_id = codec.single(self._output, _time())
            self._id = prediction_id
        return prediction_id

    @property
    def ids(self) -> list[str]:
        """One id per row of a batch, each labelled on its own like a single prediction's
        (``[p.id]`` for a single prediction). Made on first read, the same on every later one."""
        if type(self._output) is not list:
            return [self.id]
        try:
            ids = self._ids
        except AttributeError:
            codec = self._attributes.ids
            assert codec is not None
            when = _time()
            ids = self._ids = [codec.single(output, when) for output in self._output]
        return list(ids)

    def __enter__(self) -> Self:
        recorder = self._recorder
        # Bound first, so __exit__ always has a token to reset even if the span fails.
        self._model_token = _bind_model(self._attributes.model)
        self._span = self._context_token = None
        if recorder.traced or self._features is not None:
            try:
                if recorder.traced:
                    self._span = span = recorder.tracer.start_span(
                        recorder.span_name, kind=SpanKind.INTERNAL, attributes=self._attributes.span
                    )
                    self._context_token = otel_context.attach(trace_api.set_span_in_context(span))
                if self._features is not None and recorder.drift is not None:
                    recorder.drift.append(self._features)
            except Exception as exc:
                if strict():  # the caller's with-block never runs: unbind what we bound
                    _reset_model(self._model_token)
                internal_error("ModelMonitor.predict", exc)
        scope = _request_scope_var.get()
        if (
            scope is not None
            and self._DESCRIBES_REQUEST
            and (scope.monitor is None or scope.monitor is recorder.owner)
        ):
            try:  # inside an instrumented web request: describe it on the server span
                if scope.span.is_recording():
                    scope.span.set_attributes(self._attributes.span)
                    self._scope = scope
            except Exception as exc:
                internal_error("ModelMonitor.predict", exc)
        self._start = _perf_counter()
        return self

    def record(self, prediction: object, confidence: object = None) -> None:
        """Record the model's output: a scalar, or an array/sequence for a batch.

        ``confidence`` is a number in [0, 1] (or one per row). Values that cannot be used are
        counted under ``ml.monitor.rejected_inputs`` and never raise.
        """
        # try/except rather than the guarded() context manager: this is the hot path.
        try:
            if self._recorded:
                self._recorder.reject(semconv.REJECT_RECORDED_TWICE)
                return
            self._recorded = True
            if type(prediction) in _PLAIN or not _is_batch(prediction):
                self._record_one(prediction, confidence)
            else:
                self._record_batch(prediction, confidence)  # type: ignore[arg-type]
            if self._span is not None or self._scope is not None:
                self._describe_id()
        except Exception as exc:
            internal_error("Prediction.record", exc)

    def _describe_id(self) -> None:
        """``ml.prediction.id`` on the prediction's span and the request's server span."""
        prediction_id = self.id
        if self._span is not None:
            self._span.set_attribute(semconv.ML_PREDICTION_ID, prediction_id)
        if self._scope is not None:
            self._scope.span.set_attribute(semconv.ML_PREDICTION_ID, prediction_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        duration = _perf_counter() - self._start
        try:
            recorder = self._recorder
            span = self._span
            if exc is None:
                recorder.instruments.duration.record(duration, self._attributes.base)
            else:
                attributes = self._attributes.for_error(semconv.error_type(type(exc)))
                recorder.instruments.errors.add(1, attributes)
                recorder.instruments.duration.record(duration, attributes)
                if span is not None:
                    record_exception(
                        span, exc, attributes[semconv.ERROR_TYPE], recorder.exception_messages
                    )
            if span is not None:
                span.end()
        except Exception as internal:
            internal_error("ModelMonitor.predict", internal)
        if self._context_token is not None:
            otel_context.detach(self._context_token)
        _reset_model(self._model_token)
        return False

    # --- recording ----------------------------------------------------------------------

    def _record_one(self, prediction: object, confidence: object) -> None:
        attributes = self._attributes
        recorder = self._recorder
        instruments = recorder.instruments
        # Plain Python values skip the numpy-scalar conversion and the Hashable check.
        plain = type(prediction) in _PLAIN
        value = prediction if plain else scalar(prediction)
        span = self._span
        if attributes.classification:
            if invalid_class(value):
                recorder.reject(semconv.REJECT_PREDICTION_INVALID)
                return
            class_attributes = attributes.classes.get(value) if plain else None
            if class_attributes is None:
                value, cut = attributes.bounded(value)
                if cut:
                    recorder.reject(semconv.REJECT_VALUE_TRUNCATED)
                class_attributes, overflowed = attributes.for_class(value)
                if overflowed:
                    instruments.overflows.add(1, attributes.base)
            instruments.predictions.add(1, class_attributes)
            if span is not None:
                span.set_attribute(
                    semconv.ML_PREDICTION_CLASS, class_attributes[semconv.ML_PREDICTION_CLASS]
                )
            self._output = value
        else:
            instruments.predictions.add(1, attributes.base)
            if attributes.regression:
                self._output = regression_value(value)
                if self._output is None:
                    recorder.reject(semconv.REJECT_PREDICTION_INVALID)
            else:
                self._output = True
        if recorder.drift is not None:
            recorder.drift.append_predictions(value)
        if confidence is not None:
            if type(confidence) is float and 0.0 <= confidence <= 1.0:
                score: float | None = confidence
            else:
                score = valid_confidence(confidence)
            if score is None:
                recorder.reject(semconv.REJECT_CONFIDENCE_INVALID)
            else:
                instruments.confidence.record(score, attributes.base)
                if span is not None:
                    span.set_attribute(semconv.ML_PREDICTION_CONFIDENCE, score)

    def _record_batch(self, predictions: Sequence[object], confidence: object) -> None:
        attributes = self._attributes
        recorder = self._recorder
        values = (
            predictions.tolist()
            if isinstance(predictions, np.ndarray)
            else [scalar(v) for v in predictions]
        )
        size = len(values)
        recorder.instruments.batch_size.record(size, attributes.base)
        if recorder.drift is not None:
            recorder.drift.append_predictions(values)
        if self._span is not None:
            self._span.set_attribute(semconv.ML_BATCH_SIZE, size)
        if attributes.classification:
            self._count_classes(values)
        else:
            recorder.instruments.predictions.add(size, attributes.base)
            if attributes.regression:
                stored = [regression_value(v) for v in values]
                if any(v is None for v in stored):
                    recorder.reject(semconv.REJECT_PREDICTION_INVALID)
                else:
                    self._output = stored
            else:
                self._output = [True] * size
        if confidence is not None:
            record_confidences(recorder, attributes, confidence, size)

    def _count_classes(self, values: list[Any]) -> None:
        attributes = self._attributes
        recorder = self._recorder
        instruments = recorder.instruments
        valid = [v for v in values if not invalid_class(v)]
        if len(valid) < len(values):
            recorder.reject(semconv.REJECT_PREDICTION_INVALID, len(values) - len(valid))
        try:
            tally = _Tally(valid)
        except TypeError:  # unhashable rows: count them by their text
            values = [str(v) for v in values]
            tally = _Tally(str(v) for v in valid)
        # Each distinct value once through the bound: the rows keep only what the table keeps.
        keys = {value: attributes.bounded(value) for value in tally}
        cut = sum(count for value, count in tally.items() if keys[value][1])
        if cut:
            recorder.reject(semconv.REJECT_VALUE_TRUNCATED, cut)
        if any(key is not value for value, (key, _) in keys.items()):
            values = [keys[v][0] if v in keys else v for v in values]
        overflow = 0
        for value, count in tally.items():
            class_attributes, overflowed = attributes.for_class(keys[value][0])
            if overflowed:
                overflow += count
            else:
                instruments.predictions.add(count, class_attributes)
        if overflow:  # one add for all of them: a model gone wrong can emit thousands
            instruments.predictions.add(overflow, attributes.overflow)
            instruments.overflows.add(overflow, attributes.base)
        self._output = values
