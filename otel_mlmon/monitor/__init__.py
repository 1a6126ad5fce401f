"""``ModelMonitor``: spans and metrics around the predictions of one model.

A facade over parts with one job each: the instrument bundle (``_instruments``), the attribute
dicts of a version (``_attributes``), the per-call recorder behind :class:`Prediction`
(``_recorder``), the versions whose ids verify here (``_versions``), the label join (``labels``,
``_join``) and quality counting (``quality``), business outcomes (``outcomes``) and shadow
predictions (``shadow``). It records through the OpenTelemetry API only, into the global
providers or the ones passed in.

The recording path costs microseconds: attribute dicts are built once and reused, nothing here
imports scipy or scikit-learn, and the heavy work runs when a metric reader collects.
Telemetry never raises into the caller: bad inputs are counted under
``ml.monitor.rejected_inputs``, and an unexpected error of our own is logged once and swallowed.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, Unpack, overload

from opentelemetry import trace as trace_api
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_mlmon import _fork, _observables, semconv
from otel_mlmon._guard import internal_error
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.logs.events import emit_event
from otel_mlmon.monitor import _keys
from otel_mlmon.monitor._config import (
    TASKS,
    Classes,
    Drift,
    Labels,
    LegacyKeywords,
    Outcomes,
    Task,
    settings_from_legacy,
)
from otel_mlmon.monitor._instruments import instruments_for
from otel_mlmon.monitor._join import LabelJoin
from otel_mlmon.monitor._outputs import record_exception
from otel_mlmon.monitor._recorder import Prediction, Recorder
from otel_mlmon.monitor._served import ServedModel, check_length, drift_processor
from otel_mlmon.monitor._versions import Versions
from otel_mlmon.monitor._wrap import wrap_predict
from otel_mlmon.monitor.outcomes import OutcomeJoin, observe_outcomes
from otel_mlmon.monitor.shadow import ShadowMonitor, ShadowPrediction, shadow_of
from otel_mlmon.version import __version__

if TYPE_CHECKING:
    from otel_mlmon.drift.processor import DriftConfig

__all__ = [
    "Classes",
    "Drift",
    "Labels",
    "ModelMonitor",
    "Outcomes",
    "Prediction",
    "ShadowMonitor",
    "ShadowPrediction",
    "Task",
]

# The Flask integration records a view's exception on its server span the way a failing
# prediction's is recorded (instrumentation/flask.py imports it from here).
_record_exception = record_exception

_monitors: weakref.WeakSet[ModelMonitor] = weakref.WeakSet()

P = ParamSpec("P")
R = TypeVar("R")


class ModelMonitor:
    """Telemetry for one model: a span per prediction, ML metrics, delayed-label quality.

    Args:
        name, version, task, framework: identity. ``task`` is ``"classification"``
            (predictions counted by class), ``"regression"`` or ``"other"`` (no quality).
        classes: the known class values, or a :class:`Classes` (known values, bound).
        drift: a :class:`Drift` (reference, feature names, settings) or a ``DriftConfig``.
        labels: a :class:`Labels`: how delayed labels and outcomes join (key, max age, the
            fleet's other versions).
        outcomes: an :class:`Outcomes`: the business outcome kinds :meth:`record_outcome`
            accepts, and their unit.
        trace: open a span per prediction (``False`` records metrics only).
        record_exception_messages: put a failing prediction's exception message on its span
            (off by default: model libraries put the input into their messages).
        tracer_provider / meter_provider: instead of the global providers.

    Raises:
        ConfigurationError: for an invalid argument, at construction.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``classes``, ``drift`` and ``labels`` take groups; the keywords
       they replace are deprecated.
    .. versionchanged:: 0.3.0 ``outcomes``, :meth:`record_outcome` and :meth:`shadow`.
    """

    def __init__(
        self,
        name: str,
        *,
        version: str = "unknown",
        task: Task = "classification",
        framework: str | None = None,
        classes: Iterable[Hashable] | Classes | None = None,
        drift: Drift | DriftConfig | None = None,
        labels: Labels | None = None,
        outcomes: Outcomes | None = None,
        trace: bool = True,
        record_exception_messages: bool = False,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **deprecated: Unpack[LegacyKeywords],
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("ModelMonitor needs a non-empty model name")
        if task not in TASKS:
            raise ConfigurationError(f"task must be one of {TASKS}, not {task!r}")
        self._classes, drift_group, self._labels = settings_from_legacy(
            classes, drift, labels, deprecated
        )
        self._model = ServedModel(
            name,
            task,
            framework,
            self._classes,
            _keys.resolve(self._labels.key, self._labels.previous_keys),
        )
        self.name = name
        self.task: Task = task
        if outcomes is not None and not isinstance(outcomes, Outcomes):
            raise ConfigurationError(f"outcomes must be an Outcomes, not {type(outcomes).__name__}")
        self._versions = Versions(
            self._model.attributes, version, self._labels.resolved_fleet_versions()
        )
        meter = _observables.meter_for(meter_provider)
        self._recorder = self._model.recorder = Recorder(
            self,
            self._versions.served.attributes,
            instruments_for(meter),
            trace_api.get_tracer("otel_mlmon", __version__, tracer_provider),
            traced=trace,
            exception_messages=record_exception_messages,
        )
        max_age = self._labels.max_age_seconds
        self._join = LabelJoin(self._versions, max_age, self._label_cut)
        outcomes = outcomes or Outcomes()
        self._outcomes = OutcomeJoin(
            self._versions, outcomes, max_age, self._recorder.instruments.outcome_scores
        )
        self._model.observe(meter, self._versions)
        observe_outcomes(meter, self._versions, outcomes)
        if drift_group is not None:
            self._recorder.drift = drift_processor(meter, self._recorder, drift_group, task)
        _monitors.add(self)

    @property
    def framework(self) -> str | None:
        """``ml.model.framework`` on ``ml.model.info``."""
        return self._model.framework

    @property
    def version(self) -> str:
        """The model version currently reported as ``ml.model.version``."""
        return self._recorder.attributes.model.version

    @property
    def _drift(self) -> Any:
        """The drift processor or ``None`` (for the drift package and its tests)."""
        return self._recorder.drift

    def predict(self, features: object = None) -> Prediction:
        """Open a prediction: ``with monitor.predict(features=x) as p: p.record(y, conf)``.

        ``features`` feed the drift window when drift is configured; they never become span or
        metric attributes.
        """
        return Prediction(self._recorder, features)

    def record_label(self, prediction_id: str, label: object) -> None:
        """Join a delayed ground-truth ``label`` (or one per row of a batch) to a prediction.

        ``prediction_id`` is :attr:`Prediction.id` (a batch's, with one label per row) or one
        of :attr:`Prediction.ids`, from any process that shares the key. Every label is counted
        under ``ml.model.labels`` by ``ml.label.outcome`` (``matched``, ``invalid``,
        ``expired``, ``duplicate``), matched ones of a classifier by predicted and label class;
        this never raises and keeps nothing for an id that does not verify.
        """
        try:
            self._join.join(prediction_id, label)
        except Exception as exc:
            internal_error("ModelMonitor.record_label", exc)

    def record_outcome(self, prediction_id: str, kind: str, value: float | None = None) -> None:
        """Count a business outcome of a prediction: ``record_outcome(p.id, "revenue", 12.5)``,
        ``record_outcome(p.id, "click")``, ``record_outcome(p.id, "rating", 4)``.

        ``prediction_id`` is a :attr:`Prediction.id` (or one of its ``ids``) from any process
        that shares the key; the outcome counts for the version that made the prediction.
        ``kind`` is one declared in ``Outcomes(kinds=..., scores=...)``; ``value`` (a finite
        number, at least 0) is summed for a kind, recorded in the score histogram for a score
        (required there). Counted under ``ml.model.outcomes`` by ``ml.outcome.status``
        (``matched``, ``invalid``, ``expired``, ``bad_value``, ``unknown_kind``); never
        raises. Each call counts: one prediction may earn several outcomes.

        .. versionadded:: 0.3.0
        """
        try:
            self._outcomes.join(prediction_id, kind, value)
        except Exception as exc:
            internal_error("ModelMonitor.record_outcome", exc)

    def shadow(self, version: str, *, trace: bool = False, tolerance: float = 0.0) -> ShadowMonitor:
        """A challenger ``version`` recorded on this monitor's requests without serving them
        (see :mod:`otel_mlmon.monitor.shadow`): ``with shadow.predict(p) as s: s.record(y)``.

        Its series carry ``ml.model.role=shadow``; each row is compared with the served one
        (``ml.model.shadow.comparisons``; a regression agrees within ``tolerance``); its ids
        join labels and outcomes here. ``trace=True`` opens a span per shadow prediction.
        Asked twice for one version, it returns a monitor on the same counts.

        Raises:
            ConfigurationError: ``version`` is served here or in the fleet, too many shadows,
                or a negative tolerance.

        .. versionadded:: 0.3.0
        """
        return shadow_of(self._recorder, self._versions.shadow(version), trace, tolerance)

    def model_loaded(
        self, *, framework: str | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Mark the current version as loaded now and log a ``model_loaded`` event."""
        if framework is not None:
            check_length("framework", framework)
            self._model.framework = framework
        self._model.loaded_at = time.time()
        loaded: dict[str, Any] = {
            semconv.ML_MODEL_NAME: self.name,
            semconv.ML_MODEL_VERSION: self.version,
            semconv.ML_MODEL_FRAMEWORK: self.framework,
            "metrics": dict(metrics or {}),
        }
        emit_event(semconv.EVENT_MODEL_LOADED, **loaded)

    def update_model(
        self, version: str, *, reason: str | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        """Switch to a new model ``version``: new attributes and a ``model_updated`` event.

        Ids of the replaced version still verify (the last 8 replaced, and the fleet's
        versions): their labels and outcomes count for it."""
        old = self.version
        self._recorder.attributes = self._versions.serve(version).attributes
        self._model.loaded_at = time.time()
        if self._recorder.drift is not None:
            self._recorder.drift.model_updated()
        updated: dict[str, Any] = {
            semconv.ML_MODEL_NAME: self.name,
            "old_version": old,
            "new_version": version,
            "reason": reason,
            "metrics": dict(metrics or {}),
        }
        emit_event(semconv.EVENT_MODEL_UPDATED, **updated)

    def set_reference(self, reference: object = None, *, predictions: object = None) -> None:
        """Replace the drift reference (features and/or predictions), e.g. after retraining.

        Raises:
            ConfigurationError: drift is not enabled, or the reference is unusable.
        """
        if self._recorder.drift is None:
            raise ConfigurationError("drift is not enabled on this monitor (no reference)")
        self._recorder.drift.set_reference(reference, predictions)

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
        return wrap_predict(self.predict, func)

    def _label_cut(self, count: int) -> None:
        self._recorder.reject(semconv.REJECT_VALUE_TRUNCATED, count)

    def _reset_after_fork(self) -> None:
        self._versions.reset_after_fork()
        if self._recorder.drift is not None:
            self._recorder.drift.reset_after_fork()


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    for monitor in list(_monitors):
        monitor._reset_after_fork()
