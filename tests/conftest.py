"""Shared fixtures: real OpenTelemetry SDK providers with in-memory readers and exporters."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _otlp import OtlpGrpcServer, OtlpHttpServer
from _wait import free_port as _free_port
from hypothesis import settings

from otel_mlmon.testing import InMemoryTelemetry

# Our own telemetry errors must surface in tests instead of being swallowed.
os.environ.setdefault("OTEL_MLMON_STRICT", "true")

# CI runs the property-based tests on a fixed sequence of examples, so a red run is
# reproducible; developers' runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def telemetry() -> Iterator[InMemoryTelemetry]:
    """SDK tracer, meter and logger providers recording in memory; nothing global touched."""
    with InMemoryTelemetry() as providers:
        yield providers


@pytest.fixture
def free_port() -> int:
    """A loopback port that was free a moment ago, for a server the test starts."""
    return _free_port()


@pytest.fixture
def otlp_http() -> Iterator[OtlpHttpServer]:
    """A real OTLP/HTTP receiver on loopback."""
    server = OtlpHttpServer()
    yield server
    server.close()


@pytest.fixture
def otlp_grpc() -> Iterator[OtlpGrpcServer]:
    """A real OTLP/gRPC receiver on loopback."""
    server = OtlpGrpcServer()
    yield server
    server.close()


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No OTEL_* variable from the outside leaks into the test; set the ones it needs."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "FASTAPI_OTEL")) and name != "OTEL_MLMON_STRICT":
            monkeypatch.delenv(name)
    return monkeypatch
