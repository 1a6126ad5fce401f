"""``configure()``: one call wires the OpenTelemetry SDK for a model service.

The only module of the package that imports ``opentelemetry.sdk`` and the exporters; everything
else records through the API. Precedence everywhere: keyword argument, then environment variable
(the standard ``OTEL_*`` ones first), then default. A malformed environment value warns and falls
back; an invalid argument raises :class:`~otel_mlmon.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from opentelemetry import _logs as logs_api
from opentelemetry import metrics, trace
from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_METRIC_EXPORT_INTERVAL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from otel_mlmon import resources, semconv
from otel_mlmon.environment_variables import (
    OTEL_MLMON_CONSOLE_SPANS,
    OTEL_MLMON_GPU_METRICS,
    OTEL_MLMON_PROCESS_METRICS,
    OTEL_MLMON_PROMETHEUS,
)
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.version import __version__

_logger: Final = logging.getLogger("otel_mlmon")

Protocol = Literal["grpc", "http/protobuf"]
_PROTOCOLS: Final = ("grpc", "http/protobuf")
_SIGNAL_ENV: Final = {
    "traces": (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL),
    "metrics": (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL),
    "logs": (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_LOGS_PROTOCOL),
}
_EXPORTER_ENV: Final = {
    "traces": OTEL_TRACES_EXPORTER,
    "metrics": OTEL_METRICS_EXPORTER,
    "logs": OTEL_LOGS_EXPORTER,
}
_EXPORTERS: Final = {
    "traces": ("otlp", "console", "none"),
    "metrics": ("otlp", "prometheus", "console", "none"),
    "logs": ("otlp", "console", "none"),
}

#: Default port of the embedded Prometheus endpoint: the OpenTelemetry Prometheus exporter's
#: registered port, also read from ``OTEL_EXPORTER_PROMETHEUS_PORT``.
DEFAULT_PROMETHEUS_PORT: Final = 9464
#: Default address the Prometheus endpoint binds (``OTEL_EXPORTER_PROMETHEUS_HOST``): loopback,
#: so nothing is exposed unless asked.
DEFAULT_PROMETHEUS_HOST: Final = "localhost"
#: Longest a ``shutdown()`` waits for each provider's flush.
SHUTDOWN_TIMEOUT_MILLIS: Final = 5_000


def default_views() -> list[View]:
    """The Views configure() installs unless given others: millisecond-scale buckets for
    ``ml.model.prediction.duration`` and fixed buckets for confidence and batch size.

    The instruments also carry these as advisory boundaries, so an application with its own
    MeterProvider gets them too; the Views make them explicit and easy to extend:
    ``configure(views=[*default_views(), View(...)])``.

    .. versionadded:: 0.1.0
    """
    return [
        View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(buckets)),
        )
        for name, buckets in (
            (semconv.ML_MODEL_PREDICTION_DURATION, semconv.DURATION_BUCKETS),
            (semconv.ML_MODEL_PREDICTION_CONFIDENCE, semconv.CONFIDENCE_BUCKETS),
            (semconv.ML_MODEL_BATCH_SIZE, semconv.BATCH_SIZE_BUCKETS),
        )
    ]


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    _logger.warning("%s=%r is not true or false; using %s", name, raw, default)
    return default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        _logger.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default


def sdk_disabled() -> bool:
    """Whether ``OTEL_SDK_DISABLED`` turns all telemetry off."""
    return _env_bool(OTEL_SDK_DISABLED, False)


@dataclass
class Telemetry:
    """What :func:`configure` set up; flush and shut it down through this handle.

    ``actions`` says, per signal, what configure() did (for logs and for tests): e.g.
    ``{"traces": "set TracerProvider: otlp (http/protobuf)", "metrics": "kept existing ..."}``.

    .. versionadded:: 0.1.0
    """

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: logs_api.LoggerProvider
    resource: Resource
    prometheus_address: tuple[str, int] | None = None
    actions: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _flushers: list[Callable[[int], bool]] = field(default_factory=list, repr=False)
    _shut_down: bool = field(default=False, repr=False)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything pending; ``False`` if some provider did not finish in time."""
        ok = True
        for flush in self._flushers:
            try:
                ok = flush(timeout_millis) and ok
            except Exception:
                _logger.warning("otel-mlmon: flush failed", exc_info=True)
                ok = False
        return ok

    def shutdown(self) -> None:
        """Flush and stop everything configure() started; idempotent.

        Bounded in time: each provider gets at most ``SHUTDOWN_TIMEOUT_MILLIS``.
        """
        global _current
        with _lock:
            if self._shut_down:
                return
            self._shut_down = True
            if _current is self:
                _current = None
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                _logger.warning("otel-mlmon: shutdown step failed", exc_info=True)


_lock = threading.Lock()
_current: Telemetry | None = None


def _protocol(signal: str, argument: str | None) -> str:
    value = argument
    if value is None:
        value = os.environ.get(_SIGNAL_ENV[signal][1]) or os.environ.get(
            OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"
        )
    value = value.strip().lower()
    if value not in _PROTOCOLS:
        if argument is not None:
            raise ConfigurationError(f"otlp_protocol must be one of {_PROTOCOLS}, not {value!r}")
        _logger.warning("OTLP protocol %r is not supported; using http/protobuf", value)
        value = "http/protobuf"
    return value


def _otlp_configured(signal: str, endpoint: str | None) -> bool:
    return bool(
        endpoint
        or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT)
        or os.environ.get(_SIGNAL_ENV[signal][0])
    )


def _exporter_choice(signal: str, default: str) -> str:
    raw = os.environ.get(_EXPORTER_ENV[signal], "").strip().lower()
    if not raw:
        return default
    # The spec allows a comma-separated list; we take the first we support.
    for name in (part.strip() for part in raw.split(",")):
        if name in _EXPORTERS[signal]:
            return name
    _logger.warning(
        "%s=%r names no exporter otel-mlmon supports %s; using %s",
        _EXPORTER_ENV[signal],
        raw,
        _EXPORTERS[signal],
        default,
    )
    return default


def _otlp_kwargs(
    signal: str, protocol: str, endpoint: str | None, headers: Mapping[str, str] | None
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if endpoint:
        base = endpoint.rstrip("/")
        kwargs["endpoint"] = base if protocol == "grpc" else f"{base}/v1/{signal}"
    if headers is not None:
        kwargs["headers"] = dict(headers)
    return kwargs


def _span_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter(**kwargs)


def _metric_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )

    return HTTPMetricExporter(**kwargs)


def _log_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    return HTTPLogExporter(**kwargs)


def _resource(
    service_name: str | None,
    service_version: str | None,
    attributes: Mapping[str, Any] | None,
) -> Resource:
    extra: dict[str, Any] = {
        "telemetry.distro.name": "otel-mlmon",
        "telemetry.distro.version": __version__,
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
    }
    extra.update(attributes or {})
    if service_name is not None:
        extra["service.name"] = service_name
    if service_version is not None:
        extra["service.version"] = service_version
    return Resource.create(extra)


def _start_prometheus(
    host: str | None, port: int | None
) -> tuple[MetricReader, tuple[str, int], Callable[[], None]]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    host = host or os.environ.get("OTEL_EXPORTER_PROMETHEUS_HOST") or DEFAULT_PROMETHEUS_HOST
    if port is None:
        port = _env_int("OTEL_EXPORTER_PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT)
    # A registry of our own: prometheus_client's global one also carries its own process_*
    # collectors, which would duplicate the OTel process.* gauges.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reader.shutdown()
        raise ConfigurationError(
            f"cannot serve the Prometheus endpoint on {host}:{port}: {exc}; pick another with "
            "prometheus_port= or OTEL_EXPORTER_PROMETHEUS_PORT"
        ) from exc
    bound = server.server_address

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)

    return reader, (str(bound[0]), int(bound[1])), stop


def _existing(provider: object, proxy_names: tuple[str, ...]) -> bool:
    return type(provider).__name__ not in proxy_names


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
    process_metrics: bool | None = None,
    gpu_metrics: bool | None = None,
    set_global: bool = True,
) -> Telemetry:
    """Set up traces, metrics and logs for a model service and return the handle.

    With no OTLP endpoint (``otlp_endpoint=`` or ``OTEL_EXPORTER_OTLP[_<SIGNAL>]_ENDPOINT``)
    this is the embedded default: metrics on a Prometheus scrape endpoint
    (``prometheus_host:prometheus_port``, default ``localhost:9464``), logs as JSON on stdout,
    spans nowhere unless ``console_spans=True``. With an endpoint, all three signals go there
    over OTLP (``grpc`` or ``http/protobuf``, the default). ``views`` replace
    :func:`default_views` (extend them with ``[*default_views(), ...]``).
    ``OTEL_TRACES_EXPORTER``,
    ``OTEL_METRICS_EXPORTER`` and ``OTEL_LOGS_EXPORTER`` (``otlp``, ``console``, ``none``,
    and ``prometheus`` for metrics) override that choice per signal.

    Idempotent: a second call returns the first handle (with a warning if its arguments
    differ). Global providers that the application set before are kept, never replaced;
    ``Telemetry.actions`` and an INFO log say what was done. With ``OTEL_SDK_DISABLED=true``
    nothing is set up, nothing listens, and the handle holds no-op providers.

    Raises:
        ConfigurationError: an argument is invalid or the Prometheus port is taken.

    .. versionadded:: 0.1.0
    """
    global _current
    with _lock:
        if _current is not None:
            _logger.warning(
                "otel-mlmon: configure() was already called; returning the existing telemetry "
                "(call shutdown() on it first to configure anew)"
            )
            return _current
        if sdk_disabled():
            _logger.info("otel-mlmon: OTEL_SDK_DISABLED=true, telemetry is off")
            return Telemetry(
                tracer_provider=trace.NoOpTracerProvider(),
                meter_provider=metrics.NoOpMeterProvider(),
                logger_provider=logs_api.NoOpLoggerProvider(),
                resource=Resource.get_empty(),
                actions={s: "disabled by OTEL_SDK_DISABLED" for s in ("traces", "metrics", "logs")},
                disabled=True,
            )
        if otlp_protocol is not None and otlp_protocol not in _PROTOCOLS:
            raise ConfigurationError(
                f"otlp_protocol must be one of {_PROTOCOLS}, not {otlp_protocol!r}"
            )
        if prometheus_port is not None and not 0 <= prometheus_port <= 65535:
            raise ConfigurationError(f"prometheus_port must be 0..65535, not {prometheus_port}")
        if metric_export_interval_millis is not None and metric_export_interval_millis <= 0:
            raise ConfigurationError("metric_export_interval_millis must be positive")
        telemetry = _build(
            service_name=service_name,
            service_version=service_version,
            resource_attributes=resource_attributes,
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
        _current = telemetry
    atexit.register(telemetry.shutdown)
    for signal, action in telemetry.actions.items():
        _logger.info("otel-mlmon: %s: %s", signal, action)
    if logs:
        _configure_logs(telemetry)
    return telemetry


def _configure_logs(telemetry: Telemetry) -> None:
    """Route structlog and standard logging through otel-mlmon's processors, rendered as JSON
    on stdout, and exported through the LoggerProvider when it has somewhere to send them."""
    from otel_mlmon import logs as _logs

    exported = not telemetry.actions.get("logs", "").endswith(": none")
    _logs.configure_logging(logger_provider=telemetry.logger_provider, export=exported)


def _build(
    *,
    service_name: str | None,
    service_version: str | None,
    resource_attributes: Mapping[str, Any] | None,
    otlp_endpoint: str | None,
    otlp_protocol: str | None,
    otlp_headers: Mapping[str, str] | None,
    prometheus: bool | None,
    prometheus_host: str | None,
    prometheus_port: int | None,
    console_spans: bool | None,
    metric_export_interval_millis: int | None,
    sampler: Sampler | None,
    views: Sequence[View] | None,
    process_metrics: bool | None,
    gpu_metrics: bool | None,
    set_global: bool,
) -> Telemetry:
    resource = _resource(service_name, service_version, resource_attributes)
    actions: dict[str, str] = {}
    closers: list[Callable[[], None]] = []
    flushers: list[Callable[[int], bool]] = []

    def exporter_for(signal: str, fallback: str) -> tuple[str, str]:
        default = "otlp" if _otlp_configured(signal, otlp_endpoint) else fallback
        choice = _exporter_choice(signal, default)
        return choice, _protocol(signal, otlp_protocol) if choice == "otlp" else ""

    # Traces.
    existing_tracer = trace.get_tracer_provider()
    tracer_provider: trace.TracerProvider
    if set_global and _existing(existing_tracer, ("ProxyTracerProvider",)):
        tracer_provider = existing_tracer
        actions["traces"] = f"kept the existing {type(existing_tracer).__name__}"
    else:
        if console_spans is None:
            console_spans = _env_bool(OTEL_MLMON_CONSOLE_SPANS, False)
        sdk_tracer = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        choice, protocol = exporter_for("traces", "console" if console_spans else "none")
        if choice == "otlp":
            exporter = _span_exporter(
                protocol, **_otlp_kwargs("traces", protocol, otlp_endpoint, otlp_headers)
            )
            sdk_tracer.add_span_processor(BatchSpanProcessor(exporter))
        elif choice == "console":
            sdk_tracer.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
        actions["traces"] = f"set TracerProvider: {choice} {protocol}".rstrip()
        if set_global:
            trace.set_tracer_provider(sdk_tracer)
        tracer_provider = sdk_tracer
        flushers.append(sdk_tracer.force_flush)
        closers.append(sdk_tracer.shutdown)

    # Metrics.
    prometheus_address: tuple[str, int] | None = None
    existing_meter = metrics.get_meter_provider()
    meter_provider: metrics.MeterProvider
    if set_global and _existing(existing_meter, ("_ProxyMeterProvider", "ProxyMeterProvider")):
        meter_provider = existing_meter
        actions["metrics"] = f"kept the existing {type(existing_meter).__name__}"
    else:
        choice, protocol = exporter_for("metrics", "prometheus")
        if prometheus is None:
            prometheus = _env_bool(OTEL_MLMON_PROMETHEUS, choice == "prometheus")
        readers: list[MetricReader] = []
        described = []
        if choice == "otlp":
            interval = metric_export_interval_millis or _env_int(
                OTEL_METRIC_EXPORT_INTERVAL, 60_000
            )
            exporter = _metric_exporter(
                protocol, **_otlp_kwargs("metrics", protocol, otlp_endpoint, otlp_headers)
            )
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
            described.append(f"otlp {protocol} every {interval} ms")
        elif choice == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            readers.append(
                PeriodicExportingMetricReader(
                    ConsoleMetricExporter(),
                    export_interval_millis=metric_export_interval_millis,
                )
            )
            described.append("console")
        stop_prometheus = None
        if prometheus:
            reader, prometheus_address, stop_prometheus = _start_prometheus(
                prometheus_host, prometheus_port
            )
            readers.append(reader)
            described.append(
                f"prometheus on http://{prometheus_address[0]}:{prometheus_address[1]}/metrics"
            )
        sdk_meter = MeterProvider(
            metric_readers=readers,
            resource=resource,
            views=default_views() if views is None else list(views),
            shutdown_on_exit=False,
        )
        actions["metrics"] = "set MeterProvider: " + (", ".join(described) or "none")
        if set_global:
            metrics.set_meter_provider(sdk_meter)
        meter_provider = sdk_meter
        flushers.append(sdk_meter.force_flush)
        closers.append(lambda: sdk_meter.shutdown(timeout_millis=SHUTDOWN_TIMEOUT_MILLIS))
        if stop_prometheus is not None:
            closers.append(stop_prometheus)

    # Logs.
    existing_logger = logs_api.get_logger_provider()
    logger_provider: logs_api.LoggerProvider
    if set_global and _existing(existing_logger, ("ProxyLoggerProvider",)):
        logger_provider = existing_logger
        actions["logs"] = f"kept the existing {type(existing_logger).__name__}"
    else:
        choice, protocol = exporter_for("logs", "none")
        sdk_logger = LoggerProvider(resource=resource, shutdown_on_exit=False)
        if choice == "otlp":
            exporter = _log_exporter(
                protocol, **_otlp_kwargs("logs", protocol, otlp_endpoint, otlp_headers)
            )
            sdk_logger.add_log_record_processor(BatchLogRecordProcessor(exporter))
        elif choice == "console":
            sdk_logger.add_log_record_processor(
                BatchLogRecordProcessor(ConsoleLogRecordExporter(out=sys.stdout))
            )
        actions["logs"] = f"set LoggerProvider: {choice} {protocol}".rstrip()
        if set_global:
            logs_api.set_logger_provider(sdk_logger)
        logger_provider = sdk_logger
        flushers.append(sdk_logger.force_flush)
        closers.append(sdk_logger.shutdown)

    # Process and GPU gauges, on whichever MeterProvider is in use.
    if process_metrics is None:
        process_metrics = _env_bool(OTEL_MLMON_PROCESS_METRICS, True)
    if process_metrics:
        closers.append(resources.observe_process(meter_provider))
    if gpu_metrics is None:
        gpu_metrics = _env_bool(OTEL_MLMON_GPU_METRICS, True)
    if gpu_metrics:
        gpu = resources.GpuMetrics(meter_provider)
        if gpu.start():
            closers.append(gpu.shutdown)

    # Closers run in reverse: gauges first, then logs, metrics, traces.
    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        resource=resource,
        prometheus_address=prometheus_address,
        actions=actions,
        _closers=closers,
        _flushers=flushers,
    )


class Configurator:
    """``opentelemetry_configurator`` entry point: ``opentelemetry-instrument`` runs
    :func:`configure` with its environment-only defaults (select it with
    ``OTEL_PYTHON_CONFIGURATOR=otel_mlmon`` when several configurators are installed)."""

    def configure(self, **kwargs: Any) -> None:
        """Called once by the auto-instrumentation before the instrumentors."""
        configure()
