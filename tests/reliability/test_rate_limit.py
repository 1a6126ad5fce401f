"""The rate limits on library loggers: the exporters' (a filter on their loggers) and the
logging bridge's (records of the SDK, propagators and servers' error loggers, whatever their
source); the first record of a kind passes, repeats within the interval are held back and
counted, and the next one let through says how many. A hostile ``baggage`` header sent again
and again makes one short line."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

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


def test_a_formatted_message_cannot_grow_the_filter_without_bound() -> None:
    limit = RateLimitFilter(interval=60.0)
    for i in range(5_000):
        limit.filter(_record(f"header {i} " + "x" * 10_000, 0.0))
    assert len(limit._last) <= 1024
    assert all(len(str(template)) <= 256 for _, template in limit._last)


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


@pytest.fixture
def bridge_output(otel_env: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging() rendering into a buffer, without export; undone afterwards."""
    from otel_mlmon.logs import configure_logging, unconfigure_logging

    out = io.StringIO()
    configure_logging(stream=out, export=False)
    yield out
    unconfigure_logging()


def test_a_hostile_baggage_header_sent_50_times_makes_one_short_line(
    bridge_output: io.StringIO,
) -> None:
    import httpx
    from fastapi import FastAPI

    from otel_mlmon.instrumentation import instrument_fastapi, uninstrument_fastapi
    from otel_mlmon.logs import bridge_counts
    from otel_mlmon.testing import InMemoryTelemetry

    with InMemoryTelemetry() as telemetry:
        app = FastAPI(telemetry={"operation_spans": False, **telemetry.providers})

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        instrument_fastapi(app)
        before = bridge_counts()

        async def hostile() -> list[int]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                baggage = {"baggage": "k" * 60_000 + "=v"}
                return [
                    (await client.get("/health", headers=baggage)).status_code for _ in range(50)
                ]

        try:
            assert [200] * 50 == asyncio.run(hostile())
        finally:
            uninstrument_fastapi(app)
    after = bridge_counts()
    baggage_lines = [
        line for line in bridge_output.getvalue().splitlines() if "opentelemetry.baggage" in line
    ]
    assert 1 == len(baggage_lines)
    assert len(baggage_lines[0]) < 2_048
    assert 49 == after.suppressed - before.suppressed
