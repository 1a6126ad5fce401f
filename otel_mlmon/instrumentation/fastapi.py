"""FastAPI: the ML layer on top of FastAPI's native OpenTelemetry telemetry.

FastAPI 0.142 and newer make the HTTP server span, ``http.server.request.duration`` and
``http.server.active_requests`` themselves once providers are set (``FastAPI(telemetry={...})``).
This module adds only what is ours, as one small ASGI layer outside Starlette's
``ServerErrorMiddleware`` (so a 500 carries the request ID too) and inside FastAPI's server span:

- ``X-Request-ID``: honoured when well formed, generated otherwise, echoed on every response,
  set as ``ml.request.id`` on the server span and held in :func:`otel_mlmon.context.get_request_id`;
- ``ml.model.*`` and ``ml.prediction.id`` on the server span of a request that made a
  prediction, whose ``predict`` span is then the server span's child.

It never adds the contrib ``opentelemetry-instrumentation-fastapi`` middleware. When that
instrumentation is active on an app anyway (for example installed by ``opentelemetry-bootstrap``
and run by ``opentelemetry-instrument``), FastAPI switches its native telemetry off for that app
and the contrib middleware makes the server span; the layer then places itself inside the
contrib middleware, so there is still exactly one server span carrying our attributes, and a
warning says so once.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
import types
import weakref
from collections.abc import Collection
from typing import Any, Final

import fastapi
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otel_mlmon import _compat
from otel_mlmon._guard import internal_error, warn_once
from otel_mlmon.instrumentation import _layer
from otel_mlmon.monitor import ModelMonitor

_logger: Final = logging.getLogger("otel_mlmon")

#: The FastAPI versions with native OpenTelemetry telemetry.
INSTRUMENTS: Final = ("fastapi >= 0.142",)

_HEADER: Final = b"x-request-id"
_CONTRIB_MODULE: Final = "opentelemetry.instrumentation.asgi"
_CONTRIB_CLASS: Final = "OpenTelemetryMiddleware"

_apps: weakref.WeakSet[fastapi.FastAPI] = weakref.WeakSet()


class MLRequestMiddleware:
    """The ASGI layer: request ID in, request ID out, ML attributes on the server span.

    Plain ASGI (no ``BaseHTTPMiddleware``), so it adds one function call and one header scan per
    request and keeps streaming responses streaming.
    """

    __slots__ = ("app", "monitor")

    def __init__(self, app: ASGIApp, monitor: ModelMonitor | None = None) -> None:
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            incoming = None
            for name, value in scope["headers"]:
                if name == _HEADER:
                    incoming = value
                    break
            request, scope_token, id_token = _layer.enter(incoming, self.monitor)
            request.method = scope.get("method")
            header = (_HEADER, request.request_id.encode("ascii"))
            _layer.set_server_address(request.span, *(scope.get("server") or (None, None)))
            _layer.redact_query(request.span, scope.get("query_string", b""))
        except Exception as exc:
            internal_error("FastAPI request layer", exc)
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                request.status_code = message.get("status")
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            request.error = exc
            raise
        finally:
            # Starlette's router puts the matched route into the scope.
            request.route = getattr(scope.get("route"), "path", None)
            _layer.leave(scope_token, id_token)


def _contrib_middleware(stack: Any) -> Any:
    """The contrib ``OpenTelemetryMiddleware`` in a built middleware stack, or ``None``."""
    seen: set[int] = set()
    while stack is not None and id(stack) not in seen:
        seen.add(id(stack))
        cls = type(stack)
        if cls.__module__ == _CONTRIB_MODULE and cls.__name__ == _CONTRIB_CLASS:
            return stack
        stack = getattr(stack, "app", None)
    return None


def contrib_instrumentation_active(app: fastapi.FastAPI) -> bool:
    """Whether ``opentelemetry-instrumentation-fastapi`` instruments ``app`` (it then makes the
    server span and FastAPI's native telemetry is off for this app)."""
    return _compat.instrumented_by_contrib(app)


def _wrap_stack(app: fastapi.FastAPI, stack: ASGIApp, monitor: ModelMonitor | None) -> ASGIApp:
    contrib = _contrib_middleware(stack)
    # The contrib instrumentation may also wrap this app's stack after us (its FastAPI
    # subclass instruments once ours did): the middleware is then outside the stack we see.
    if contrib is not None or contrib_instrumentation_active(app):
        warn_once(
            "fastapi-contrib",
            "otel-mlmon: opentelemetry-instrumentation-fastapi is active on this FastAPI app, so "
            "FastAPI's native telemetry is off for it and the contrib middleware makes the server "
            "span (with extra 'http send'/'http receive' spans, at a higher cost, and the "
            "messages of unhandled exceptions on it). otel-mlmon adds its layer inside that "
            "span. To use the native telemetry instead, set "
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fastapi or uninstall "
            "opentelemetry-instrumentation-fastapi.",
        )
    if contrib is not None:
        contrib.app = MLRequestMiddleware(contrib.app, monitor)
        return stack
    # An outer ServerErrorMiddleware keeps the stack's outermost type what Starlette builds,
    # so the contrib instrumentation, if it wraps this app later, still finds it; the app's own
    # ServerErrorMiddleware (with the user's 500 handler) stays inside our layer.
    return ServerErrorMiddleware(MLRequestMiddleware(stack, monitor))


class FastAPIMLInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """``opentelemetry_instrumentor`` entry point ``otel_mlmon_fastapi``.

    ``instrument()`` makes every ``fastapi.FastAPI`` created afterwards instrumented (through a
    subclass, as the contrib instrumentors do); ``instrument_app(app)`` instruments one app that
    exists already. ``uninstrument()`` restores ``fastapi.FastAPI`` and removes the layer from
    every app instrumented either way; ``uninstrument_app(app)`` from one.

    .. versionadded:: 0.1.0
    """

    _original_fastapi: type[fastapi.FastAPI] | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        _layer.prefer_stable_http_conventions()
        self._original_fastapi = fastapi.FastAPI
        fastapi.FastAPI = _layer.instrumented_subclass(  # type: ignore[misc]
            fastapi.FastAPI, FastAPIMLInstrumentor.instrument_app, kwargs
        )

    def _uninstrument(self, **kwargs: Any) -> None:
        if self._original_fastapi is not None:
            fastapi.FastAPI = self._original_fastapi  # type: ignore[misc]
            self._original_fastapi = None
        for app in list(_apps):
            FastAPIMLInstrumentor.uninstrument_app(app)

    @staticmethod
    def instrument_app(
        app: fastapi.FastAPI,
        *,
        monitor: ModelMonitor | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """Add the ML layer to ``app``; a second call on the same app does nothing.

        ``monitor`` restricts the ML attributes on server spans to that monitor's predictions
        (default: any monitor's). ``tracer_provider`` / ``meter_provider`` become the app's
        native telemetry providers when the app has none of its own (``FastAPI(telemetry=
        {"tracer_provider": ...})`` wins); without them FastAPI uses the global providers.
        """
        if getattr(app, _layer.MARKER, None) is not None:
            return
        # For the contrib FastAPI instrumentation, should it instrument this app after us.
        _layer.prefer_stable_http_conventions()
        state = _layer.AppState(monitor)
        config = _compat.fastapi_telemetry_config(app)
        if config is None:
            warn_once(
                "fastapi-no-native",
                "otel-mlmon: this FastAPI has no native telemetry (FastAPI < 0.142): requests get "
                "request IDs and predict spans but no server span; upgrade FastAPI",
            )
        else:
            for key, provider in (
                ("tracer_provider", tracer_provider),
                ("meter_provider", meter_provider),
            ):
                if provider is not None and config.get(key) is None:
                    config[key] = provider
                    state.undo.append(("config", key))
        if contrib_instrumentation_active(app):
            _logger.debug("otel-mlmon: contrib FastAPI instrumentation found on %r", app)

        original_build = app.build_middleware_stack
        had_own = "build_middleware_stack" in vars(app)

        def build_middleware_stack(self: fastapi.FastAPI) -> ASGIApp:
            stack = original_build()
            if getattr(self, _layer.MARKER, None) is not state:
                return stack  # uninstrumented while someone else's wrapper sits on ours
            return _wrap_stack(self, stack, monitor)

        wrapper = types.MethodType(build_middleware_stack, app)
        # An instance attribute shadows the class method; removing it is the undo.
        app.build_middleware_stack = wrapper  # type: ignore[method-assign]
        state.undo.append(("build", (wrapper, original_build, had_own)))
        # Starlette builds the stack lazily on the first request: a fresh build picks the
        # layer up even for an app that already served requests.
        app.middleware_stack = None
        setattr(app, _layer.MARKER, state)
        _apps.add(app)

    @staticmethod
    def uninstrument_app(app: fastapi.FastAPI) -> None:
        """Remove the ML layer from ``app`` (and the providers it gave the app)."""
        state: _layer.AppState | None = getattr(app, _layer.MARKER, None)
        if state is None:
            return
        config = _compat.fastapi_telemetry_config(app)
        for kind, value in reversed(state.undo):
            if kind == "config" and config is not None:
                config[value] = None
            elif kind == "build":
                wrapper, original_build, had_own = value
                if vars(app).get("build_middleware_stack") is wrapper:
                    if had_own:
                        app.build_middleware_stack = original_build  # type: ignore[method-assign]
                    else:
                        del app.build_middleware_stack
                # else another wrapper sits on ours: ours passes through from now on.
        app.middleware_stack = None
        delattr(app, _layer.MARKER)
        _apps.discard(app)


def instrumented(app: fastapi.FastAPI) -> bool:
    """Whether ``app`` currently carries the otel-mlmon layer."""
    return getattr(app, _layer.MARKER, None) is not None
