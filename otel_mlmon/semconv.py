"""The single source of otel-mlmon's metric names, units, instruments and attribute keys.

Dashboards, alert rules and ``docs/semantic-conventions.md`` are written against these names; a
test renders :data:`METRICS` and :data:`ATTRIBUTES` and fails when the document disagrees.

Our own names live under ``ml.``; where an OpenTelemetry semantic convention exists it is reused
(``error.type``, ``hw.*``, ``process.*``, ``service.*``). Names follow the OTel naming rules:
lower-case, dot-separated, UCUM units, no unit and no ``_total`` in the name.

Each metric has a ``create_<name>(meter)`` factory that fixes its instrument kind, unit,
description and (for histograms) advisory bucket boundaries, so every call site creates it the
same way. The log events (:data:`EVENTS`: names, levels, fields, emitter) are catalogued here
too, rendered in the same document.

Longer than 400 lines because it is one table, kept in one place on purpose: every name a
dashboard, a rule or a log query depends on, read top to bottom.
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
ML_LABEL_CLASS: Final = "ml.label.class"
ML_REJECTION_REASON: Final = "ml.rejection.reason"
#: ``shadow`` on every series of a shadow's predictions (ModelMonitor.shadow()); absent on a
#: served version's.
ML_MODEL_ROLE: Final = "ml.model.role"
ML_OUTCOME_KIND: Final = "ml.outcome.kind"
ML_OUTCOME_STATUS: Final = "ml.outcome.status"
ML_SHADOW_AGREEMENT: Final = "ml.shadow.agreement"
ML_SHADOW_CHAMPION_VERSION: Final = "ml.shadow.champion.version"
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
SERVER_PORT: Final = "server.port"

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
LABEL_INVALID: Final = "invalid"
LABEL_EXPIRED: Final = "expired"
LABEL_DUPLICATE: Final = "duplicate"

#: ``ml.model.role`` of a shadow (a challenger recorded on live traffic, never served).
ROLE_SHADOW: Final = "shadow"

#: ``ml.outcome.status`` values (``ml.model.outcomes``): what happened to a business outcome.
OUTCOME_MATCHED: Final = "matched"
OUTCOME_INVALID: Final = "invalid"
OUTCOME_EXPIRED: Final = "expired"
OUTCOME_BAD_VALUE: Final = "bad_value"
OUTCOME_UNKNOWN_KIND: Final = "unknown_kind"
#: ``ml.outcome.kind`` of an outcome whose kind was not declared (Outcomes(kinds=...)).
OTHER_OUTCOME_KIND: Final = "_OTHER"

#: ``ml.shadow.agreement`` values: the shadow's output against the served one, per row.
SHADOW_AGREE: Final = "agree"
SHADOW_DISAGREE: Final = "disagree"

#: ``ml.rejection.reason`` values: why an input was not used, with what it means.
REJECT_CONFIDENCE_INVALID: Final = "confidence_invalid"
REJECT_CONFIDENCE_LENGTH: Final = "confidence_length_mismatch"
REJECT_PREDICTION_INVALID: Final = "prediction_invalid"
REJECT_RECORDED_TWICE: Final = "recorded_twice"
REJECT_VALUE_TRUNCATED: Final = "value_truncated"
REJECT_SHADOW_UNPAIRED: Final = "shadow_unpaired"
REJECTION_REASONS: Final[dict[str, str]] = {
    REJECT_CONFIDENCE_INVALID: "A confidence that is not a finite number in [0, 1].",
    REJECT_CONFIDENCE_LENGTH: "A batch whose confidences do not match its predictions.",
    REJECT_PREDICTION_INVALID: "A prediction that is None, or not a finite number (regression).",
    REJECT_RECORDED_TWICE: "A second record() on the same prediction.",
    REJECT_VALUE_TRUNCATED: "A class or label whose text was cut to the attribute value length "
    "limit (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, default 256 characters); the cut text is used.",
    REJECT_SHADOW_UNPAIRED: "A shadow prediction that could not be compared with the served one "
    "(nothing usable recorded on either, or batches of different lengths).",
}

# --- log events -----------------------------------------------------------------------------

#: Event names: the message of a record on the ``otel_mlmon.events`` logger, the body of its
#: OTel log record. :data:`EVENTS` describes each.
EVENT_REQUEST_COMPLETED: Final = "request_completed"
EVENT_REQUEST_FAILED: Final = "request_failed"
EVENT_PREDICTION_MADE: Final = "prediction_made"
EVENT_MODEL_LOADED: Final = "model_loaded"
EVENT_MODEL_UPDATED: Final = "model_updated"
EVENT_DRIFT_DETECTED: Final = "drift_detected"

# Reused from the OpenTelemetry HTTP and exception conventions, as event fields.
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"


@dataclass(frozen=True)
class EventSpec:
    """One log event: its name, level, fields, the code that emits it, and when.

    ``level`` is a standard-library level name in lower case (``info``, ``warning``,
    ``error``); ``fields`` pairs each field key with what it holds. The correlation fields
    (``trace_id``, ``span_id``, ``request_id``, ``service.name``) come on top.
    """

    name: str
    level: str
    fields: tuple[tuple[str, str], ...]
    emitted_by: str
    description: str


_HTTP_FIELDS: Final = (
    (HTTP_REQUEST_METHOD, "HTTP method"),
    (HTTP_ROUTE, "route template, never the raw path; absent when no route matched"),
)
_MODEL_FIELDS: Final = (
    (ML_MODEL_NAME, "model name"),
    (ML_MODEL_VERSION, "model version"),
)
_EXCEPTION_FIELDS: Final = (
    (EXCEPTION_TYPE, "exception class, fully qualified"),
    (EXCEPTION_STACKTRACE, "the traceback; exception messages only when opted in"),
    (EXCEPTION_MESSAGE, "only with record_exception_messages=True"),
)

#: Every log event otel-mlmon emits, in the order of the docs table. Each is emitted by the
#: code named in ``emitted_by``, and a test runs that code and captures the event.
EVENTS: Final[tuple[EventSpec, ...]] = (
    EventSpec(EVENT_REQUEST_COMPLETED, "info",
              (*_HTTP_FIELDS, (HTTP_RESPONSE_STATUS_CODE, "status code sent"),
               ("duration_s", "seconds from the request to the end of the app's handling")),
              "instrument_fastapi / instrument_flask, once per request",
              "A request was answered without an unhandled exception (any status code)."),
    EventSpec(EVENT_REQUEST_FAILED, "error",
              (*_HTTP_FIELDS, (HTTP_RESPONSE_STATUS_CODE, "status code sent, if one was"),
               (ERROR_TYPE, "exception class, fully qualified"),
               ("duration_s", "seconds until the failure"), *_EXCEPTION_FIELDS),
              "instrument_fastapi / instrument_flask, once per request",
              "The app raised an unhandled exception: the one line that carries it."),
    EventSpec(EVENT_PREDICTION_MADE, "info",
              (*_MODEL_FIELDS, (ML_PREDICTION_ID, "joins a delayed label"),
               ("prediction", "the predicted value (a list for a batch)"),
               (ML_PREDICTION_CONFIDENCE, "confidence in [0, 1]"),
               (ML_BATCH_SIZE, "rows in the call"),
               ("duration_s", "seconds the prediction took"),
               ("features", "the raw features: only with include_features=True")),
              "otel_mlmon.logs.log_prediction(), called by the service",
              "A prediction was made; sampled by sample_predictions."),
    EventSpec(EVENT_MODEL_LOADED, "info",
              (*_MODEL_FIELDS, (ML_MODEL_FRAMEWORK, "library the model comes from"),
               ("metrics.<name>", "offline metrics of this version")),
              "ModelMonitor.model_loaded()",
              "A model version was loaded."),
    EventSpec(EVENT_MODEL_UPDATED, "info",
              ((ML_MODEL_NAME, "model name"), ("old_version", "version replaced"),
               ("new_version", "version now served"), ("reason", "why, if given"),
               ("metrics.<name>", "offline metrics of the new version")),
              "ModelMonitor.update_model()",
              "The served version changed."),
    EventSpec(EVENT_DRIFT_DETECTED, "warning",
              (*_MODEL_FIELDS, (ML_FEATURE_NAME, "feature, or _prediction"),
               (ML_DRIFT_METHOD, "drift statistic"),
               (ML_DRIFT_STATE, "drift, or no_drift (then at INFO)"),
               ("score", "statistic of the live window"), ("threshold", "its threshold"),
               ("samples", "rows in the live window")),
              "ModelMonitor's drift processor, when a metric reader collects ml.drift.*",
              "A feature went into drift, or (at INFO) back out of it."),
)  # fmt: skip

_EVENTS_BY_NAME: Final = {spec.name: spec for spec in EVENTS}


def event_spec(name: str) -> EventSpec | None:
    """The spec of event ``name``, or ``None`` for a name outside the catalogue."""
    return _EVENTS_BY_NAME.get(name)


# --- metric names ---------------------------------------------------------------------------

ML_MODEL_PREDICTIONS: Final = "ml.model.predictions"
ML_MODEL_PREDICTION_DURATION: Final = "ml.model.prediction.duration"
ML_MODEL_PREDICTION_CONFIDENCE: Final = "ml.model.prediction.confidence"
ML_MODEL_BATCH_SIZE: Final = "ml.model.batch.size"
ML_MODEL_ERRORS: Final = "ml.model.errors"
ML_MODEL_INFO: Final = "ml.model.info"
#: A timestamp, not a duration: ``ml_model_load_timestamp_seconds`` in Prometheus.
ML_MODEL_LOAD_TIME: Final = "ml.model.load.timestamp"
ML_MODEL_LABELS: Final = "ml.model.labels"
ML_MODEL_ABSOLUTE_ERROR: Final = "ml.model.absolute_error"
ML_MODEL_SQUARED_ERROR: Final = "ml.model.squared_error"
ML_MODEL_CLASS_OVERFLOWS: Final = "ml.model.class.overflows"
ML_MODEL_OUTCOMES: Final = "ml.model.outcomes"
ML_MODEL_OUTCOME_VALUE: Final = "ml.model.outcome.value"
ML_MODEL_OUTCOME_SCORE: Final = "ml.model.outcome.score"
ML_MODEL_SHADOW_COMPARISONS: Final = "ml.model.shadow.comparisons"
ML_MONITOR_REJECTED_INPUTS: Final = "ml.monitor.rejected_inputs"
ML_MONITOR_ENDPOINT_ERRORS: Final = "ml.monitor.endpoint.errors"
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
# Scores people give: a fraction (0-1), stars (1-5), a 0-10 scale; whole numbers fall on a bound.
SCORE_BUCKETS: Final[Sequence[float]] = (
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
)  # fmt: skip
#: Unit of ml.model.outcome.value unless Outcomes(unit=...) declares one (a currency: {USD}).
DEFAULT_OUTCOME_UNIT: Final = "{value}"

MODEL_ATTRIBUTES: Final = (ML_MODEL_NAME, ML_MODEL_VERSION)

#: Quality counters of a regression (MAE = absolute_error / matched labels, RMSE = the root of
#: squared_error / matched labels); a classifier's quality is the matched ml.model.labels.
REGRESSION_QUALITY_METRICS: Final = (ML_MODEL_ABSOLUTE_ERROR, ML_MODEL_SQUARED_ERROR)


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

#: Every metric otel-mlmon emits, in the order of the docs table. Unit ``1`` is for true ratios
#: only (a fraction of a whole, in [0, 1]); other dimensionless values carry an annotation
#: (``{score}``: a PSI of 4.3 is no ratio), so that no backend calls them ratios.
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
    _spec(ML_MODEL_INFO, "ObservableGauge", "{model}",
          (*MODEL_ATTRIBUTES, ML_MODEL_TASK, ML_MODEL_FRAMEWORK),
          "Always 1; its attributes describe the model being served."),
    _spec(ML_MODEL_LOAD_TIME, "ObservableGauge", "s",
          MODEL_ATTRIBUTES,
          "Unix time, in seconds, at which the current model version was loaded."),
    _spec(ML_MODEL_LABELS, "ObservableCounter", "{label}",
          (*MODEL_ATTRIBUTES, ML_LABEL_OUTCOME, ML_PREDICTION_CLASS, ML_LABEL_CLASS),
          "Delayed ground-truth labels received, by outcome; matched labels of a classifier also "
          "by predicted and label class (the confusion matrix). Summed over processes."),
    _spec(ML_MODEL_ABSOLUTE_ERROR, "ObservableCounter", "{target}", MODEL_ATTRIBUTES,
          "Sum of |prediction - label| over matched labels (regression): MAE is this over the "
          "matched ml.model.labels."),
    _spec(ML_MODEL_SQUARED_ERROR, "ObservableCounter", "{target_squared}", MODEL_ATTRIBUTES,
          "Sum of (prediction - label)^2 over matched labels (regression): RMSE is the square "
          "root of this over the matched ml.model.labels."),
    _spec(ML_MODEL_CLASS_OVERFLOWS, "Counter", "{prediction}",
          MODEL_ATTRIBUTES,
          "Predictions whose class was reported as _OTHER because the class bound was reached."),
    _spec(ML_MODEL_OUTCOMES, "ObservableCounter", "{outcome}",
          (*MODEL_ATTRIBUTES, ML_OUTCOME_KIND, ML_OUTCOME_STATUS),
          "Business outcomes received (record_outcome), by declared kind and status; matched "
          "ones count for the version that made the prediction. Summed over processes."),
    _spec(ML_MODEL_OUTCOME_VALUE, "ObservableCounter", DEFAULT_OUTCOME_UNIT,
          (*MODEL_ATTRIBUTES, ML_OUTCOME_KIND),
          "Sum of the values of matched outcomes (revenue, ...), by kind, for the version that "
          "made the prediction; the unit is the one Outcomes(unit=...) declares, e.g. {USD}."),
    _spec(ML_MODEL_OUTCOME_SCORE, "Histogram", "{score}",
          (*MODEL_ATTRIBUTES, ML_OUTCOME_KIND),
          "Scores of matched outcomes of a score kind (a rating), for the version that made "
          "the prediction."),
    _spec(ML_MODEL_SHADOW_COMPARISONS, "ObservableCounter", "{comparison}",
          (*MODEL_ATTRIBUTES, ML_MODEL_ROLE, ML_SHADOW_CHAMPION_VERSION, ML_SHADOW_AGREEMENT),
          "Shadow predictions compared with the served prediction of the same request, per "
          "row, by agreement: agree / all is the agreement rate."),
    _spec(ML_MONITOR_REJECTED_INPUTS, "Counter", "{input}",
          (*MODEL_ATTRIBUTES, ML_REJECTION_REASON),
          "Inputs the monitor could not use (never raised to the caller), by reason."),
    _spec(ML_MONITOR_ENDPOINT_ERRORS, "Counter", "{error}",
          (ERROR_TYPE, SERVER_PORT),
          "Times the embedded Prometheus endpoint could not take its port (another program "
          "holds it); the service runs on and the endpoint retries."),
    _spec(ML_DRIFT_SCORE, "ObservableGauge", "{score}",
          (*MODEL_ATTRIBUTES, ML_FEATURE_NAME, ML_DRIFT_METHOD),
          "Drift statistic of the live window against the reference, per feature and method "
          "(p-value or distance, see ml.drift.threshold); ml.feature.name=_prediction for the "
          "model's outputs."),
    _spec(ML_DRIFT_THRESHOLD, "ObservableGauge", "{score}",
          (*MODEL_ATTRIBUTES, ML_DRIFT_METHOD),
          "Threshold of each drift method: drift when a p-value is below it, or a distance "
          "above it."),
    _spec(ML_DRIFT_DETECTED, "ObservableGauge", "{feature}",
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
    AttributeSpec(ML_PREDICTION_ID, "signed id, base64url, 28-40 characters (spans only)",
                  "Joins a delayed label to its prediction; never a metric attribute."),
    AttributeSpec(ML_PREDICTION_CLASS, "bounded set, overflow `_OTHER`",
                  "Predicted class (classification)."),
    AttributeSpec(ML_PREDICTION_CONFIDENCE, "[0, 1] (spans only)",
                  "Confidence of a single prediction."),
    AttributeSpec(ML_BATCH_SIZE, "integer (spans only)", "Rows in the predict call."),
    AttributeSpec(ML_LABEL_OUTCOME, "`matched`, `invalid`, `expired`, `duplicate`",
                  "What happened to a delayed label (docs/instrumentation.md, Delayed labels)."),
    AttributeSpec(ML_LABEL_CLASS, "bounded set, overflow `_OTHER`",
                  "Ground-truth class of a matched label (classification), bounded with "
                  "ml.prediction.class."),
    AttributeSpec(ML_MODEL_ROLE, "`shadow` (absent: served)",
                  "On every series of a shadow's predictions (ModelMonitor.shadow())."),
    AttributeSpec(ML_OUTCOME_KIND, "declared set (Outcomes), overflow `_OTHER`",
                  "Kind of business outcome (revenue, click, rating, ...)."),
    AttributeSpec(ML_OUTCOME_STATUS,
                  "`matched`, `invalid`, `expired`, `bad_value`, `unknown_kind`",
                  "What happened to an outcome (docs/rollouts.md)."),
    AttributeSpec(ML_SHADOW_AGREEMENT, "`agree`, `disagree`",
                  "Whether a shadow's output equals the served one (a regression: within "
                  "the shadow's tolerance)."),
    AttributeSpec(ML_SHADOW_CHAMPION_VERSION, "a served version",
                  "Version whose served prediction a shadow's was compared with."),
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
    AttributeSpec(SERVER_PORT, "the configured port",
                  "OTel `server.port`: port of the embedded Prometheus endpoint."),
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
    """``ml.model.load.timestamp``: Unix time the current version was loaded."""
    return _gauge(meter, ML_MODEL_LOAD_TIME, callbacks)


def _observable_counter(
    meter: Meter, name: str, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    spec = _BY_NAME[name]
    return meter.create_observable_counter(
        spec.name, callbacks=callbacks, unit=spec.unit, description=spec.description
    )


def create_ml_model_labels(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableCounter:
    """``ml.model.labels``: delayed labels received, by outcome and (matched, classification)
    class pair (counted by the monitor, reported at collection time)."""
    return _observable_counter(meter, ML_MODEL_LABELS, callbacks)


def create_ml_model_absolute_error(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    """``ml.model.absolute_error``: sum of absolute errors of matched regression labels."""
    return _observable_counter(meter, ML_MODEL_ABSOLUTE_ERROR, callbacks)


def create_ml_model_squared_error(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    """``ml.model.squared_error``: sum of squared errors of matched regression labels."""
    return _observable_counter(meter, ML_MODEL_SQUARED_ERROR, callbacks)


def create_ml_model_outcomes(meter: Meter, callbacks: Sequence[CallbackT]) -> ObservableCounter:
    """``ml.model.outcomes``: business outcomes received, by kind and status."""
    return _observable_counter(meter, ML_MODEL_OUTCOMES, callbacks)


def create_ml_model_outcome_value(
    meter: Meter, callbacks: Sequence[CallbackT], unit: str = DEFAULT_OUTCOME_UNIT
) -> ObservableCounter:
    """``ml.model.outcome.value``: sum of matched outcome values, in ``unit`` (``{USD}``)."""
    spec = _BY_NAME[ML_MODEL_OUTCOME_VALUE]
    return meter.create_observable_counter(
        spec.name, callbacks=callbacks, unit=unit, description=spec.description
    )


def create_ml_model_outcome_score(meter: Meter) -> Histogram:
    """``ml.model.outcome.score``: scores (ratings) of matched outcomes."""
    return _histogram(meter, ML_MODEL_OUTCOME_SCORE, SCORE_BUCKETS)


def create_ml_model_shadow_comparisons(
    meter: Meter, callbacks: Sequence[CallbackT]
) -> ObservableCounter:
    """``ml.model.shadow.comparisons``: shadow rows compared with served ones, by agreement."""
    return _observable_counter(meter, ML_MODEL_SHADOW_COMPARISONS, callbacks)


def create_ml_model_class_overflows(meter: Meter) -> Counter:
    """``ml.model.class.overflows``: predictions folded into the ``_OTHER`` class."""
    return _counter(meter, ML_MODEL_CLASS_OVERFLOWS)


def create_ml_monitor_rejected_inputs(meter: Meter) -> Counter:
    """``ml.monitor.rejected_inputs``: inputs not used, by ``ml.rejection.reason``."""
    return _counter(meter, ML_MONITOR_REJECTED_INPUTS)


def create_ml_monitor_endpoint_errors(meter: Meter) -> Counter:
    """``ml.monitor.endpoint.errors``: the Prometheus endpoint could not bind its port."""
    return _counter(meter, ML_MONITOR_ENDPOINT_ERRORS)


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
    ML_MODEL_ABSOLUTE_ERROR: create_ml_model_absolute_error,
    ML_MODEL_SQUARED_ERROR: create_ml_model_squared_error,
    ML_MODEL_CLASS_OVERFLOWS: create_ml_model_class_overflows,
    ML_MODEL_OUTCOMES: create_ml_model_outcomes,
    ML_MODEL_OUTCOME_VALUE: create_ml_model_outcome_value,
    ML_MODEL_OUTCOME_SCORE: create_ml_model_outcome_score,
    ML_MODEL_SHADOW_COMPARISONS: create_ml_model_shadow_comparisons,
    ML_MONITOR_REJECTED_INPUTS: create_ml_monitor_rejected_inputs,
    ML_MONITOR_ENDPOINT_ERRORS: create_ml_monitor_endpoint_errors,
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
