"""Shared fixtures: real OpenTelemetry SDK providers with in-memory readers and exporters."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from otel_mlmon.testing import InMemoryTelemetry

# Our own telemetry errors must surface in tests instead of being swallowed.
os.environ.setdefault("OTEL_MLMON_STRICT", "true")


@pytest.fixture
def telemetry() -> Iterator[InMemoryTelemetry]:
    """SDK tracer, meter and logger providers recording in memory; nothing global touched."""
    with InMemoryTelemetry() as providers:
        yield providers
