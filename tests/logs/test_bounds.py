"""otel_mlmon.logs.bounds: what third-party loggers push through the bridge is bounded in size,
freed of ANSI codes and rate-limited per logger and template; what is cut is counted."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from logs._lines import lines
from otel_mlmon.logs import bounds, bridge_counts, configure_logging, get_logger
from otel_mlmon.testing import InMemoryTelemetry

HOSTILE_BAGGAGE = "k" * 60_000 + "=v"


def _cut_length(limit: int, original: int) -> int:
    return limit + len(f"...[{original - limit} chars cut]")


def test_a_60_kb_baggage_header_gives_one_short_line_however_often_it_comes(
    telemetry: InMemoryTelemetry, stream: io.StringIO
) -> None:
    before = bridge_counts()
    for _ in range(100):
        W3CBaggagePropagator().extract({"baggage": HOSTILE_BAGGAGE})
    (line,) = [x for x in lines(stream) if x["logger"] == "opentelemetry.baggage.propagation"]
    written = stream.getvalue().splitlines()[0]
    assert len(written) < 2 * bounds.MAX_VALUE_CHARS
    assert f"...[{len(HOSTILE_BAGGAGE) - bounds.MAX_VALUE_CHARS} chars cut]" in line["event"]
    after = bridge_counts()
    assert (1, 99) == (after.truncated - before.truncated, after.suppressed - before.suppressed)
    # The OTel SDK's own records are rendered, never exported (they could feed themselves).
    assert () == telemetry.logs()


def test_held_back_records_are_reported_by_the_next_one_that_passes() -> None:
    limit = bounds.LibraryRateLimit(interval=60.0)

    def record(name: str, created: float) -> logging.LogRecord:
        made = logging.LogRecord(name, logging.WARNING, __file__, 1, "bad header %s", ("x",), None)
        made.created = created
        return made

    passed = [limit.filter(record("opentelemetry.baggage", t)) for t in (0.0, 1.0, 2.0)]
    later = record("opentelemetry.baggage", 61.0)
    assert [True, False, False, True] == [*passed, limit.filter(later)]
    assert "bad header %s (2 similar messages suppressed)" == later.msg
    # An application's own logger is never rate-limited, however often it repeats itself,
    # nor a server's record of an application's exception.
    assert all(limit.filter(record("app.requests", 0.0)) for _ in range(10))
    failures = [record("uvicorn.error", 0.0) for _ in range(3)]
    for failure in failures:
        failure.exc_info = (ValueError, ValueError(), None)
    assert [True] * 3 == [limit.filter(failure) for failure in failures]


def test_a_long_message_and_long_fields_are_cut(stream: io.StringIO) -> None:
    logging.getLogger("lib").warning("m" * 10_000)
    logging.getLogger("lib").warning("value %s", "a" * 5_000)
    get_logger("app").info("e", blob="b" * 5_000, short="kept")
    message, argument, fields = lines(stream)
    assert _cut_length(bounds.MAX_MESSAGE_CHARS, 10_000) == len(message["event"])
    assert "value " + "a" * bounds.MAX_VALUE_CHARS + "...[3976 chars cut]" == argument["event"]
    assert (_cut_length(bounds.MAX_VALUE_CHARS, 5_000), "kept") == (
        len(fields["blob"]),
        fields["short"],
    )


def test_other_handlers_still_get_the_whole_record(
    stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lib")
    logging.getLogger("lib").warning("value %s", "a" * 5_000)
    assert "value " + "a" * 5_000 == caplog.records[0].getMessage()


@pytest.fixture
def werkzeug_server() -> Iterator[str]:
    """Werkzeug's development server on a free loopback port, serving a Flask app."""
    from flask import Flask
    from werkzeug.serving import make_server

    app = Flask("ansi")
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_werkzeug_access_lines_carry_no_ansi_codes(
    stream: io.StringIO, werkzeug_server: str
) -> None:
    assert 404 == httpx.get(f"{werkzeug_server}/missing").status_code
    text = stream.getvalue()
    (access,) = [line for line in lines(stream) if line["logger"] == "werkzeug"]
    assert access["event"].endswith('"GET /missing HTTP/1.1" 404 -')
    assert "\x1b" not in text and "\\u001b" not in text


def test_every_line_is_valid_json_whatever_the_input(stream: io.StringIO) -> None:
    logging.getLogger("lib").warning("\x1b[31mred\x1b[0m \x00 \u2028 %s", "\ud800")
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["event"].startswith("red \x00 \u2028 ")


def test_a_value_at_the_bound_is_kept_whole_and_not_counted(
    stream: io.StringIO,
) -> None:
    before = bridge_counts()
    get_logger("app").info("short", value="v" * bounds.MAX_VALUE_CHARS)
    assert before == bridge_counts()
    assert "v" * bounds.MAX_VALUE_CHARS == lines(stream)[0]["value"]


def test_each_cut_value_is_counted(telemetry: InMemoryTelemetry) -> None:
    out = io.StringIO()
    configure_logging(logger_provider=telemetry.logger_provider, stream=out)
    before = bridge_counts()
    get_logger("app").info("e", one="x" * 2_000, two="y" * 2_000)
    after = bridge_counts()
    assert (2, 0) == (after.truncated - before.truncated, after.suppressed - before.suppressed)
