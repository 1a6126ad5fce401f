"""Every touch of a third-party package's private names, in one place.

Each function below reads or writes one private attribute (or depends on one private module
layout) of a package we do not own, states the version it was checked against, and degrades to
a safe answer when the name has moved. ``tests/test_compat.py`` runs every probe in
:data:`CHECKED` against the installed packages, so an upgrade that moves a name fails a test
instead of silently changing behaviour. Nothing outside this module reaches into a third
party's private state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple

# --- opentelemetry-instrumentation (contrib) -----------------------------------------------


def instrumented_by_contrib(app: object) -> bool:
    """Whether a contrib web instrumentation (``opentelemetry-instrumentation-flask`` or
    ``-fastapi``) instrumented ``app``: both set ``app._is_instrumented_by_opentelemetry``.

    Checked against opentelemetry-instrumentation-flask and -fastapi 0.66b1.
    """
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def prefer_stable_http_conventions() -> bool:
    """Make the stable HTTP semantic conventions (``http.server.request.duration`` in seconds,
    no ``http.host`` or ``http.target``) the contrib instrumentations' choice for everything
    instrumented from now on, as ``OTEL_SEMCONV_STABILITY_OPT_IN=http`` would have.

    The contrib instrumentations read that variable once per process, at the first
    ``instrument()`` of any of them (``otel_mlmon.configure()`` instruments system metrics), and
    keep the answer in ``_OpenTelemetrySemanticConventionStability``; setting the variable later
    changes nothing, so the answer itself is updated. The caller checks that the user left the
    variable unset. Only the HTTP default is changed (an explicit ``http/dup`` stays). Returns
    whether the stable conventions are now the choice.

    Checked against opentelemetry-instrumentation 0.66b1 (``_initialize``, ``_lock``,
    ``_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING``).
    """
    try:
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetrySemanticConventionStability as Stability,
        )
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetryStabilitySignalType as Signal,
        )
        from opentelemetry.instrumentation._semconv import _StabilityMode as Mode
    except ImportError:
        return False
    try:
        Stability._initialize()  # type: ignore[no-untyped-call]
        with Stability._lock:
            choices = Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
            if choices.get(Signal.HTTP, Mode.DEFAULT) is Mode.DEFAULT:
                choices[Signal.HTTP] = Mode.HTTP
            return choices[Signal.HTTP] is not Mode.DEFAULT
    except (AttributeError, TypeError):
        return False


class _EndWithoutException:
    """A span activation that, whatever ends it, ends it as if no exception had been raised:
    the span is ended and the context restored, and nothing of the exception is recorded."""

    __slots__ = ("_activation",)

    def __init__(self, activation: Any) -> None:
        self._activation = activation

    def __exit__(self, *exc_info: object) -> Any:
        return self._activation.__exit__(None, None, None)


def end_flask_span_without_exception(environ: dict[str, Any]) -> bool:
    """Make the contrib Flask instrumentation end this request's server span without recording
    the view's exception: it would put the exception's message (``exception.message``, the last
    line of ``exception.stacktrace``, the status description) on the span, and messages carry
    request data. The caller records what may leave instead.

    The contrib instrumentation keeps the span's activation (``trace.use_span``, which records
    the exception it exits with) in the WSGI environ and exits it in its ``teardown_request``
    with the exception; this wraps that activation so that it exits clean. Checked against
    opentelemetry-instrumentation-flask 0.66b1 (``_ENVIRON_ACTIVATION_KEY``). Returns whether
    an activation was found.
    """
    try:
        from opentelemetry.instrumentation import flask as contrib_flask
    except ImportError:
        return False
    key = getattr(contrib_flask, "_ENVIRON_ACTIVATION_KEY", None)
    if not isinstance(key, str):
        return False
    activation = environ.get(key)
    if activation is None or not hasattr(activation, "__exit__"):
        return False
    if not isinstance(activation, _EndWithoutException):
        environ[key] = _EndWithoutException(activation)
    return True


def rebind_system_metrics_process(instrumentor: Any, process: Any) -> bool:
    """Point a ``SystemMetricsInstrumentor`` at ``process`` (a ``psutil.Process``): it binds
    the pid it was instrumented in, so a forked worker would report its parent's process.

    Checked against opentelemetry-instrumentation-system-metrics 0.66b1 (``_proc``). Returns
    whether the attribute was there to rebind.
    """
    if getattr(instrumentor, "_proc", None) is None:
        return False
    instrumentor._proc = process
    return True


# --- opentelemetry-instrumentation-structlog -----------------------------------------------


def structlog_instrumentation_processor() -> object | None:
    """The processor ``StructlogInstrumentor`` put into structlog's chain, if it did.

    Checked against opentelemetry-instrumentation-structlog 0.66b1 (``_processor``).
    """
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    return getattr(StructlogInstrumentor, "_processor", None)


def structlog_configured_by_app() -> bool:
    """Whether the application (not only ``StructlogInstrumentor.instrument()``) configured
    structlog. Checked against opentelemetry-instrumentation-structlog 0.66b1
    (``_is_configured_by_app``); unknown counts as "yes", which keeps the application's setup.
    """
    from opentelemetry.instrumentation.structlog import StructlogInstrumentor

    return bool(getattr(StructlogInstrumentor, "_is_configured_by_app", True))


def structlog_log_record(
    processor: Any, event_dict: dict[Any, Any], method_name: str | None
) -> Any:
    """The contrib ``StructlogProcessor``'s translation of ``event_dict`` into a ``LogRecord``
    (body, severity, timestamp, trace context), through its private ``_translate``.

    Checked against opentelemetry-instrumentation-structlog 0.66b1.
    """
    from opentelemetry.instrumentation.structlog import StructlogProcessor

    return StructlogProcessor._translate(processor, event_dict, method_name)


# --- FastAPI -------------------------------------------------------------------------------


def fastapi_telemetry_config(app: object) -> dict[str, Any] | None:
    """The native telemetry settings of a FastAPI app (``FastAPI(telemetry=...)``), ``None``
    before FastAPI 0.142. Mutable: a provider set here is the one the app uses.

    Checked against FastAPI 0.165.0 (``app._telemetry``).
    """
    config = getattr(app, "_telemetry", None)
    return config if isinstance(config, dict) else None


# --- opentelemetry-sdk and -api ----------------------------------------------------------

#: Loggers of the SDK and OTLP exporters that log once per failed export or retry. Several
#: live in private modules, so their names follow the SDK's layout (checked against
#: opentelemetry-sdk 1.45.1 and the exporters 1.45.1 / 0.66b1).
EXPORT_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk._logs._internal.export",
    "opentelemetry.sdk.trace.export",
)

#: Class names of the API's placeholder providers, in place until an SDK provider is set.
#: Checked against opentelemetry-api 1.45.1 (``_ProxyMeterProvider``, ``ProxyTracerProvider``,
#: ``ProxyLoggerProvider``); ``ProxyMeterProvider`` covers older releases.
_PROXY_PROVIDERS: Final = frozenset(
    {"_ProxyMeterProvider", "ProxyMeterProvider", "ProxyTracerProvider", "ProxyLoggerProvider"}
)


def is_proxy_provider(provider: object) -> bool:
    """Whether ``provider`` is the API's placeholder (no provider was set yet)."""
    return type(provider).__name__ in _PROXY_PROVIDERS


# --- opentelemetry-exporter-prometheus ----------------------------------------------------


def prometheus_label_name(attribute_key: str) -> str:
    """The Prometheus label name the OTel Prometheus exporter makes of an attribute key
    (``ml.model.name`` -> ``ml_model_name``), to find a data point's samples again.

    Checked against opentelemetry-exporter-prometheus 0.66b1 (``_mapping.sanitize_attribute``).
    """
    from opentelemetry.exporter.prometheus._mapping import sanitize_attribute

    return str(sanitize_attribute(attribute_key))


def prometheus_metric_name(metric_name: str) -> str:
    """The Prometheus family name the OTel Prometheus exporter makes of a metric name, before
    prometheus_client appends the unit (``ml.model.prediction.duration`` ->
    ``ml_model_prediction_duration``).

    Checked against opentelemetry-exporter-prometheus 0.66b1 (``_mapping.sanitize_full_name``).
    """
    from opentelemetry.exporter.prometheus._mapping import sanitize_full_name

    return str(sanitize_full_name(metric_name))


def forget_prometheus_target_info(reader: Any) -> bool:
    """Make a ``PrometheusMetricReader`` build ``target_info`` anew at its next collection: it
    caches it at the first one, so a forked worker would report its parent's
    ``service.instance.id``.

    Checked against opentelemetry-exporter-prometheus 0.66b1 (``_collector._target_info``).
    Returns whether the attribute was there to reset.
    """
    collector = getattr(reader, "_collector", None)
    if collector is None or not hasattr(collector, "_target_info"):
        return False
    collector._target_info = None
    return True


# --- the probes the compatibility test runs ------------------------------------------------


class Check(NamedTuple):
    """One private name we depend on: where it lives, what it was checked against, and a
    probe that returns ``True`` while the installed package still has it."""

    name: str
    checked_against: str
    probe: Callable[[], bool]


def _has(module: str, path: str) -> Callable[[], bool]:
    def probe() -> bool:
        from importlib import import_module

        value: object = import_module(module)
        for part in path.split("."):
            if not hasattr(value, part):
                return False
            value = getattr(value, part)
        return True

    return probe


def _logger_module_exists(name: str) -> Callable[[], bool]:
    def probe() -> bool:
        from importlib.util import find_spec

        return find_spec(name) is not None

    return probe


CHECKED: Final[tuple[Check, ...]] = (
    *(
        Check(
            f"_OpenTelemetrySemanticConventionStability.{name}",
            "opentelemetry-instrumentation 0.66b1",
            _has("opentelemetry.instrumentation._semconv",
                 f"_OpenTelemetrySemanticConventionStability.{name}"),
        )
        for name in ("_initialize", "_lock", "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING")
    ),
    Check(
        "_StabilityMode.HTTP",
        "opentelemetry-instrumentation 0.66b1",
        _has("opentelemetry.instrumentation._semconv", "_StabilityMode.HTTP"),
    ),
    Check(
        "opentelemetry.instrumentation.flask._ENVIRON_ACTIVATION_KEY",
        "opentelemetry-instrumentation-flask 0.66b1",
        _has("opentelemetry.instrumentation.flask", "_ENVIRON_ACTIVATION_KEY"),
    ),
    Check(
        "StructlogInstrumentor._is_configured_by_app",
        "opentelemetry-instrumentation-structlog 0.66b1",
        _has("opentelemetry.instrumentation.structlog",
             "StructlogInstrumentor._is_configured_by_app"),
    ),
    Check(
        "StructlogProcessor._translate",
        "opentelemetry-instrumentation-structlog 0.66b1",
        _has("opentelemetry.instrumentation.structlog", "StructlogProcessor._translate"),
    ),
    Check(
        "opentelemetry.exporter.prometheus._mapping.sanitize_attribute",
        "opentelemetry-exporter-prometheus 0.66b1",
        _has("opentelemetry.exporter.prometheus._mapping", "sanitize_attribute"),
    ),
    Check(
        "opentelemetry.exporter.prometheus._mapping.sanitize_full_name",
        "opentelemetry-exporter-prometheus 0.66b1",
        _has("opentelemetry.exporter.prometheus._mapping", "sanitize_full_name"),
    ),
    *(
        Check(f"logger module {name}", "opentelemetry-sdk 1.45.1", _logger_module_exists(name))
        for name in EXPORT_LOGGERS
    ),
)  # fmt: skip
"""Probes for the names that can be checked without building an object; the instance
attributes (``_proc``, ``_processor``, ``_is_instrumented_by_opentelemetry``, ``_telemetry``,
``_collector._target_info``)
are checked on real objects by ``tests/test_compat.py``."""
