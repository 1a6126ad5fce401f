"""The ML layer both HTTP integrations share: request ID, ML attributes on the server span.

One :class:`RequestScope` per request holds the server span (the framework's or the contrib
instrumentation's, never one of ours), the request ID and the monitor filter. It lives in a
``ContextVar`` that is set and reset with tokens, so it follows the request through ``await``,
``asyncio.gather`` and the thread pool FastAPI runs sync endpoints in, and never leaks into
another request.

The scope lives in :mod:`otel_mlmon.context`, where ``ModelMonitor.predict`` finds it: a
prediction made inside a request puts ``ml.model.name``, ``ml.model.version``, ``ml.model.task``
and ``ml.prediction.id`` on that request's server span. Nothing of ``ModelMonitor`` is patched.

At :func:`leave` the request is logged once: ``request_completed``, or ``request_failed`` with
the exception when the app raised one (:mod:`otel_mlmon.logs.events`). The integrations tell
the scope what they see (method, route template, status code, exception) on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.trace import Span

from otel_mlmon import _compat, _env, _query, semconv
from otel_mlmon._guard import guarded
from otel_mlmon.context import (
    RequestScope,
    bind_request_id,
    bind_request_scope,
    get_request_scope,
    reset_request_id,
    reset_request_scope,
)
from otel_mlmon.logs.events import emit_event
from otel_mlmon.request_id import resolve_request_id

if TYPE_CHECKING:
    from otel_mlmon.monitor import ModelMonitor

#: OTel ``url.query``.
URL_QUERY: Final = "url.query"
#: OTel ``server.address`` and ``server.port``.
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
#: What stands for a query value (see :mod:`otel_mlmon._query`).
REDACTED: Final = _query.REDACTED
_SEMCONV_OPT_IN: Final = "OTEL_SEMCONV_STABILITY_OPT_IN"

#: Marker attribute set on an instrumented app; its value is the app's :class:`AppState`.
MARKER: Final = "_otel_mlmon_instrumentation"

#: Methods logged as they are; any other is ``_OTHER`` (OTel ``http.request.method``).
KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


class Request(RequestScope):
    """The :class:`~otel_mlmon.context.RequestScope` of one request, with what its end is
    logged with; the integrations set ``method``, ``route`` (the template), ``status_code``
    and ``error`` (an exception the app raised) as they learn them."""

    __slots__ = ("error", "method", "route", "started", "status_code")

    def __init__(self, span: Span, request_id: str, monitor: object | None) -> None:
        super().__init__(span, request_id, monitor)
        self.started = perf_counter()
        self.method: str | None = None
        self.route: str | None = None
        self.status_code: int | None = None
        self.error: BaseException | None = None


class AppState:
    """What instrumenting one app changed, so that uninstrumenting can undo exactly that."""

    __slots__ = ("monitor", "undo")

    def __init__(self, monitor: ModelMonitor | None) -> None:
        self.monitor = monitor
        self.undo: list[Any] = []


def current_scope() -> RequestScope | None:
    """The :class:`RequestScope` of the request being handled, or ``None``."""
    return get_request_scope()


def enter(
    incoming: str | bytes | None, monitor: ModelMonitor | None, *, span_known: bool = True
) -> tuple[Request, Token[RequestScope | None], Token[str | None]]:
    """Start the ML layer of one request: resolve its ID, bind it and the scope, and (unless
    ``span_known`` is false: the server span starts later, see :func:`attach_span`) tag the
    current span, the server span. Returns the scope and the tokens for :func:`leave`."""
    request_id, _ = resolve_request_id(incoming)
    span = trace_api.get_current_span() if span_known else trace_api.INVALID_SPAN
    if span.is_recording():
        span.set_attribute(semconv.ML_REQUEST_ID, request_id)
    scope = Request(span, request_id, monitor)
    return scope, bind_request_scope(scope), bind_request_id(request_id)


def attach_span(span: Span) -> None:
    """Make ``span`` the server span of the current request and tag it with the request ID."""
    scope = get_request_scope()
    if scope is not None:
        scope.span = span
        if span.is_recording():
            span.set_attribute(semconv.ML_REQUEST_ID, scope.request_id)


def leave(scope_token: Token[RequestScope | None], id_token: Token[str | None]) -> None:
    """End the ML layer of one request: log its end (:func:`log_end`), then restore what
    was bound before :func:`enter`."""
    try:
        scope = get_request_scope()
        if isinstance(scope, Request):
            log_end(scope)
    finally:
        reset_request_id(id_token)
        reset_request_scope(scope_token)


def log_end(request: Request) -> None:
    """Log ``request_completed``, or ``request_failed`` with ``request.error``, inside the
    server span (trace and span IDs) and the request (its ID). Never raises."""
    with (
        guarded("request events"),
        trace_api.use_span(request.span, record_exception=False, set_status_on_exception=False),
    ):
        fields: dict[str, Any] = {}
        if request.method is not None:
            method = request.method.upper()
            fields[semconv.HTTP_REQUEST_METHOD] = method if method in KNOWN_METHODS else "_OTHER"
        if request.route is not None:
            fields[semconv.HTTP_ROUTE] = request.route
        if request.status_code is not None:
            fields[semconv.HTTP_RESPONSE_STATUS_CODE] = request.status_code
        fields["duration_s"] = round(perf_counter() - request.started, 6)
        error = request.error
        if error is None:
            emit_event(semconv.EVENT_REQUEST_COMPLETED, **fields)
        else:
            fields[semconv.ERROR_TYPE] = semconv.error_type(type(error))
            emit_event(semconv.EVENT_REQUEST_FAILED, exc_info=error, **fields)


def instrumented_subclass(
    original: type[Any], instrument_app: Callable[..., None], options: Mapping[str, Any]
) -> type[Any]:
    """A subclass of a framework's app class whose every instance is given ``instrument_app``
    with the instrumentor's ``monitor`` and providers, as the contrib instrumentors do for
    ``instrument()``. It keeps the original's name, so apps still read as ``FastAPI``/``Flask``.
    """
    arguments = {key: options.get(key) for key in ("monitor", "tracer_provider", "meter_provider")}

    class Instrumented(original):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            instrument_app(self, **arguments)

    Instrumented.__name__ = Instrumented.__qualname__ = original.__name__
    return Instrumented


def prefer_stable_http_conventions() -> None:
    """Unless the user set ``OTEL_SEMCONV_STABILITY_OPT_IN``, make the contrib HTTP
    instrumentations instrumented from now on report the stable HTTP conventions:
    ``http.server.request.duration`` in seconds with bounded attributes, the histogram FastAPI's
    native telemetry emits, instead of ``http.server.duration`` in milliseconds carrying the
    client's ``Host`` header (``http.host``) and the raw target with its query (``http.target``).
    """
    if _env.raw(_SEMCONV_OPT_IN) is None:
        _compat.prefer_stable_http_conventions()


def set_server_address(span: Span, host: object, port: object) -> None:
    """Put the address the server listens on into ``server.address`` / ``server.port``.

    The frameworks take ``server.address`` from the request's ``Host`` header, which every
    client sets to whatever it likes; the listening socket's address is known and bounded.
    """
    if not isinstance(host, str) or not host or not span.is_recording():
        return
    span.set_attribute(SERVER_ADDRESS, host)
    try:
        number = int(port)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return
    span.set_attribute(SERVER_PORT, number)


def redact_query(span: Span, query: bytes | str) -> None:
    """Replace ``url.query`` on the server span by its parameter names with ``REDACTED``
    values (:func:`otel_mlmon._query.redact_query`)."""
    if not query or not span.is_recording():
        return
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    span.set_attribute(URL_QUERY, _query.redact_query(text))


def set_error_type(span: Span, exc: BaseException) -> None:
    """Put OTel ``error.type`` (the exception's qualified class name) on ``span``."""
    if span.is_recording():
        span.set_attribute(semconv.ERROR_TYPE, semconv.error_type(type(exc)))
