"""Fixtures of the logging tests: configure_logging() onto in-memory providers, and undone
after each test (it changes process-wide state)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog

from otel_mlmon.logs import configure_logging, unconfigure_logging
from otel_mlmon.testing import InMemoryTelemetry


@pytest.fixture(autouse=True)
def _unconfigure_logging() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    unconfigure_logging()
    structlog.reset_defaults()  # a test's own structlog configuration too


@pytest.fixture
def stream(telemetry: InMemoryTelemetry) -> io.StringIO:
    """configure_logging() onto the in-memory providers, rendering JSON into a buffer."""
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=out)
    return out
