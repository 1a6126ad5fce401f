"""Delayed labels across workers, servers and restarts (issue 18), with real servers.

The Flask example runs under its documented gunicorn command and the FastAPI example under its
documented ``uvicorn --factory --workers`` command, with four workers each; nothing of
otel-mlmon is configured but where its metrics go (OTLP to a receiver on loopback, since each
worker exports its own). A label may reach any worker, or another server holding the key after
the first has stopped: every genuine one must match, and the confusion matrix summed over the
workers must equal the one sent.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _otlp import OtlpHttpServer, sum_points
from _wait import wait_healthy

from otel_mlmon import semconv

GUNICORN = Path(sys.executable).parent / "gunicorn"
UVICORN = Path(sys.executable).parent / "uvicorn"
# Rows of the three iris species, so the predictions cover every class.
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
N = 120

pytestmark = pytest.mark.skipif(
    not (GUNICORN.exists() and UVICORN.exists()), reason="gunicorn or uvicorn not installed"
)

Start = Callable[..., subprocess.Popen[str]]


class _Drained:
    """Reads a server's stdout and stderr as they come: every request logs a line, and a
    full pipe would block the worker that writes it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(stream, sink), daemon=True)
            for stream, sink in ((process.stdout, []), (process.stderr, self.stderr))
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def stop(self) -> None:
        """SIGTERM (every worker flushes its metrics on the way out) and wait for the exit."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        for thread in self._threads:
            thread.join(timeout=10)
        assert 0 == self.process.returncode, "".join(self.stderr)[-3000:]

    def fail(self, message: str) -> AssertionError:
        self.process.kill()
        self.process.wait(timeout=30)
        return AssertionError(f"{message}: {''.join(self.stderr)[-4000:]}")


def _command(server: str, port: int, workers: int) -> list[str]:
    """The documented multi-worker command of each example (their docstrings)."""
    if server == "uvicorn":
        return [str(UVICORN), "--factory", "--workers", str(workers), "--port", str(port),
                "--app-dir", "examples", "fastapi_app:create_app"]  # fmt: skip
    return [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--chdir", "examples",
            "flask_app:create_app()"]  # fmt: skip


def _serve(
    run_command: Start,
    port: int,
    workers: int,
    otlp: OtlpHttpServer,
    server: str = "gunicorn",
    **env: str,
) -> _Drained:
    return _Drained(run_command(
        _command(server, port, workers),
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"{otlp.endpoint}/v1/metrics",
        OTEL_EXPORTER_PROMETHEUS_PORT="0",
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **env,
    ))  # fmt: skip


def _predict(base: str, count: int, server: _Drained) -> list[tuple[str, int]]:
    """(prediction id, predicted class) of ``count`` predictions, each on a new connection so
    that gunicorn hands them to whichever worker accepts first."""
    made = []
    for i in range(count):
        response = httpx.post(f"{base}/predict", json={"features": ROWS[i % 4]}, timeout=120)
        if response.status_code != 200:
            raise server.fail(str(response.status_code))
        body = response.json()
        made.append((body["prediction_id"], body["prediction"]))
    return made


def _label(base: str, prediction_id: str, label: int) -> None:
    response = httpx.post(
        f"{base}/feedback", json={"prediction_id": prediction_id, "label": label}, timeout=120
    )
    assert 202 == response.status_code, response.text


def _labels(otlp: OtlpHttpServer) -> tuple[dict[tuple[str, str], float], Counter[str], int]:
    """The confusion matrix and the outcomes summed over every process, and how many
    processes reported labels."""
    requests = otlp.receiver.requests["/v1/metrics"]
    points = sum_points(requests, semconv.ML_MODEL_LABELS)
    matrix: dict[tuple[str, str], float] = {}
    outcomes: Counter[str] = Counter()
    for attributes, value in points:
        outcomes[attributes[semconv.ML_LABEL_OUTCOME]] += int(value)
        if semconv.ML_LABEL_CLASS in attributes:
            key = (attributes[semconv.ML_PREDICTION_CLASS], attributes[semconv.ML_LABEL_CLASS])
            matrix[key] = matrix.get(key, 0) + value
    processes = {
        kv.value.string_value
        for request in requests
        for resource in request.resource_metrics
        for kv in resource.resource.attributes
        if kv.key == "service.instance.id"
        and any(
            m.name == semconv.ML_MODEL_LABELS
            for scope in resource.scope_metrics
            for m in scope.metrics
        )
    }
    return matrix, outcomes, len(processes)


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_four_workers_without_configuration_match_every_label(
    run_command: Start,
    free_port: int,
    otlp_http: OtlpHttpServer,
    tmp_path: Path,
    server: str,
) -> None:
    cache = tmp_path / "cache"
    process = _serve(run_command, free_port, 4, otlp_http, server, XDG_CACHE_HOME=str(cache))
    base = f"http://127.0.0.1:{free_port}"
    wait_healthy(base, process.process, timeout=300)  # four workers load the model
    predictions = _predict(base, N, process)
    sent: Counter[tuple[str, str]] = Counter()
    for i, (prediction_id, predicted) in enumerate(predictions):
        label = (predicted + i) % 3 if i % 4 == 0 else predicted  # a quarter of them wrong
        _label(base, prediction_id, label)
        sent[(str(predicted), str(label))] += 1
    process.stop()

    matrix, outcomes, processes = _labels(otlp_http)
    assert {"matched": N} == dict(outcomes)
    assert dict(sent) == matrix
    assert processes > 1  # the labels were counted by several workers, and still add up
    key_file = cache / "otel-mlmon" / "label.key"
    assert 0o600 == stat.S_IMODE(os.stat(key_file).st_mode)


def test_labels_posted_to_another_server_after_the_first_stopped_all_match(
    run_command: Start,
    free_port: int,
    otlp_http: OtlpHttpServer,
    tmp_path: Path,
) -> None:
    # Two servers that share only the key (each its own cache directory, so no key file in
    # common); B takes over A's address once A has stopped, as a redeploy does.
    key = {"OTEL_MLMON_LABEL_KEY": "replicas-share-this-secret-0123456789"}
    base = f"http://127.0.0.1:{free_port}"
    a = _serve(run_command, free_port, 2, otlp_http, XDG_CACHE_HOME=str(tmp_path / "a"), **key)
    wait_healthy(base, a.process)
    predictions = _predict(base, 40, a)
    a.stop()
    before = len(otlp_http.receiver.requests["/v1/metrics"])

    b = _serve(run_command, free_port, 2, otlp_http, XDG_CACHE_HOME=str(tmp_path / "b"), **key)
    base_b = base
    wait_healthy(base_b, b.process)
    for prediction_id, predicted in predictions:
        _label(base_b, prediction_id, predicted)
    for prediction_id, _ in predictions:  # one character changed: a forgery
        forged = (
            prediction_id[:12] + ("A" if prediction_id[12] != "A" else "B") + prediction_id[13:]
        )
        _label(base_b, forged, 0)
    b.stop()
    del otlp_http.receiver.requests["/v1/metrics"][:before]  # only B's exports

    matrix, outcomes, _ = _labels(otlp_http)
    assert {"matched": 40, "invalid": 40} == dict(outcomes)
    assert dict(Counter((str(p), str(p)) for _, p in predictions)) == matrix
