"""Waiting in tests: on a condition, never on the clock; and the loopback port a test's server
waits on.

:func:`eventually` polls a probe until it holds. Its bound only stops a hang: it is generous (a
loaded 2-core machine starts a worker that trains a model in tens of seconds) and never a speed
check, which belongs in ``bench/``. :func:`free_port` gives a server an ephemeral port (other
test runs share the machine: never a fixed one); :func:`wait_healthy` and
:func:`wait_listening` wait until it serves, :func:`stop_process` until it has gone.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

#: Default bound on a wait: only reached when something hangs.
TIMEOUT_S = 120.0
#: Pause between two probes: short against any wait worth waiting for.
POLL_S = 0.1
#: What a probe may raise while the thing it asks about is not there yet (a refused connection,
#: a half-written answer, a key not yet present): it is asked again.
NOT_YET: tuple[type[Exception], ...] = (OSError, ValueError, LookupError)

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT_S) -> T:
    """The first truthy value ``probe()`` returns; fails naming ``what`` (with the last value
    or error) after ``timeout`` seconds. A probe raising one of :data:`NOT_YET` is asked again;
    anything else (an ``AssertionError`` saying the server died) fails at once."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    error: Exception | None = None
    while True:
        try:
            last, error = probe(), None
        except NOT_YET as exc:
            error = exc
        if last and error is None:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} "
                f"(last: {last!r}, last error: {error!r})"
            )
        time.sleep(POLL_S)


def stop_process(
    process: subprocess.Popen[Any], stop_signal: int = signal.SIGTERM, timeout: float = 30
) -> None:
    """Stop ``process`` as a user would (``stop_signal``), killed if it has not exited within
    ``timeout`` seconds; returns once it has exited. Nothing to do if it already has."""
    if process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


def wait_listening(port: int, timeout: float = TIMEOUT_S) -> None:
    """Until something accepts connections on the loopback ``port``."""
    eventually(lambda: listening(port), f"a server listening on port {port}", timeout)


def wait_healthy(
    base: str, process: subprocess.Popen[Any] | None = None, timeout: float = TIMEOUT_S
) -> None:
    """Until ``GET {base}/health`` answers 200; fails at once if ``process`` exits first."""

    def healthy() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"exited with {process.returncode} before {base} was healthy: {_output(process)}"
            )
        with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
            return bool(response.status == 200)

    eventually(healthy, f"{base}/health to answer 200", timeout)


def _output(process: subprocess.Popen[Any]) -> object:
    """What an exited process wrote to its pipes, if it has any and nobody read them yet."""
    if process.stdout is None and process.stderr is None:
        return ""
    try:
        return process.communicate(timeout=10)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return f"(output unreadable: {exc!r})"
