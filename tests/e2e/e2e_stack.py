"""The bundled stack assembled from real programs on loopback, for the end-to-end tests
(fixtures re-exported by conftest.py; helpers imported by the tests).

No container engine runs here, so the test starts what docker-compose.yml would, built or
installed on this machine, each from the layout compose mounts: the repo's files copied to their
container paths under a temporary root (``stack_files.reproduce_mounts``) and each program run
with its compose ``command`` re-rooted there. The slim collector (collector/otelcol-mlmon) runs
the bundled config unchanged, endpoints given through its ${env:...} variables; Prometheus from
Debian's package runs the mounted prometheus.yml with only its scrape targets and intervals
changed (loopback ports, 1 s), so it loads the rules by the config's own glob from the mounted
rules folder; Jaeger v2 with in-memory storage; VictoriaLogs as the OTLP log store in Loki's
place (Loki's module is not served), reached through the same otlp_http exporter. Every port is
a free one on 127.0.0.1.

Two paths, each with its own Prometheus and its own run of the FastAPI example, started by one
of its documented commands, under the traffic of tests/e2e/traffic.py:

- the collector path: ``python examples/fastapi_app.py`` exporting OTLP to the collector;
- the default path: no OTLP endpoint, the example under several uvicorn workers
  (``uvicorn --factory --workers N --app-dir examples fastapi_app:create_app`` with
  ``OTEL_EXPORTER_PROMETHEUS_PORT``) serving every worker's metrics on one embedded /metrics
  port, which Prometheus scrapes with the job named after the service (the scrape config of
  docs/stack.md).

Binaries come from ``bash collector/build.sh`` (cached outside the repo).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

# The suite's helpers (tests/) and the stack's files (tests/collector), importable when
# measure_exemplars.py runs as a script too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))

from _wait import eventually, free_port, stop_process
from stack_files import (
    REPO,
    cache_bin,
    command_flag,
    compose_command,
    load_yaml,
    reproduce_mounts,
)

HERE = Path(__file__).resolve().parent
JAEGER_CONFIG = HERE / "jaeger-config.yaml"
EXAMPLE = REPO / "examples" / "fastapi_app.py"
#: uvicorn workers of the default path (the example's docstring runs two).
WORKERS = 2
#: Prometheus' scrape and rule evaluation interval in the tests (15 s in docker-compose.yml).
SCRAPE_INTERVAL = "1s"
#: The example's metric export interval on the collector path: above the scrape interval, so
#: that every exemplar, on the collector's endpoint from one export to the next, is scraped.
EXPORT_INTERVAL_MS = "2000"


def http_get(url: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    """GET a JSON document; raises urllib.error.HTTPError on a non-2xx answer."""
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read().decode()
    return json.loads(body) if body.strip() else None


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
        stop_process(self.process, timeout=15)


@dataclass
class Prometheus:
    """A running Prometheus: its HTTP API, and the config file it was started with."""

    url: str
    config: Path

    def promql(self, expr: str) -> list[dict[str, Any]]:
        """The instant result of ``expr`` now (raises on a query error)."""
        answer = http_get(f"{self.url}/api/v1/query", {"query": expr})
        assert answer["status"] == "success", answer
        return answer["data"]["result"]  # type: ignore[no-any-return]

    def promql_has_data(self, expr: str) -> bool:
        """Whether ``expr`` returns at least one sample that is a number (not NaN)."""
        result = self.promql(expr)
        values = [item["value"][1] for item in result if "value" in item]
        return any(not math.isnan(float(value)) for value in values)

    def exemplars(self, expr: str, since: float) -> list[dict[str, Any]]:
        """``/api/v1/query_exemplars``: per series, its exemplars from ``since`` until now."""
        answer = http_get(f"{self.url}/api/v1/query_exemplars", {
            "query": expr, "start": f"{since:.3f}", "end": f"{time.time() + 1:.3f}",
        })  # fmt: skip
        assert answer["status"] == "success", answer
        return answer["data"]  # type: ignore[no-any-return]

    def series(self, selector: str) -> dict[str, set[str]]:
        """Series name -> the union of its series' label names, for every series ``selector``
        matches now."""
        families: dict[str, set[str]] = {}
        for item in self.promql(selector):
            labels = dict(item["metric"])
            families.setdefault(labels.pop("__name__"), set()).update(labels)
        return families


@dataclass
class Stack:
    """The collector path: where each program answers, and how to ask it."""

    otlp_http: str
    prometheus: Prometheus
    jaeger_query: str
    victorialogs: str
    programs: list[Program] = field(default_factory=list)

    def promql(self, expr: str) -> list[dict[str, Any]]:
        return self.prometheus.promql(expr)

    def promql_has_data(self, expr: str) -> bool:
        return self.prometheus.promql_has_data(expr)

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


@dataclass
class MetricsPath:
    """One path from the example to Prometheus, after the traffic: what the tests ask."""

    name: str
    prometheus: Prometheus
    traffic: dict[str, Any]
    #: The example's own /metrics endpoint on the default path; None on the collector path.
    metrics_url: str | None = None


def _required_prometheus() -> Path:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus (see .ci/run)")
    return Path(prometheus)


def _required_binaries() -> dict[str, Path]:
    built = {name: cache_bin() / name for name in ("otelcol-mlmon", "jaeger", "victoria-logs")}
    missing = [str(path) for path in built.values() if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"not built: {', '.join(missing)}; run `bash collector/build.sh` (see .ci/run)")
    return {**built, "prometheus": _required_prometheus()}


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    return _required_binaries()


def _clean_env(**extra: str) -> dict[str, str]:
    # The test's programs get only the OTel settings given here, none of the caller's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") or k.startswith(
        "OTEL_MLMON_STRICT")}  # fmt: skip
    env.update(extra)
    return env


def _start(
    name: str, command: list[str], workdir: Path, env: dict[str, str], cwd: Path | None = None
) -> Program:
    """Start ``command`` in ``cwd`` (default ``workdir``), its output in ``workdir``."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd or workdir
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


def with_test_settings(config: dict[str, Any], targets: dict[str, list[str]]) -> dict[str, Any]:
    """The mounted prometheus.yml as the tests run it: the same but for 1 s intervals and the
    scrape targets, each job's the loopback addresses ``targets[job]``."""
    config = json.loads(json.dumps(config))
    config["global"].update(scrape_interval=SCRAPE_INTERVAL, evaluation_interval=SCRAPE_INTERVAL)
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    return config


def start_prometheus(
    root: Path,
    workdir: Path,
    binary: Path,
    targets: dict[str, list[str]],
    scrape_configs: list[dict[str, Any]] | None = None,
) -> tuple[Program, Prometheus]:
    """Start Prometheus as docker-compose.yml runs it, from the layout it mounts under ``root``:
    its compose command, the mounted prometheus.yml changed by :func:`with_test_settings` only (its
    scrape jobs replaced by ``scrape_configs`` first, for the default path), the mounted rules."""
    reproduce_mounts("prometheus", root)
    command = compose_command("prometheus", root)
    config_path = Path(command_flag(command, "--config.file"))
    config = load_yaml(config_path)
    if scrape_configs is not None:
        config["scrape_configs"] = scrape_configs
    config_path.write_text(yaml.safe_dump(with_test_settings(config, targets)))
    address = f"127.0.0.1:{free_port()}"
    program = _start(f"prometheus-{root.name}", [
        str(binary), *command, f"--web.listen-address={address}",
    ], workdir, _clean_env())  # fmt: skip
    api = Prometheus(f"http://{address}", config_path)
    _wait_ready(program, f"{api.url}/-/ready")
    # Ready is not scraping: service discovery hands the targets over up to 5 s later. Traffic
    # before a target's first scrape would be invisible to rate().
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    eventually(lambda: jobs == {item["metric"]["job"] for item in api.promql("up == 1")},
               f"Prometheus scraping {sorted(jobs)}")  # fmt: skip
    return program, api


def start_collector(root: Path, workdir: Path, binary: Path, env: dict[str, str]) -> Program:
    """Start the slim collector with the compose command on the config compose mounts."""
    reproduce_mounts("otel-collector", root)
    command = compose_command("otel-collector", root)
    return _start("otelcol", [str(binary), *command], workdir, _clean_env(**env))


@pytest.fixture(scope="session")
def stack(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    root = workdir / "collector-path"
    port = {name: free_port() for name in (
        "otlp_grpc", "otlp_http", "exporter", "collector_metrics", "health",
        "jaeger_otlp", "jaeger_http", "jaeger_grpc", "victorialogs")}  # fmt: skip
    loopback = {name: f"127.0.0.1:{number}" for name, number in port.items()}
    victorialogs_url = f"http://{loopback['victorialogs']}"
    programs: list[Program] = []
    try:
        victorialogs = _start("victoria-logs", [
            str(binaries["victoria-logs"]), f"-httpListenAddr={loopback['victorialogs']}",
            f"-storageDataPath={workdir / 'victoria-logs-data'}", "-loggerLevel=WARN",
        ], workdir, _clean_env())  # fmt: skip
        programs.append(victorialogs)
        jaeger = _start("jaeger", [str(binaries["jaeger"]), f"--config={JAEGER_CONFIG}"], workdir,
                        _clean_env(JAEGER_OTLP_GRPC_ENDPOINT=loopback["jaeger_otlp"],
                                   JAEGER_QUERY_HTTP_ENDPOINT=loopback["jaeger_http"],
                                   JAEGER_QUERY_GRPC_ENDPOINT=loopback["jaeger_grpc"]))  # fmt: skip
        programs.append(jaeger)
        collector = start_collector(
            root,
            workdir,
            binaries["otelcol-mlmon"],
            {
                "OTELCOL_OTLP_GRPC_ENDPOINT": loopback["otlp_grpc"],
                "OTELCOL_OTLP_HTTP_ENDPOINT": loopback["otlp_http"],
                "OTELCOL_PROMETHEUS_ENDPOINT": loopback["exporter"],
                "OTELCOL_HEALTH_CHECK_ENDPOINT": loopback["health"],
                "OTELCOL_METRICS_HOST": "127.0.0.1",
                "OTELCOL_METRICS_PORT": str(port["collector_metrics"]),
                "JAEGER_OTLP_ENDPOINT": loopback["jaeger_otlp"],
                # VictoriaLogs' OTLP endpoint; the exporter appends /v1/logs as it does for Loki.
                "LOGS_OTLP_ENDPOINT": f"{victorialogs_url}/insert/opentelemetry",
            },
        )
        programs.append(collector)
        _wait_ready(victorialogs, f"{victorialogs_url}/health")
        _wait_ready(jaeger, f"http://{loopback['jaeger_http']}/api/services")
        _wait_ready(collector, f"http://{loopback['health']}/")
        prometheus, api = start_prometheus(root, workdir, binaries["prometheus"], {
            "otel-collector": [loopback["exporter"]],
            "otel-collector-self": [loopback["collector_metrics"]],
        })  # fmt: skip
        programs.append(prometheus)
        yield Stack(
            otlp_http=f"http://{loopback['otlp_http']}",
            prometheus=api,
            jaeger_query=f"http://{loopback['jaeger_http']}",
            victorialogs=victorialogs_url,
            programs=programs,
        )
    finally:
        for program in reversed(programs):
            program.stop()


def _run_example(name: str, workdir: Path, env: dict[str, str]) -> tuple[Program, str]:
    """Start the FastAPI example by its documented command; returns it and its base URL."""
    port = free_port()
    example = _start(name, [
        sys.executable, str(EXAMPLE), "--port", str(port),
    ], workdir, _clean_env(EXAMPLE_FAULTS="1", PYTHONUNBUFFERED="1", **env))  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    _wait_ready(example, f"{base_url}/health")
    return example, base_url


def _run_example_workers(
    name: str, workdir: Path, metrics_port: int, env: dict[str, str]
) -> tuple[Program, str]:
    """Start the FastAPI example under uvicorn workers by its documented command, from the
    repository root, serving the embedded endpoint on ``metrics_port``."""
    port = free_port()
    uvicorn = Path(sys.executable).parent / "uvicorn"
    example = _start(name, [
        str(uvicorn), "--factory", "--workers", str(WORKERS), "--host", "127.0.0.1",
        "--port", str(port), "--app-dir", "examples", "fastapi_app:create_app",
    ], workdir, _clean_env(
        EXAMPLE_FAULTS="1", PYTHONUNBUFFERED="1", OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        **env,
    ), cwd=REPO)  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    _wait_ready(example, f"{base_url}/health")
    return example, base_url


def _drive(stable_url: str, canary_url: str) -> dict[str, Any]:
    from sklearn.datasets import load_iris
    from traffic import drive_rollout

    iris = load_iris()
    return drive_rollout(stable_url, canary_url, iris.data.tolist(),
                         [int(t) for t in iris.target])  # fmt: skip


def version_selector(result: dict[str, Any], version: str | None = None) -> str:
    """The PromQL label matchers of the traffic's service, model and served ``version``
    (default: the stable one)."""
    return (f'job="{result["service_name"]}", ml_model_name="{result["model_name"]}", '
            f'ml_model_version="{version or result["model_version"]}"')  # fmt: skip


def _wait_for_everything(prometheus: Prometheus, result: dict[str, Any]) -> None:
    """Until the final counter values and the drift are in Prometheus."""
    selector = version_selector(result)
    canary = version_selector(result, result["canary_version"])

    def final(expr: str, expected: float) -> bool:
        samples = prometheus.promql(expr)
        return bool(samples) and float(samples[0]["value"][1]) == expected

    predictions = f"sum(ml_model_predictions_total{{{selector}}})"
    errors = f"sum(ml_model_errors_total{{{selector}}})"
    labels = f'sum(ml_model_labels_total{{{selector}, ml_label_outcome="matched"}})'
    eventually(lambda: final(predictions, result["predictions"]),
               "every prediction in Prometheus")  # fmt: skip
    eventually(lambda: final(errors, sum(result["errors"].values())),
               "every error in Prometheus")  # fmt: skip
    eventually(lambda: final(labels, result["labels"]), "every label matched in Prometheus")
    eventually(lambda: prometheus.promql_has_data(f"ml_drift_detected{{{selector}}} == 1"),
               "the drift detected in Prometheus")  # fmt: skip
    canary_labels = f'sum(ml_model_labels_total{{{canary}, ml_label_outcome="matched"}})'
    eventually(lambda: final(canary_labels, result["canary"]["labels"]),
               "every label of the canary matched in Prometheus")  # fmt: skip
    for version, sent in result["outcomes"].items():
        outcomes = (f"sum(ml_model_outcomes_total{{{version_selector(result, version)}, "
                    'ml_outcome_status="matched"})')  # fmt: skip
        count = sum(map(len, sent.values()))
        eventually(lambda outcomes=outcomes, count=count: final(outcomes, count),
                   f"every outcome of {version} matched in Prometheus")  # fmt: skip


@pytest.fixture(scope="session")
def traffic(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the FastAPI example against the collector and drive the traffic at it; yield once
    everything it sent can be queried: the final counter values in Prometheus, the traces in
    Jaeger, the drift scores. The example keeps running (and exporting) until the session
    ends."""
    from traffic import CANARY_ENV, STABLE_ENV

    workdir = tmp_path_factory.mktemp("example")
    exporting = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http,
        "OTEL_METRIC_EXPORT_INTERVAL": EXPORT_INTERVAL_MS,
    }
    programs: list[Program] = []
    try:
        example, base_url = _run_example("fastapi-example", workdir, {**exporting, **STABLE_ENV})
        programs.append(example)
        canary, canary_url = _run_example("fastapi-canary", workdir, {**exporting, **CANARY_ENV})
        programs.append(canary)
        result = _drive(base_url, canary_url)
        _wait_for_everything(stack.prometheus, result)
        for key in ("ok_trace_id", "error_trace_id"):
            eventually(lambda key=key: stack.jaeger_trace(result[key]), f"{key} in Jaeger")
        yield result
    finally:
        for program in reversed(programs):
            program.stop()


@pytest.fixture(scope="session")
def embedded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MetricsPath]:
    """The default path: the example under several uvicorn workers serving one embedded
    /metrics endpoint (no OTLP endpoint set), scraped by a Prometheus run as compose runs it,
    with the rules compose mounts and the scrape job docs/stack.md shows for a service's own
    endpoint (job named after the service)."""
    from traffic import CANARY_ENV, SERVICE_NAME, STABLE_ENV

    binary = _required_prometheus()
    workdir = tmp_path_factory.mktemp("default-path")
    metrics_port, canary_metrics_port = free_port(), free_port()
    programs: list[Program] = []
    try:
        example, base_url = _run_example_workers(
            "fastapi-example-workers", workdir, metrics_port, STABLE_ENV
        )
        programs.append(example)
        canary, canary_url = _run_example_workers(
            "fastapi-canary-workers", workdir, canary_metrics_port, CANARY_ENV
        )
        programs.append(canary)
        prometheus, api = start_prometheus(
            workdir / "default-path",
            workdir,
            binary,
            {SERVICE_NAME: [f"127.0.0.1:{metrics_port}", f"127.0.0.1:{canary_metrics_port}"]},
            scrape_configs=[{"job_name": SERVICE_NAME}],
        )
        programs.append(prometheus)
        result = _drive(base_url, canary_url)
        _wait_for_everything(api, result)
        yield MetricsPath("default", api, result, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        for program in reversed(programs):
            program.stop()


@pytest.fixture(scope="session", params=["collector", "default"])
def path(request: pytest.FixtureRequest) -> MetricsPath:
    """Each path in turn, after its traffic."""
    if request.param == "collector":
        stack: Stack = request.getfixturevalue("stack")
        return MetricsPath("collector", stack.prometheus, request.getfixturevalue("traffic"))
    return request.getfixturevalue("embedded")  # type: ignore[no-any-return]
