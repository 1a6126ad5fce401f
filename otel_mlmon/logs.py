"""Logs correlated with traces, request IDs and models, exported as OpenTelemetry log records.

.. code-block:: python

    otel_mlmon.configure_logging()          # once; configure() does it unless logs=False
    log = otel_mlmon.get_logger(__name__)   # a structlog logger
    log.info("prediction_made", prediction=1, confidence=0.93)

Every line, from structlog or from the standard :mod:`logging` module, goes through one chain of
plain structlog processors (:data:`SHARED_PROCESSORS`): :func:`add_trace_context` (``trace_id``
as 32 and ``span_id`` as 16 lower-case hex digits, as the OTel log data model and Loki store
them), :func:`add_request_context` (``request_id``), :func:`add_model_context`
(``ml.model.name`` / ``ml.model.version`` inside ``ModelMonitor.predict()``) and
:func:`add_service` (``service.name`` of the LoggerProvider's resource). Each processor adds
keys with ``setdefault``: a value the caller passed is never overwritten.

The same event then becomes an OTel log record through :class:`OTelLogEmitter`, which extends
the contrib ``opentelemetry-instrumentation-structlog`` ``StructlogProcessor``: body = the event
name, severity from the level, trace and span IDs on the record itself (from the current OTel
context), the other fields as attributes with nested mappings flattened to dotted keys
(:func:`flatten_attributes`), and ``exception.type`` / ``exception.message`` /
``exception.stacktrace`` for ``log.exception()``. The SDK's ``BatchLogRecordProcessor`` that
:func:`otel_mlmon.configure` installs queues it; a full queue drops the record, never blocking
the caller, and the SDK counts the drop in ``otel.sdk.processor.log.processed``
(``error.type=queue_full``) when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``.

The module is ``logs``, not ``logging``, so that it never shadows the standard library.
"""

from __future__ import annotations

import json
import logging
import numbers
import random
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, Final, Literal, cast

import structlog
from opentelemetry import _logs as logs_api
from opentelemetry import trace
from opentelemetry.instrumentation.structlog import StructlogProcessor
from opentelemetry.semconv.attributes import exception_attributes
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_mlmon import _compat, context, semconv
from otel_mlmon._guard import guarded, report_internal_error, strict, warn_once
from otel_mlmon.exceptions import ConfigurationError

__all__ = [
    "EVENTS",
    "EventSpec",
    "OTelLogEmitter",
    "REQUEST_ID",
    "Renderer",
    "SERVICE_NAME",
    "SHARED_PROCESSORS",
    "SPAN_ID",
    "TRACE_ID",
    "add_model_context",
    "add_request_context",
    "add_service",
    "add_trace_context",
    "configure_logging",
    "flatten_attributes",
    "get_logger",
    "log_event",
    "log_prediction",
]

Renderer = Literal["json", "console"]

#: Event-dict keys the processors add.
TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
REQUEST_ID: Final = "request_id"
SERVICE_NAME: Final = "service.name"

#: Keys of an event dict that are not exported as attributes: they are the record's body,
#: timestamp, severity, trace context, scope name or resource, or structlog's own bookkeeping.
EXPORT_DROPPED_KEYS: Final = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "logger",
        "exc_info",
        "exception",
        "stack_info",
        "positional_args",
        "message",
        "asctime",
        TRACE_ID,
        SPAN_ID,
        SERVICE_NAME,
    }
)

#: Nesting depth flattened to dotted keys; anything deeper is JSON-serialised.
MAX_FLATTEN_DEPTH: Final = 4

_logger: Final = logging.getLogger("otel_mlmon")


# --- processors -----------------------------------------------------------------------------


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` (32 hex digits) and ``span_id`` (16) of the current span, if valid.

    .. versionadded:: 0.1.0
    """
    with guarded("logs.add_trace_context"):
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event_dict.setdefault(TRACE_ID, format(span_context.trace_id, "032x"))
            event_dict.setdefault(SPAN_ID, format(span_context.span_id, "016x"))
    return event_dict


def add_request_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``request_id`` of the request being handled (:func:`otel_mlmon.context.get_request_id`).

    .. versionadded:: 0.1.0
    """
    request_id = context.get_request_id()
    if request_id is not None:
        event_dict.setdefault(REQUEST_ID, request_id)
    return event_dict


def add_model_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``ml.model.name`` and ``ml.model.version`` inside ``ModelMonitor.predict()``.

    .. versionadded:: 0.1.0
    """
    model = context.get_model()
    if model is not None:
        event_dict.setdefault(semconv.ML_MODEL_NAME, model.name)
        event_dict.setdefault(semconv.ML_MODEL_VERSION, model.version)
    return event_dict


class _Service:
    """The service name lines carry: set by configure_logging(), else read from the global
    LoggerProvider's resource the first time it has one."""

    name: str | None = None


def _service_name_of(provider: object) -> str | None:
    resource = getattr(provider, "resource", None)
    attributes = getattr(resource, "attributes", None)
    if isinstance(attributes, Mapping):
        name = attributes.get(SERVICE_NAME)
        if isinstance(name, str) and name:
            return name
    return None


def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``service.name`` from the LoggerProvider's resource.

    The provider is the one given to :func:`configure_logging`, else the global one.

    .. versionadded:: 0.1.0
    """
    name = _Service.name
    if name is None:
        name = _Service.name = _service_name_of(logs_api.get_logger_provider())
    if name is not None:
        event_dict.setdefault(SERVICE_NAME, name)
    return event_dict


#: The correlation processors, in order, to put into your own structlog chain.
SHARED_PROCESSORS: Final[tuple[Processor, ...]] = (
    add_trace_context,
    add_request_context,
    add_model_context,
    add_service,
)


# --- export -----------------------------------------------------------------------------------


def _scalar(value: Any) -> str | bool | int | float | None:
    """``value`` as an OTel attribute scalar, or ``None`` when it is not one."""
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def _json_default(value: Any) -> Any:
    # numpy arrays and scalars, then anything else by its str(): a log line never fails.
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                return convert()
            except Exception:
                break
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _sequence(value: Sequence[Any]) -> Sequence[Any] | str:
    items = [_scalar(item) for item in value]
    kinds = {type(item) for item in items}
    if all(item is not None for item in items) and len(kinds) <= 1:
        return tuple(items)
    return _dumps(list(value))


def flatten_attributes(
    fields: Mapping[str, Any], *, max_depth: int = MAX_FLATTEN_DEPTH
) -> dict[str, Any]:
    """Turn event fields into OTel log attributes.

    Strings, booleans, integers and floats (numpy scalars included) are kept; ``None`` is left
    out; a mapping is flattened into dotted keys (``{"metrics": {"f1": 0.9}}`` becomes
    ``metrics.f1 = 0.9``) down to ``max_depth`` levels and JSON-serialised below that; a list
    or tuple of one scalar type is kept as an array, any other sequence (or numpy array) is
    JSON-serialised; anything else becomes its ``str()``.

    .. versionadded:: 0.1.0
    """
    out: dict[str, Any] = {}

    def add(key: str, value: Any, depth: int) -> None:
        if value is None:
            return
        scalar = _scalar(value)
        if scalar is not None:
            out[key] = scalar
        elif isinstance(value, Mapping):
            if depth >= max_depth:
                out[key] = _dumps(value)
                return
            for sub_key, sub_value in value.items():
                add(f"{key}.{sub_key}", sub_value, depth + 1)
        elif isinstance(value, (list, tuple)):
            out[key] = _sequence(value)
        elif callable(getattr(value, "tolist", None)):
            out[key] = _dumps(value)
        else:
            out[key] = str(value)

    for key, value in fields.items():
        add(str(key), value, 1)
    return out


def _exception_attributes(exc_info: Any) -> dict[str, str]:
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or exc_info[0] is None:
        return {}
    exc_type, exc, tb = exc_info
    return {
        exception_attributes.EXCEPTION_TYPE: semconv.error_type(exc_type),
        exception_attributes.EXCEPTION_MESSAGE: str(exc),
        exception_attributes.EXCEPTION_STACKTRACE: "".join(
            traceback.format_exception(exc_type, exc, tb)
        ),
    }


#: Set while a record is being emitted: a log line that the SDK writes during emission (an
#: attribute it rejected, a full queue) is rendered but not exported again.
_emitting: Final[ContextVar[bool]] = ContextVar("otel_mlmon.logs.emitting", default=False)


def _instrumentation_exports_structlog() -> bool:
    """Whether the structlog instrumentation's own processor sits in structlog's chain (as
    after ``opentelemetry-instrument`` instrumented structlog that configure_logging() had
    configured): it already exported the event, so ours does not export it again."""
    processor = _compat.structlog_instrumentation_processor()
    if processor is None or processor not in structlog.get_config()["processors"]:
        return False
    warn_once(
        "logs.structlog_instrumentation_exports",
        "otel-mlmon: the structlog instrumentation exports structlog events, without "
        "otel-mlmon's attribute mapping; set OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=structlog "
        "to let otel-mlmon export them",
    )
    return True


#: The keys the contrib processor's own translation reads.
_TRANSLATED_KEYS: Final = ("event", "level", "timestamp")


class OTelLogEmitter(StructlogProcessor):
    """A structlog processor that emits each event as an OTel log record, then passes it on.

    Extends the contrib ``StructlogProcessor`` (severity mapping, timestamp parsing, trace
    context from the current OTel context, so ``trace_id`` / ``span_id`` / ``trace_flags`` are
    set on the record itself) with:

    - attributes through :func:`flatten_attributes`, without the keys in ``drop_keys``
      (default :data:`EXPORT_DROPPED_KEYS`: what is already the body, the timestamp, the
      severity, the trace context, the scope name or the resource) and without ``_``-prefixed
      structlog bookkeeping;
    - ``exception.type`` fully qualified and ``exception.message`` as ``str(exception)``;
    - the instrumentation scope named after the event's ``logger`` (the stdlib logger name);
    - records of the ``opentelemetry`` loggers (the SDK's own diagnostics, such as an exporter
      that is down) and records logged while emitting are not exported, only rendered, so an
      export failure can never feed itself;
    - an error while emitting is counted and logged once (``logs.emit``), never raised.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        logger_provider: logs_api.LoggerProvider | None = None,
        *,
        drop_keys: Iterable[str] = EXPORT_DROPPED_KEYS,
    ) -> None:
        super().__init__(logger_provider=logger_provider)  # type: ignore[no-untyped-call]
        self._provider = logger_provider
        self._drop_keys = frozenset(drop_keys)
        self._loggers: dict[str, logs_api.Logger] = {}

    def _otel_logger(self, name: str) -> logs_api.Logger:
        found = self._loggers.get(name)
        if found is None:
            # No lock (nothing to deadlock on after a fork): two threads racing here get the
            # provider's same cached logger, and setdefault keeps one.
            found = self._loggers.setdefault(
                name, logs_api.get_logger(name, logger_provider=self._provider)
            )
        return found

    def _attributes(self, event_dict: Mapping[str, Any]) -> dict[str, Any]:
        fields = {
            key: value
            for key, value in event_dict.items()
            if key not in self._drop_keys and not key.startswith("_")
        }
        attributes = flatten_attributes(fields)
        exc_info = event_dict.get("exc_info")
        if exc_info:
            attributes.update(_exception_attributes(exc_info))
        elif isinstance(event_dict.get("exception"), str):
            # Already rendered by format_exc_info earlier in the chain.
            attributes[exception_attributes.EXCEPTION_STACKTRACE] = event_dict["exception"]
        return attributes

    def _log_record(self, event_dict: dict[Any, Any], method_name: str) -> logs_api.LogRecord:
        # The contrib processor maps body, severity, timestamp and trace context; it gets only
        # the keys it needs so that its raw attributes are not built, then ours replace them.
        slim = {key: event_dict[key] for key in _TRANSLATED_KEYS if key in event_dict}
        record: logs_api.LogRecord = _compat.structlog_log_record(self, slim, method_name)
        record.attributes = self._attributes(event_dict)
        return record

    def __call__(  # type: ignore[override]
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        name = event_dict.get("logger")
        if not isinstance(name, str):
            name = getattr(logger, "name", None) or "otel_mlmon"
        if _emitting.get() or name == "opentelemetry" or name.startswith("opentelemetry."):
            return event_dict
        if event_dict.get("_from_structlog") and _instrumentation_exports_structlog():
            return event_dict
        token = _emitting.set(True)
        try:
            with guarded("logs.emit"):
                otel_logger = self._otel_logger(name)
                if not isinstance(otel_logger, logs_api.NoOpLogger):
                    otel_logger.emit(
                        self._log_record(cast(dict[Any, Any], event_dict), method_name)
                    )
        finally:
            _emitting.reset(token)
        return event_dict


# --- configuration --------------------------------------------------------------------------


@dataclass
class _Settings:
    sample_predictions: float = 1.0
    include_features: bool = False


_settings: Final = _Settings()
_configure_lock: Final = threading.Lock()
#: The structlog processor list configure_logging() installed, to recognise its own config.
_our_processors: list[Processor] | None = None


class _Handler(logging.StreamHandler[IO[str]]):
    """The root handler configure_logging() installs; its type marks it as ours.

    Without an explicit stream it writes to whatever ``sys.stdout`` is at the time of each
    record, so a later redirection (a test runner's capture, a daemon's log file) is followed.
    """

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream if stream is not None else sys.stdout)
        self._follow_stdout = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stdout:
            self.stream = sys.stdout
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # A line that cannot be rendered or written is dropped and counted, never raised.
        if strict():
            super().handleError(record)
            return
        exc = sys.exc_info()[1]
        report_internal_error("logs.handler", exc or RuntimeError("log record dropped"))


def _configured_by_application(current: object) -> bool:
    """Whether the application configured structlog (then its configuration is kept).

    Not when the configuration is ours, nor when only the structlog instrumentation's
    ``instrument()`` configured it (its own record says whether the application did too).
    """
    if not structlog.is_configured() or current is _our_processors:
        return False
    if isinstance(current, list) and any(isinstance(p, StructlogProcessor) for p in current):
        return _compat.structlog_configured_by_app()
    return True


def _exports_to_otel(handler: logging.Handler) -> bool:
    """Whether ``handler`` is the SDK's or opentelemetry-instrumentation-logging's
    ``LoggingHandler`` (matched by name: library code does not import the SDK)."""
    cls = type(handler)
    return cls.__name__ == "LoggingHandler" and cls.__module__.startswith("opentelemetry.")


def _level_number(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        number = logging.getLevelName(level.strip().upper())
        if isinstance(number, int):
            return number
    raise ConfigurationError(f"level must be a logging level name or number, not {level!r}")


def _renderer(name: str, stream: IO[str]) -> Processor:
    if name == "json":
        return structlog.processors.JSONRenderer(default=_json_default)
    if name == "console":
        isatty = getattr(stream, "isatty", None)
        colors = bool(isatty()) if callable(isatty) else False
        return structlog.dev.ConsoleRenderer(colors=colors)
    raise ConfigurationError(f"renderer must be 'json' or 'console', not {name!r}")


def configure_logging(
    *,
    logger_provider: logs_api.LoggerProvider | None = None,
    renderer: Renderer = "json",
    level: int | str = logging.INFO,
    export: bool = True,
    stream: IO[str] | None = None,
    sample_predictions: float = 1.0,
    include_features: bool = False,
) -> None:
    """Route structlog and the standard :mod:`logging` module through one correlated chain.

    Installs one handler on the root logger whose ``ProcessorFormatter`` runs
    :data:`SHARED_PROCESSORS`, emits each event as an OTel log record through
    ``logger_provider`` (default: the global one) unless ``export=False``, and renders it on
    ``stream`` (default ``sys.stdout``) as one JSON object per line, or readable text with
    ``renderer="console"``. The root logger's level becomes ``level``.

    structlog is configured to hand its events to that handler, unless the application
    configured structlog itself: then its configuration is kept (put :data:`SHARED_PROCESSORS`
    and an :class:`OTelLogEmitter` into it) and a warning says so.

    ``sample_predictions`` is the fraction of ``prediction_made`` events that
    :func:`log_prediction` keeps; ``include_features`` lets it log the raw features (off by
    default: features may be personal data).

    Idempotent: a second call replaces what the first installed (one handler, never two).

    Raises:
        ConfigurationError: an unknown renderer or level, or a rate outside [0, 1].

    .. versionadded:: 0.1.0
    """
    global _our_processors
    number = _level_number(level)
    if not 0.0 <= sample_predictions <= 1.0:
        raise ConfigurationError(f"sample_predictions must be in [0, 1], not {sample_predictions}")
    render = _renderer(renderer, stream if stream is not None else sys.stdout)
    provider = logger_provider if logger_provider is not None else logs_api.get_logger_provider()

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *SHARED_PROCESSORS,
    ]
    # The emitter comes before remove_processors_meta: it reads _from_structlog.
    final: list[Processor] = [OTelLogEmitter(provider)] if export else []
    final.append(structlog.stdlib.ProcessorFormatter.remove_processors_meta)
    if renderer == "json":
        final.append(structlog.processors.format_exc_info)
    final.append(render)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=final,
    )

    with _configure_lock:
        _Service.name = _service_name_of(provider)
        _settings.sample_predictions = sample_predictions
        _settings.include_features = include_features

        root = logging.getLogger()
        for old in [h for h in root.handlers if isinstance(h, _Handler)]:
            root.removeHandler(old)
            old.close()
        handler = _Handler(stream)
        handler.setFormatter(formatter)
        handler.setLevel(number)
        root.addHandler(handler)
        root.setLevel(number)
        if export and any(_exports_to_otel(h) for h in root.handlers):
            warn_once(
                "logs.otel_logging_handler",
                "otel-mlmon: an OpenTelemetry LoggingHandler is also on the root logger, so "
                "each record is exported twice; remove it (under opentelemetry-instrument: "
                "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION=false) or pass export=False",
            )

        current = structlog.get_config().get("processors")
        if _configured_by_application(current):
            warn_once(
                "logs.structlog_configured",
                "otel-mlmon: structlog was configured by the application and is left as it is; "
                "add otel_mlmon.logs.SHARED_PROCESSORS and an OTelLogEmitter to its processors "
                "to correlate and export its events",
            )
            return
        processors: list[Processor] = [
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ]
        structlog.configure(
            processors=processors,
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        )
        # Under opentelemetry-instrument, the structlog instrumentation's patched configure()
        # inserts its own StructlogProcessor: our emitter already exports every event, so it
        # is taken out again, or each structlog event would be exported twice.
        installed = structlog.get_config()["processors"]
        if any(isinstance(p, StructlogProcessor) for p in installed):
            installed[:] = [p for p in installed if not isinstance(p, StructlogProcessor)]
            warn_once(
                "logs.structlog_instrumented",
                "otel-mlmon: the structlog instrumentation is active; otel-mlmon's handler "
                "exports structlog events instead of its processor",
            )
        _our_processors = installed


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (the standard-library logger of that name underneath),
    bound to ``initial_values``.

    Typed as structlog's stdlib ``BoundLogger``, which it is once :func:`configure_logging`
    configured structlog; with an application's own structlog configuration it is whatever
    that configuration makes.

    .. versionadded:: 0.1.0
    """
    return structlog.stdlib.get_logger(name, **initial_values)


# --- the event vocabulary -----------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    """One event of the vocabulary: its name (the log body), level and documented fields."""

    name: str
    level: str
    fields: tuple[tuple[str, str], ...]
    description: str


_HTTP = (
    ("http.request.method", "HTTP method"),
    ("http.route", "route template, never the raw path"),
)
_MODEL = (
    (semconv.ML_MODEL_NAME, "model name"),
    (semconv.ML_MODEL_VERSION, "model version"),
)

#: Every event name of the vocabulary with its level and fields, in the order of
#: ``docs/logging.md``. The correlation fields (``trace_id``, ``span_id``, ``request_id``,
#: ``service.name``, and the model inside a prediction) come on top of these.
EVENTS: Final[tuple[EventSpec, ...]] = (
    EventSpec(semconv.EVENT_REQUEST_STARTED, "info", _HTTP,
              "A request reached the service."),
    EventSpec(semconv.EVENT_REQUEST_COMPLETED, "info",
              (*_HTTP, ("http.response.status_code", "status code"),
               ("duration_s", "seconds from start to response")),
              "A request was answered (any status code)."),
    EventSpec(semconv.EVENT_REQUEST_FAILED, "error",
              (*_HTTP, (semconv.ERROR_TYPE, "exception class, fully qualified"),
               ("duration_s", "seconds until the failure"),
               ("exception.*", "type, message and stack trace when logged with exc_info")),
              "A request raised instead of being answered."),
    EventSpec(semconv.EVENT_PREDICTION_MADE, "info",
              (*_MODEL, (semconv.ML_PREDICTION_ID, "joins a delayed label"),
               ("prediction", "the predicted value (a list for a batch)"),
               (semconv.ML_PREDICTION_CONFIDENCE, "confidence in [0, 1]"),
               (semconv.ML_BATCH_SIZE, "rows in the call"),
               ("duration_s", "seconds the prediction took"),
               ("features", "the raw features: only with include_features=True")),
              "A prediction was made; sampled by sample_predictions."),
    EventSpec(semconv.EVENT_MODEL_LOADED, "info",
              (*_MODEL, (semconv.ML_MODEL_FRAMEWORK, "library the model comes from"),
               ("metrics.<name>", "offline metrics of this version")),
              "A model version was loaded (ModelMonitor.model_loaded)."),
    EventSpec(semconv.EVENT_MODEL_UPDATED, "info",
              ((semconv.ML_MODEL_NAME, "model name"), ("old_version", "version replaced"),
               ("new_version", "version now served"), ("reason", "why, if given"),
               ("metrics.<name>", "offline metrics of the new version")),
              "The served version changed (ModelMonitor.update_model)."),
    EventSpec(semconv.EVENT_DRIFT_DETECTED, "warning",
              (*_MODEL, (semconv.ML_FEATURE_NAME, "feature, or _prediction"),
               (semconv.ML_DRIFT_METHOD, "drift statistic"),
               ("score", "statistic of the live window"), ("threshold", "its threshold")),
              "A feature went into drift."),
    EventSpec(semconv.EVENT_PERFORMANCE_UPDATED, "info",
              (*_MODEL, ("metrics.<name>", "accuracy, precision, recall, f1 or mae, rmse"),
               ("window_size", "labelled predictions in the window")),
              "Quality over the labelled window was recomputed."),
    EventSpec(semconv.EVENT_ERROR_OCCURRED, "error",
              ((semconv.ERROR_TYPE, "exception class, fully qualified"),
               ("exception.*", "type, message and stack trace when logged with exc_info")),
              "An error the service handled but wants on record."),
    EventSpec(semconv.EVENT_SYSTEM_METRICS, "debug",
              (("metrics.<name>", "process or host readings"),),
              "A snapshot of resource readings (the gauges are the primary signal)."),
)  # fmt: skip

_EVENTS_BY_NAME: Final = {spec.name: spec for spec in EVENTS}


def log_event(name: str, /, *, logger: Any = None, **fields: Any) -> None:
    """Log event ``name`` of the vocabulary at its documented level with ``fields``.

    An unknown name is logged at INFO, with a warning once: telemetry never breaks the caller.

    .. versionadded:: 0.1.0
    """
    spec = _EVENTS_BY_NAME.get(name)
    if spec is None:
        warn_once(f"logs.unknown_event.{name}", "otel-mlmon: %r is not a documented event", name)
    log = logger if logger is not None else get_logger("otel_mlmon.events")
    getattr(log, spec.level if spec is not None else "info")(name, **fields)


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
    return random.random() < rate


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
    version come from the prediction in progress (:func:`add_model_context`).

    .. versionadded:: 0.1.0
    """
    rate = _settings.sample_predictions if sample_rate is None else sample_rate
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
    keep_features = _settings.include_features if include_features is None else include_features
    if keep_features and features is not None:
        event["features"] = features
    log_event(semconv.EVENT_PREDICTION_MADE, logger=logger, **event)
    return True


def render_events_markdown() -> str:
    """The event table of ``docs/logging.md``, rendered from :data:`EVENTS`."""
    lines = ["| Event | Level | Fields | When |", "| --- | --- | --- | --- |"]
    for spec in EVENTS:
        fields = "<br>".join(f"`{key}`: {text}" for key, text in spec.fields)
        lines.append(f"| `{spec.name}` | {spec.level.upper()} | {fields} | {spec.description} |")
    return "\n".join(lines) + "\n"
