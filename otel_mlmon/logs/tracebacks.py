"""Exceptions on lines and records: type and stack trace always, messages only when opted in.

An exception's message is where libraries put the input that failed (``could not convert
string to float: 'jane@example.com'``, scikit-learn's ``array=[...]``). By default it never
leaves: ``exception.message`` is left out and the stack trace names each exception of the chain
by its class alone; ``configure_logging(record_exception_messages=True)`` puts both back, as
``ModelMonitor(record_exception_messages=True)`` does on spans.

"""

from __future__ import annotations

import sys
import traceback
from typing import TYPE_CHECKING, Any, Final

from otel_mlmon import semconv
from otel_mlmon.logs._settings import settings
from otel_mlmon.logs.bounds import MAX_STACKTRACE_CHARS, cut_start
from otel_mlmon.logs.events import mark_logged

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

_CAUSE: Final = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT: Final = "\nDuring handling of the above exception, another exception occurred:\n\n"
_HEADER: Final = "Traceback (most recent call last):\n"


def exception_of(exc_info: object) -> BaseException | None:
    """The exception an ``exc_info`` value names (``True``, an exception, or a
    ``sys.exc_info()`` tuple), or ``None``."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        value = exc_info[1]
        return value if isinstance(value, BaseException) else None
    return None


def _without_message(exc: BaseException) -> str:
    text = _HEADER + "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    text += semconv.error_type(type(exc)) + "\n"
    members = exc.exceptions if isinstance(exc, BaseExceptionGroup) else ()
    for index, member in enumerate(members, 1):
        text += f"  +-- {index}: {semconv.error_type(type(member))}\n"
    return text


def format_traceback(exc: BaseException, *, messages: bool) -> str:
    """The stack trace of ``exc`` and its chain, as :func:`traceback.format_exception` writes
    it; with ``messages=False`` every exception is named by its class alone (no message, no
    notes), and an exception group lists its members' classes."""
    if messages:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    chain: list[tuple[str | None, BaseException]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((link, current))
        if current.__cause__ is not None:
            link, current = _CAUSE, current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            link, current = _CONTEXT, current.__context__
        else:
            current = None
    parts: list[str] = []
    for link_to_newer, item in reversed(chain):
        parts.append(_without_message(item))
        if link_to_newer is not None:
            parts.append(link_to_newer)
    return "".join(parts)


def exception_fields(exc: BaseException, *, messages: bool | None = None) -> dict[str, str]:
    """``exception.type``, ``exception.stacktrace`` (its end, within the bound) and, when
    ``messages`` (default: ``configure_logging(record_exception_messages=...)``),
    ``exception.message``."""
    if messages is None:
        messages = settings.record_exception_messages
    fields = {
        semconv.EXCEPTION_TYPE: semconv.error_type(type(exc)),
        semconv.EXCEPTION_STACKTRACE: cut_start(
            format_traceback(exc, messages=messages), MAX_STACKTRACE_CHARS
        ),
    }
    if messages:
        fields[semconv.EXCEPTION_MESSAGE] = str(exc)
    return fields


def render_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: ``exc_info`` becomes the ``exception.*`` fields.

    It takes the place of structlog's ``format_exc_info`` (whose ``exception`` field holds the
    message): one JSON line carries the type and the stack trace as separate fields, named as
    in the OTel record. The exception is marked as written
    (:func:`otel_mlmon.logs.events.mark_logged`).

    .. versionadded:: 0.2.0
    """
    exc_info = event_dict.pop("exc_info", None)
    exc = exception_of(exc_info) if exc_info else None
    if exc is not None:
        for key, value in exception_fields(exc).items():
            event_dict.setdefault(key, value)
        mark_logged(exc)
    return event_dict


def console_exception(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor for the console renderer: the stack trace under ``exception``,
    which structlog's ``ConsoleRenderer`` prints below the line."""
    stacktrace = event_dict.pop(semconv.EXCEPTION_STACKTRACE, None)
    if isinstance(stacktrace, str):
        event_dict.setdefault("exception", stacktrace)
    return event_dict


def exc_info_of_record(record: Any) -> BaseException | None:
    """The exception a ``logging.LogRecord`` carries, or ``None``."""
    return exception_of(getattr(record, "exc_info", None))
