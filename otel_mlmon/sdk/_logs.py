"""The logs pipeline: a LoggerProvider with a batch processor in front of OTLP or the console,
or nothing (records are then only rendered on stdout by the logging bridge)."""

from __future__ import annotations

import sys

from opentelemetry import _logs as logs_api
from opentelemetry import metrics
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_mlmon import _compat
from otel_mlmon.logs.redaction import ExceptionMessageRedactor
from otel_mlmon.sdk import _otlp
from otel_mlmon.sdk._options import Options
from otel_mlmon.sdk._telemetry import Built, SignalSetup


def build_logs(
    options: Options, resource: Resource, meter_provider: metrics.MeterProvider
) -> Built:
    """The LoggerProvider (or the application's, kept); records are exported to OTLP when an
    endpoint is configured or ``OTEL_LOGS_EXPORTER`` says so."""
    existing = logs_api.get_logger_provider()
    if options.set_global and not _compat.is_proxy_provider(existing):
        return Built(existing, SignalSetup("logs", type(existing).__name__, kept_existing=True))
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    # First: records are redacted before the exporting processor queues them.
    provider.add_log_record_processor(ExceptionMessageRedactor())  # type: ignore[arg-type]
    choice, protocol = _otlp.choose("logs", "none", options.otlp_endpoint, options.otlp_protocol)
    exporter = None
    if choice == "otlp":
        kwargs = _otlp.otlp_kwargs("logs", protocol, options.otlp_endpoint, options.otlp_headers)
        exporter = _otlp.log_exporter(protocol, meter_provider=meter_provider, **kwargs)
    elif choice == "console":
        exporter = ConsoleLogRecordExporter(out=sys.stdout)
    if exporter is not None:
        provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, meter_provider=meter_provider)
        )
    if options.set_global:
        logs_api.set_logger_provider(provider)
    setup = SignalSetup.chosen("logs", type(provider).__name__, choice, protocol)
    return Built(provider, setup, provider.force_flush, [provider.shutdown])
