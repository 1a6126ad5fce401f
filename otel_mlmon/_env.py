"""The one parser of environment variables, ours (``OTEL_MLMON_*``) and the standard ``OTEL_*``
ones otel-mlmon reads itself.

One rule set, the OpenTelemetry SDK's (specification, "Environment Variable Specification",
and ``opentelemetry.sdk.environment_variables``):

- unset or empty (after stripping) means "not set": the default applies;
- a boolean is ``true`` or ``false``, case-insensitive, nothing else (``1``, ``yes``, ``on`` are
  not booleans in OpenTelemetry);
- an integer is a decimal integer; a duration is an integer number of milliseconds;
- a malformed value logs one warning (once per variable and value) and the default applies:
  a typo in the environment never crashes start-up. Where a silent fallback would hide a
  misconfiguration worse than a crash (a port to listen on), the caller passes
  ``strict=True`` and gets a :class:`~otel_mlmon.exceptions.ConfigurationError` instead.

Every message has one shape: ``NAME='value' is not <what>; using <default>``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Final, TypeVar

from otel_mlmon.exceptions import ConfigurationError

_logger: Final = logging.getLogger("otel_mlmon")
_warned: set[tuple[str, str]] = set()
_warned_lock: Final = threading.Lock()

T = TypeVar("T")


def raw(name: str) -> str | None:
    """The stripped value of ``name``, or ``None`` when it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def _malformed(name: str, value: str, what: str, default: T, strict: bool) -> T:
    message = f"{name}={value!r} is not {what}"
    if strict:
        raise ConfigurationError(message)
    key = (name, value)
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        _logger.warning("otel-mlmon: %s; using %r", message, default)
    return default


def env_bool(name: str, default: bool) -> bool:
    """``true`` or ``false`` (case-insensitive); anything else warns and gives ``default``."""
    value = raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return _malformed(name, value, "'true' or 'false'", default, strict=False)


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    strict: bool = False,
) -> int:
    """A decimal integer within ``[minimum, maximum]`` (each bound optional)."""
    value = raw(name)
    if value is None:
        return default
    what = "an integer"
    if minimum is not None and maximum is not None:
        what = f"an integer in {minimum}..{maximum}"
    elif minimum is not None:
        what = f"an integer >= {minimum}"
    try:
        number = int(value)
    except ValueError:
        return _malformed(name, value, what, default, strict)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return _malformed(name, value, what, default, strict)
    return number


def env_millis(name: str, default: int, *, strict: bool = False) -> int:
    """A positive duration in milliseconds, the OpenTelemetry unit for durations."""
    value = raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        return _malformed(name, value, "a positive number of milliseconds", default, strict)
    return number


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (case-insensitive); anything else warns and gives ``default``."""
    value = raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in choices:
        return lowered
    return _malformed(name, value, f"one of {', '.join(choices)}", default, strict=False)


def env_list(name: str) -> list[str]:
    """A comma-separated list, items stripped and lower-cased, empty items dropped."""
    value = raw(name)
    if value is None:
        return []
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def forget_warnings() -> None:
    """Warn again about values already warned about (for tests that count warnings)."""
    with _warned_lock:
        _warned.clear()
