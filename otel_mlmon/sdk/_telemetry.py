"""The handle :func:`~otel_mlmon.configure` returns, and the typed records of what it set up."""

from __future__ import annotations

import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from opentelemetry import _logs as logs_api
from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource

from otel_mlmon.sdk import _lifecycle

if TYPE_CHECKING:
    from otel_mlmon.sdk.prometheus import PrometheusEndpoint

_logger: Final = logging.getLogger("otel_mlmon")

#: Longest :meth:`Telemetry.shutdown` blocks, all providers together (they shut down in
#: parallel). A backend that never answers cannot hold the process past it.
SHUTDOWN_TIMEOUT_MILLIS: Final = 5_000

Signal = Literal["traces", "metrics", "logs"]
Exporter = Literal["otlp", "console", "prometheus"]


@dataclass(frozen=True)
class SignalSetup:
    """What :func:`~otel_mlmon.configure` did for one signal.

    ``provider`` names the provider class in use; ``kept_existing`` says it is the
    application's (configure() built nothing for the signal). ``exporters`` says where the
    signal goes (empty: nowhere, or unknown for a kept provider); ``protocol`` is the OTLP
    protocol and ``export_interval_millis`` the OTLP metric export interval, where they apply.

    .. versionadded:: 0.2.0
    """

    signal: Signal
    provider: str
    kept_existing: bool = False
    exporters: tuple[Exporter, ...] = ()
    protocol: str | None = None
    export_interval_millis: int | None = None

    @classmethod
    def chosen(cls, signal: Signal, provider: str, choice: str, protocol: str) -> SignalSetup:
        """The record of a pipeline built for the exporter ``choice`` (``none``: nowhere)."""
        exporters: tuple[Exporter, ...] = ()
        if choice in ("otlp", "console"):
            exporters = ("otlp",) if choice == "otlp" else ("console",)
        return cls(signal, provider, exporters=exporters, protocol=protocol or None)

    def describe(self, prometheus: PrometheusEndpoint | None = None) -> str:
        """One line for a log: what was set up for the signal."""
        if self.kept_existing:
            return f"kept the existing {self.provider}"
        parts = []
        for exporter in self.exporters:
            if exporter == "otlp" and self.export_interval_millis is not None:
                parts.append(f"otlp {self.protocol} every {self.export_interval_millis} ms")
            elif exporter == "otlp":
                parts.append(f"otlp {self.protocol}")
            elif exporter == "prometheus" and prometheus is not None:
                host, port = prometheus.address
                parts.append(f"prometheus on http://{host}:{port}/metrics")
            else:
                parts.append(exporter)
        return f"set {self.provider}: " + (", ".join(parts) or "none")


@dataclass
class Built:
    """One signal's pipeline as a builder made it: the provider, its record, and how to
    flush and stop what was started (``closers`` run in order)."""

    provider: Any
    setup: SignalSetup
    flush: Callable[[int], bool] | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)


@dataclass
class Telemetry:
    """What :func:`configure` set up; flush and shut it down through this handle.

    ``traces``, ``metrics`` and ``logs`` say what was done per signal; ``prometheus`` is the
    embedded endpoint, if one was set up.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``traces``, ``metrics``, ``logs``, ``prometheus`` and ``sigterm_handled`` replace the
       prose of ``actions`` (deprecated).
    """

    tracer_provider: trace.TracerProvider
    meter_provider: metrics.MeterProvider
    logger_provider: logs_api.LoggerProvider
    resource: Resource
    traces: SignalSetup
    metrics: SignalSetup
    logs: SignalSetup
    prometheus: PrometheusEndpoint | None = None
    sigterm_handled: bool = False
    disabled: bool = False
    shutdown_timeout_millis: int = SHUTDOWN_TIMEOUT_MILLIS
    _closers: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _flushers: list[Callable[[int], bool]] = field(default_factory=list, repr=False)
    _shut_down: bool = field(default=False, repr=False)

    @property
    def prometheus_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the Prometheus endpoint, ``None`` without one."""
        return None if self.prometheus is None else self.prometheus.address

    @property
    def actions(self) -> dict[str, str]:
        """What configure() did, per signal, in words.

        .. deprecated:: 0.2.0
           Read :attr:`traces`, :attr:`metrics`, :attr:`logs` and :attr:`sigterm_handled`.
        """
        warnings.warn(
            "Telemetry.actions is deprecated: read Telemetry.traces, .metrics, .logs and "
            ".sigterm_handled",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.describe()

    def describe(self) -> dict[str, str]:
        """Per signal, one line saying what configure() did (for logs)."""
        if self.disabled:
            return {s: "disabled by OTEL_SDK_DISABLED" for s in ("traces", "metrics", "logs")}
        described: dict[str, str] = {
            setup.signal: setup.describe(self.prometheus)
            for setup in (self.metrics, self.traces, self.logs)
        }
        if self.sigterm_handled:
            described["sigterm"] = "flush within the shutdown bound, then terminate"
        return described

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything pending; ``False`` if some provider did not finish in time.

        Bounded: the providers flush in parallel and this returns after ``timeout_millis`` at
        the latest, even when an exporter is stuck on a backend that never answers (the SDK's
        batch processors do not bound their own flush).
        """
        return run_bounded(
            [functools.partial(flush, timeout_millis) for flush in self._flushers],
            timeout_millis,
            "flush",
        )

    def shutdown(self, timeout_millis: int | None = None) -> bool:
        """Flush and stop everything configure() started; idempotent.

        Bounded in time: the providers shut down in parallel and this returns after
        ``timeout_millis`` at the latest (default ``shutdown_timeout_millis``, as given to
        configure()), with a warning, even when the backend never answers; what was still
        pending is then lost. Returns whether everything finished in time.
        """
        if timeout_millis is None:
            timeout_millis = self.shutdown_timeout_millis
        with _lifecycle.lock:
            if self._shut_down:
                return True
            self._shut_down = True
            _lifecycle.forget(self)
        _lifecycle.restore_sigterm()
        return run_bounded(list(reversed(self._closers)), timeout_millis, "shutdown")


def run_bounded(steps: Sequence[Callable[[], object]], timeout_millis: int, what: str) -> bool:
    """Run ``steps`` in parallel daemon threads; wait at most ``timeout_millis`` for all.

    A step returning ``False`` or raising counts as a failure; a step still running at the
    deadline is abandoned (its thread is a daemon, so it cannot keep the process alive).
    """
    results: list[bool] = []

    def run(step: Callable[[], object]) -> None:
        try:
            results.append(step() is not False)
        except Exception:
            _logger.warning("otel-mlmon: a telemetry %s step failed", what, exc_info=True)
            results.append(False)

    threads = [
        threading.Thread(target=run, args=(step,), name=f"otel-mlmon-{what}", daemon=True)
        for step in steps
    ]
    for thread, step in zip(threads, steps, strict=True):
        try:
            thread.start()
        except RuntimeError:  # no new threads at interpreter shutdown (Python 3.12+): inline
            run(step)
    deadline = time.monotonic() + max(timeout_millis, 0) / 1000
    started = [thread for thread in threads if thread.ident is not None]
    for thread in started:
        thread.join(max(deadline - time.monotonic(), 0))
    late = sum(thread.is_alive() for thread in started)
    if late:
        _logger.warning(
            "otel-mlmon: telemetry %s did not finish within %d ms (%d of %d steps still "
            "running; is the OTLP backend reachable?); pending telemetry may be lost",
            what,
            timeout_millis,
            late,
            len(threads),
        )
        return False
    return all(results)
