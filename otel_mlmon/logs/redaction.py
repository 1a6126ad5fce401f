"""Exception messages out of log records that bypass the logging bridge.

Some libraries emit OTel log records straight through the LoggerProvider: FastAPI's native
telemetry emits "Unhandled exception in FastAPI request" with ``exception=``, so the SDK sets
``exception.message`` and a stack trace that ends in the message. :class:`ExceptionMessageRedactor`
is a log record processor for the provider that takes them out, unless
``configure_logging(record_exception_messages=True)``.
"""

from __future__ import annotations

from typing import Any

from otel_mlmon import semconv
from otel_mlmon._guard import guarded
from otel_mlmon.logs._settings import settings
from otel_mlmon.logs.tracebacks import format_traceback


class ExceptionMessageRedactor:
    """A ``LogRecordProcessor`` that removes ``exception.message`` from each record and the
    messages from its ``exception.stacktrace``, while exception messages are not opted in.

    It implements the SDK's processor interface (``on_emit``, ``shutdown``, ``force_flush``)
    without importing the SDK. Add it to the LoggerProvider *before* the processor that
    exports, so records are changed before they are queued: ``configure()`` does.

    .. versionadded:: 0.2.0
    """

    def on_emit(self, log_record: Any) -> None:
        """Redact one record (an SDK ``ReadWriteLogRecord``) in place."""
        if settings.record_exception_messages:
            return
        with guarded("logs.redact"):
            record = getattr(log_record, "log_record", log_record)
            attributes = getattr(record, "attributes", None)
            if not attributes or semconv.EXCEPTION_MESSAGE not in attributes:
                return
            message = attributes[semconv.EXCEPTION_MESSAGE]
            del attributes[semconv.EXCEPTION_MESSAGE]
            exc = getattr(record, "exception", None)
            stacktrace = attributes.get(semconv.EXCEPTION_STACKTRACE)
            if isinstance(exc, BaseException):
                attributes[semconv.EXCEPTION_STACKTRACE] = format_traceback(exc, messages=False)
            elif isinstance(stacktrace, str) and isinstance(message, str) and message:
                attributes[semconv.EXCEPTION_STACKTRACE] = stacktrace.replace(f": {message}", "")

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered."""
        return True
