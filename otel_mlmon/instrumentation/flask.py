"""Flask: the ML layer on top of ``opentelemetry-instrumentation-flask``.

Flask has no native telemetry, so the contrib Flask instrumentation makes the HTTP server span
and ``http.server.request.duration``; :func:`FlaskMLInstrumentor.instrument_app` applies it
when the app does not have it yet (and removes it again on uninstrument), then adds ours:

- ``X-Request-ID`` handled in a WSGI wrapper outside Flask, so every response (a 500 from an
  unhandled exception included) carries it; ``ml.request.id`` on the server span;
- ``ml.model.*`` and ``ml.prediction.id`` on the server span of a request that predicted;
- ``error.type`` (the exception's qualified class name) on the server span of a request whose
  view raised, instead of the bare status code, and an exception event with the type and the
  frames but never the message (messages carry request data): the contrib instrumentation would
  record the message in the event and the span status;
- ``server.address`` / ``server.port`` from the listening socket (``SERVER_NAME``), not from the
  client's ``Host`` header, and ``url.query`` with its values redacted.

The contrib instrumentation reports the stable HTTP conventions (``http.server.request.duration``
in seconds, as FastAPI does, with bounded attributes) only when it was told so; unless the user
set ``OTEL_SEMCONV_STABILITY_OPT_IN``, instrumenting makes them its choice first, whenever the
variable was read (see :func:`otel_mlmon.instrumentation._layer.prefer_stable_http_conventions`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Any, Final

import flask
from opentelemetry import trace as trace_api
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otel_mlmon import _compat, semconv
from otel_mlmon._guard import internal_error
from otel_mlmon.instrumentation import _layer
from otel_mlmon.monitor import ModelMonitor, _record_exception
from otel_mlmon.request_id import HEADER

INSTRUMENTS: Final = ("flask >= 2.2",)
_HEADER_LOWER: Final = HEADER.lower()
_ENVIRON_KEY: Final = "HTTP_X_REQUEST_ID"

_apps: weakref.WeakSet[flask.Flask] = weakref.WeakSet()

StartResponse = Callable[..., Any]


def _wrap_wsgi(
    wsgi_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
    monitor: ModelMonitor | None,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def wsgi_with_request_id(environ: dict[str, Any], start_response: StartResponse) -> Any:
        try:
            request, scope_token, id_token = _layer.enter(
                environ.get(_ENVIRON_KEY), monitor, span_known=False
            )
            request.method = environ.get("REQUEST_METHOD")
            header = (HEADER, request.request_id)
        except Exception as exc:
            internal_error("Flask request layer", exc)
            return wsgi_app(environ, start_response)

        def start_response_with_id(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            code = status.split(" ", 1)[0]
            request.status_code = int(code) if code.isdigit() else None
            headers = [(k, v) for k, v in headers if k.lower() != _HEADER_LOWER]
            headers.append(header)
            return start_response(status, headers, *args)

        try:
            return wsgi_app(environ, start_response_with_id)
        finally:
            _layer.leave(scope_token, id_token)

    wsgi_with_request_id.__wrapped__ = wsgi_app  # type: ignore[attr-defined]
    return wsgi_with_request_id


def _before_request() -> None:
    try:
        span = trace_api.get_current_span()
        _layer.attach_span(span)
        environ = flask.request.environ
        _layer.set_server_address(span, environ.get("SERVER_NAME"), environ.get("SERVER_PORT"))
        _layer.redact_query(span, flask.request.query_string)
        scope = _layer.current_scope()
        if isinstance(scope, _layer.Request) and flask.request.url_rule is not None:
            scope.route = flask.request.url_rule.rule
    except Exception as exc:
        internal_error("Flask before_request", exc)


def _teardown_request(exc: BaseException | None) -> None:
    # Runs before the contrib teardown (Flask calls them in reverse order), while the server
    # span is still current.
    if exc is None:
        return
    try:
        span = trace_api.get_current_span()
        if _compat.end_flask_span_without_exception(flask.request.environ):
            _record_exception(span, exc, semconv.error_type(type(exc)), messages=False)
        else:
            _layer.set_error_type(span, exc)
        scope = _layer.current_scope()
        if isinstance(scope, _layer.Request):
            scope.error = exc
    except Exception as error:
        internal_error("Flask teardown_request", error)


class FlaskMLInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``opentelemetry_instrumentor`` entry point ``otel_mlmon_flask``.

    ``instrument()`` makes every ``flask.Flask`` created afterwards instrumented (contrib
    server span plus the ML layer); ``instrument_app(app)`` instruments one existing app.
    ``uninstrument()`` / ``uninstrument_app(app)`` undo exactly what they added.

    .. versionadded:: 0.1.0
    """

    _original_flask: type[flask.Flask] | None = None
    _added_contrib = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        _layer.prefer_stable_http_conventions()
        # The contrib instrumentation replaces flask.Flask with a subclass of the Flask it
        # imported, which would drop ours if it came second (opentelemetry-instrument loads
        # entry points in no fixed order): instrumenting it first puts ours on top, and its own
        # entry point then finds it instrumented and leaves flask.Flask alone.
        contrib = FlaskInstrumentor()
        if not contrib.is_instrumented_by_opentelemetry:
            contrib.instrument(
                tracer_provider=kwargs.get("tracer_provider"),
                meter_provider=kwargs.get("meter_provider"),
            )
            self._added_contrib = contrib.is_instrumented_by_opentelemetry
        self._original_flask = flask.Flask
        flask.Flask = _layer.instrumented_subclass(  # type: ignore[misc]
            flask.Flask, FlaskMLInstrumentor.instrument_app, kwargs
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._original_flask is not None:
            flask.Flask = self._original_flask  # type: ignore[misc]
            self._original_flask = None
        if self._added_contrib:
            FlaskInstrumentor().uninstrument()
            self._added_contrib = False
        for app in list(_apps):
            FlaskMLInstrumentor.uninstrument_app(app)

    @staticmethod
    def instrument_app(
        app: flask.Flask,
        *,
        monitor: ModelMonitor | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """Add the contrib Flask instrumentation (unless present) and the ML layer to ``app``;
        a second call does nothing. ``monitor`` limits the server-span ML attributes to that
        monitor's predictions; the providers go to the contrib instrumentation."""
        if getattr(app, _layer.MARKER, None) is not None:
            return
        state = _layer.AppState(monitor)
        if not _compat.instrumented_by_contrib(app):
            _layer.prefer_stable_http_conventions()
            FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
                app, tracer_provider=tracer_provider, meter_provider=meter_provider
            )
            state.undo.append(("contrib", None))
        wrapper = _wrap_wsgi(app.wsgi_app, monitor)
        state.undo.append(("wsgi", (wrapper, app.wsgi_app)))
        app.wsgi_app = wrapper  # type: ignore[method-assign, assignment]
        # Registered after the contrib hooks: runs once its server span is current, and its
        # teardown runs before the contrib teardown ends that span.
        app.before_request(_before_request)
        app.teardown_request(_teardown_request)
        state.undo.append(("hooks", None))
        setattr(app, _layer.MARKER, state)
        _apps.add(app)

    @staticmethod
    def uninstrument_app(app: flask.Flask) -> None:
        """Remove the ML layer, and the contrib instrumentation if ``instrument_app`` added it."""
        state: _layer.AppState | None = getattr(app, _layer.MARKER, None)
        if state is None:
            return
        for kind, value in reversed(state.undo):
            if kind == "hooks":
                _remove(app.before_request_funcs.get(None), _before_request)
                _remove(app.teardown_request_funcs.get(None), _teardown_request)
            elif kind == "wsgi":
                wrapper, original = value
                if app.wsgi_app is wrapper:
                    app.wsgi_app = original  # type: ignore[method-assign]
            elif kind == "contrib":
                FlaskInstrumentor.uninstrument_app(app)  # type: ignore[no-untyped-call]
        delattr(app, _layer.MARKER)
        _apps.discard(app)


def _remove(functions: list[Any] | None, function: Any) -> None:
    if functions is not None and function in functions:
        functions.remove(function)


def instrumented(app: flask.Flask) -> bool:
    """Whether ``app`` currently carries the otel-mlmon layer."""
    return getattr(app, _layer.MARKER, None) is not None
