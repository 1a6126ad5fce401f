"""From a latency bucket to its trace on the embedded path: a real Prometheus with exemplar
storage, scraping the default ``/metrics`` of the FastAPI example (one process, and three
uvicorn workers), returns exemplars whose trace ids are those of spans the same service
exported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from _otlp import OtlpHttpServer
from _servers import prometheus, service, service_env, uvicorn_fastapi
from _wait import eventually, free_port

LATENCY_HISTOGRAMS = (
    "ml_model_prediction_duration_seconds_bucket",
    "http_server_request_duration_seconds_bucket",
)


def _single_process(port: int) -> list[str]:
    """The FastAPI example's documented one-process command."""
    return [sys.executable, "examples/fastapi_app.py", "--port", str(port)]


@pytest.mark.parametrize("workers", [1, 3], ids=["one-process", "uvicorn-w3"])
def test_prometheus_finds_exemplars_that_lead_to_exported_traces(
    workers: int, tmp_path: Path, otlp_http: OtlpHttpServer
) -> None:
    port, metrics_port = free_port(), free_port()
    command = _single_process(port) if workers == 1 else uvicorn_fastapi(workers, port)
    env = service_env(
        tmp_path,
        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        # Spans to a collector, metrics stay on the embedded endpoint.
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{otlp_http.endpoint}/v1/traces",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with (
        service(command, env, tmp_path / "service.log", port) as svc,
        prometheus(metrics_port, tmp_path / "prometheus") as prom,
    ):
        svc.wait_healthy()
        svc.predict(12)
        for histogram in LATENCY_HISTOGRAMS:
            exemplars = eventually(
                lambda h=histogram: prom.exemplars(h), f"exemplars of {histogram}"
            )
            trace_ids = {e["labels"]["trace_id"] for e in exemplars}
            eventually(
                lambda ids=trace_ids: ids <= _exported_trace_ids(otlp_http),
                f"the traces of {histogram}'s exemplars among the exported spans",
            )
            assert all(16 == len(e["labels"]["span_id"]) for e in exemplars)
        prom.wait_for("sum(up)", 1)


def _exported_trace_ids(otlp: OtlpHttpServer) -> set[str]:
    return {span.trace_id.hex() for span in otlp.receiver.spans()}
