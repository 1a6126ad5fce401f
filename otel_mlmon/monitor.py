"""``ModelMonitor``: spans and metrics around the predictions of one model.

Records through the OpenTelemetry API only, into the global providers or into the ones passed
in, so an application that set OpenTelemetry up itself needs no :func:`otel_mlmon.configure`.

The recording path is built to cost microseconds: attribute dicts are built once and reused,
nothing here imports scipy or scikit-learn, and the heavy work (quality scores, drift) runs when
a metric reader collects. Telemetry never raises into the caller: bad inputs are counted under
``ml.monitor.rejected_inputs``, and an unexpected error of our own is logged once and swallowed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import random
import threading
import time
import traceback
import weakref
from collections import Counter as _Tally
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, ParamSpec, TypeVar, overload

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, CallbackT, Meter, MeterProvider, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from otel_mlmon import _env, _fork, _observables, semconv
from otel_mlmon._guard import internal_error, strict
from otel_mlmon.context import ModelContext, RequestScope
from otel_mlmon.context import _model as _model_var
from otel_mlmon.context import _request_scope as _request_scope_var
from otel_mlmon.environment_variables import OTEL_MLMON_MAX_CLASSES
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.quality import QualityWindow
from otel_mlmon.version import __version__

if TYPE_CHECKING:
    from otel_mlmon.drift.processor import DriftConfig

Task = Literal["classification", "regression", "other"]
_TASKS: Final = ("classification", "regression", "other")

_DEFAULT_MAX_CLASSES: Final = 100
_MAX_ERROR_TYPES: Final = 64

_events: Final = logging.getLogger("otel_mlmon.events")
_monitors: weakref.WeakSet[ModelMonitor] = weakref.WeakSet()

P = ParamSpec("P")
R = TypeVar("R")


def _record_exception(span: Span, exc: BaseException, error_type: str, messages: bool) -> None:
    """The exception event, ``error.type`` and ERROR status on the prediction's span.

    Model libraries put the input into their messages (scikit-learn: "Expected 2D array, got
    1D array instead: array=[...]"), so by default neither the message nor the traceback's last
    line, which repeats it, is recorded: only the type and the frames.
    """
    span.set_attribute(semconv.ERROR_TYPE, error_type)
    if messages:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        return
    frames = "".join(traceback.format_tb(exc.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": error_type,
            "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{error_type}",
        },
    )
    span.set_status(Status(StatusCode.ERROR))


def _invalid_class(value: object) -> bool:
    """None, NaN and infinities are no class (NaN would take a new class slot every time)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


# Types recorded as one prediction without further checks: the common case, decided by one
# set lookup instead of a chain of isinstance() calls (numpy scalars take the slower path).
_PLAIN: Final[frozenset[type]] = frozenset({int, float, str, bool})
# Bound once: module attribute lookups on every prediction add up.
_perf_counter: Final = time.perf_counter
_getrandbits: Final = random.getrandbits
# Marks "nothing recorded yet" where None is a value a prediction may have.
_NOTHING: Final = object()


def _new_id() -> str:
    """16 lower-case hex digits from 64 random bits, by the cheapest route (three C calls; an
    f-string format costs five times as much). The random module reseeds in a forked child,
    so a child never repeats its parent's ids."""
    return _getrandbits(64).to_bytes(8, "little").hex()


# context.bind_model / reset_model without their call frames, twice per prediction.
_bind_model: Final = _model_var.set
_reset_model: Final = _model_var.reset


def _is_batch(value: object) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, (list, tuple))


def _scalar(value: object) -> object:
    """A plain Python value for a numpy scalar, so ``1`` and ``np.int64(1)`` join one class."""
    return value.item() if isinstance(value, np.generic) else value


class _Attributes:
    """Attribute dicts of one model version, built once and reused on every record.

    Swapped as a whole when the version changes, so a reader never sees half an update.
    """

    __slots__ = (
        "base",
        "classes",
        "classification",
        "errors",
        "label_outcomes",
        "lock",
        "max_classes",
        "model",
        "overflow",
        "regression",
        "span",
    )

    def __init__(self, name: str, version: str, task: str, max_classes: int) -> None:
        self.model = ModelContext(name, version)
        self.base: Mapping[str, str] = {
            semconv.ML_MODEL_NAME: name,
            semconv.ML_MODEL_VERSION: version,
        }
        self.span: Mapping[str, str] = {**self.base, semconv.ML_MODEL_TASK: task}
        self.overflow: Mapping[str, str] = {
            **self.base,
            semconv.ML_PREDICTION_CLASS: semconv.OVERFLOW_CLASS,
        }
        self.label_outcomes: Mapping[str, Mapping[str, str]] = {
            outcome: {**self.base, semconv.ML_LABEL_OUTCOME: outcome}
            for outcome in (
                semconv.LABEL_MATCHED,
                semconv.LABEL_UNKNOWN_ID,
                semconv.LABEL_EXPIRED,
                semconv.LABEL_INVALID,
            )
        }
        # The task as flags, so the recording path tests a bool rather than compares strings.
        self.classification = task == "classification"
        self.regression = task == "regression"
        self.max_classes = max_classes
        self.classes: dict[Hashable, Mapping[str, str]] = {}
        self.errors: dict[str, Mapping[str, str]] = {}
        self.lock = threading.Lock()

    def for_class(self, value: Hashable) -> tuple[Mapping[str, str], bool]:
        """Attributes for predicted class ``value`` and whether it fell into ``_OTHER``."""
        try:
            return self.classes[value], False
        except KeyError:
            pass
        except TypeError:  # unhashable prediction: its text is the class
            value = str(value)
            if value in self.classes:
                return self.classes[value], False
        if len(self.classes) >= self.max_classes:  # full: no lock needed to say so
            return self.overflow, True
        with self.lock:
            if value in self.classes:
                return self.classes[value], False
            if len(self.classes) >= self.max_classes:
                return self.overflow, True
            attributes = {**self.base, semconv.ML_PREDICTION_CLASS: str(value)}
            self.classes[value] = attributes
            return attributes, False

    def for_error(self, error_type: str) -> Mapping[str, str]:
        """Attributes for a failed call raising ``error_type``, bounded like classes."""
        attributes = self.errors.get(error_type)
        if attributes is not None:
            return attributes
        with self.lock:
            if len(self.errors) >= _MAX_ERROR_TYPES:
                error_type = semconv.OTHER_ERROR_TYPE
            attributes = self.errors.setdefault(
                error_type, {**self.base, semconv.ERROR_TYPE: error_type}
            )
            return attributes


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
        "_model_token",
        "_monitor",
        "_recorded",
        "_recorded_under",
        "_span",
        "_start",
        "_unjoined",
    )
    # Set only when a prediction is recorded before its id is read.
    _recorded_under: _Attributes

    def __init__(self, monitor: ModelMonitor, features: object) -> None:
        self._monitor = monitor
        self._features = features
        self._attributes = monitor._attributes
        self._recorded = False
        self._id: str | None = None
        # The recorded output, kept here until the id is first read: a prediction whose id
        # nobody has seen can never receive a label, so it need not wait for one.
        self._unjoined: object = _NOTHING

    @property
    def id(self) -> str:
        """16 hex digits identifying this prediction for :meth:`ModelMonitor.record_label`
        (and ``ml.prediction.id`` on its span); the same every time it is read."""
        prediction_id = self._id
        if prediction_id is None:
            prediction_id = self._id = _new_id()
            value = self._unjoined
            if value is not _NOTHING:
                self._unjoined = _NOTHING
                self._monitor._await_label(prediction_id, value, self._recorded_under)
        return prediction_id

    def __enter__(self) -> Prediction:
        monitor = self._monitor
        # Bound first, so __exit__ always has a token to reset even if the span fails.
        self._model_token = _bind_model(self._attributes.model)
        self._span = self._context_token = None
        if monitor._traced or self._features is not None:
            try:
                if monitor._traced:
                    span = monitor._tracer.start_span(
                        monitor._span_name,
                        kind=SpanKind.INTERNAL,
                        attributes=self._attributes.span,
                    )
                    span.set_attribute(semconv.ML_PREDICTION_ID, self.id)
                    self._span = span
                    self._context_token = otel_context.attach(trace_api.set_span_in_context(span))
                if self._features is not None and monitor._drift is not None:
                    monitor._drift.append(self._features)
            except Exception as exc:
                if strict():  # the caller's with-block never runs: unbind what we bound
                    _reset_model(self._model_token)
                internal_error("ModelMonitor.predict", exc)
        scope = _request_scope_var.get()
        if scope is not None:  # inside an instrumented web request
            try:
                self._describe_request(scope)
            except Exception as exc:
                internal_error("ModelMonitor.predict", exc)
        self._start = _perf_counter()
        return self

    def _describe_request(self, scope: RequestScope) -> None:
        """Put the model and this prediction's ID on the request's server span, so a trace
        search on server spans finds the requests that used a model."""
        if scope.monitor is not None and scope.monitor is not self._monitor:
            return
        span = scope.span
        if span.is_recording():
            span.set_attributes(self._attributes.span)
            span.set_attribute(semconv.ML_PREDICTION_ID, self.id)

    def record(self, prediction: object, confidence: object = None) -> None:
        """Record the model's output: a scalar, or an array/sequence for a batch.

        ``confidence`` is a number in [0, 1] (or one per row). Values that cannot be used are
        counted under ``ml.monitor.rejected_inputs`` and never raise.
        """
        # try/except rather than the guarded() context manager: this is the hot path.
        try:
            monitor = self._monitor
            if self._recorded:
                monitor._reject(semconv.REJECT_RECORDED_TWICE)
                return
            self._recorded = True
            if type(prediction) in _PLAIN or not _is_batch(prediction):
                monitor._record_one(self, prediction, confidence)
            else:
                monitor._record_batch(self, prediction, confidence)  # type: ignore[arg-type]
        except Exception as exc:
            internal_error("Prediction.record", exc)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        duration = _perf_counter() - self._start
        try:
            monitor = self._monitor
            span = self._span
            if exc is None:
                monitor._duration.record(duration, self._attributes.base)
            else:
                attributes = self._attributes.for_error(semconv.error_type(type(exc)))
                monitor._errors.add(1, attributes)
                monitor._duration.record(duration, attributes)
                if span is not None:
                    _record_exception(
                        span, exc, attributes[semconv.ERROR_TYPE], monitor._exception_messages
                    )
            if span is not None:
                span.end()
        except Exception as internal:
            internal_error("ModelMonitor.predict", internal)
        if self._context_token is not None:
            otel_context.detach(self._context_token)
        _reset_model(self._model_token)
        return False


class ModelMonitor:
    """Telemetry for one model: a span per prediction, ML metrics, delayed-label quality.

    Args:
        name: ``ml.model.name``.
        version: ``ml.model.version``; change it later with :meth:`update_model`.
        task: ``"classification"`` (predictions counted by class; accuracy, precision, recall,
            F1), ``"regression"`` (MAE, RMSE) or ``"other"`` (no quality metrics).
        framework: ``ml.model.framework`` on ``ml.model.info``, e.g. ``"sklearn"``.
        classes: the known class values; when given, any other predicted value is reported as
            ``_OTHER``. Without it the first ``max_classes`` distinct values are kept.
        max_classes: bound on distinct ``ml.prediction.class`` values (default 100, or
            ``OTEL_MLMON_MAX_CLASSES``); later values are reported as ``_OTHER`` and counted in
            ``ml.model.class.overflows``.
        quality_window: labelled predictions the quality metrics are computed over.
        pending_labels: predictions kept waiting for a label; the oldest is dropped first.
        label_ttl: seconds a prediction waits for its label before it counts as expired.
        trace: open a span per prediction (``False`` records metrics only).
        record_exception_messages: put a failing prediction's exception message on its span
            (off by default: model libraries put the input into their messages).
        tracer_provider / meter_provider: instead of the global providers.
        feature_names / reference / reference_predictions / drift: enable drift (see
            :class:`otel_mlmon.drift.DriftProcessor`): the features of every ``predict`` call
            (and the recorded predictions) are compared with ``reference`` (and
            ``reference_predictions``), or with the first ``drift.learn_reference_from`` rows.

    Raises:
        ConfigurationError: for an invalid argument, at construction.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "unknown",
        task: Task = "classification",
        framework: str | None = None,
        classes: Iterable[Hashable] | None = None,
        max_classes: int | None = None,
        quality_window: int = 1000,
        pending_labels: int = 10_000,
        label_ttl: float = 3600.0,
        trace: bool = True,
        record_exception_messages: bool = False,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        feature_names: Sequence[str] | None = None,
        reference: object = None,
        reference_predictions: object = None,
        drift: DriftConfig | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("ModelMonitor needs a non-empty model name")
        if not isinstance(version, str) or not version.strip():
            raise ConfigurationError("ModelMonitor version must be a non-empty string")
        if task not in _TASKS:
            raise ConfigurationError(f"task must be one of {_TASKS}, not {task!r}")
        known = None if classes is None else [_scalar(c) for c in classes]
        if max_classes is None:
            max_classes = _env.env_int(OTEL_MLMON_MAX_CLASSES, _DEFAULT_MAX_CLASSES, minimum=1)
        for label, value in (
            ("max_classes", max_classes),
            ("quality_window", quality_window),
            ("pending_labels", pending_labels),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{label} must be a positive integer, not {value!r}")
        if not (isinstance(label_ttl, (int, float)) and label_ttl > 0):
            raise ConfigurationError(f"label_ttl must be a positive number, not {label_ttl!r}")

        self.name = name
        self.task: Task = task
        self.framework = framework
        self._known_classes = known
        self._max_classes = max_classes
        self._pending_limit = pending_labels
        self._label_ttl = float(label_ttl)
        self._attributes = self._build_attributes(version)
        self._loaded_at = time.time()
        self._span_name = f"predict {name}"
        self._traced = trace
        self._exception_messages = record_exception_messages
        # Drift hooks in here (see otel_mlmon.drift); None keeps the hot path to one check.
        self._drift: Any = None

        self._tracer = trace_api.get_tracer("otel_mlmon", __version__, tracer_provider)
        meter = _observables.meter_for(meter_provider)
        self._predictions = semconv.create_ml_model_predictions(meter)
        self._duration = semconv.create_ml_model_prediction_duration(meter)
        self._confidence = semconv.create_ml_model_prediction_confidence(meter)
        self._batch_size = semconv.create_ml_model_batch_size(meter)
        self._errors = semconv.create_ml_model_errors(meter)
        # Labels are counted here and reported at collection time: a Counter.add costs about
        # 8 us in the SDK, more than the rest of record_label together.
        self._label_counts: dict[tuple[_Attributes, str], int] = {}
        self._label_lock = threading.Lock()
        self._overflows = semconv.create_ml_model_class_overflows(meter)
        self._rejected = semconv.create_ml_monitor_rejected_inputs(meter)
        # Observable metrics are created once per provider and shared by every monitor on it.
        observe = functools.partial(_observables.observe, meter, owner=self)
        observe(
            semconv.ML_MODEL_LABELS, semconv.create_ml_model_labels,
            callback=ModelMonitor._observe_labels,
        )  # fmt: skip
        observe(
            semconv.ML_MODEL_INFO, semconv.create_ml_model_info,
            callback=ModelMonitor._observe_info,
        )  # fmt: skip
        observe(
            semconv.ML_MODEL_LOAD_TIME, semconv.create_ml_model_load_time,
            callback=ModelMonitor._observe_load_time,
        )  # fmt: skip

        # Insertion-ordered, oldest first: popitem(last=False) drops the oldest in O(1), where a
        # dict's next(iter()) rescans the slots freed at its front on every eviction.
        self._pending: OrderedDict[str, tuple[object, float]] = OrderedDict()
        self._pending_lock = threading.Lock()
        self._quality: QualityWindow | None = None
        if task != "other":
            self._quality = QualityWindow(quality_window, regression=task == "regression")
            metrics = (
                semconv.REGRESSION_QUALITY_METRICS
                if task == "regression"
                else semconv.CLASSIFICATION_QUALITY_METRICS
            )
            for metric in metrics:
                observe(
                    metric,
                    functools.partial(_quality_gauge, metric),
                    callback=functools.partial(_observe_quality_of, metric),
                )
            observe(
                semconv.ML_MODEL_QUALITY_SAMPLES, semconv.create_ml_model_quality_samples,
                callback=ModelMonitor._observe_quality_samples,
            )  # fmt: skip
        if reference is not None or reference_predictions is not None or drift is not None:
            # Imported here: a service without drift does not load the drift package.
            from otel_mlmon.drift.processor import DriftProcessor

            self._drift = DriftProcessor(
                meter,
                attributes=lambda: self._attributes.base,
                feature_names=feature_names,
                reference=reference,
                reference_predictions=reference_predictions,
                config=drift,
                predictions_categorical=task == "classification",
                rejected=self._rejected,
            )
        _monitors.add(self)

    # --- public API -----------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The model version currently reported as ``ml.model.version``."""
        return self._attributes.model.version

    def predict(self, features: object = None) -> Prediction:
        """Open a prediction: ``with monitor.predict(features=x) as p: p.record(y, conf)``.

        ``features`` feed the drift window when drift is configured; they never become span or
        metric attributes.
        """
        return Prediction(self, features)

    def record_label(self, prediction_id: str, label: object) -> None:
        """Join a delayed ground-truth ``label`` (or one per row of a batch) to a prediction.

        Unknown, expired and malformed labels are counted under ``ml.model.labels`` by
        ``ml.label.outcome``; this never raises.
        """
        try:
            self._join_label(prediction_id, label)
        except Exception as exc:
            internal_error("ModelMonitor.record_label", exc)

    def _join_label(self, prediction_id: str, label: object) -> None:
        attributes = self._attributes
        # One pop, atomic on its own: no lock needed (see _await_label).
        entry = self._pending.pop(prediction_id, None) if isinstance(prediction_id, str) else None
        if entry is None:
            self._count_label(attributes, semconv.LABEL_UNKNOWN_ID)
            return
        prediction, recorded_at = entry
        if time.monotonic() - recorded_at > self._label_ttl:
            self._count_label(attributes, semconv.LABEL_EXPIRED)
            return
        quality = self._quality
        if quality is None:
            self._count_label(attributes, semconv.LABEL_MATCHED)
            return
        if isinstance(prediction, list):
            if not _is_batch(label) or len(label) != len(prediction):  # type: ignore[arg-type]
                self._count_label(attributes, semconv.LABEL_INVALID)
                return
            labels = [self._label_value(v) for v in label]  # type: ignore[attr-defined]
            if any(v is None for v in labels):
                self._count_label(attributes, semconv.LABEL_INVALID)
                return
            for p, y in zip(prediction, labels, strict=True):
                quality.add(p, y)
        else:
            value = self._label_value(label)
            if value is None:
                self._count_label(attributes, semconv.LABEL_INVALID)
                return
            quality.add(prediction, value)
        self._count_label(attributes, semconv.LABEL_MATCHED)

    def model_loaded(
        self, *, framework: str | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Mark the current version as loaded now and log a ``model_loaded`` event."""
        if framework is not None:
            self.framework = framework
        self._loaded_at = time.time()
        _events.info(
            semconv.EVENT_MODEL_LOADED,
            extra={
                semconv.ML_MODEL_NAME: self.name,
                semconv.ML_MODEL_VERSION: self.version,
                semconv.ML_MODEL_FRAMEWORK: self.framework,
                "metrics": dict(metrics or {}),
            },
        )

    def update_model(
        self,
        version: str,
        *,
        reason: str | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Switch to a new model ``version``: new attributes, an empty quality window and
        pending-label map, and a ``model_updated`` event with the old and new version."""
        if not isinstance(version, str) or not version.strip():
            raise ConfigurationError("model version must be a non-empty string")
        old = self.version
        self._attributes = self._build_attributes(version)
        self._loaded_at = time.time()
        with self._pending_lock:
            self._pending.clear()
        if self._quality is not None:
            self._quality.clear()
        if self._drift is not None:
            self._drift.model_updated()
        _events.info(
            semconv.EVENT_MODEL_UPDATED,
            extra={
                semconv.ML_MODEL_NAME: self.name,
                "old_version": old,
                "new_version": version,
                "reason": reason,
                "metrics": dict(metrics or {}),
            },
        )

    def set_reference(self, reference: object = None, *, predictions: object = None) -> None:
        """Replace the drift reference (features and/or predictions), e.g. after retraining.

        Raises:
            ConfigurationError: drift is not enabled, or the reference is unusable.
        """
        if self._drift is None:
            raise ConfigurationError("drift is not enabled on this monitor (no reference)")
        self._drift.set_reference(reference, predictions)

    @overload
    def wrap(self, func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def wrap(self, func: Callable[P, R]) -> Callable[P, R]: ...
    def wrap(self, func: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a predict function ``f(features, ...) -> prediction`` (sync or async).

        Each call runs inside :meth:`predict` with the first argument as the features, and its
        return value is recorded as the prediction; a function returning ``(prediction,
        confidence)`` records both.
        """

        def record(p: Prediction, result: object) -> None:
            if isinstance(result, tuple) and len(result) == 2:
                p.record(result[0], result[1])
            else:
                p.record(result)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with self.predict(features=args[0] if args else None) as p:
                    result = await func(*args, **kwargs)
                    record(p, result)
                return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with self.predict(features=args[0] if args else None) as p:
                result = func(*args, **kwargs)
                record(p, result)
            return result

        return wrapper

    # --- recording, called from Prediction ---------------------------------------------------

    def _build_attributes(self, version: str) -> _Attributes:
        attributes = _Attributes(self.name, version, self.task, self._max_classes)
        if self._known_classes is not None:
            attributes.max_classes = len(self._known_classes)
            for value in self._known_classes:
                attributes.for_class(value)
        return attributes

    def _reject(self, reason: str) -> None:
        self._rejected.add(1, {**self._attributes.base, semconv.ML_REJECTION_REASON: reason})

    def _count_label(self, attributes: _Attributes, outcome: str) -> None:
        key = (attributes, outcome)
        with self._label_lock:
            self._label_counts[key] = self._label_counts.get(key, 0) + 1

    def _label_value(self, label: object) -> object | None:
        """A label as stored in the quality window, or ``None`` when it cannot be used."""
        value = _scalar(label)
        if self.task == "regression":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return float(value) if math.isfinite(value) else None
        try:
            hash(value)
        except TypeError:
            return None
        return value

    def _remember(self, p: Prediction, prediction: object) -> None:
        """Keep ``prediction`` waiting for its label, from now if its id is known, else from
        the moment the id is first read (see :attr:`Prediction.id`)."""
        if self._quality is None:
            return
        if p._id is None:
            p._unjoined = prediction
            p._recorded_under = self._attributes
        else:
            self._await_label(p._id, prediction, self._attributes)

    def _await_label(
        self, prediction_id: str, prediction: object, recorded_under: _Attributes
    ) -> None:
        if recorded_under is not self._attributes:
            # update_model() ran since the prediction was recorded: it emptied the map this
            # entry would have been in, so it is not added now either.
            return
        # No lock: each OrderedDict operation is atomic by itself (under the GIL, and under a
        # per-object lock in free-threaded builds). Two threads racing past the length check
        # drop one extra oldest entry, which the bound allows.
        pending = self._pending
        pending[prediction_id] = (prediction, time.monotonic())
        if len(pending) > self._pending_limit:
            try:  # noqa: SIM105 (hot path: contextlib.suppress costs a context manager)
                pending.popitem(last=False)
            except KeyError:  # emptied meanwhile by update_model()
                pass

    def _valid_confidence(self, value: object) -> float | None:
        value = _scalar(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        value = float(value)
        return value if 0.0 <= value <= 1.0 else None  # NaN fails both comparisons

    def _record_one(self, p: Prediction, prediction: object, confidence: object) -> None:
        attributes = p._attributes
        # Plain Python values skip the numpy-scalar conversion and the Hashable check.
        plain = type(prediction) in _PLAIN
        value = prediction if plain else _scalar(prediction)
        span = p._span
        if attributes.classification:
            if _invalid_class(value):
                self._reject(semconv.REJECT_PREDICTION_INVALID)
                return
            class_attributes = attributes.classes.get(value) if plain else None
            if class_attributes is None:
                class_attributes, overflowed = attributes.for_class(value)
                if overflowed:
                    self._overflows.add(1, attributes.base)
            self._predictions.add(1, class_attributes)
            if span is not None:
                span.set_attribute(
                    semconv.ML_PREDICTION_CLASS, class_attributes[semconv.ML_PREDICTION_CLASS]
                )
            if plain or isinstance(value, Hashable):
                self._remember(p, value)
        else:
            self._predictions.add(1, attributes.base)
            if attributes.regression:
                stored = self._label_value(value)
                if stored is None:
                    self._reject(semconv.REJECT_PREDICTION_INVALID)
                else:
                    self._remember(p, stored)
        if self._drift is not None:
            self._drift.append_predictions(value)
        if confidence is not None:
            if type(confidence) is float and 0.0 <= confidence <= 1.0:
                score: float | None = confidence
            else:
                score = self._valid_confidence(confidence)
            if score is None:
                self._reject(semconv.REJECT_CONFIDENCE_INVALID)
            else:
                self._confidence.record(score, attributes.base)
                if span is not None:
                    span.set_attribute(semconv.ML_PREDICTION_CONFIDENCE, score)

    def _record_batch(
        self, p: Prediction, predictions: Sequence[object], confidence: object
    ) -> None:
        attributes = p._attributes
        values = (
            predictions.tolist()
            if isinstance(predictions, np.ndarray)
            else [_scalar(v) for v in predictions]
        )
        size = len(values)
        self._batch_size.record(size, attributes.base)
        if self._drift is not None:
            self._drift.append_predictions(values)
        if p._span is not None:
            p._span.set_attribute(semconv.ML_BATCH_SIZE, size)
        if self.task == "classification":
            valid = [v for v in values if not _invalid_class(v)]
            if len(valid) < size:
                self._rejected.add(
                    size - len(valid),
                    {
                        **attributes.base,
                        semconv.ML_REJECTION_REASON: semconv.REJECT_PREDICTION_INVALID,
                    },
                )
            try:
                tally = _Tally(valid)
            except TypeError:  # unhashable rows: count them by their text
                values = [str(v) for v in values]
                tally = _Tally(str(v) for v in valid)
            overflow = 0
            for value, count in tally.items():
                class_attributes, overflowed = attributes.for_class(value)
                if overflowed:
                    overflow += count
                else:
                    self._predictions.add(count, class_attributes)
            if overflow:  # one add for all of them: a model gone wrong can emit thousands
                self._predictions.add(overflow, attributes.overflow)
                self._overflows.add(overflow, attributes.base)
            self._remember(p, values)
        else:
            self._predictions.add(size, attributes.base)
            if self.task == "regression":
                stored = [self._label_value(v) for v in values]
                if any(v is None for v in stored):
                    self._reject(semconv.REJECT_PREDICTION_INVALID)
                else:
                    self._remember(p, stored)
        if confidence is None:
            return
        scores = confidence.tolist() if isinstance(confidence, np.ndarray) else confidence
        if not isinstance(scores, (list, tuple)) or len(scores) != size:
            self._reject(semconv.REJECT_CONFIDENCE_LENGTH)
            return
        record, base = self._confidence.record, attributes.base
        rejected = 0
        for raw in scores:
            score = self._valid_confidence(raw)
            if score is None:
                rejected += 1
            else:
                record(score, base)
        if rejected:
            self._rejected.add(
                rejected, {**base, semconv.ML_REJECTION_REASON: semconv.REJECT_CONFIDENCE_INVALID}
            )

    # --- observable callbacks (collection time) -----------------------------------------

    def _observe_info(self, options: CallbackOptions) -> Iterable[Observation]:
        attributes = dict(self._attributes.base)
        attributes[semconv.ML_MODEL_TASK] = self.task
        if self.framework:
            attributes[semconv.ML_MODEL_FRAMEWORK] = self.framework
        yield Observation(1, attributes)

    def _observe_labels(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._label_lock:
            counts = list(self._label_counts.items())
        for (attributes, outcome), count in counts:
            yield Observation(count, attributes.label_outcomes[outcome])

    def _observe_load_time(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._loaded_at, self._attributes.base)

    def _observe_quality(self, metric: str, options: CallbackOptions) -> Iterable[Observation]:
        assert self._quality is not None
        value = self._quality.scores().values.get(metric)
        if value is not None:
            yield Observation(value, self._attributes.base)

    def _observe_quality_samples(self, options: CallbackOptions) -> Iterable[Observation]:
        assert self._quality is not None
        yield Observation(len(self._quality), self._attributes.base)

    def _reset_after_fork(self) -> None:
        self._pending_lock = threading.Lock()
        self._label_lock = threading.Lock()
        self._pending = OrderedDict()
        self._attributes.lock = threading.Lock()
        if self._quality is not None:
            self._quality.reset_after_fork()
        if self._drift is not None:
            self._drift.reset_after_fork()


def _quality_gauge(name: str, meter: Meter, callbacks: Sequence[CallbackT]) -> object:
    return semconv.create_ml_model_quality_gauge(meter, name, callbacks)


def _observe_quality_of(
    name: str, monitor: ModelMonitor, options: CallbackOptions
) -> Iterable[Observation]:
    return monitor._observe_quality(name, options)


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    for monitor in list(_monitors):
        monitor._reset_after_fork()
