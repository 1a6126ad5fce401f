"""otel_mlmon.logs.tracebacks and .redaction: exceptions named by type and stack trace; their
messages, which carry request data, only when opted in."""

from __future__ import annotations

import traceback

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_mlmon.logs import ExceptionMessageRedactor
from otel_mlmon.logs._settings import settings
from otel_mlmon.logs.tracebacks import exception_fields, format_traceback

SECRET = "-".join(["jane", "example.com"])  # built at run time: never in a source line


def _chained() -> BaseException:
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise ValueError(SECRET) from inner
    except ValueError as middle:
        try:
            raise RuntimeError(SECRET)
        except RuntimeError as outer:
            assert outer.__context__ is middle
            return outer


def test_without_messages_each_exception_of_the_chain_is_named_by_its_class() -> None:
    exc = _chained()
    text = format_traceback(exc, messages=False)
    assert SECRET not in text
    standard = "".join(traceback.format_exception(exc))
    # The same frames and links as the standard format, each exception line without message.
    expected = (
        standard.replace(f"KeyError: '{SECRET}'", "KeyError")
        .replace(f"ValueError: {SECRET}", "ValueError")
        .replace(f"RuntimeError: {SECRET}", "RuntimeError")
    )
    assert expected == text


def test_with_messages_the_stack_trace_is_the_standard_one() -> None:
    exc = _chained()
    assert "".join(traceback.format_exception(exc)) == format_traceback(exc, messages=True)


def test_an_exception_group_lists_its_members_by_class() -> None:
    try:
        raise ExceptionGroup("two", [ValueError(SECRET), KeyError(SECRET)])
    except ExceptionGroup as group:
        text = format_traceback(group, messages=False)
    assert SECRET not in text
    assert text.endswith("ExceptionGroup\n  +-- 1: ValueError\n  +-- 2: KeyError\n")


def test_notes_are_messages_too() -> None:
    try:
        raise ValueError("x")
    except ValueError as exc:
        exc.add_note(SECRET)
        text = format_traceback(exc, messages=False)
    assert SECRET not in text


def test_exception_fields_follow_the_setting() -> None:
    exc = _chained()
    assert {"exception.type", "exception.stacktrace"} == set(exception_fields(exc))
    settings.record_exception_messages = True
    try:
        fields = exception_fields(exc)
    finally:
        settings.reset()
    assert SECRET == fields["exception.message"]


def _provider_with_redactor() -> tuple[LoggerProvider, InMemoryLogRecordExporter]:
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider()
    provider.add_log_record_processor(ExceptionMessageRedactor())  # type: ignore[arg-type]
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider, exporter


def test_the_redactor_takes_messages_out_of_records_that_bypass_the_bridge() -> None:
    provider, exporter = _provider_with_redactor()
    exc = _chained()
    # As FastAPI's native telemetry emits "Unhandled exception in FastAPI request".
    provider.get_logger("fastapi").emit(body="Unhandled exception", exception=exc)
    (record,) = exporter.get_finished_logs()
    attributes = dict(record.log_record.attributes or {})
    assert "exception.message" not in attributes
    assert "RuntimeError" == attributes["exception.type"]
    assert format_traceback(exc, messages=False) == attributes["exception.stacktrace"]
    provider.shutdown()


def test_the_redactor_removes_a_known_message_from_a_stack_trace_without_the_exception() -> None:
    provider, exporter = _provider_with_redactor()
    stacktrace = (
        f'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: {SECRET}\n'
    )
    provider.get_logger("lib").emit(
        body="failed",
        attributes={
            "exception.type": "ValueError",
            "exception.message": SECRET,
            "exception.stacktrace": stacktrace,
        },
    )
    (record,) = exporter.get_finished_logs()
    attributes = dict(record.log_record.attributes or {})
    assert {
        "exception.type": "ValueError",
        "exception.stacktrace": 'Traceback (most recent call last):\n  File "x.py", line 1\n'
        "ValueError\n",
    } == attributes
    provider.shutdown()


def test_the_redactor_leaves_messages_when_opted_in() -> None:
    provider, exporter = _provider_with_redactor()
    settings.record_exception_messages = True
    try:
        provider.get_logger("fastapi").emit(body="Unhandled exception", exception=_chained())
    finally:
        settings.reset()
    (record,) = exporter.get_finished_logs()
    assert SECRET == (record.log_record.attributes or {})["exception.message"]
    provider.shutdown()
