"""The rate limit on the exporters' loggers: the first record of a kind passes, repeats within
the interval are held back and counted, and the next one let through says how many."""

from __future__ import annotations

import logging

import pytest

from otel_mlmon._guard import RateLimitFilter


def _record(message: str, created: float) -> logging.LogRecord:
    record = logging.LogRecord("exporter", logging.WARNING, __file__, 1, message, None, None)
    record.created = created
    return record


def test_repeats_within_the_interval_are_held_back_and_reported_later() -> None:
    limit = RateLimitFilter(interval=60.0)
    passed = [limit.filter(_record("export failed %s", t)) for t in (0.0, 1.0, 2.0, 59.0)]
    assert [True, False, False, False] == passed
    assert 3 == limit.suppressed()
    later = _record("export failed %s", 61.0)
    assert limit.filter(later)
    assert "export failed %s (3 similar messages suppressed)" == later.msg
    assert 0 == limit.suppressed()


def test_different_messages_and_loggers_are_limited_separately() -> None:
    limit = RateLimitFilter(interval=60.0)
    other_logger = _record("export failed", 0.0)
    other_logger.name = "other"
    assert limit.filter(_record("export failed", 0.0))
    assert limit.filter(_record("queue full", 0.0))
    assert limit.filter(other_logger)


def test_configure_puts_the_limit_on_the_exporters_loggers(
    otel_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import otel_mlmon
    from otel_mlmon import sdk

    telemetry = otel_mlmon.configure(
        set_global=False, logs=False, prometheus=False, gpu_metrics=False, handle_sigterm=False
    )
    try:
        sdk._export_log_filter.reset()
        logger = logging.getLogger(sdk.EXPORT_LOGGERS[0])
        with caplog.at_level(logging.WARNING):
            for _ in range(100):
                logger.error("Failed to export %s batch", "spans")
        assert 1 == len(caplog.records)
    finally:
        telemetry.shutdown()
