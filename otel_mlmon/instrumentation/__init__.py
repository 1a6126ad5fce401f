"""HTTP integrations: the ML layer on FastAPI's native telemetry and on the contrib Flask one.

.. code-block:: python

    app = FastAPI(telemetry={"operation_spans": False})
    otel_mlmon.instrument_fastapi(app, monitor=monitor)   # or instrument_flask(app, ...)

or, with no code change, ``opentelemetry-instrument python app.py``: the instrumentors are
registered under the ``opentelemetry_instrumentor`` entry points ``otel_mlmon_fastapi`` and
``otel_mlmon_flask``. This package imports neither framework: the functions below import the
one they need when called. See ``docs/instrumentation.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from otel_mlmon.monitor import ModelMonitor

__all__ = ["instrument_fastapi", "instrument_flask", "uninstrument_fastapi", "uninstrument_flask"]


def _missing(extra: str, exc: ImportError) -> ImportError:
    return ImportError(
        f"otel-mlmon's {extra} integration needs {exc.name}: pip install 'otel-mlmon[{extra}]'"
    )


def instrument_fastapi(
    app: Any,
    *,
    monitor: ModelMonitor | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Add the ML layer to a ``fastapi.FastAPI`` app: request IDs, ML attributes on FastAPI's
    native server span, predict spans as its children. Idempotent.

    ``monitor`` limits the server-span ML attributes to that monitor's predictions;
    ``tracer_provider`` / ``meter_provider`` are given to the app's native telemetry when it has
    none (default: the global providers).

    .. versionadded:: 0.1.0
    """
    try:
        from otel_mlmon.instrumentation.fastapi import FastAPIMLInstrumentor
    except ImportError as exc:
        raise _missing("fastapi", exc) from exc
    FastAPIMLInstrumentor.instrument_app(
        app, monitor=monitor, tracer_provider=tracer_provider, meter_provider=meter_provider
    )


def uninstrument_fastapi(app: Any) -> None:
    """Remove what :func:`instrument_fastapi` added to ``app``.

    .. versionadded:: 0.1.0
    """
    from otel_mlmon.instrumentation.fastapi import FastAPIMLInstrumentor

    FastAPIMLInstrumentor.uninstrument_app(app)


def instrument_flask(
    app: Any,
    *,
    monitor: ModelMonitor | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Instrument a ``flask.Flask`` app with ``opentelemetry-instrumentation-flask`` (server
    span, ``http.server.request.duration``) unless it already is, and add the ML layer.
    Idempotent.

    .. versionadded:: 0.1.0
    """
    try:
        from otel_mlmon.instrumentation.flask import FlaskMLInstrumentor
    except ImportError as exc:
        raise _missing("flask", exc) from exc
    FlaskMLInstrumentor.instrument_app(
        app, monitor=monitor, tracer_provider=tracer_provider, meter_provider=meter_provider
    )


def uninstrument_flask(app: Any) -> None:
    """Remove what :func:`instrument_flask` added to ``app``, the contrib instrumentation
    included when it was added by :func:`instrument_flask`.

    .. versionadded:: 0.1.0
    """
    from otel_mlmon.instrumentation.flask import FlaskMLInstrumentor

    FlaskMLInstrumentor.uninstrument_app(app)
