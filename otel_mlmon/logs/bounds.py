"""Bounds on what crosses the logging bridge: sizes, control sequences and repetition.

Third-party libraries log what clients send them: the SDK's baggage propagator logs the key of
an oversized ``baggage`` entry (a 60 KB header made a 122 KB line), servers log malformed
request lines, Werkzeug colours its access lines with ANSI escape codes. Every line through the
bridge is therefore bounded:

- a record's ``%``-arguments to :data:`MAX_VALUE_CHARS` each before its message is formatted,
  the message to :data:`MAX_MESSAGE_CHARS`, every other top-level string field to
  :data:`MAX_VALUE_CHARS` and a stack trace to :data:`MAX_STACKTRACE_CHARS` (its end is kept:
  the innermost frames and the exception); a cut value ends with ``...[N chars cut]``;
- ANSI escape sequences are taken out of messages;
- the query strings in the web servers' access lines (:data:`ACCESS_LOGGERS`) lose their values
  (:func:`otel_mlmon._query.redact_queries_in`), as ``url.query`` does on spans: a
  ``?token=...`` or a model input in a URL never reaches the log store;
- records of the loggers in :data:`RATE_LIMITED_LOGGERS` (diagnostics that a client or a failing
  backend can trigger at will) pass once per logger and message template per
  :data:`RATE_LIMIT_INTERVAL_S`; the next one that passes says how many were held back. A
  server's record of an application's exception is not held back.

What is cut or held back is counted (:func:`counts`), never raised.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from otel_mlmon import _fork, _query
from otel_mlmon._guard import RateLimitFilter

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

#: Longest message (the structlog ``event``, a ``logging`` call's formatted message), in chars.
MAX_MESSAGE_CHARS: Final = 4096
#: Longest string field, and longest ``%``-argument of a ``logging`` call, in chars.
MAX_VALUE_CHARS: Final = 1024
#: Longest stack trace kept (its end), in chars.
MAX_STACKTRACE_CHARS: Final = 16384
#: Loggers (with their children) whose records are rate-limited per message template.
RATE_LIMITED_LOGGERS: Final = ("opentelemetry", "uvicorn.error", "gunicorn.error")
#: The web servers' access loggers, whose lines carry each request's target, query included.
ACCESS_LOGGERS: Final = frozenset({"uvicorn.access", "werkzeug", "gunicorn.access"})
#: Interval of that rate limit, as for the exporters' own loggers.
RATE_LIMIT_INTERVAL_S: Final = 60.0

_ANSI: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
#: Fields the bridge itself writes, bounded elsewhere or not at all.
_UNBOUNDED: Final = frozenset({"exception.stacktrace", "exception", "timestamp", "level"})


@dataclass(frozen=True)
class BridgeCounts:
    """What the bridge cut or held back in this process since it started."""

    #: Values (messages, fields, arguments, stack traces) cut to their bound.
    truncated: int
    #: Records held back by the rate limit.
    suppressed: int


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.truncated = 0
        self.suppressed = 0


_counters = _Counters()


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    _counters.lock = threading.Lock()


def counts() -> BridgeCounts:
    """How many values were cut and records held back so far.

    .. versionadded:: 0.2.0
    """
    with _counters.lock:
        return BridgeCounts(_counters.truncated, _counters.suppressed)


def _count(truncated: int = 0, suppressed: int = 0) -> None:
    with _counters.lock:
        _counters.truncated += truncated
        _counters.suppressed += suppressed


def cut(text: str, limit: int) -> str:
    """``text`` whole if it fits in ``limit`` characters, else its start and a marker."""
    if len(text) <= limit:
        return text
    _count(truncated=1)
    return f"{text[:limit]}...[{len(text) - limit} chars cut]"


def cut_start(text: str, limit: int) -> str:
    """``text`` whole if it fits, else a marker and its last ``limit`` characters."""
    if len(text) <= limit:
        return text
    _count(truncated=1)
    return f"[{len(text) - limit} chars cut]...{text[-limit:]}"


def bound_arguments(record: logging.LogRecord) -> logging.LogRecord:
    """``record`` itself, or a copy whose string ``%``-arguments are cut to their bound and,
    for an access logger, whose message and arguments have their query values redacted.

    A copy, because other handlers (the server's own, pytest's) share the record.
    """
    args = record.args
    access = record.name in ACCESS_LOGGERS
    too_long = isinstance(args, tuple) and any(
        isinstance(a, str) and len(a) > MAX_VALUE_CHARS for a in args
    )
    if not (access or too_long):
        return record
    copy = logging.makeLogRecord(record.__dict__)
    if isinstance(args, tuple):
        copy.args = tuple(_bounded_argument(a, access) for a in args)
    if access and isinstance(record.msg, str):
        copy.msg = _query.redact_queries_in(record.msg)
    return copy


def _bounded_argument(value: object, access: bool) -> object:
    if not isinstance(value, str):
        return value
    if access:
        value = _query.redact_queries_in(value)
    return cut(value, MAX_VALUE_CHARS)


def bound_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: the message without ANSI codes and cut, string fields cut.

    .. versionadded:: 0.2.0
    """
    event = event_dict.get("event")
    if isinstance(event, str):
        if "\x1b" in event:
            event = _ANSI.sub("", event)
        event_dict["event"] = cut(event, MAX_MESSAGE_CHARS)
    for key, value in event_dict.items():
        if (
            isinstance(value, str)
            and len(value) > MAX_VALUE_CHARS
            and key != "event"
            and key not in _UNBOUNDED
        ):
            event_dict[key] = cut(value, MAX_VALUE_CHARS)
    return event_dict


class LibraryRateLimit(logging.Filter):
    """A handler filter: records of :data:`RATE_LIMITED_LOGGERS` pass once per logger and
    message template per interval (through :class:`otel_mlmon._guard.RateLimitFilter`),
    except a server's record of an application's exception; every other record passes
    untouched."""

    def __init__(self, interval: float = RATE_LIMIT_INTERVAL_S) -> None:
        super().__init__()
        self._limit = RateLimitFilter(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if not any(name == n or name.startswith(n + ".") for n in RATE_LIMITED_LOGGERS):
            return True
        if record.exc_info and not name.startswith("opentelemetry"):
            # A server's record of the application's exception: each one is a failure of its
            # own (an instrumented app's request_failed carries it, and this record is dropped).
            return True
        if self._limit.filter(record):
            return True
        _count(suppressed=1)
        return False

    def reset(self) -> None:
        """Forget what was seen: the next record of every kind passes."""
        self._limit.reset()


def strip_ansi(value: Any) -> Any:
    """``value`` without ANSI escape sequences when it is a string, else unchanged."""
    return _ANSI.sub("", value) if isinstance(value, str) and "\x1b" in value else value
