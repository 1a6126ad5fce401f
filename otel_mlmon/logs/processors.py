"""The correlation processors: plain structlog processors ``(logger, method_name, event_dict)``.

Each adds its keys with ``setdefault``, so a value the caller passed is never overwritten, and
each reads one source: the current OTel span, the request ID, the model of the prediction in
progress, the LoggerProvider's resource. Put :data:`SHARED_PROCESSORS` into your own structlog
chain to get the same fields as :func:`otel_mlmon.logs.configure_logging`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import _logs as logs_api
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_mlmon import context, semconv
from otel_mlmon._guard import guarded

#: Event-dict keys the processors add.
TRACE_ID: Final = "trace_id"
SPAN_ID: Final = "span_id"
REQUEST_ID: Final = "request_id"
SERVICE_NAME: Final = "service.name"


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` (32 hex digits) and ``span_id`` (16) of the current span, if valid.

    They are written as the OTel log data model and Loki store them (``format(id, "032x")``),
    not as ``hex(id)``, which has a ``0x`` prefix and drops leading zeros.

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


class Service:
    """The service name lines carry: set by configure_logging(), else read from the global
    LoggerProvider's resource the first time it has one."""

    name: str | None = None


def service_name_of(provider: object) -> str | None:
    """``service.name`` of a LoggerProvider's resource, or ``None``."""
    resource = getattr(provider, "resource", None)
    attributes = getattr(resource, "attributes", None)
    if isinstance(attributes, Mapping):
        name = attributes.get(SERVICE_NAME)
        if isinstance(name, str) and name:
            return name
    return None


def add_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add ``service.name`` from the LoggerProvider's resource.

    The provider is the one given to :func:`~otel_mlmon.logs.configure_logging`, else the
    global one.

    .. versionadded:: 0.1.0
    """
    name = Service.name
    if name is None:
        name = Service.name = service_name_of(logs_api.get_logger_provider())
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
