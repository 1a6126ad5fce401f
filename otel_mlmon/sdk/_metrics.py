"""The metrics pipeline: a MeterProvider with OTLP, console and/or the embedded Prometheus
endpoint, the default Views, the SDK's exemplar filter, and the process and GPU gauges."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace

from opentelemetry import metrics
from opentelemetry.sdk.environment_variables import OTEL_METRIC_EXPORT_INTERVAL
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from otel_mlmon import _compat, _env, resources, semconv
from otel_mlmon.environment_variables import (
    OTEL_MLMON_GPU_METRICS,
    OTEL_MLMON_PROCESS_METRICS,
    OTEL_MLMON_PROMETHEUS,
)
from otel_mlmon.sdk import _otlp
from otel_mlmon.sdk._exemplars import EXEMPLAR_METRICS, exemplar_filter, reservoir_for
from otel_mlmon.sdk._options import Options
from otel_mlmon.sdk._telemetry import SHUTDOWN_TIMEOUT_MILLIS, Built, SignalSetup
from otel_mlmon.sdk.prometheus import PrometheusEndpoint, ScrapeReader


def default_views() -> list[View]:
    """The Views configure() installs unless given others: millisecond-scale buckets for
    ``ml.model.prediction.duration``, fixed buckets for confidence and batch size, the
    Prometheus-safe names of two ``process.*`` gauges (:data:`resources.PROCESS_METRIC_RENAMES`),
    and the exemplar reservoirs of :mod:`otel_mlmon.sdk._exemplars` (latency and errors only
    among ours; the HTTP metrics keep the SDK's default).

    The instruments also carry these as advisory boundaries, so an application with its own
    MeterProvider gets them too; the Views make them explicit and easy to extend:
    ``configure(views=[*default_views(), View(...)])``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Exemplar reservoirs only where an exemplar leads to a trace someone looks for.
    """
    buckets = {
        semconv.ML_MODEL_PREDICTION_DURATION: semconv.DURATION_BUCKETS,
        semconv.ML_MODEL_PREDICTION_CONFIDENCE: semconv.CONFIDENCE_BUCKETS,
        semconv.ML_MODEL_BATCH_SIZE: semconv.BATCH_SIZE_BUCKETS,
    }
    views = [
        View(
            instrument_name=name,
            aggregation=ExplicitBucketHistogramAggregation(boundaries=list(bounds)),
            exemplar_reservoir_factory=reservoir_for(name),
        )
        for name, bounds in buckets.items()
    ]
    views += [
        View(instrument_name=spec.name, exemplar_reservoir_factory=reservoir_for(spec.name))
        for spec in semconv.METRICS
        if spec.instrument == "Counter" and spec.name not in EXEMPLAR_METRICS
    ]
    views += [
        View(instrument_name=old, meter_name=resources.PROCESS_METRICS_SCOPE, name=new)
        for old, new in resources.PROCESS_METRIC_RENAMES.items()
    ]
    return views


def build_metrics(
    options: Options, resource: Resource, service_name: str
) -> tuple[Built, PrometheusEndpoint | None]:
    """The MeterProvider (or the application's, kept) and the Prometheus endpoint, if any.

    Built first: the span and log pipelines report their own health (queue size, drops,
    failed exports as ``otel.sdk.*`` metrics, when
    ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``) into this MeterProvider.
    """
    existing = metrics.get_meter_provider()
    if options.set_global and not _compat.is_proxy_provider(existing):
        setup = SignalSetup("metrics", type(existing).__name__, kept_existing=True)
        return Built(existing, setup), None
    choice, protocol = _otlp.choose(
        "metrics", "prometheus", options.otlp_endpoint, options.otlp_protocol
    )
    prometheus = options.prometheus
    if prometheus is None:
        prometheus = _env.env_bool(OTEL_MLMON_PROMETHEUS, choice == "prometheus")
    address = options.prometheus_address() if prometheus else None
    readers, setup = _push_readers(options, choice, protocol)
    scrape_reader = ScrapeReader() if address is not None else None
    if scrape_reader is not None:
        readers.append(scrape_reader)
        setup = replace(setup, exporters=(*setup.exporters, "prometheus"))
    provider = MeterProvider(
        metric_readers=readers,
        resource=resource,
        views=default_views() if options.views is None else list(options.views),
        exemplar_filter=exemplar_filter(),
        shutdown_on_exit=False,
    )
    if options.set_global:
        metrics.set_meter_provider(provider)
    endpoint = None
    if scrape_reader is not None and address is not None:
        endpoint = PrometheusEndpoint(
            scrape_reader, *address, service_name=service_name, meter_provider=provider
        )

    def close() -> None:
        # In this order: the endpoint's last snapshot needs the provider still running.
        if endpoint is not None:
            endpoint.stop()
        provider.shutdown(timeout_millis=SHUTDOWN_TIMEOUT_MILLIS)

    return Built(provider, setup, provider.force_flush, [close]), endpoint


def _push_readers(
    options: Options, choice: str, protocol: str
) -> tuple[list[MetricReader], SignalSetup]:
    """The periodic reader of ``choice`` (OTLP or console; none for anything else)."""
    if choice == "otlp":
        interval = options.metric_export_interval_millis or _env.env_millis(
            OTEL_METRIC_EXPORT_INTERVAL, 60_000
        )
        kwargs = _otlp.otlp_kwargs("metrics", protocol, options.otlp_endpoint, options.otlp_headers)
        exporter = _otlp.metric_exporter(protocol, **kwargs)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval)
        setup = SignalSetup(
            "metrics", "MeterProvider", exporters=("otlp",), protocol=protocol,
            export_interval_millis=interval,
        )  # fmt: skip
        return [reader], setup
    if choice == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        console = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=sys.stdout),
            export_interval_millis=options.metric_export_interval_millis,
        )
        return [console], SignalSetup("metrics", "MeterProvider", exporters=("console",))
    return [], SignalSetup("metrics", "MeterProvider")


def start_resource_gauges(
    options: Options, meter_provider: metrics.MeterProvider
) -> list[Callable[[], object]]:
    """Process and GPU gauges on whichever MeterProvider is in use; the functions that stop
    them."""
    closers: list[Callable[[], object]] = []
    process_metrics = options.process_metrics
    if process_metrics is None:
        process_metrics = _env.env_bool(OTEL_MLMON_PROCESS_METRICS, True)
    if process_metrics:
        closers.append(resources.observe_process(meter_provider))
    gpu_metrics = options.gpu_metrics
    if gpu_metrics is None:
        gpu_metrics = _env.env_bool(OTEL_MLMON_GPU_METRICS, True)
    if gpu_metrics:
        gpu = resources.GpuMetrics(meter_provider)
        if gpu.start():
            closers.append(gpu.shutdown)
    return closers
