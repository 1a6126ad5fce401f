"""One scrape of the documented port returns every live worker's metrics, under gunicorn and
uvicorn workers run by the examples' documented commands with nothing configured but the
Prometheus port, scraped by a real Prometheus; workers SIGKILLed or recycled never make a
counter go backwards; a taken port does not stop the service; over OTLP each worker exports
under its own service.instance.id."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import psutil
import pytest
from _otlp import OtlpHttpServer
from _servers import (
    ROOT,
    gunicorn_flask,
    prometheus,
    samples,
    service,
    service_env,
    total,
    uvicorn_fastapi,
    worker_pids,
)
from _wait import eventually, free_port
from prometheus_client.samples import Sample

PREDICTIONS = 24
MORE = 10
PREDICT_COUNT = "http_server_request_duration_seconds_count"


def _port_owner(server_pid: int, metrics_port: int) -> int:
    """The worker that listens on the metrics port now."""
    for child in psutil.Process(server_pid).children(recursive=True):
        for connection in child.net_connections("tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == metrics_port:
                return child.pid
    raise AssertionError(f"no worker listens on {metrics_port}")


def _scrape_without(metrics_port: int, dead: int, workers: int) -> list[Sample] | None:
    """A scrape once ``dead`` is gone from it and ``workers`` live workers are in it."""
    found = samples(metrics_port)
    pids = worker_pids(found)
    return found if dead not in pids and len(pids) == workers else None


@pytest.mark.parametrize(
    ("server", "workers"), [("gunicorn", 4), ("uvicorn", 3)], ids=["gunicorn-w4", "uvicorn-w3"]
)
def test_one_scrape_counts_every_prediction_of_every_worker_and_survives_a_sigkill(
    server: str, workers: int, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    command = (
        gunicorn_flask(workers, port) if server == "gunicorn" else uvicorn_fastapi(workers, port)
    )
    env = service_env(tmp_path, OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port))
    with (
        service(command, env, tmp_path / "service.log", port) as svc,
        prometheus(metrics_port, tmp_path / "prometheus") as prom,
    ):
        svc.wait_healthy()
        eventually(lambda: len(worker_pids(samples(metrics_port))) == workers, "every worker")
        svc.predict(PREDICTIONS)

        found = samples(metrics_port)
        assert PREDICTIONS == total(found, "ml_model_predictions_total")
        assert PREDICTIONS == total(found, PREDICT_COUNT, http_route="/predict")
        prom.wait_for("sum(ml_model_predictions_total)", PREDICTIONS)
        prom.wait_for(f'sum({PREDICT_COUNT}{{http_route="/predict"}})', PREDICTIONS)

        # SIGKILL the worker serving the port: another takes it over at once, the server
        # replaces the dead one, and what the dead one counted stays counted.
        owner = _port_owner(svc.process.pid, metrics_port)
        os.kill(owner, signal.SIGKILL)
        after = eventually(
            lambda: _scrape_without(metrics_port, owner, workers), "the port taken over"
        )
        assert PREDICTIONS == total(after, "ml_model_predictions_total")
        svc.wait_healthy()
        svc.predict(MORE)
        found = samples(metrics_port)
        assert PREDICTIONS + MORE == total(found, "ml_model_predictions_total")
        assert PREDICTIONS + MORE == total(found, PREDICT_COUNT, http_route="/predict")
        prom.wait_for("sum(ml_model_predictions_total)", PREDICTIONS + MORE)
        assert 0 == prom.value("sum(resets(ml_model_predictions_total[10m]))")
    output = svc.output()
    assert "Traceback" not in output, output[-3000:]
    assert "cannot serve the Prometheus endpoint" not in output
    assert "will serve this process only" not in output


def test_recycled_workers_keep_every_count(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    # Each worker exits after a few requests and gunicorn starts a new one (max_requests).
    command = gunicorn_flask(2, port, "--max-requests", "8")
    env = service_env(tmp_path, OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port))
    with (
        service(command, env, tmp_path / "service.log", port) as svc,
        prometheus(metrics_port, tmp_path / "prometheus") as prom,
    ):
        svc.wait_healthy()
        first = worker_pids(eventually(lambda: samples(metrics_port), "the port"))
        svc.predict(PREDICTIONS)
        # A scrape in the instant the port changes hands (its owner recycled) may fail: the
        # next one answers.
        found = eventually(lambda: samples(metrics_port), "a scrape")
        assert not first & worker_pids(found), "no worker was recycled"
        assert PREDICTIONS == total(found, "ml_model_predictions_total")
        prom.wait_for("sum(ml_model_predictions_total)", PREDICTIONS)
        assert 0 == prom.value("sum(resets(ml_model_predictions_total[10m]))")


def test_a_port_another_program_holds_leaves_the_service_serving(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        env = service_env(tmp_path, OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port))
        with service(gunicorn_flask(2, port), env, tmp_path / "service.log", port) as svc:
            svc.wait_healthy()
            svc.predict(3)
            assert svc.process.poll() is None
    output = svc.output()
    assert 1 == output.count("cannot serve the Prometheus endpoint"), output[-3000:]
    assert f":{metrics_port} (" in output
    assert "Traceback" not in output


PRELOADED_APP = textwrap.dedent(
    """
    import otel_mlmon
    from otel_mlmon import ModelMonitor

    # configure() once, in the gunicorn master (--preload), before it forks the workers.
    telemetry = otel_mlmon.configure(service_name="preloaded", logs=False)
    monitor = ModelMonitor("m")

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/predict":
            with monitor.predict() as p:
                p.record(1, 0.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    """
)


def test_workers_forked_after_configure_share_the_masters_endpoint(tmp_path: Path) -> None:
    (tmp_path / "preloaded.py").write_text(PRELOADED_APP)
    port, metrics_port = free_port(), free_port()
    env = service_env(
        tmp_path, OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
    )  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", "--preload", "-w", "3",
               "-b", f"127.0.0.1:{port}", "preloaded:app"]  # fmt: skip
    with service(command, env, tmp_path / "service.log", port) as svc:
        svc.wait_healthy()
        # The master and its three workers.
        eventually(lambda: len(worker_pids(samples(metrics_port))) == 4, "every worker")
        svc.predict(PREDICTIONS)
        assert PREDICTIONS == total(samples(metrics_port), "ml_model_predictions_total")


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_over_otlp_each_worker_exports_under_its_own_instance_id(
    server: str, tmp_path: Path, otlp_http: OtlpHttpServer
) -> None:
    port = free_port()
    command = gunicorn_flask(2, port) if server == "gunicorn" else uvicorn_fastapi(2, port)
    env = service_env(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS="process",  # process.pid, to tell workers apart
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    with service(command, env, tmp_path / "service.log", port) as svc:
        svc.wait_healthy()

        def instances_by_pid() -> dict[int, set[str]] | None:
            svc.predict(4)
            found: dict[int, set[str]] = defaultdict(set)
            for request in otlp_http.receiver.requests["/v1/traces"]:
                for resource_spans in request.resource_spans:
                    attributes = {kv.key: kv.value for kv in resource_spans.resource.attributes}
                    pid = attributes["process.pid"].int_value
                    found[pid].add(attributes["service.instance.id"].string_value)
            return found if len(found) == 2 else None

        found = eventually(instances_by_pid, "spans from both workers")
    assert [1, 1] == [len(ids) for ids in found.values()]
    assert 2 == len(set().union(*found.values()))
