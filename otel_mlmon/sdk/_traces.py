"""The traces pipeline: a TracerProvider with a batch processor in front of OTLP or the
console, or nothing."""

from __future__ import annotations

import sys
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from otel_mlmon import _compat, _env
from otel_mlmon.environment_variables import OTEL_MLMON_CONSOLE_SPANS
from otel_mlmon.sdk import _otlp
from otel_mlmon.sdk._options import Options
from otel_mlmon.sdk._telemetry import Built, SignalSetup

#: Characters kept of a span attribute value when neither OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
#: nor OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is set. The SDK's default is no limit, and the HTTP
#: layers put client-sent values on server spans (url.path, user_agent.original): a 1 MB path
#: would otherwise be kept, queued and exported whole. Stack traces (exception.stacktrace)
#: fit; anything longer is cut by the SDK.
DEFAULT_SPAN_ATTRIBUTE_LENGTH: Final = 4096
_LENGTH_LIMITS: Final = (
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
)


def span_limits() -> SpanLimits:
    """The SDK's limits, from the standard variables when either is set, else the SDK's
    defaults with attribute values bounded to :data:`DEFAULT_SPAN_ATTRIBUTE_LENGTH`."""
    if any(_env.raw(name) is not None for name in _LENGTH_LIMITS):
        return SpanLimits()
    return SpanLimits(max_attribute_length=DEFAULT_SPAN_ATTRIBUTE_LENGTH)


def build_traces(
    options: Options, resource: Resource, meter_provider: metrics.MeterProvider
) -> Built:
    """The TracerProvider (or the application's, kept). Spans go to OTLP when an endpoint is
    configured, to stdout with ``console_spans``, else nowhere."""
    existing = trace.get_tracer_provider()
    if options.set_global and not _compat.is_proxy_provider(existing):
        return Built(existing, SignalSetup("traces", type(existing).__name__, kept_existing=True))
    console_spans = options.console_spans
    if console_spans is None:
        console_spans = _env.env_bool(OTEL_MLMON_CONSOLE_SPANS, False)
    provider = TracerProvider(
        resource=resource,
        sampler=options.sampler,
        span_limits=span_limits(),
        shutdown_on_exit=False,
    )
    choice, protocol = _otlp.choose(
        "traces", "console" if console_spans else "none", options.otlp_endpoint,
        options.otlp_protocol,
    )  # fmt: skip
    exporter = None
    if choice == "otlp":
        kwargs = _otlp.otlp_kwargs("traces", protocol, options.otlp_endpoint, options.otlp_headers)
        exporter = _otlp.span_exporter(protocol, meter_provider=meter_provider, **kwargs)
    elif choice == "console":
        exporter = ConsoleSpanExporter(out=sys.stdout)  # bound now: a redirect is honoured
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter, meter_provider=meter_provider))
    if options.set_global:
        trace.set_tracer_provider(provider)
    setup = SignalSetup.chosen("traces", type(provider).__name__, choice, protocol)
    return Built(provider, setup, provider.force_flush, [provider.shutdown])
