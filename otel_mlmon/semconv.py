"""The single source of otel-mlmon's metric names, units, instruments and attribute keys.

Dashboards, alert rules and ``docs/semantic-conventions.md`` are written against these names; a
test renders :data:`METRICS` and :data:`ATTRIBUTES` and fails when the document disagrees.

Our own names live under ``ml.``; where an OpenTelemetry semantic convention exists it is reused
(``error.type``, ``hw.*``, ``process.*``, ``service.*``). Names follow the OTel naming rules:
lower-case, dot-separated, UCUM units, no unit and no ``_total`` in the name.

Each metric has a ``create_<name>(meter)`` factory that fixes its instrument kind, unit,
description and (for histograms) advisory bucket boundaries, so every call site creates it the
same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from opentelemetry.metrics import (
    CallbackT,
    Counter,
    Histogram,
    Meter,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
)

# --- attribute keys -------------------------------------------------------------------------

ML_MODEL_NAME: Final = "ml.model.name"
ML_MODEL_VERSION: Final = "ml.model.version"
ML_MODEL_TASK: Final = "ml.model.task"
ML_MODEL_FRAMEWORK: Final = "ml.model.framework"
ML_PREDICTION_ID: Final = "ml.prediction.id"
ML_PREDICTION_CLASS: Final = "ml.prediction.class"
ML_PREDICTION_CONFIDENCE: Final = "ml.prediction.confidence"
ML_BATCH_SIZE: Final = "ml.batch.size"
ML_LABEL_OUTCOME: Final = "ml.label.outcome"
ML_REJECTION_REASON: Final = "ml.rejection.reason"
ML_FEATURE_NAME: Final = "ml.feature.name"
ML_DRIFT_METHOD: Final = "ml.drift.method"
ML_DRIFT_STATE: Final = "ml.drift.state"
ML_DRIFT_BIN: Final = "ml.drift.bin"
ML_DRIFT_REFERENCE_ID: Final = "ml.drift.reference.id"
ML_GPU_INDEX: Final = "ml.gpu.index"
#: The request's ID (``X-Request-ID``) on the HTTP server span; never a metric attribute.
ML_REQUEST_ID: Final = "ml.request.id"

# Reused from the OpenTelemetry semantic conventions.
ERROR_TYPE: Final = "error.type"
HW_ID: Final = "hw.id"
HW_NAME: Final = "hw.name"
HW_TYPE: Final = "hw.type"
HW_VENDOR: Final = "hw.vendor"

#: Value of ``ml.prediction.class`` once the configured class bound is reached.
OVERFLOW_CLASS: Final = "_OTHER"


def error_type(exception_class: type[BaseException]) -> str:
    """The ``error.type`` of an exception class: its qualified name, without the module for
    builtins (``ValueError``, ``sklearn.exceptions.NotFittedError``)."""
    module = exception_class.__module__
    name = exception_class.__qualname__
    return name if module == "builtins" else f"{module}.{name}"


#: Value of ``error.type`` when an exception class cannot be named.
OTHER_ERROR_TYPE: Final = "_OTHER"

#: ``ml.feature.name`` of prediction drift (the model's output against the reference outputs).
PREDICTION_FEATURE: Final = "_prediction"

#: ``ml.label.outcome`` values.
LABEL_MATCHED: Final = "matched"
LABEL_UNKNOWN_ID: Final = "unknown_id"
LABEL_EXPIRED: Final = "expired"
LABEL_INVALID: Final = "invalid"

#: ``ml.rejection.reason`` values: why an input was not used, with what it means.
REJECT_CONFIDENCE_INVALID: Final = "confidence_invalid"
REJECT_CONFIDENCE_LENGTH: Final = "confidence_length_mismatch"
REJECT_PREDICTION_INVALID: Final = "prediction_invalid"
REJECT_RECORDED_TWICE: Final = "recorded_twice"
REJECTION_REASONS: Final[dict[str, str]] = {
    REJECT_CONFIDENCE_INVALID: "A confidence that is not a finite number in [0, 1].",
    REJECT_CONFIDENCE_LENGTH: "A batch whose confidences do not match its predictions.",
    REJECT_PREDICTION_INVALID: "A prediction that is None, or not a finite number (regression).",
    REJECT_RECORDED_TWICE: "A second record() on the same prediction.",
}

# --- log event names (the seed's vocabulary) ----------------------------------------------

EVENT_REQUEST_STARTED: Final = "request_started"
EVENT_REQUEST_COMPLETED: Final = "request_completed"
EVENT_REQUEST_FAILED: Final = "request_failed"
EVENT_PREDICTION_MADE: Final = "prediction_made"
EVENT_MODEL_LOADED: Final = "model_loaded"
EVENT_MODEL_UPDATED: Final = "model_updated"
EVENT_DRIFT_DETECTED: Final = "drift_detected"
EVENT_PERFORMANCE_UPDATED: Final = "performance_updated"
EVENT_ERROR_OCCURRED: Final = "error_occurred"
EVENT_SYSTEM_METRICS: Final = "system_metrics"

# --- metric names ---------------------------------------------------------------------------

ML_MODEL_PREDICTIONS: Final = "ml.model.predictions"
ML_MODEL_PREDICTION_DURATION: Final = "ml.model.prediction.duration"
ML_MODEL_PREDICTION_CONFIDENCE: Final = "ml.model.prediction.confidence"
ML_MODEL_BATCH_SIZE: Final = "ml.model.batch.size"
ML_MODEL_ERRORS: Final = "ml.model.errors"
ML_MODEL_INFO: Final = "ml.model.info"
ML_MODEL_LOAD_TIME: Final = "ml.model.load.time"
ML_MODEL_LABELS: Final = "ml.model.labels"
ML_MODEL_ACCURACY: Final = "ml.model.accuracy"
ML_MODEL_PRECISION: Final = "ml.model.precision"
ML_MODEL_RECALL: Final = "ml.model.recall"
ML_MODEL_F1_SCORE: Final = "ml.model.f1_score"
ML_MODEL_MAE: Final = "ml.model.mae"
ML_MODEL_RMSE: Final = "ml.model.rmse"
ML_MODEL_QUALITY_SAMPLES: Final = "ml.model.quality.samples"
ML_MODEL_CLASS_OVERFLOWS: Final = "ml.model.class.overflows"
ML_MONITOR_REJECTED_INPUTS: Final = "ml.monitor.rejected_inputs"
ML_DRIFT_SCORE: Final = "ml.drift.score"
ML_DRIFT_THRESHOLD: Final = "ml.drift.threshold"
ML_DRIFT_DETECTED: Final = "ml.drift.detected"
ML_DRIFT_TRANSITIONS: Final = "ml.drift.transitions"
ML_DRIFT_WINDOW_SAMPLES: Final = "ml.drift.window.samples"
ML_DRIFT_LIVE_VALUES: Final = "ml.drift.live.values"
ML_DRIFT_LIVE_VALUES_AT_OR_BELOW: Final = "ml.drift.live.values_at_or_below"
ML_DRIFT_REFERENCE_VALUES: Final = "ml.drift.reference.values"
ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW: Final = "ml.drift.reference.values_at_or_below"
ML_PROCESS_GPU_MEMORY_USAGE: Final = "ml.process.gpu.memory.usage"
HW_GPU_UTILIZATION: Final = "hw.gpu.utilization"
HW_GPU_MEMORY_USAGE: Final = "hw.gpu.memory.usage"
HW_GPU_MEMORY_LIMIT: Final = "hw.gpu.memory.limit"
HW_TEMPERATURE: Final = "hw.temperature"
HW_POWER: Final = "hw.power"

# Inference is mostly sub-second: fine buckets from 0.5 ms, coarse ones up to 10 s.
DURATION_BUCKETS: Final[Sequence[float]] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
CONFIDENCE_BUCKETS: Final[Sequence[float]] = (
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final[Sequence[float]] = (
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096,
)  # fmt: skip

MODEL_ATTRIBUTES: Final = (ML_MODEL_NAME, ML_MODEL_VERSION)

#: The quality gauges, classification first.
CLASSIFICATION_QUALITY_METRICS: Final = (
    ML_MODEL_ACCURACY, ML_MODEL_PRECISION, ML_MODEL_RECALL, ML_MODEL_F1_SCORE,
)  # fmt: skip
REGRESSION_QUALITY_METRICS: Final = (ML_MODEL_MAE, ML_MODEL_RMSE)
QUALITY_METRICS: Final = CLASSIFICATION_QUALITY_METRICS + REGRESSION_QUALITY_METRICS


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the conventions: what the docs table shows and the factories create."""

    name: str
    instrument: str
    unit: str
    attributes: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute key, its value set and where it comes from."""

    key: str
    values: str
    description: str


def _spec(
    name: str, instrument: str, unit: str, attributes: tuple[str, ...], description: str
) -> MetricSpec:
    return MetricSpec(name, instrument, unit, attributes, description)


_GPU_ATTRIBUTES: Final = (HW_ID, HW_NAME, HW_TYPE, HW_VENDOR, ML_GPU_INDEX)

#: Every metric otel-mlmon emits, in the order of the docs table.
METRICS: Final[tuple[MetricSpec, ...]] = (
    _spec(ML_MODEL_PREDICTIONS, "Counter", "{prediction}",
          (*MODEL_ATTRIBUTES, ML_PREDICTION_CLASS),
          "Predictions made, by predicted class (classification only). A batch counts each row."),
    _spec(ML_MODEL_PREDICTION_DURATION, "Histogram", "s",
          (*MODEL_ATTRIBUTES, ERROR_TYPE),
          "Wall-clock duration of one predict call (a batch is one call); error.type on failure."),
    _spec(ML_MODEL_PREDICTION_CONFIDENCE, "Histogram", "1",
          MODEL_ATTRIBUTES,
          "Confidence of each prediction, in [0, 1]."),
    _spec(ML_MODEL_BATCH_SIZE, "Histogram", "{row}",
          MODEL_ATTRIBUTES,
          "Rows per predict call that recorded an array."),
    _spec(ML_MODEL_ERRORS, "Counter", "{error}",
          (*MODEL_ATTRIBUTES, ERROR_TYPE),
          "Predict calls that raised, by exception type."),
    _spec(ML_MODEL_INFO, "ObservableGauge", "1",
          (*MODEL_ATTRIBUTES, ML_MODEL_TASK, ML_MODEL_FRAMEWORK),
          "Always 1; its attributes describe the model being served."),
    _spec(ML_MODEL_LOAD_TIME, "ObservableGauge", "s",
          MODEL_ATTRIBUTES,
          "When the current model version was loaded, as Unix time."),
    _spec(ML_MODEL_LABELS, "ObservableCounter", "{label}",
          (*MODEL_ATTRIBUTES, ML_LABEL_OUTCOME),
          "Delayed ground-truth labels received, by whether they joined a prediction."),
    _spec(ML_MODEL_ACCURACY, "ObservableGauge", "1", MODEL_ATTRIBUTES,
          "Accuracy over the labelled sliding window (classification)."),
    _spec(ML_MODEL_PRECISION, "ObservableGauge", "1", MODEL_ATTRIBUTES,
          "Macro-averaged precision over the labelled sliding window (classification)."),
    _spec(ML_MODEL_RECALL, "ObservableGauge", "1", MODEL_ATTRIBUTES,
          "Macro-averaged recall over the labelled sliding window (classification)."),
    _spec(ML_MODEL_F1_SCORE, "ObservableGauge", "1", MODEL_ATTRIBUTES,
          "Macro-averaged F1 score over the labelled sliding window (classification)."),
    _spec(ML_MODEL_MAE, "ObservableGauge", "{target}", MODEL_ATTRIBUTES,
          "Mean absolute error over the labelled sliding window (regression), target's unit."),
    _spec(ML_MODEL_RMSE, "ObservableGauge", "{target}", MODEL_ATTRIBUTES,
          "Root mean squared error over the labelled sliding window (regression)."),
    _spec(ML_MODEL_QUALITY_SAMPLES, "ObservableGauge", "{label}",
          MODEL_ATTRIBUTES,
          "Labelled predictions currently in the quality window."),
    _spec(ML_MODEL_CLASS_OVERFLOWS, "Counter", "{prediction}",
          MODEL_ATTRIBUTES,
          "Predictions whose class was reported as _OTHER because the class bound was reached."),
    _spec(ML_MONITOR_REJECTED_INPUTS, "Counter", "{input}",
          (*MODEL_ATTRIBUTES, ML_REJECTION_REASON),
          "Inputs the monitor could not use (never raised to the caller), by reason."),
    _spec(ML_DRIFT_SCORE, "ObservableGauge", "1",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_METHOD),
          "Drift statistic of the live window against the reference, per feature and method "
          "(p-value or distance, see ml.drift.threshold); ml.feature.name=_prediction for the "
          "model's outputs."),
    _spec(ML_DRIFT_THRESHOLD, "ObservableGauge", "1",
          (*MODEL_ATTRIBUTES, ML_DRIFT_METHOD),
          "Threshold of each drift method: drift when a p-value is below it, or a distance "
          "above it."),
    _spec(ML_DRIFT_DETECTED, "ObservableGauge", "1",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_METHOD),
          "1 while the feature drifts by that method, else 0."),
    _spec(ML_DRIFT_TRANSITIONS, "Counter", "{transition}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_METHOD, ML_DRIFT_STATE),
          "Transitions into (drift) and out of (no_drift) drift."),
    _spec(ML_DRIFT_WINDOW_SAMPLES, "ObservableGauge", "{row}",
          MODEL_ATTRIBUTES,
          "Rows currently in the live drift window."),
    _spec(ML_DRIFT_LIVE_VALUES, "ObservableCounter", "{value}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_BIN, ML_DRIFT_REFERENCE_ID),
          "Live values of a feature per bin of its reference (fleet drift: sum over processes; "
          "docs/drift.md), missing values in bin `missing`."),
    _spec(ML_DRIFT_LIVE_VALUES_AT_OR_BELOW, "ObservableCounter", "{value}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_BIN, ML_DRIFT_REFERENCE_ID),
          "Usable live values of a numeric feature in bins 0 to ml.drift.bin (for the binned KS)."),
    _spec(ML_DRIFT_REFERENCE_VALUES, "ObservableGauge", "{value}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_BIN, ML_DRIFT_REFERENCE_ID),
          "Reference values of a feature per bin (its share: divide by the sum over the bins)."),
    _spec(ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW, "ObservableGauge", "{value}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_BIN, ML_DRIFT_REFERENCE_ID),
          "Usable reference values of a numeric feature in bins 0 to ml.drift.bin."),
    _spec(HW_GPU_UTILIZATION, "ObservableGauge", "1",
          _GPU_ATTRIBUTES, "Fraction of time the GPU was busy over the last sample period."),
    _spec(HW_GPU_MEMORY_USAGE, "ObservableUpDownCounter", "By",
          _GPU_ATTRIBUTES, "GPU memory in use, all processes."),
    _spec(HW_GPU_MEMORY_LIMIT, "ObservableUpDownCounter", "By",
          _GPU_ATTRIBUTES, "Total GPU memory."),
    _spec(HW_TEMPERATURE, "ObservableGauge", "Cel",
          _GPU_ATTRIBUTES, "GPU temperature (hw.type=gpu)."),
    _spec(HW_POWER, "ObservableGauge", "W",
          _GPU_ATTRIBUTES, "GPU power draw (hw.type=gpu)."),
    _spec(ML_PROCESS_GPU_MEMORY_USAGE, "ObservableUpDownCounter", "By",
          _GPU_ATTRIBUTES, "GPU memory held by this process."),
)  # fmt: skip

#: Every attribute key otel-mlmon sets, in the order of the docs table.
ATTRIBUTES: Final[tuple[AttributeSpec, ...]] = (
    AttributeSpec(ML_MODEL_NAME, "set by the user", "Model name given to ModelMonitor."),
    AttributeSpec(ML_MODEL_VERSION, "set by the user", "Model version given to ModelMonitor."),
    AttributeSpec(ML_MODEL_TASK, "`classification`, `regression`, `other`", "Kind of model."),
    AttributeSpec(ML_MODEL_FRAMEWORK, "set by the user", "Library the model comes from."),
    AttributeSpec(ML_PREDICTION_ID, "16 hex digits (spans only)",
                  "Joins a delayed label to its prediction; never a metric attribute."),
    AttributeSpec(ML_PREDICTION_CLASS, "bounded set, overflow `_OTHER`",
                  "Predicted class (classification)."),
    AttributeSpec(ML_PREDICTION_CONFIDENCE, "[0, 1] (spans only)",
                  "Confidence of a single prediction."),
    AttributeSpec(ML_BATCH_SIZE, "integer (spans only)", "Rows in the predict call."),
    AttributeSpec(ML_LABEL_OUTCOME, "`matched`, `unknown_id`, `expired`, `invalid`",
                  "What happened to a delayed label."),
    AttributeSpec(ML_REJECTION_REASON, "documented fixed set",
                  "Why an input was not used (see docs/semantic-conventions.md); drift: "
                  "`drift_missing_value`, `drift_not_numeric` (per value), "
                  "`drift_wrong_width`, `drift_invalid_row` (per row), see docs/drift.md."),
    AttributeSpec(ML_FEATURE_NAME, "the configured feature names",
                  "Feature a drift measurement is about."),
    AttributeSpec(ML_DRIFT_METHOD,
                  "`ks`, `psi`, `jensen_shannon`, `wasserstein`, `chi_square`",
                  "Drift statistic (otel_mlmon.drift.statistics.METHODS); `ks` and "
                  "`chi_square` report p-values, the others distances."),
    AttributeSpec(ML_DRIFT_STATE, "`drift`, `no_drift`", "State a drift transition went into."),
    AttributeSpec(ML_DRIFT_BIN, "`0` ... `bins - 1`, `missing`",
                  "Index of a reference bin (never a feature value)."),
    AttributeSpec(ML_DRIFT_REFERENCE_ID, "12 hex digits",
                  "Digest of a feature's reference bins and counts: one per reference."),
    AttributeSpec(ML_GPU_INDEX, "NVML device index", "Index of the GPU on this host."),
    AttributeSpec(ML_REQUEST_ID, "1-128 of `A-Z a-z 0-9 . _ : -` (server spans only)",
                  "X-Request-ID of the request, as received when well formed, else generated."),
    AttributeSpec(ERROR_TYPE, "exception class, fully qualified", "OTel `error.type`."),
    AttributeSpec(HW_ID, "GPU UUID", "OTel `hw.id`."),
    AttributeSpec(HW_NAME, "GPU product name", "OTel `hw.name`."),
    AttributeSpec(HW_TYPE, "`gpu`", "OTel `hw.type`."),
    AttributeSpec(HW_VENDOR, "`nvidia`", "OTel `hw.vendor`."),
)  # fmt: skip

_BY_NAME: Final = {spec.name: spec for spec in METRICS}


def metric_spec(name: str) -> MetricSpec:
    """Return the spec of a metric of the conventions; ``KeyError`` for any other name."""
    return _BY_NAME[name]


def _counter(meter: Meter, name: str) -> Counter:
    spec = _BY_NAME[name]
    return meter.create_counter(spec.name, unit=spec.unit, description=spec.description)


def _histogram(meter: Meter, name: str, buckets: Sequence[float]) -> Histogram:
    spec = _BY_NAME[name]
    return meter.create_histogram(
        spec.name,
        unit=spec.unit,
        description=spec.description,
        explicit_bucket_boundaries_advisory=buckets,
    )


def _gauge(meter: Meter, name: str, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    spec = _BY_NAME[name]
    return meter.create_observable_gauge(
        spec.name, callbacks=callbacks, unit=spec.unit, description=spec.description
    )


def _up_down(meter: Meter, name: str, callbacks: Sequence[CallbackT]) -> ObservableUpDownCounter:
    spec = _BY_NAME[name]
    return meter.create_observable_up_down_counter(
        spec.name, callbacks=callbacks, unit=spec.unit, description=spec.description
    )


def create_ml_model_predictions(meter: Meter) -> Counter:
    """``ml.model.predictions``: predictions made, by predicted class."""
    return _counter(meter, ML_MODEL_PREDICTIONS)


def create_ml_model_prediction_duration(meter: Meter) -> Histogram:
    """``ml.model.prediction.duration``: seconds per predict call, millisecond buckets."""
    return _histogram(meter, ML_MODEL_PREDICTION_DURATION, DURATION_BUCKETS)


def create_ml_model_prediction_confidence(meter: Meter) -> Histogram:
    """``ml.model.prediction.confidence``: confidence of each prediction."""
    return _histogram(meter, ML_MODEL_PREDICTION_CONFIDENCE, CONFIDENCE_BUCKETS)


def create_ml_model_batch_size(meter: Meter) -> Histogram:
    """``ml.model.batch.size``: rows per predict call."""
    return _histogram(meter, ML_MODEL_BATCH_SIZE, BATCH_SIZE_BUCKETS)


def create_ml_model_errors(meter: Meter) -> Counter:
    """``ml.model.errors``: predict calls that raised, by ``error.type``."""
    return _counter(meter, ML_MODEL_ERRORS)


def create_ml_model_info(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.model.info``: 1, with the model's description as attributes."""
    return _gauge(meter, ML_MODEL_INFO, callbacks)


def create_ml_model_load_time(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.model.load.time``: Unix time the current version was loaded."""
    return _gauge(meter, ML_MODEL_LOAD_TIME, callbacks)


def create_ml_model_labels(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableCounter:
    """``ml.model.labels``: delayed labels received, by outcome (counted by the monitor,
    reported at collection time)."""
    spec = _BY_NAME[ML_MODEL_LABELS]
    return meter.create_observable_counter(
        spec.name, callbacks=callbacks, unit=spec.unit, description=spec.description
    )


def create_ml_model_quality_gauge(
    meter: Meter, name: str, callbacks: Sequence[CallbackT]
) -> ObservableGauge:
    """One of the quality gauges (``ml.model.accuracy`` ... ``ml.model.rmse``) by name."""
    if name not in QUALITY_METRICS:
        raise KeyError(f"{name!r} is not a quality metric")
    return _gauge(meter, name, callbacks)


def create_ml_model_quality_samples(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableGauge:
    """``ml.model.quality.samples``: labelled predictions in the quality window."""
    return _gauge(meter, ML_MODEL_QUALITY_SAMPLES, callbacks)


def create_ml_model_class_overflows(meter: Meter) -> Counter:
    """``ml.model.class.overflows``: predictions folded into the ``_OTHER`` class."""
    return _counter(meter, ML_MODEL_CLASS_OVERFLOWS)


def create_ml_monitor_rejected_inputs(meter: Meter) -> Counter:
    """``ml.monitor.rejected_inputs``: inputs not used, by ``ml.rejection.reason``."""
    return _counter(meter, ML_MONITOR_REJECTED_INPUTS)


def create_ml_drift_score(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.drift.score``: drift statistic per feature and method."""
    return _gauge(meter, ML_DRIFT_SCORE, callbacks)


def create_ml_drift_threshold(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.drift.threshold``: threshold per drift method."""
    return _gauge(meter, ML_DRIFT_THRESHOLD, callbacks)


def create_ml_drift_detected(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.drift.detected``: 1 while drifting, else 0."""
    return _gauge(meter, ML_DRIFT_DETECTED, callbacks)


def create_ml_drift_transitions(meter: Meter) -> Counter:
    """``ml.drift.transitions``: into and out of drift, by ``ml.drift.state``."""
    return _counter(meter, ML_DRIFT_TRANSITIONS)


def create_ml_drift_window_samples(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``ml.drift.window.samples``: rows in the live drift window."""
    return _gauge(meter, ML_DRIFT_WINDOW_SAMPLES, callbacks)


def _observable_counter(
    meter: Meter, name: str, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    spec = _BY_NAME[name]
    return meter.create_observable_counter(
        spec.name, callbacks=callbacks, unit=spec.unit, description=spec.description
    )


def create_ml_drift_live_values(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableCounter:
    """``ml.drift.live.values``: live values per reference bin (fleet drift)."""
    return _observable_counter(meter, ML_DRIFT_LIVE_VALUES, callbacks)


def create_ml_drift_live_values_at_or_below(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    """``ml.drift.live.values_at_or_below``: live values in bins 0 to ``ml.drift.bin``."""
    return _observable_counter(meter, ML_DRIFT_LIVE_VALUES_AT_OR_BELOW, callbacks)


def create_ml_drift_reference_values(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableGauge:
    """``ml.drift.reference.values``: reference values per bin."""
    return _gauge(meter, ML_DRIFT_REFERENCE_VALUES, callbacks)


def create_ml_drift_reference_values_at_or_below(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableGauge:
    """``ml.drift.reference.values_at_or_below``: reference values in bins 0 to ``ml.drift.bin``."""
    return _gauge(meter, ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW, callbacks)


def create_hw_gpu_utilization(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``hw.gpu.utilization`` (OTel hardware conventions), a 0-1 fraction."""
    return _gauge(meter, HW_GPU_UTILIZATION, callbacks)


def create_hw_gpu_memory_usage(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableUpDownCounter:
    """``hw.gpu.memory.usage`` (OTel hardware conventions), bytes."""
    return _up_down(meter, HW_GPU_MEMORY_USAGE, callbacks)


def create_hw_gpu_memory_limit(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableUpDownCounter:
    """``hw.gpu.memory.limit`` (OTel hardware conventions), bytes."""
    return _up_down(meter, HW_GPU_MEMORY_LIMIT, callbacks)


def create_hw_temperature(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``hw.temperature`` (OTel hardware conventions), degrees Celsius."""
    return _gauge(meter, HW_TEMPERATURE, callbacks)


def create_hw_power(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableGauge:
    """``hw.power`` (OTel hardware conventions), watts."""
    return _gauge(meter, HW_POWER, callbacks)


def create_ml_process_gpu_memory_usage(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableUpDownCounter:
    """``ml.process.gpu.memory.usage``: GPU memory held by this process, bytes."""
    return _up_down(meter, ML_PROCESS_GPU_MEMORY_USAGE, callbacks)


#: Factory per metric name, so tests can check every spec has exactly one factory.
FACTORIES: Final[dict[str, Callable[..., object]]] = {
    ML_MODEL_PREDICTIONS: create_ml_model_predictions,
    ML_MODEL_PREDICTION_DURATION: create_ml_model_prediction_duration,
    ML_MODEL_PREDICTION_CONFIDENCE: create_ml_model_prediction_confidence,
    ML_MODEL_BATCH_SIZE: create_ml_model_batch_size,
    ML_MODEL_ERRORS: create_ml_model_errors,
    ML_MODEL_INFO: create_ml_model_info,
    ML_MODEL_LOAD_TIME: create_ml_model_load_time,
    ML_MODEL_LABELS: create_ml_model_labels,
    **{
        name: create_ml_model_quality_gauge
        for name in (
            ML_MODEL_ACCURACY,
            ML_MODEL_PRECISION,
            ML_MODEL_RECALL,
            ML_MODEL_F1_SCORE,
            ML_MODEL_MAE,
            ML_MODEL_RMSE,
        )
    },
    ML_MODEL_QUALITY_SAMPLES: create_ml_model_quality_samples,
    ML_MODEL_CLASS_OVERFLOWS: create_ml_model_class_overflows,
    ML_MONITOR_REJECTED_INPUTS: create_ml_monitor_rejected_inputs,
    ML_DRIFT_SCORE: create_ml_drift_score,
    ML_DRIFT_THRESHOLD: create_ml_drift_threshold,
    ML_DRIFT_DETECTED: create_ml_drift_detected,
    ML_DRIFT_TRANSITIONS: create_ml_drift_transitions,
    ML_DRIFT_WINDOW_SAMPLES: create_ml_drift_window_samples,
    ML_DRIFT_LIVE_VALUES: create_ml_drift_live_values,
    ML_DRIFT_LIVE_VALUES_AT_OR_BELOW: create_ml_drift_live_values_at_or_below,
    ML_DRIFT_REFERENCE_VALUES: create_ml_drift_reference_values,
    ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW: create_ml_drift_reference_values_at_or_below,
    HW_GPU_UTILIZATION: create_hw_gpu_utilization,
    HW_GPU_MEMORY_USAGE: create_hw_gpu_memory_usage,
    HW_GPU_MEMORY_LIMIT: create_hw_gpu_memory_limit,
    HW_TEMPERATURE: create_hw_temperature,
    HW_POWER: create_hw_power,
    ML_PROCESS_GPU_MEMORY_USAGE: create_ml_process_gpu_memory_usage,
}


# --- drift (otel_mlmon.drift) ---------------------------------------------------------------

#: ``ml.drift.state`` values of ``ml.drift.transitions`` and of the drift event.
DRIFT_STATE_DRIFT: Final = "drift"
DRIFT_STATE_NO_DRIFT: Final = "no_drift"

#: ``ml.rejection.reason`` values of the drift processor. Value-level reasons count values
#: (the rest of the row is used); row-level reasons count rows (the row is not used).
REJECT_DRIFT_MISSING_VALUE: Final = "drift_missing_value"  # NaN, +-inf, None, absent key
REJECT_DRIFT_NOT_NUMERIC: Final = "drift_not_numeric"  # e.g. a word in a numeric feature
REJECT_DRIFT_WRONG_WIDTH: Final = "drift_wrong_width"  # row length != number of features
REJECT_DRIFT_INVALID_ROW: Final = "drift_invalid_row"  # neither a row, a batch nor a mapping
