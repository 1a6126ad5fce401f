"""``configure()``: one call wires the OpenTelemetry SDK for a model service.

The only module of the package that imports ``opentelemetry.sdk`` and the exporters; everything
else records through the API. Precedence everywhere: keyword argument, then environment variable
(the standard ``OTEL_*`` ones first), then default. A malformed environment value warns and falls
back; an invalid argument raises :class:`~otel_mlmon.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
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

from otel_mlmon import _compat, _env, _fork, resources, semconv
from otel_mlmon._guard import RateLimitFilter
from otel_mlmon.environment_variables import (
    OTEL_MLMON_CONSOLE_SPANS,
    OTEL_MLMON_GPU_METRICS,
    OTEL_MLMON_PROCESS_METRICS,
    OTEL_MLMON_PROMETHEUS,
)
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.logs.redaction import ExceptionMessageRedactor
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
#: Longest :meth:`Telemetry.shutdown` blocks, all providers together (they shut down in
#: parallel). A backend that never answers cannot hold the process past it.
SHUTDOWN_TIMEOUT_MILLIS: Final = 5_000
#: Interval of the rate limit on the OpenTelemetry exporters' own warnings and errors.
EXPORT_WARNING_INTERVAL_S: Final = 60.0
#: Loggers of the SDK and OTLP exporters that log once per failed export or retry; configure()
#: puts a :class:`~otel_mlmon._guard.RateLimitFilter` on them so a dead backend cannot flood
#: the service's logs.
EXPORT_LOGGERS: Final = _compat.EXPORT_LOGGERS
_export_log_filter: Final = RateLimitFilter(EXPORT_WARNING_INTERVAL_S)


def default_views() -> list[View]:
    """The Views configure() installs unless given others: millisecond-scale buckets for
    ``ml.model.prediction.duration``, fixed buckets for confidence and batch size, and the
    Prometheus-safe names of two ``process.*`` gauges (:data:`resources.PROCESS_METRIC_RENAMES`).

    The instruments also carry these as advisory boundaries, so an application with its own
    MeterProvider gets them too; the Views make them explicit and easy to extend:
    ``configure(views=[*default_views(), View(...)])``.

    .. versionadded:: 0.1.0
    """
    buckets = [
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
    renames = [
        View(instrument_name=old, meter_name=resources.PROCESS_METRICS_SCOPE, name=new)
        for old, new in resources.PROCESS_METRIC_RENAMES.items()
    ]
    return buckets + renames


def sdk_disabled() -> bool:
    """Whether ``OTEL_SDK_DISABLED`` turns all telemetry off."""
    return _env.env_bool(OTEL_SDK_DISABLED, False)


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
    shutdown_timeout_millis: int = SHUTDOWN_TIMEOUT_MILLIS
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _flushers: list[Callable[[int], bool]] = field(default_factory=list, repr=False)
    _shut_down: bool = field(default=False, repr=False)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything pending; ``False`` if some provider did not finish in time.

        Bounded: the providers flush in parallel and this returns after ``timeout_millis`` at
        the latest, even when an exporter is stuck on a backend that never answers (the SDK's
        batch processors do not bound their own flush).
        """
        return _run_bounded(
            [functools.partial(flush, timeout_millis) for flush in self._flushers],
            timeout_millis,
            "flush",
        )

    def shutdown(self, timeout_millis: int | None = None) -> bool:
        """Flush and stop everything configure() started; idempotent.

        Bounded in time: the providers shut down in parallel and this returns after
        ``timeout_millis`` at the latest (default ``shutdown_timeout_millis``, as given to
        configure()), with a warning, even when the backend never answers; what was still
        pending is then lost. Returns whether everything finished in time.
        """
        if timeout_millis is None:
            timeout_millis = self.shutdown_timeout_millis
        global _current
        with _lock:
            if self._shut_down:
                return True
            self._shut_down = True
            if _current is self:
                _current = None
        _restore_sigterm()
        return _run_bounded(list(reversed(self._closers)), timeout_millis, "shutdown")


def _run_bounded(steps: Sequence[Callable[[], object]], timeout_millis: int, what: str) -> bool:
    """Run ``steps`` in parallel daemon threads; wait at most ``timeout_millis`` for all.

    A step returning ``False`` or raising counts as a failure; a step still running at the
    deadline is abandoned (its thread is a daemon, so it cannot keep the process alive).
    """
    results: list[bool] = []

    def run(step: Callable[[], object]) -> None:
        try:
            results.append(step() is not False)
        except Exception:
            _logger.warning("otel-mlmon: a telemetry %s step failed", what, exc_info=True)
            results.append(False)

    threads = [
        threading.Thread(target=run, args=(step,), name=f"otel-mlmon-{what}", daemon=True)
        for step in steps
    ]
    for thread, step in zip(threads, steps, strict=True):
        try:
            thread.start()
        except RuntimeError:  # no new threads at interpreter shutdown (Python 3.12+): inline
            run(step)
    deadline = time.monotonic() + max(timeout_millis, 0) / 1000
    started = [thread for thread in threads if thread.ident is not None]
    for thread in started:
        thread.join(max(deadline - time.monotonic(), 0))
    late = sum(thread.is_alive() for thread in started)
    if late:
        _logger.warning(
            "otel-mlmon: telemetry %s did not finish within %d ms (%d of %d steps still "
            "running; is the OTLP backend reachable?); pending telemetry may be lost",
            what,
            timeout_millis,
            late,
            len(threads),
        )
        return False
    return all(results)


# Re-entrant: the SIGTERM handler runs on the main thread, possibly inside configure().
_lock = threading.RLock()
_current: Telemetry | None = None


@_fork.after_fork_in_child
def _reinit_lock_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # a lock held by another thread at fork stays held in the child


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush within the shutdown bound, then die of SIGTERM as if we had not been here."""
    telemetry = _current
    if telemetry is not None:
        telemetry.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_sigterm() -> bool:
    """Flush on SIGTERM, but only where nobody else handles it.

    Only from the main thread and only while SIGTERM has its default action: a server that
    handles SIGTERM itself (gunicorn, uvicorn) exits gracefully and atexit runs our shutdown.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return False
    return True


def _restore_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _rate_limit_export_logs() -> None:
    for name in EXPORT_LOGGERS:
        log = logging.getLogger(name)
        if _export_log_filter not in log.filters:
            log.addFilter(_export_log_filter)


def _protocol(signal: str, argument: str | None) -> str:
    value = argument
    if value is None:
        value = (
            _env.raw(_SIGNAL_ENV[signal][1])
            or _env.raw(OTEL_EXPORTER_OTLP_PROTOCOL)
            or "http/protobuf"
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
        endpoint or _env.raw(OTEL_EXPORTER_OTLP_ENDPOINT) or _env.raw(_SIGNAL_ENV[signal][0])
    )


def _exporter_choice(signal: str, default: str) -> str:
    names = _env.env_list(_EXPORTER_ENV[signal])
    if not names:
        return default
    # The spec allows a comma-separated list; we take the first we support.
    for name in names:
        if name in _EXPORTERS[signal]:
            return name
    _logger.warning(
        "otel-mlmon: %s=%r is not one of %s; using %r",
        _EXPORTER_ENV[signal],
        ",".join(names),
        ", ".join(_EXPORTERS[signal]),
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
    if protocol == "http/protobuf" and (
        _env.raw("OTEL_EXPORTER_OTLP_CERTIFICATE")
        or _env.raw(f"OTEL_EXPORTER_OTLP_{signal.upper()}_CERTIFICATE")
    ):
        kwargs["session"] = _certificate_keeping_session()
    return kwargs


def _certificate_keeping_session() -> Any:
    """A requests Session whose own ``verify`` (the CA file of OTEL_EXPORTER_OTLP_CERTIFICATE)
    wins over ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``.

    requests lets those variables replace a session's CA file (psf/requests#3829), so in a
    container that sets them the OTLP/HTTP exporters would silently ignore the certificate the
    OpenTelemetry variable names, and fail to verify the collector.
    """
    import requests

    class _Session(requests.Session):
        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            if verify is None:
                verify = self.verify
            return super().merge_environment_settings(url, proxies, stream, verify, cert)

    return _Session()


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
        # No process.pid here: a static one goes stale in the workers of a pre-forking server.
        # service.instance.id (the SDK's detector) is renewed in each forked child, and so is
        # process.pid when OTEL_EXPERIMENTAL_RESOURCE_DETECTORS includes "process".
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

    host = host or _env.raw("OTEL_EXPORTER_PROMETHEUS_HOST") or DEFAULT_PROMETHEUS_HOST
    if port is None:
        port = _env.env_int(
            "OTEL_EXPORTER_PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT, minimum=0, maximum=65535
        )
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
    owner = os.getpid()

    def stop() -> None:
        if os.getpid() != owner:
            # A forked child has the listening socket but not the serving thread:
            # server.shutdown() would wait forever for a loop that does not run here.
            server.server_close()
            return
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)

    _prometheus_servers.add(server)
    return reader, (str(bound[0]), int(bound[1])), stop


# The embedded Prometheus endpoint belongs to the process that configured it: its serving
# thread does not survive fork. A forked child (a gunicorn worker) closes its copy of the
# listening socket, so the port is not held by workers once the master is gone, and says once
# that its metrics are not served there.
_prometheus_servers: weakref.WeakSet[Any] = weakref.WeakSet()


@_fork.after_fork_in_child
def _close_prometheus_in_child() -> None:
    servers = list(_prometheus_servers)
    _prometheus_servers.clear()
    for server in servers:
        with contextlib.suppress(OSError):
            server.socket.close()
    if servers:
        _logger.warning(
            "otel-mlmon: process %d was forked after configure() started the Prometheus "
            "endpoint; the endpoint stays with the parent and does not serve this process's "
            "metrics. With a pre-forking server use OTLP, or call configure() in each worker.",
            os.getpid(),
        )


def _existing(provider: object) -> bool:
    return not _compat.is_proxy_provider(provider)


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
    ``OTEL_TRACES_EXPORTER``,
    ``OTEL_METRICS_EXPORTER`` and ``OTEL_LOGS_EXPORTER`` (``otlp``, ``console``, ``none``,
    and ``prometheus`` for metrics) override that choice per signal.

    Telemetry never breaks the service: export runs on background threads with bounded queues
    (``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BLRP_MAX_QUEUE_SIZE``; drops are counted by the SDK's
    ``otel.sdk.*`` metrics when ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``), each export
    gives up after ``OTEL_EXPORTER_OTLP_TIMEOUT`` seconds, the exporters' warnings are
    rate-limited, and :meth:`Telemetry.shutdown` (also run at exit) returns within
    ``shutdown_timeout_millis`` (default 5 s; keep it under your orchestrator's grace period). With
    ``handle_sigterm`` (the default) a SIGTERM that nobody else handles first flushes within
    that bound, then terminates the process as before. See ``docs/reliability.md``.

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
        if shutdown_timeout_millis <= 0:
            raise ConfigurationError("shutdown_timeout_millis must be positive")
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
        telemetry.shutdown_timeout_millis = shutdown_timeout_millis
        _current = telemetry
        _rate_limit_export_logs()
        if handle_sigterm and _install_sigterm():
            telemetry.actions["sigterm"] = "flush within the shutdown bound, then terminate"
    atexit.register(telemetry.shutdown)
    for name, action in telemetry.actions.items():
        _logger.info("otel-mlmon: %s: %s", name, action)
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

    def batch_exporter(
        signal: str,
        choice: str,
        protocol: str,
        otlp: Callable[..., Any],
        console: Callable[..., Any],
    ) -> Any:
        """The exporter behind a signal's batch processor, or None for ``none``."""
        if choice == "otlp":
            return otlp(
                protocol,
                meter_provider=meter_provider,
                **_otlp_kwargs(signal, protocol, otlp_endpoint, otlp_headers),
            )
        # Bound to stdout now, not at import, so a redirected stdout is honoured.
        return console(out=sys.stdout) if choice == "console" else None

    # Metrics first: the span and log pipelines report their own health (queue size, drops,
    # failed exports as otel.sdk.* metrics, when OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true)
    # into this MeterProvider rather than into whatever the global one is.
    prometheus_address: tuple[str, int] | None = None
    existing_meter = metrics.get_meter_provider()
    meter_provider: metrics.MeterProvider
    if set_global and _existing(existing_meter):
        meter_provider = existing_meter
        actions["metrics"] = f"kept the existing {type(existing_meter).__name__}"
    else:
        choice, protocol = exporter_for("metrics", "prometheus")
        if prometheus is None:
            prometheus = _env.env_bool(OTEL_MLMON_PROMETHEUS, choice == "prometheus")
        readers: list[MetricReader] = []
        described = []
        if choice == "otlp":
            interval = metric_export_interval_millis or _env.env_millis(
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

    # Traces.
    existing_tracer = trace.get_tracer_provider()
    tracer_provider: trace.TracerProvider
    if set_global and _existing(existing_tracer):
        tracer_provider = existing_tracer
        actions["traces"] = f"kept the existing {type(existing_tracer).__name__}"
    else:
        if console_spans is None:
            console_spans = _env.env_bool(OTEL_MLMON_CONSOLE_SPANS, False)
        sdk_tracer = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        choice, protocol = exporter_for("traces", "console" if console_spans else "none")
        exporter = batch_exporter("traces", choice, protocol, _span_exporter, ConsoleSpanExporter)
        if exporter is not None:
            sdk_tracer.add_span_processor(
                BatchSpanProcessor(exporter, meter_provider=meter_provider)
            )
        actions["traces"] = f"set TracerProvider: {choice} {protocol}".rstrip()
        if set_global:
            trace.set_tracer_provider(sdk_tracer)
        tracer_provider = sdk_tracer
        flushers.append(sdk_tracer.force_flush)
        closers.append(sdk_tracer.shutdown)

    # Logs.
    existing_logger = logs_api.get_logger_provider()
    logger_provider: logs_api.LoggerProvider
    if set_global and _existing(existing_logger):
        logger_provider = existing_logger
        actions["logs"] = f"kept the existing {type(existing_logger).__name__}"
    else:
        choice, protocol = exporter_for("logs", "none")
        sdk_logger = LoggerProvider(resource=resource, shutdown_on_exit=False)
        # First: records are redacted before the exporting processor queues them.
        sdk_logger.add_log_record_processor(ExceptionMessageRedactor())  # type: ignore[arg-type]
        exporter = batch_exporter("logs", choice, protocol, _log_exporter, ConsoleLogRecordExporter)
        if exporter is not None:
            sdk_logger.add_log_record_processor(
                BatchLogRecordProcessor(exporter, meter_provider=meter_provider)
            )
        actions["logs"] = f"set LoggerProvider: {choice} {protocol}".rstrip()
        if set_global:
            logs_api.set_logger_provider(sdk_logger)
        logger_provider = sdk_logger
        flushers.append(sdk_logger.force_flush)
        closers.append(sdk_logger.shutdown)

    # Process and GPU gauges, on whichever MeterProvider is in use.
    if process_metrics is None:
        process_metrics = _env.env_bool(OTEL_MLMON_PROCESS_METRICS, True)
    if process_metrics:
        closers.append(resources.observe_process(meter_provider))
    if gpu_metrics is None:
        gpu_metrics = _env.env_bool(OTEL_MLMON_GPU_METRICS, True)
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
