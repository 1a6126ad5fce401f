"""The ML layer both HTTP integrations share: request ID, ML attributes on the server span.

One :class:`RequestScope` per request holds the server span (the framework's or the contrib
instrumentation's, never one of ours), the request ID and the monitor filter. It lives in a
``ContextVar`` that is set and reset with tokens, so it follows the request through ``await``,
``asyncio.gather`` and the thread pool FastAPI runs sync endpoints in, and never leaks into
another request.

While at least one app is instrumented, :meth:`ModelMonitor.predict` is wrapped (class level,
restored when the last app is uninstrumented) so that a prediction made inside a request puts
``ml.model.name``, ``ml.model.version``, ``ml.model.task`` and ``ml.prediction.id`` on that
request's server span. The wrap costs one ``ContextVar.get`` per prediction outside requests.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace as trace_api
from opentelemetry.trace import Span

from otel_mlmon import semconv
from otel_mlmon._guard import report_internal_error, strict
from otel_mlmon.context import bind_request_id, reset_request_id
from otel_mlmon.request_id import resolve_request_id

if TYPE_CHECKING:
    from otel_mlmon.monitor import ModelMonitor, Prediction

#: Marker attribute set on an instrumented app; its value is the app's :class:`AppState`.
MARKER: Final = "_otel_mlmon_instrumentation"


class AppState:
    """What instrumenting one app changed, so that uninstrumenting can undo exactly that."""

    __slots__ = ("monitor", "undo")

    def __init__(self, monitor: ModelMonitor | None) -> None:
        self.monitor = monitor
        self.undo: list[Any] = []


class RequestScope:
    """The request being handled: its server span, ID and the monitor whose predictions count."""

    __slots__ = ("_tokens", "monitor", "request_id", "span")

    def __init__(self, span: Span, request_id: str, monitor: ModelMonitor | None) -> None:
        self.span = span
        self.request_id = request_id
        self.monitor = monitor


_scope: Final[ContextVar[RequestScope | None]] = ContextVar(
    "otel_mlmon.instrumentation.request", default=None
)


def current_scope() -> RequestScope | None:
    """The :class:`RequestScope` of the request being handled, or ``None``."""
    return _scope.get()


def enter(
    incoming: str | bytes | None, monitor: ModelMonitor | None, *, span_known: bool = True
) -> tuple[RequestScope, Token[RequestScope | None], Token[str | None]]:
    """Start the ML layer of one request: resolve its ID, bind it and the scope, and (unless
    ``span_known`` is false: the server span starts later, see :func:`attach_span`) tag the
    current span, the server span. Returns the scope and the tokens for :func:`leave`."""
    request_id, _ = resolve_request_id(incoming)
    span = trace_api.get_current_span() if span_known else trace_api.INVALID_SPAN
    if span.is_recording():
        span.set_attribute(semconv.ML_REQUEST_ID, request_id)
    scope = RequestScope(span, request_id, monitor)
    return scope, _scope.set(scope), bind_request_id(request_id)


def attach_span(span: Span) -> None:
    """Make ``span`` the server span of the current request and tag it with the request ID."""
    scope = _scope.get()
    if scope is not None:
        scope.span = span
        if span.is_recording():
            span.set_attribute(semconv.ML_REQUEST_ID, scope.request_id)


def leave(scope_token: Token[RequestScope | None], id_token: Token[str | None]) -> None:
    """End the ML layer of one request: restore what was bound before :func:`enter`."""
    reset_request_id(id_token)
    _scope.reset(scope_token)


def note_prediction(monitor: ModelMonitor, prediction: Prediction) -> None:
    """Describe ``prediction`` on the server span of the request it was made in, if any."""
    scope = _scope.get()
    if scope is None or (scope.monitor is not None and scope.monitor is not monitor):
        return
    span = scope.span
    if span.is_recording():
        span.set_attributes(prediction._attributes.span)
        span.set_attribute(semconv.ML_PREDICTION_ID, prediction.id)


def set_error_type(span: Span, exc: BaseException) -> None:
    """Put OTel ``error.type`` (the exception's qualified class name) on ``span``."""
    if span.is_recording():
        cls = type(exc)
        module = cls.__module__
        name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
        span.set_attribute(semconv.ERROR_TYPE, name)


def internal_error(site: str, exc: Exception) -> None:
    """Report an error of our own layer; re-raise it under ``OTEL_MLMON_STRICT``."""
    if strict():
        raise exc
    report_internal_error(site, exc)


# --- the predict hook -------------------------------------------------------------------------

_hook_lock = threading.Lock()
_hook_users = 0
_original_predict: Any = None


def install_predict_hook() -> None:
    """Wrap ``ModelMonitor.predict`` (reference counted: once per instrumented app)."""
    global _hook_users, _original_predict
    from otel_mlmon.monitor import ModelMonitor

    with _hook_lock:
        _hook_users += 1
        if _hook_users > 1:
            return
        original = ModelMonitor.predict
        _original_predict = original

        def predict(self: ModelMonitor, features: object = None) -> Prediction:
            prediction = original(self, features)
            if _scope.get() is not None:
                try:
                    note_prediction(self, prediction)
                except Exception as exc:
                    internal_error("instrumentation.predict", exc)
            return prediction

        predict.__doc__ = original.__doc__
        predict.__wrapped__ = original  # type: ignore[attr-defined]
        ModelMonitor.predict = predict  # type: ignore[method-assign]


def remove_predict_hook() -> None:
    """Undo one :func:`install_predict_hook`; the last one restores the original method."""
    global _hook_users, _original_predict
    from otel_mlmon.monitor import ModelMonitor

    with _hook_lock:
        if _hook_users == 0:
            return
        _hook_users -= 1
        if _hook_users == 0 and _original_predict is not None:
            ModelMonitor.predict = _original_predict  # type: ignore[method-assign]
            _original_predict = None


def predict_hook_installed() -> bool:
    """Whether ``ModelMonitor.predict`` is currently wrapped."""
    return _hook_users > 0
