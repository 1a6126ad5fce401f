"""The embedded Prometheus endpoint: one port for every worker of a server.

:func:`serve` makes this process a member of its server's group (:mod:`._group`): under
gunicorn (``-w N``, sync or ``UvicornWorker``), ``uvicorn --workers N`` or a ``--preload``
fork, each worker calls it (or inherits it) with the same address, one of them binds the port,
and every scrape returns the metrics of all live workers, merged by prometheus_client's
multi-process code (:mod:`._files`). Nothing beyond what one process needs is configured.

The endpoint speaks what the scraper asks for (prometheus_client's content negotiation): the
Prometheus text format by default, OpenMetrics with exemplars for ``Accept:
application/openmetrics-text`` (what Prometheus sends).

Telemetry never breaks the service: a port held by another program is one ERROR line (which
port, how to choose another), one ``ml.monitor.endpoint.errors`` count, and a retry every
:data:`BIND_RETRY_S`; the service starts and serves. Where the shared directory cannot be used
(a read-only ``/tmp``, no Unix sockets), the endpoint serves this process alone, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry.metrics import MeterProvider
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from otel_mlmon import _fork, semconv
from otel_mlmon._guard import warn_once
from otel_mlmon.sdk.prometheus import _group
from otel_mlmon.sdk.prometheus._reader import SPAN_ID_LABEL, TRACE_ID_LABEL, ScrapeReader
from otel_mlmon.version import __version__

__all__ = ["BIND_RETRY_S", "SPAN_ID_LABEL", "TRACE_ID_LABEL", "PrometheusEndpoint", "ScrapeReader"]

_logger: Final = logging.getLogger("otel_mlmon")

#: Seconds between attempts to bind a port another program holds.
BIND_RETRY_S: Final = 5.0


class _Collector:
    """What a scrape of the port collects: the whole group, or this process alone."""

    def __init__(self, endpoint: PrometheusEndpoint) -> None:
        self._endpoint = endpoint

    def collect(self) -> Iterable[Metric]:
        member = self._endpoint._member
        if member is not None:
            return member.collect_group()  # type: ignore[return-value]
        return self._endpoint._reader.families()


class PrometheusEndpoint:
    """The ``/metrics`` endpoint of this process's server (what :func:`otel_mlmon.configure`
    set up for Prometheus).

    ``shared``: the workers of the server share it (the port owner serves them all); ``False``
    when the shared directory was unusable and this process serves only itself.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self, reader: ScrapeReader, host: str, port: int, *, service_name: str,
        meter_provider: MeterProvider,
    ) -> None:  # fmt: skip
        self.host = host
        self.port = port
        self._reader = reader
        self._lock = threading.Lock()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._owner_pid = 0
        self._error: str | None = None
        self._next_bind = 0.0
        self._failed_binds = 0
        self._closed = False
        self._errors = semconv.create_ml_monitor_endpoint_errors(
            meter_provider.get_meter("otel_mlmon", __version__)
        )
        self._member: _group.Member | None = None
        try:
            directory = _group.group_directory(host, port, service_name)
            self._member = _group.Member(directory, reader, self._tick)
        except Exception as exc:
            _logger.warning(
                "otel-mlmon: the Prometheus endpoint will serve this process only (the "
                "directory its workers share is unusable: %s; see OTEL_MLMON_PROMETHEUS_DIR)",
                exc,
            )
        with self._lock:
            if self._member is None or self._member.try_lead():
                self._bind()
        if self._member is not None:
            self._member.start()
        elif self._server is None:
            threading.Thread(
                target=self._retry_alone, name="otel-mlmon-prometheus-retry", daemon=True
            ).start()
        _endpoints.add(self)

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the endpoint (the bound port when 0 was asked)."""
        return self.host, self.port

    @property
    def shared(self) -> bool:
        return self._member is not None

    @property
    def serving(self) -> bool:
        """Whether this process holds the port now (one worker of a server does)."""
        return self._server is not None

    @property
    def error(self) -> str | None:
        """Why this process cannot bind the port, while it cannot (``None`` otherwise)."""
        return self._error

    def _tick(self) -> None:
        """On the member's thread: take the port over from a member that left or died, and
        retry a port another program holds."""
        with self._lock:
            if self._closed or self._member is None:
                return
            if not self._member.leads:
                if self._member.try_lead():
                    self._bind()
            elif self._server is None and time.monotonic() >= self._next_bind:
                self._bind()

    def _retry_alone(self) -> None:
        """Without a group (no member thread): retry the port until it is ours or we stop."""
        while True:
            time.sleep(BIND_RETRY_S)
            with self._lock:
                if self._closed or self._server is not None:
                    return
                self._bind()

    def _bind(self) -> None:
        """Serve the port from this process; on failure say so once and retry later.
        Called with the lock held."""
        try:
            server, thread = start_http_server(self.port, addr=self.host, registry=self._registry)
        except OSError as exc:
            self._next_bind = time.monotonic() + BIND_RETRY_S
            self._failed_binds += 1
            if self._error is None:
                self._error = exc.strerror or str(exc)
                self._errors.add(
                    1,
                    {semconv.ERROR_TYPE: semconv.error_type(type(exc)),
                     semconv.SERVER_PORT: self.port},
                )  # fmt: skip
                if self._member is not None and not self._member.first_to_fail_binding():
                    return  # another worker of the server has said it already
                _logger.error(
                    "otel-mlmon: cannot serve the Prometheus endpoint on %s:%d (%s): another "
                    "program holds the port. The service runs on and the endpoint retries every "
                    "%d s; pick another port with prometheus_port= or "
                    "OTEL_EXPORTER_PROMETHEUS_PORT (0 picks a free one)",
                    self.host, self.port, self._error, BIND_RETRY_S,
                )  # fmt: skip
            return
        self._server, self._server_thread = server, thread
        self.port = int(server.server_address[1])
        self._owner_pid = os.getpid()
        if self._member is not None:
            self._member.bound()
        if self._error is not None:
            _logger.info("otel-mlmon: now serving the Prometheus endpoint on %s:%d", *self.address)
            self._error = None

    def _stop_serving(self) -> None:
        server, thread = self._server, self._server_thread
        self._server = self._server_thread = None
        if server is None:
            return
        if self._owner_pid == os.getpid():
            server.shutdown()
        server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def stop(self) -> None:
        """Stop serving and leave the group (idempotent): the port is released first, then
        this worker's last snapshot is written and another worker takes the port over."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_serving()
        if self._member is not None:
            self._member.close()
        _endpoints.discard(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        server, self._server, self._server_thread = self._server, None, None
        if server is not None:
            # The serving thread stayed with the parent; the child closes its copy of the
            # listening socket, so the port is not held by workers once the parent is gone.
            with contextlib.suppress(OSError):
                server.socket.close()
        if self._closed:
            return
        self._reader.after_fork_in_child()
        if self._member is None:
            warn_once(
                "prometheus-fork",
                "otel-mlmon: process %d was forked after configure() started the Prometheus "
                "endpoint, and the directory workers share is unusable: its metrics are not "
                "served. Set OTEL_MLMON_PROMETHEUS_DIR to a writable directory, or use OTLP.",
                os.getpid(),
            )
            return
        self._member.after_fork_in_child()


_endpoints: weakref.WeakSet[PrometheusEndpoint] = weakref.WeakSet()


@_fork.after_fork_in_child
def _endpoints_after_fork_in_child() -> None:
    for endpoint in list(_endpoints):
        endpoint._after_fork_in_child()


def _hold_readers_for_fork() -> None:
    for endpoint in list(_endpoints):
        endpoint._reader.hold_for_fork()


def _release_readers_after_fork() -> None:
    for endpoint in list(_endpoints):
        endpoint._reader.release_after_fork()


# A fork in the middle of a scrape's collection would copy the SDK's collection locks held into
# the child, whose own first collection would then wait forever.
_fork.around_fork_in_parent(_hold_readers_for_fork, _release_readers_after_fork)
