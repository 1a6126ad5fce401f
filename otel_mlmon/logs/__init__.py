"""Logs correlated with traces, request IDs and models, exported as OpenTelemetry log records.

.. code-block:: python

    otel_mlmon.configure_logging()          # once; configure() does it unless logs=False
    log = otel_mlmon.get_logger(__name__)   # a structlog logger
    log.info("order_scored", score=0.93)

One package, one module per concern:

- :mod:`~otel_mlmon.logs.processors`: the correlation processors (``trace_id``, ``span_id``,
  ``request_id``, ``ml.model.*``, ``service.name``), plain structlog processors;
- :mod:`~otel_mlmon.logs.bridge`: :func:`configure_logging`, the root handler that runs
  structlog and standard ``logging`` records through one chain and renders one JSON line each;
- :mod:`~otel_mlmon.logs.bounds`: sizes, ANSI codes and rate limits of what crosses the bridge;
- :mod:`~otel_mlmon.logs.tracebacks`: exceptions as ``exception.*`` fields, messages opt-in;
- :mod:`~otel_mlmon.logs.emission`: :class:`OTelLogEmitter`, the OTel log record of each event;
- :mod:`~otel_mlmon.logs.redaction`: exception messages out of records that bypass the bridge;
- :mod:`~otel_mlmon.logs.events`: :func:`emit_event`, the one way to log an event of the
  catalogue (:data:`otel_mlmon.semconv.EVENTS`), and :func:`log_prediction`.

Names are loaded on first use, so :mod:`~otel_mlmon.logs.events` can be imported by the monitor
and the HTTP integrations without loading structlog. The package is ``logs``, not ``logging``,
so that it never shadows the standard library.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_mlmon.logs.bounds import BridgeCounts
    from otel_mlmon.logs.bounds import counts as bridge_counts
    from otel_mlmon.logs.bridge import (
        Renderer,
        configure_logging,
        get_logger,
        unconfigure_logging,
    )
    from otel_mlmon.logs.emission import OTelLogEmitter, flatten_attributes
    from otel_mlmon.logs.events import emit_event, log_event, log_prediction
    from otel_mlmon.logs.processors import (
        REQUEST_ID,
        SERVICE_NAME,
        SHARED_PROCESSORS,
        SPAN_ID,
        TRACE_ID,
        add_model_context,
        add_request_context,
        add_service,
        add_trace_context,
    )
    from otel_mlmon.logs.redaction import ExceptionMessageRedactor
    from otel_mlmon.semconv import EVENTS, EventSpec

__all__ = [
    "EVENTS",
    "BridgeCounts",
    "EventSpec",
    "ExceptionMessageRedactor",
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
    "bridge_counts",
    "configure_logging",
    "emit_event",
    "flatten_attributes",
    "get_logger",
    "log_event",
    "log_prediction",
    "unconfigure_logging",
]

_PROCESSORS = "otel_mlmon.logs.processors"
#: Public name -> (module, name there).
_LAZY: dict[str, tuple[str, str]] = {
    "EVENTS": ("otel_mlmon.semconv", "EVENTS"),
    "EventSpec": ("otel_mlmon.semconv", "EventSpec"),
    "BridgeCounts": ("otel_mlmon.logs.bounds", "BridgeCounts"),
    "bridge_counts": ("otel_mlmon.logs.bounds", "counts"),
    "Renderer": ("otel_mlmon.logs.bridge", "Renderer"),
    "configure_logging": ("otel_mlmon.logs.bridge", "configure_logging"),
    "get_logger": ("otel_mlmon.logs.bridge", "get_logger"),
    "unconfigure_logging": ("otel_mlmon.logs.bridge", "unconfigure_logging"),
    "OTelLogEmitter": ("otel_mlmon.logs.emission", "OTelLogEmitter"),
    "flatten_attributes": ("otel_mlmon.logs.emission", "flatten_attributes"),
    "emit_event": ("otel_mlmon.logs.events", "emit_event"),
    "log_event": ("otel_mlmon.logs.events", "log_event"),
    "log_prediction": ("otel_mlmon.logs.events", "log_prediction"),
    "ExceptionMessageRedactor": ("otel_mlmon.logs.redaction", "ExceptionMessageRedactor"),
    **{
        name: (_PROCESSORS, name)
        for name in (
            "REQUEST_ID", "SERVICE_NAME", "SHARED_PROCESSORS", "SPAN_ID", "TRACE_ID",
            "add_model_context", "add_request_context", "add_service", "add_trace_context",
        )
    },
}  # fmt: skip


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all __getattr__

    def __getattr__(name: str) -> object:
        found = _LAZY.get(name)
        if found is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(found[0]), found[1])
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
