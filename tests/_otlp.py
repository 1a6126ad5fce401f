"""A real OTLP/HTTP and OTLP/gRPC receiver on loopback for tests.

It decodes what the SDK's exporters send with the OTLP protobuf definitions, and can be told to
misbehave (status code, delay) to test exporters against an unhealthy backend; :class:`BlackHole`
accepts connections and never answers, :func:`refusing_endpoint` names a port nobody listens on.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import defaultdict
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_REQUESTS = {
    "/v1/traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}


class OtlpReceiver:
    """Collects decoded OTLP export requests by signal path (``/v1/traces`` ...)."""

    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = defaultdict(list)
        self.headers: list[dict[str, str]] = []
        self.status = 200
        self.delay = 0.0
        self._cond = threading.Condition()

    def add(self, path: str, message: Any, headers: dict[str, str]) -> None:
        with self._cond:
            self.requests[path].append(message)
            self.headers.append(headers)
            self._cond.notify_all()

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        """Block until ``count`` requests arrived on ``path``; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests[path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {path} export within {timeout}s")
                self._cond.wait(left)
            return list(self.requests[path])

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.requests["/v1/traces"]
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def metric_names(self) -> set[str]:
        return {
            metric.name
            for request in self.requests["/v1/metrics"]
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }

    def log_records(self) -> list[Any]:
        return [
            record
            for request in self.requests["/v1/logs"]
            for resource_logs in request.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]

    @staticmethod
    def resource_attributes(request: Any) -> dict[str, Any]:
        for field in ("resource_spans", "resource_metrics", "resource_logs"):
            groups = getattr(request, field, None)
            if groups:
                return {
                    kv.key: getattr(kv.value, kv.value.WhichOneof("value"))
                    for kv in groups[0].resource.attributes
                }
        return {}


class OtlpHttpServer:
    """OTLP/HTTP (protobuf) on ``http://127.0.0.1:<port>`` (``port=0``: any free one), or on
    ``https://`` with ``tls=(certificate_file, key_file)``."""

    def __init__(self, port: int = 0, tls: tuple[str, str] | None = None) -> None:
        self.receiver = OtlpReceiver()
        receiver = self.receiver

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                kinds = _REQUESTS.get(self.path)
                if kinds is None or receiver.status != 200:
                    self.send_response(404 if kinds is None else receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request_type, response_type = kinds
                message = request_type()
                message.ParseFromString(body)
                receiver.add(self.path, message, dict(self.headers.items()))
                payload = response_type().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.endpoint = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class OtlpGrpcServer:
    """OTLP/gRPC on ``127.0.0.1:<port>`` for traces, metrics and logs."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        self.receiver = receiver = OtlpReceiver()

        def metadata(context: Any) -> dict[str, str]:
            return {k: v for k, v in context.invocation_metadata()}

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                receiver.add("/v1/traces", request, metadata(context))
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                receiver.add("/v1/metrics", request, metadata(context))
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
            def Export(self, request: Any, context: Any) -> Any:
                receiver.add("/v1/logs", request, metadata(context))
                return logs_service_pb2.ExportLogsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server.start()

    def close(self) -> None:
        self._server.stop(grace=None)


class BlackHole:
    """A TCP endpoint on loopback that accepts connections and never answers.

    An exporter pointed here blocks until its own timeout: the worst case for shutdown.
    """

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self.port = self._socket.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.connections: list[Any] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections.append(connection)  # held open, never read, never answered

    def close(self) -> None:
        self._closed.set()
        for connection in self.connections:
            connection.close()
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self._socket.close()
        self._thread.join(timeout=5)


def refusing_endpoint() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def sum_points(requests: list[Any], name: str) -> list[tuple[dict[str, Any], float]]:
    """The data points of Sum metric ``name``: the latest totals of every process that sent it.

    Cumulative temporality (the SDK default for counters): a process's latest export holds its
    totals. Processes are told apart by ``service.instance.id``, so the points of several
    workers (gunicorn) add up.
    """
    latest: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for request in requests:
        for resource_metrics in request.resource_metrics:
            instance = next(
                (
                    kv.value.string_value
                    for kv in resource_metrics.resource.attributes
                    if kv.key == "service.instance.id"
                ),
                "",
            )
            points = [
                (
                    {
                        kv.key: getattr(kv.value, kv.value.WhichOneof("value"))
                        for kv in p.attributes
                    },
                    p.as_int if p.HasField("as_int") else p.as_double,
                )
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
                if metric.name == name and metric.HasField("sum")
                for p in metric.sum.data_points
            ]
            if points:
                latest[instance] = points
    return [point for points in latest.values() for point in points]
