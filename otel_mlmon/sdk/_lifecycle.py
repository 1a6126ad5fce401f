"""The configured telemetry of this process, and what ends it: SIGTERM, and the rate limit
that keeps a dead backend from flooding the service's logs."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Final

from otel_mlmon import _compat, _fork
from otel_mlmon._guard import RateLimitFilter

if TYPE_CHECKING:
    from otel_mlmon.sdk._telemetry import Telemetry

#: Interval of the rate limit on the OpenTelemetry exporters' own warnings and errors.
EXPORT_WARNING_INTERVAL_S: Final = 60.0
#: Loggers of the SDK and OTLP exporters that log once per failed export or retry; configure()
#: puts a :class:`~otel_mlmon._guard.RateLimitFilter` on them so a dead backend cannot flood
#: the service's logs.
EXPORT_LOGGERS: Final = _compat.EXPORT_LOGGERS
export_log_filter: Final = RateLimitFilter(EXPORT_WARNING_INTERVAL_S)

# Re-entrant: the SIGTERM handler runs on the main thread, possibly inside configure().
lock = threading.RLock()
current: Telemetry | None = None


@_fork.after_fork_in_child
def _reinit_lock_in_child() -> None:
    global lock
    lock = threading.RLock()  # a lock held by another thread at fork stays held in the child


def set_current(telemetry: Telemetry) -> None:
    global current
    current = telemetry


def forget(telemetry: Telemetry) -> None:
    """``telemetry`` is shut down: configure() may build anew."""
    global current
    if current is telemetry:
        current = None


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Flush within the shutdown bound, then die of SIGTERM as if we had not been here."""
    telemetry = current
    if telemetry is not None:
        telemetry.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_sigterm() -> bool:
    """Flush on SIGTERM, but only where nobody else handles it.

    Only from the main thread and only while SIGTERM has its default action: a server that
    handles SIGTERM itself (gunicorn, uvicorn) exits gracefully and atexit runs our shutdown.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return False
        signal.signal(signal.SIGTERM, on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return False
    return True


def restore_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def rate_limit_export_logs() -> None:
    for name in EXPORT_LOGGERS:
        log = logging.getLogger(name)
        if export_log_filter not in log.filters:
            log.addFilter(export_log_filter)
