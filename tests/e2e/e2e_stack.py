"""The bundled stack assembled from real programs on loopback, for the end-to-end tests
(fixtures re-exported by conftest.py; helpers imported by the tests).

No container engine runs here, so the test starts what docker-compose.yml would, built or
installed on this machine: the slim collector (collector/otelcol-mlmon) running the bundled
config unchanged but for endpoints given through its ${env:...} variables, Jaeger v2 with
in-memory storage, Prometheus from Debian's package with the bundled scrape config and alert
rules, and VictoriaLogs as the OTLP log store in Loki's place (Loki's module is not served),
reached through the same otlp_http exporter. Every port is a free one on 127.0.0.1.

Then the FastAPI example (examples/fastapi_app.py, started by its documented command in its
own process) exports OTLP to the collector while tests/e2e/traffic.py drives requests at it.
Binaries come from ``bash collector/build.sh`` (cached outside the repo).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))

from stack_files import (
    OTELCOL_CONFIG,
    PROMETHEUS_CONFIG,
    REPO,
    cache_bin,
    rule_files,
)

HERE = Path(__file__).resolve().parent
JAEGER_CONFIG = HERE / "jaeger-config.yaml"
EXAMPLE = REPO / "examples" / "fastapi_app.py"
#: Longest wait for a program to answer, or for telemetry to arrive.
TIMEOUT_S = 60.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    """GET a JSON document; raises urllib.error.HTTPError on a non-2xx answer."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read().decode()
    return json.loads(body) if body.strip() else None


def eventually(probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT_S) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError, LookupError) as exc:
            last_error = exc
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")


@dataclass
class Program:
    """One program of the stack, its log in a file the failure message quotes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class Stack:
    """The running stack: where each program answers, and how to ask it."""

    otlp_http: str
    prometheus: str
    jaeger_query: str
    victorialogs: str
    programs: list[Program] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)

    def promql(self, expr: str) -> list[dict[str, Any]]:
        """The instant result of ``expr`` now (raises on a query error)."""
        answer = http_get(f"{self.prometheus}/api/v1/query", {"query": expr})
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def promql_has_data(self, expr: str) -> bool:
        """Whether ``expr`` returns at least one sample that is a number (not NaN)."""
        result = self.promql(expr)
        values = [item["value"][1] for item in result if "value" in item]
        return any(not math.isnan(float(value)) for value in values)

    def jaeger_trace(self, trace_id: str) -> dict[str, Any]:
        answer = http_get(f"{self.jaeger_query}/api/traces/{trace_id}")
        return answer["data"][0]  # type: ignore[no-any-return]

    def logs_by_trace_id(self, trace_id: str) -> list[dict[str, Any]]:
        """VictoriaLogs' LogsQL: every stored log record whose trace_id field is ``trace_id``."""
        query = urllib.parse.urlencode({"query": f'trace_id:"{trace_id}"'})
        url = f"{self.victorialogs}/select/logsql/query?{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            lines = response.read().decode().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def _required_binaries() -> dict[str, Path]:
    built = {name: cache_bin() / name for name in ("otelcol-mlmon", "jaeger", "victoria-logs")}
    missing = [str(path) for path in built.values() if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)}; run `bash collector/build.sh` (see .ci/run)")
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus (see .ci/run)")
    return {**built, "prometheus": Path(prometheus)}


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    return _required_binaries()


def _clean_env(**extra: str) -> dict[str, str]:
    # The test's programs get only the OTel settings given here, none of the caller's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k.startswith(
        "OTEL_MLMON_STRICT")}  # fmt: skip
    env.update(extra)
    return env


def _start(name: str, command: list[str], workdir: Path, env: dict[str, str]) -> Program:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir
        )
    return Program(name, process, log)


def _wait_ready(program: Program, url: str) -> None:
    def probe() -> bool:
        if program.process.poll() is not None:
            pytest.fail(f"{program.name} exited with {program.process.returncode}:\n"
                        f"{program.tail()}")  # fmt: skip
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    eventually(probe, f"{program.name} at {url}")


def _prometheus_config(exporter: str, collector_metrics: str) -> dict[str, Any]:
    """The bundled prometheus.yml with loopback targets, a 1 s scrape and the repo's rules."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(path) for path in rule_files()]
    config.pop("alerting", None)  # no Alertmanager here
    targets = {"otel-collector": exporter, "otel-collector-self": collector_metrics}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


@pytest.fixture(scope="session")
def stack(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    port = {name: free_port() for name in (
        "otlp_grpc", "otlp_http", "exporter", "collector_metrics", "health", "prometheus",
        "jaeger_otlp", "jaeger_http", "jaeger_grpc", "victorialogs")}  # fmt: skip
    loopback = {name: f"127.0.0.1:{number}" for name, number in port.items()}
    stack = Stack(
        otlp_http=f"http://{loopback['otlp_http']}",
        prometheus=f"http://{loopback['prometheus']}",
        jaeger_query=f"http://{loopback['jaeger_http']}",
        victorialogs=f"http://{loopback['victorialogs']}",
    )
    try:
        victorialogs = _start("victoria-logs", [
            str(binaries["victoria-logs"]), f"-httpListenAddr={loopback['victorialogs']}",
            f"-storageDataPath={workdir / 'victoria-logs-data'}", "-loggerLevel=WARN",
        ], workdir, _clean_env())  # fmt: skip
        stack.programs.append(victorialogs)
        jaeger = _start("jaeger", [str(binaries["jaeger"]), f"--config={JAEGER_CONFIG}"], workdir,
                        _clean_env(JAEGER_OTLP_GRPC_ENDPOINT=loopback["jaeger_otlp"],
                                   JAEGER_QUERY_HTTP_ENDPOINT=loopback["jaeger_http"],
                                   JAEGER_QUERY_GRPC_ENDPOINT=loopback["jaeger_grpc"]))  # fmt: skip
        stack.programs.append(jaeger)
        collector = _start("otelcol", [
            str(binaries["otelcol-mlmon"]), f"--config={OTELCOL_CONFIG}",
        ], workdir, _clean_env(
            OTELCOL_OTLP_GRPC_ENDPOINT=loopback["otlp_grpc"],
            OTELCOL_OTLP_HTTP_ENDPOINT=loopback["otlp_http"],
            OTELCOL_PROMETHEUS_ENDPOINT=loopback["exporter"],
            OTELCOL_HEALTH_CHECK_ENDPOINT=loopback["health"],
            OTELCOL_METRICS_HOST="127.0.0.1",
            OTELCOL_METRICS_PORT=str(port["collector_metrics"]),
            JAEGER_OTLP_ENDPOINT=loopback["jaeger_otlp"],
            # VictoriaLogs' OTLP endpoint; the exporter appends /v1/logs as it does for Loki.
            LOGS_OTLP_ENDPOINT=f"{stack.victorialogs}/insert/opentelemetry",
        ))  # fmt: skip
        stack.programs.append(collector)
        prometheus_yml = workdir / "prometheus.yml"
        prometheus_yml.write_text(yaml.safe_dump(
            _prometheus_config(loopback["exporter"], loopback["collector_metrics"])))  # fmt: skip
        prometheus = _start("prometheus", [
            str(binaries["prometheus"]), f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address={loopback['prometheus']}",
        ], workdir, _clean_env())  # fmt: skip
        stack.programs.append(prometheus)

        _wait_ready(victorialogs, f"{stack.victorialogs}/health")
        _wait_ready(jaeger, f"{stack.jaeger_query}/api/services")
        _wait_ready(collector, f"http://{loopback['health']}/")
        _wait_ready(prometheus, f"{stack.prometheus}/-/ready")
        yield stack
    finally:
        for program in reversed(stack.programs):
            program.stop()


@pytest.fixture(scope="session")
def traffic(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the FastAPI example against the collector and drive the traffic at it; yield once
    everything it sent can be queried: the final counter values in Prometheus, the two traces
    in Jaeger, the drift scores. The example keeps running (and exporting) until the session
    ends."""
    from sklearn.datasets import load_iris
    from traffic import drive

    workdir = tmp_path_factory.mktemp("example")
    port = free_port()
    example = _start("fastapi-example", [
        sys.executable, str(EXAMPLE), "--port", str(port),
    ], workdir, _clean_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_http,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        EXAMPLE_FAULTS="1",
        PYTHONUNBUFFERED="1",
    ))  # fmt: skip
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(example, f"{base_url}/health")
        iris = load_iris()
        result = drive(base_url, iris.data.tolist(), [int(t) for t in iris.target])
        selector = (
            f'service_name="{result["service_name"]}", ml_model_name="{result["model_name"]}"'
        )

        def final(expr: str, expected: int) -> bool:
            samples = stack.promql(expr)
            return bool(samples) and float(samples[0]["value"][1]) == expected

        predictions = f"sum(ml_model_predictions_total{{{selector}}})"
        errors = f"sum(ml_model_errors_total{{{selector}}})"
        eventually(lambda: final(predictions, result["predictions"]),
                   "every prediction in Prometheus")  # fmt: skip
        eventually(lambda: final(errors, sum(result["errors"].values())),
                   "every error in Prometheus")  # fmt: skip
        eventually(lambda: stack.promql_has_data(f"ml_drift_detected_ratio{{{selector}}} == 1"),
                   "the drift detected in Prometheus")  # fmt: skip
        for key in ("ok_trace_id", "error_trace_id"):
            eventually(lambda key=key: stack.jaeger_trace(result[key]), f"{key} in Jaeger")
        stack.traffic = result
        yield result
    finally:
        example.stop()
