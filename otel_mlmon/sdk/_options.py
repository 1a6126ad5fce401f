"""What configure() was given, checked once: the arguments every signal's builder reads, and
the Resource all three providers share."""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Sampler

from otel_mlmon import _env
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.sdk._otlp import PROTOCOLS
from otel_mlmon.version import __version__

#: Default port of the embedded Prometheus endpoint: the OpenTelemetry Prometheus exporter's
#: registered port, also read from ``OTEL_EXPORTER_PROMETHEUS_PORT``.
DEFAULT_PROMETHEUS_PORT: Final = 9464
#: Default address the Prometheus endpoint binds (``OTEL_EXPORTER_PROMETHEUS_HOST``): loopback,
#: so nothing is exposed unless asked.
DEFAULT_PROMETHEUS_HOST: Final = "localhost"


@dataclass(frozen=True)
class Options:
    """configure()'s keyword arguments that the signal builders read (``None``: not given)."""

    otlp_endpoint: str | None = None
    otlp_protocol: str | None = None
    otlp_headers: Mapping[str, str] | None = None
    prometheus: bool | None = None
    prometheus_host: str | None = None
    prometheus_port: int | None = None
    console_spans: bool | None = None
    metric_export_interval_millis: int | None = None
    sampler: Sampler | None = None
    views: Sequence[View] | None = None
    process_metrics: bool | None = None
    gpu_metrics: bool | None = None
    set_global: bool = True

    def check(self) -> None:
        """Raise :class:`ConfigurationError` for an invalid argument."""
        if self.otlp_protocol is not None and self.otlp_protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"otlp_protocol must be one of {PROTOCOLS}, not {self.otlp_protocol!r}"
            )
        if self.prometheus_port is not None and not 0 <= self.prometheus_port <= 65535:
            raise ConfigurationError(
                f"prometheus_port must be 0..65535, not {self.prometheus_port}"
            )
        interval = self.metric_export_interval_millis
        if interval is not None and interval <= 0:
            raise ConfigurationError("metric_export_interval_millis must be positive")

    def prometheus_address(self) -> tuple[str, int]:
        """``(host, port)`` of the endpoint: arguments, then ``OTEL_EXPORTER_PROMETHEUS_HOST``
        and ``_PORT``, then the defaults. A malformed port variable fails start-up: serving on
        some other port than the one asked would hide the mistake."""
        host = (
            self.prometheus_host
            or _env.raw("OTEL_EXPORTER_PROMETHEUS_HOST")
            or DEFAULT_PROMETHEUS_HOST
        )
        port = self.prometheus_port
        if port is None:
            port = _env.env_int(
                "OTEL_EXPORTER_PROMETHEUS_PORT",
                DEFAULT_PROMETHEUS_PORT,
                minimum=0,
                maximum=65535,
                strict=True,
            )
        return host, port


def resource(
    service_name: str | None, service_version: str | None, attributes: Mapping[str, Any] | None
) -> Resource:
    """The Resource of every provider: ours, the user's, then the SDK's detectors."""
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
