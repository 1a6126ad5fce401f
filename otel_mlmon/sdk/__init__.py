"""``configure()``: one call wires the OpenTelemetry SDK for a model service.

The only package of otel-mlmon that imports ``opentelemetry.sdk`` and the exporters; everything
else records through the API. Precedence everywhere: keyword argument, then environment variable
(the standard ``OTEL_*`` ones first), then default. A malformed environment value warns and falls
back; an invalid argument raises :class:`~otel_mlmon.exceptions.ConfigurationError`.

One module per job: ``_options`` (the arguments and the Resource), ``_otlp`` (where each signal
goes), ``_metrics``, ``_traces`` and ``_logs`` (one builder per signal, each returning a typed
record of what it set up), ``prometheus`` (the embedded endpoint, shared by the workers of a
server), ``_telemetry`` (the handle) and ``_lifecycle`` (the current handle, SIGTERM).
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import _logs as logs_api
from opentelemetry import metrics, trace
from opentelemetry.sdk.environment_variables import OTEL_SDK_DISABLED
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Sampler

from otel_mlmon import _env
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.sdk import _lifecycle
from otel_mlmon.sdk._lifecycle import (
    EXPORT_LOGGERS,
    EXPORT_WARNING_INTERVAL_S,
)
from otel_mlmon.sdk._logs import build_logs
from otel_mlmon.sdk._metrics import build_metrics, default_views, start_resource_gauges
from otel_mlmon.sdk._options import DEFAULT_PROMETHEUS_HOST, DEFAULT_PROMETHEUS_PORT, Options
from otel_mlmon.sdk._options import resource as _resource
from otel_mlmon.sdk._otlp import Protocol
from otel_mlmon.sdk._telemetry import SHUTDOWN_TIMEOUT_MILLIS, SignalSetup, Telemetry
from otel_mlmon.sdk._traces import build_traces
from otel_mlmon.sdk.prometheus import PrometheusEndpoint

__all__ = [
    "DEFAULT_PROMETHEUS_HOST",
    "DEFAULT_PROMETHEUS_PORT",
    "EXPORT_LOGGERS",
    "EXPORT_WARNING_INTERVAL_S",
    "SHUTDOWN_TIMEOUT_MILLIS",
    "Configurator",
    "PrometheusEndpoint",
    "Protocol",
    "SignalSetup",
    "Telemetry",
    "configure",
    "default_views",
    "sdk_disabled",
]

_logger: Final = logging.getLogger("otel_mlmon")
# Reached for by tests and tools as `sdk._export_log_filter` and `sdk._on_sigterm`.
_export_log_filter: Final = _lifecycle.export_log_filter
_on_sigterm: Final = _lifecycle.on_sigterm


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        # The current handle lives in _lifecycle; `sdk._current` stays readable for tests.
        if name == "_current":
            return _lifecycle.current
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sdk_disabled() -> bool:
    """Whether ``OTEL_SDK_DISABLED`` turns all telemetry off."""
    return _env.env_bool(OTEL_SDK_DISABLED, False)


# Over 60 lines only in its signature and docstring: every option users pass is listed and
# documented in one place; the body hands each signal to its builder (sdk/_traces.py, ...).
def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    otlp_endpoint: str | None = None,
    otlp_protocol: Protocol | None = None,
    otlp_headers: Mapping[str, str] | None = None,
    prometheus: bool | None = None,
    prometheus_host: str | None = None,
    prometheus_port: int | None = None,
    console_spans: bool | None = None,
    metric_export_interval_millis: int | None = None,
    sampler: Sampler | None = None,
    views: Sequence[View] | None = None,
    logs: bool = True,
    record_exception_messages: bool = False,
    process_metrics: bool | None = None,
    gpu_metrics: bool | None = None,
    set_global: bool = True,
    handle_sigterm: bool = True,
    shutdown_timeout_millis: int = SHUTDOWN_TIMEOUT_MILLIS,
) -> Telemetry:
    """Set up traces, metrics and logs for a model service and return the handle.

    With no OTLP endpoint (``otlp_endpoint=`` or ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_ENDPOINT``)
    this is the embedded default: metrics on a Prometheus scrape endpoint
    (``prometheus_host:prometheus_port``, default ``localhost:9464``), logs as JSON on stdout,
    spans nowhere unless ``console_spans=True``. With an endpoint, all three signals go there
    over OTLP (``grpc`` or ``http/protobuf``, the default). ``views`` replace
    :func:`default_views` (extend them with ``[*default_views(), ...]``).
    ``record_exception_messages`` lets exception messages onto log lines and records (off by
    default: they carry request data; see ``ModelMonitor``'s argument of the same name for
    spans). ``OTEL_TRACES_EXPORTER``, ``OTEL_METRICS_EXPORTER`` and ``OTEL_LOGS_EXPORTER``
    (``otlp``, ``console``, ``none``, and ``prometheus`` for metrics) override that choice per
    signal.

    Under a multi-process server (gunicorn ``-w N``, ``uvicorn --workers N``), call it in each
    worker or once before the fork (gunicorn ``--preload``): the workers share the one
    Prometheus port, and a scrape returns all of them (docs/configuration.md, "Multi-process
    servers"). The endpoint serves OpenMetrics with exemplars to a scraper that asks for it.

    Telemetry never breaks the service: export runs on background threads with bounded queues
    (``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BLRP_MAX_QUEUE_SIZE``; drops are counted by the SDK's
    ``otel.sdk.*`` metrics when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``), each export
    gives up after ``OTEL_EXPORTER_OTLP_TIMEOUT`` seconds, the exporters' warnings are
    rate-limited, a Prometheus port held by another program is logged and retried, and
    :meth:`Telemetry.shutdown` (also run at exit) returns within ``shutdown_timeout_millis``
    (default 5 s; keep it under your orchestrator's grace period). With ``handle_sigterm`` (the
    default) a SIGTERM that nobody else handles first flushes within that bound, then
    terminates the process as before. See ``docs/reliability.md``.

    Idempotent: a second call returns the first handle (with a warning). Global providers that
    the application set before are kept, never replaced; ``Telemetry.traces`` / ``.metrics`` /
    ``.logs`` and an INFO log say what was done. With ``OTEL_SDK_DISABLED=true`` nothing is set
    up, nothing listens, and the handle holds no-op providers.

    Raises:
        ConfigurationError: an argument is invalid, or ``OTEL_EXPORTER_PROMETHEUS_PORT`` is not
            a port number.

    .. versionadded:: 0.1.0
    """
    # Long for its public signature and contract only: the work is in the signal builders.
    options = Options(
        otlp_endpoint=otlp_endpoint,
        otlp_protocol=otlp_protocol,
        otlp_headers=otlp_headers,
        prometheus=prometheus,
        prometheus_host=prometheus_host,
        prometheus_port=prometheus_port,
        console_spans=console_spans,
        metric_export_interval_millis=metric_export_interval_millis,
        sampler=sampler,
        views=views,
        process_metrics=process_metrics,
        gpu_metrics=gpu_metrics,
        set_global=set_global,
    )
    with _lifecycle.lock:
        if _lifecycle.current is not None:
            _logger.warning(
                "otel-mlmon: configure() was already called; returning the existing telemetry "
                "(call shutdown() on it first to configure anew)"
            )
            return _lifecycle.current
        if sdk_disabled():
            _logger.info("otel-mlmon: OTEL_SDK_DISABLED=true, telemetry is off")
            return _disabled()
        options.check()
        if shutdown_timeout_millis <= 0:
            raise ConfigurationError("shutdown_timeout_millis must be positive")
        resource = _resource(service_name, service_version, resource_attributes)
        telemetry = _build(options, resource)
        telemetry.shutdown_timeout_millis = shutdown_timeout_millis
        _lifecycle.set_current(telemetry)
        _lifecycle.rate_limit_export_logs()
        telemetry.sigterm_handled = handle_sigterm and _lifecycle.install_sigterm()
    atexit.register(telemetry.shutdown)
    for name, done in telemetry.describe().items():
        _logger.info("otel-mlmon: %s: %s", name, done)
    if logs:
        _configure_logs(telemetry, record_exception_messages)
    return telemetry


def _disabled() -> Telemetry:
    return Telemetry(
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=metrics.NoOpMeterProvider(),
        logger_provider=logs_api.NoOpLoggerProvider(),
        resource=Resource.get_empty(),
        traces=SignalSetup("traces", "NoOpTracerProvider"),
        metrics=SignalSetup("metrics", "NoOpMeterProvider"),
        logs=SignalSetup("logs", "NoOpLoggerProvider"),
        disabled=True,
    )


def _build(options: Options, resource: Resource) -> Telemetry:
    """Each signal by its builder, metrics first (the others report into its provider)."""
    service_name = str(resource.attributes.get("service.name", ""))
    metrics_built, endpoint = build_metrics(options, resource, service_name)
    meter_provider = metrics_built.provider
    traces_built = build_traces(options, resource, meter_provider)
    logs_built = build_logs(options, resource, meter_provider)
    closers = [
        *traces_built.closers,
        *metrics_built.closers,
        *logs_built.closers,
        # Closers run in reverse: gauges first, then logs, metrics, traces.
        *start_resource_gauges(options, meter_provider),
    ]
    return Telemetry(
        tracer_provider=traces_built.provider,
        meter_provider=meter_provider,
        logger_provider=logs_built.provider,
        resource=resource,
        traces=traces_built.setup,
        metrics=metrics_built.setup,
        logs=logs_built.setup,
        prometheus=endpoint,
        _closers=closers,
        _flushers=[
            built.flush
            for built in (metrics_built, traces_built, logs_built)
            if built.flush is not None
        ],
    )


def _configure_logs(telemetry: Telemetry, record_exception_messages: bool) -> None:
    """Route structlog and standard logging through otel-mlmon's processors, rendered as JSON
    on stdout, and exported through the LoggerProvider when it has somewhere to send them."""
    from otel_mlmon import logs as _logs

    exported = telemetry.logs.kept_existing or bool(telemetry.logs.exporters)
    _logs.configure_logging(
        logger_provider=telemetry.logger_provider,
        export=exported,
        record_exception_messages=record_exception_messages,
    )


class Configurator:
    """``opentelemetry_configurator`` entry point: ``opentelemetry-instrument`` runs
    :func:`configure` with its environment-only defaults (select it with
    ``OTEL_PYTHON_CONFIGURATOR=otel_mlmon`` when several configurators are installed)."""

    def configure(self, **kwargs: Any) -> None:
        """Called once by the auto-instrumentation before the instrumentors."""
        configure()
