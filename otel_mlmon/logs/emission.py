"""OTel log emission: each event of the chain becomes one OTel log record.

:class:`OTelLogEmitter` extends the contrib ``opentelemetry-instrumentation-structlog``
``StructlogProcessor`` (body = the event name, severity from the level, timestamp, trace and
span IDs on the record itself from the current OTel context) and maps the other fields to
attributes with nested mappings flattened to dotted keys (:func:`flatten_attributes`). The
LoggerProvider's processor (``configure()`` installs a ``BatchLogRecordProcessor``) queues the
record; a full queue drops it, never blocking the caller.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Final, cast

import structlog
from opentelemetry import _logs as logs_api
from opentelemetry.instrumentation.structlog import StructlogProcessor
from structlog.typing import EventDict, WrappedLogger

from otel_mlmon import _compat, semconv
from otel_mlmon._guard import guarded, warn_once
from otel_mlmon.logs.processors import SERVICE_NAME, SPAN_ID, TRACE_ID
from otel_mlmon.logs.tracebacks import exception_fields, exception_of

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


def _scalar(value: Any) -> str | bool | int | float | None:
    """``value`` as an OTel attribute scalar, or ``None`` when it is not one."""
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: numpy arrays and scalars as Python values, anything else by
    its ``str()``, so a log line never fails to render."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                return convert()
            except Exception:
                break
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"))


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
    - ``exception.type`` fully qualified and ``exception.stacktrace`` for ``exc_info``, and
      ``exception.message`` only with ``record_exception_messages=True``
      (:mod:`otel_mlmon.logs.tracebacks`);
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
        exc = exception_of(event_dict.get("exc_info"))
        if exc is not None:
            attributes.update(exception_fields(exc))
        elif isinstance(event_dict.get("exception"), str):
            # Rendered by the application's own format_exc_info earlier in its chain.
            attributes[semconv.EXCEPTION_STACKTRACE] = event_dict["exception"]
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
