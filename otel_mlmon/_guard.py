"""One error guard for telemetry code that runs inside the host's request path.

Telemetry must never break the service: an unexpected error in our own recording code is logged
once per call site and counted, and the caller carries on. Under ``OTEL_MLMON_STRICT=true`` (our
test suite) it is re-raised, so bugs still surface.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from otel_mlmon.environment_variables import OTEL_MLMON_STRICT

_logger: Final = logging.getLogger("otel_mlmon")
_reported: set[str] = set()
_reported_lock = threading.Lock()
_counts: dict[str, int] = {}


def strict() -> bool:
    """Whether internal errors are re-raised (``OTEL_MLMON_STRICT=true``)."""
    return os.environ.get(OTEL_MLMON_STRICT, "").strip().lower() == "true"


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


@contextmanager
def guarded(site: str) -> Iterator[None]:
    """Run a block of telemetry code; swallow and report what it raises, unless strict."""
    try:
        yield
    except Exception as exc:
        if strict():
            raise
        report_internal_error(site, exc)


def warn_once(key: str, message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process."""
    with _reported_lock:
        if key in _reported:
            return
        _reported.add(key)
    _logger.warning(message, *args)
