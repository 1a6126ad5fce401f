"""Fixtures of the reliability suite: short export timeouts, small queues, the SDK's own
metrics on, and no configuration left behind by a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_mlmon import sdk

#: Seconds an OTLP export may take (OTEL_EXPORTER_OTLP_TIMEOUT is in seconds in the Python SDK).
EXPORT_TIMEOUT_S = 1.0
#: Span and log queue bound of these tests (the SDK default is 2048).
QUEUE_SIZE = 64
BATCH_SIZE = 16


@pytest.fixture
def fault_env(otel_env: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Exporters that give up after EXPORT_TIMEOUT_S, small bounded queues, fast schedules,
    and the SDK's self-observability metrics (otel.sdk.*) on."""
    for name, value in {
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(EXPORT_TIMEOUT_S),
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_BSP_MAX_QUEUE_SIZE": str(QUEUE_SIZE),
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": str(BATCH_SIZE),
        "OTEL_BLRP_SCHEDULE_DELAY": "50",
        "OTEL_BLRP_MAX_QUEUE_SIZE": str(QUEUE_SIZE),
        "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": str(BATCH_SIZE),
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED": "true",
    }.items():
        otel_env.setenv(name, value)
    sdk._export_log_filter.reset()
    yield otel_env
    if sdk._current is not None:
        sdk._current.shutdown(timeout_millis=2_000)
