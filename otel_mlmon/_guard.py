"""One error guard for telemetry code that runs inside the host's request path.

Telemetry must never break the service: an unexpected error in our own recording code is logged
once per call site and counted, and the caller carries on. Under ``OTEL_MLMON_STRICT=true`` (our
test suite) it is re-raised, so bugs still surface.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from otel_mlmon import _env, _fork
from otel_mlmon.environment_variables import OTEL_MLMON_STRICT

_logger: Final = logging.getLogger("otel_mlmon")
_reported: set[str] = set()
_reported_lock = threading.Lock()
_counts: dict[str, int] = {}
_filters: weakref.WeakSet[RateLimitFilter] = weakref.WeakSet()


def strict() -> bool:
    """Whether internal errors are re-raised (``OTEL_MLMON_STRICT=true``)."""
    return _env.env_bool(OTEL_MLMON_STRICT, False)


def internal_error_count(site: str) -> int:
    """How many internal errors the guard swallowed at ``site`` in this process."""
    return _counts.get(site, 0)


def report_internal_error(site: str, exc: BaseException) -> None:
    """Count an internal error at ``site`` and log it the first time it happens there."""
    with _reported_lock:
        _counts[site] = _counts.get(site, 0) + 1
        first = site not in _reported
        _reported.add(site)
    if first:
        _logger.warning(
            "otel-mlmon telemetry error in %s (logged once; the request was not affected)",
            site,
            exc_info=exc,
        )


def internal_error(site: str, exc: Exception) -> None:
    """Handle an error raised by our own telemetry code at ``site``: re-raise it under strict
    mode, else count it and log it the first time."""
    if strict():
        raise exc
    report_internal_error(site, exc)


@contextmanager
def guarded(site: str) -> Iterator[None]:
    """Run a block of telemetry code; swallow and report what it raises, unless strict."""
    try:
        yield
    except Exception as exc:
        internal_error(site, exc)


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process."""
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    _logger.warning(message, *args)


#: Kinds of record a RateLimitFilter remembers, and the template length that tells them apart.
_MAX_KINDS: Final = 1024
_MAX_TEMPLATE_CHARS: Final = 256


class RateLimitFilter(logging.Filter):
    """Let through one record per (logger, message template) per ``interval`` seconds.

    For the OpenTelemetry exporters' own loggers: a backend that is down makes every export
    attempt log an error and every retry a warning, which would flood the service's logs. The
    first record of a kind passes at once; later ones within the interval are counted, and the
    next one let through says how many were suppressed.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[tuple[str, object], float] = {}
        self._suppressed: dict[tuple[str, object], int] = {}
        _filters.add(self)

    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg
        if isinstance(template, str) and len(template) > _MAX_TEMPLATE_CHARS:
            # A message formatted before logging (an f-string) can carry a client's data.
            template = template[:_MAX_TEMPLATE_CHARS]
        key = (record.name, template)
        now = record.created
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            if last is None and len(self._last) >= _MAX_KINDS:
                # Bounded memory when messages are not templates: forget the oldest kind.
                oldest = next(iter(self._last))
                del self._last[oldest]
                self._suppressed.pop(oldest, None)
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        return True

    def reset(self) -> None:
        """Forget what was seen: the next record of every kind passes."""
        with self._lock:
            self._last.clear()
            self._suppressed.clear()

    def suppressed(self) -> int:
        """Records held back so far and not yet reported."""
        with self._lock:
            return sum(self._suppressed.values())


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    # A lock held by another thread at fork time stays held forever in the child.
    global _reported_lock
    _reported_lock = threading.Lock()
    for log_filter in list(_filters):
        log_filter._lock = threading.Lock()
