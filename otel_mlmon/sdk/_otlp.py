"""Where each signal goes: the exporter chosen from arguments and ``OTEL_*`` variables, and the
OTLP exporters built with the standard variables' meaning."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)

from otel_mlmon import _env
from otel_mlmon.exceptions import ConfigurationError

_logger: Final = logging.getLogger("otel_mlmon")

Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: Final = ("grpc", "http/protobuf")
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


def protocol(signal: str, argument: str | None) -> str:
    """The OTLP protocol of ``signal``: argument, per-signal variable, general variable,
    ``http/protobuf``."""
    value = argument
    if value is None:
        value = (
            _env.raw(_SIGNAL_ENV[signal][1])
            or _env.raw(OTEL_EXPORTER_OTLP_PROTOCOL)
            or "http/protobuf"
        )
    value = value.strip().lower()
    if value not in PROTOCOLS:
        if argument is not None:
            raise ConfigurationError(f"otlp_protocol must be one of {PROTOCOLS}, not {value!r}")
        _logger.warning("OTLP protocol %r is not supported; using http/protobuf", value)
        value = "http/protobuf"
    return value


def otlp_configured(signal: str, endpoint: str | None) -> bool:
    """Whether an OTLP endpoint is given for ``signal`` (argument or variables)."""
    return bool(
        endpoint or _env.raw(OTEL_EXPORTER_OTLP_ENDPOINT) or _env.raw(_SIGNAL_ENV[signal][0])
    )


def exporter_choice(signal: str, default: str) -> str:
    """``OTEL_<SIGNAL>_EXPORTER``'s first supported name, else ``default``."""
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


def choose(
    signal: str, fallback: str, endpoint: str | None, argument: str | None
) -> tuple[str, str]:
    """``(exporter, protocol)`` of ``signal``: OTLP when an endpoint is configured, else
    ``fallback``, either overridden by ``OTEL_<SIGNAL>_EXPORTER``; protocol only for OTLP."""
    default = "otlp" if otlp_configured(signal, endpoint) else fallback
    choice = exporter_choice(signal, default)
    return choice, protocol(signal, argument) if choice == "otlp" else ""


def otlp_kwargs(
    signal: str, protocol: str, endpoint: str | None, headers: Mapping[str, str] | None
) -> dict[str, Any]:
    """Keyword arguments of the OTLP exporter of ``signal`` beyond what it reads itself."""
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


def span_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter(**kwargs)


def metric_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )

    return HTTPMetricExporter(**kwargs)


def log_exporter(protocol: str, **kwargs: Any) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    return HTTPLogExporter(**kwargs)
