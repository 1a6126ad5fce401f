"""Events: the one way otel-mlmon logs an event of its catalogue.

An event is a standard-library record on the ``otel_mlmon.events`` logger whose message is the
event name and whose fields are the record's ``extra`` attributes; its level is the one the
catalogue (:data:`otel_mlmon.semconv.EVENTS`) gives it. :func:`emit_event` makes one. With
:func:`~otel_mlmon.logs.configure_logging` the fields arrive flat on the JSON line and as
attributes of the OTel record; without it, the application's own ``logging`` setup sees them.

This module imports the standard library and :mod:`otel_mlmon.semconv` only, so the monitor,
the drift processor and the HTTP integrations emit events without loading structlog.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import MutableMapping
from typing import Any, Final

from opentelemetry import trace

from otel_mlmon import _random, semconv
from otel_mlmon._guard import guarded, warn_once
from otel_mlmon.logs._settings import settings

#: The logger every event is logged on.
EVENTS_LOGGER: Final = "otel_mlmon.events"

_events: Final = logging.getLogger(EVENTS_LOGGER)
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO,
                  "warning": logging.WARNING, "error": logging.ERROR}  # fmt: skip
#: Attributes of every LogRecord: an ``extra`` key among them would make logging raise.
_RESERVED: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}  # fmt: skip
_LOGGED: Final = "_otel_mlmon_logged"


def emit_event(
    name: str, /, *, exc_info: BaseException | None = None, level: int | None = None,
    **fields: Any,
) -> None:  # fmt: skip
    """Log event ``name`` of the catalogue with ``fields``, at its catalogue level.

    ``exc_info``: the exception the event reports (``request_failed``); it is written as
    ``exception.type`` and ``exception.stacktrace`` (its message only when opted in) and
    marked, so that a server's own later record of it is not written again; if an earlier
    line already carried its stack trace, only ``exception.type`` is written.

    ``level`` overrides the catalogue's for an event whose entry documents a second level
    (``drift_detected`` at INFO when a feature leaves drift). A name outside the catalogue is
    logged at INFO with a warning once; a field named like a ``LogRecord`` attribute gets a
    trailing ``_``. Never raises.

    .. versionadded:: 0.2.0
    """
    spec = semconv.event_spec(name)
    if level is None:
        level = _LEVELS[spec.level] if spec is not None else logging.INFO
    if spec is None:
        warn_once(f"logs.unknown_event.{name}", "otel-mlmon: %r is not a catalogued event", name)
    if not _events.isEnabledFor(level):
        return
    with guarded("logs.emit_event"):
        if not _RESERVED.isdisjoint(fields):
            fields = {(f"{k}_" if k in _RESERVED else k): v for k, v in fields.items()}
        if exc_info is not None and was_logged(exc_info):
            # An earlier line (the framework's own) carried its stack trace: name it only.
            fields[semconv.EXCEPTION_TYPE] = semconv.error_type(type(exc_info))
            exc_info = None
        _events.log(level, name, exc_info=exc_info, extra=fields, stacklevel=2)
        if exc_info is not None:
            mark_logged(exc_info)


def mark_logged(exc: BaseException) -> None:
    """Remember that ``exc`` was written once, with its stack trace."""
    with contextlib.suppress(AttributeError, TypeError):  # a type without a __dict__
        setattr(exc, _LOGGED, True)


def was_logged(exc: object) -> bool:
    """Whether an event already wrote ``exc`` (:func:`mark_logged`)."""
    return bool(getattr(exc, _LOGGED, False))


def log_event(name: str, /, *, logger: Any = None, **fields: Any) -> None:
    """Log event ``name``: the same as :func:`emit_event`.

    .. deprecated:: 0.2.0
        Use :func:`emit_event`; ``logger`` is ignored (every event is logged on
        ``otel_mlmon.events``).

    .. versionadded:: 0.1.0
    """
    warnings.warn(
        "otel_mlmon.logs.log_event() is deprecated; use otel_mlmon.logs.emit_event()",
        DeprecationWarning,
        stacklevel=2,
    )
    emit_event(name, **fields)


def _sampled(rate: float) -> bool:
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    # Decided by the trace ID where there is one, like the SDK's TraceIdRatioBased sampler, so
    # all prediction events of one trace are kept or dropped together.
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return (span_context.trace_id & 0xFFFF_FFFF_FFFF_FFFF) < rate * 2**64
    return _random.uniform_0_1() < rate


def log_prediction(
    prediction: Any,
    *,
    confidence: float | None = None,
    prediction_id: str | None = None,
    batch_size: int | None = None,
    duration_s: float | None = None,
    features: Any = None,
    include_features: bool | None = None,
    sample_rate: float | None = None,
    logger: Any = None,
    **fields: Any,
) -> bool:
    """Log a ``prediction_made`` event, sampled; ``True`` when it was kept.

    ``sample_rate`` (default: ``configure_logging(sample_predictions=...)``) is the fraction
    kept. ``features`` is logged only with ``include_features=True`` (default:
    ``configure_logging(include_features=...)``); otherwise it is left out. The model name and
    version come from the prediction in progress (:func:`~otel_mlmon.logs.add_model_context`).
    ``logger`` is deprecated and ignored: the event is logged on ``otel_mlmon.events``.

    .. versionadded:: 0.1.0
    """
    if logger is not None:
        warnings.warn("log_prediction(logger=...) is ignored", DeprecationWarning, stacklevel=2)
    rate = settings.sample_predictions if sample_rate is None else sample_rate
    if not _sampled(rate):
        return False
    event: MutableMapping[str, Any] = {"prediction": prediction, **fields}
    if confidence is not None:
        event[semconv.ML_PREDICTION_CONFIDENCE] = confidence
    if prediction_id is not None:
        event[semconv.ML_PREDICTION_ID] = prediction_id
    if batch_size is not None:
        event[semconv.ML_BATCH_SIZE] = batch_size
    if duration_s is not None:
        event["duration_s"] = duration_s
    keep_features = settings.include_features if include_features is None else include_features
    if keep_features and features is not None:
        event["features"] = features
    emit_event(semconv.EVENT_PREDICTION_MADE, **event)
    return True
