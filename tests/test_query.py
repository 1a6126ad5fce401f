"""One rule for query strings on spans and in access lines: names stay, values go."""

from __future__ import annotations

import logging

import pytest

from otel_mlmon import _query
from otel_mlmon.logs import bounds


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("token=s3cret&age=41", "token=REDACTED&age=REDACTED"),
        ("s3cret", "REDACTED"),
        ("we%20ird key=1&a[0]=2", "REDACTED=REDACTED&a[0]=REDACTED"),
        ("&&x=1&", "x=REDACTED"),
        ("&".join(f"k{i}=v" for i in range(40)), "&".join(f"k{i}=REDACTED" for i in range(32))),
    ],
)
def test_values_and_odd_keys_are_redacted(query: str, expected: str) -> None:
    assert expected == _query.redact_query(query)


def test_queries_inside_a_request_line_are_redacted() -> None:
    line = '127.0.0.1 - - "GET /predict?age=41&token=abc HTTP/1.1" 200 -'
    assert '127.0.0.1 - - "GET /predict?age=REDACTED&token=REDACTED HTTP/1.1" 200 -' == (
        _query.redact_queries_in(line)
    )
    assert "GET /health HTTP/1.1" == _query.redact_queries_in("GET /health HTTP/1.1")


def test_an_access_record_is_copied_with_its_query_values_redacted() -> None:
    # uvicorn.access passes the target as an argument; the shared record stays untouched.
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/predict?token=abc", "1.1", 200), None,
    )  # fmt: skip
    bounded = bounds.bound_arguments(record)
    assert '127.0.0.1:5000 - "GET /predict?token=REDACTED HTTP/1.1" 200' == bounded.getMessage()
    assert '127.0.0.1:5000 - "GET /predict?token=abc HTTP/1.1" 200' == record.getMessage()


def test_other_loggers_keep_their_question_marks() -> None:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "why?%s", ("x=1",), None)
    assert record is bounds.bound_arguments(record)
