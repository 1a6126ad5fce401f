"""Real servers for the multi-process tests: a service started by its documented command, a
real Prometheus (Debian's) scraping it, and a scrape parsed by prometheus_client."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _served import clean_environment
from _wait import eventually, free_port, stop_process, wait_healthy
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
#: Bound on every wait below (a worker trains its model at start-up: slow on 2 busy cores).
TIMEOUT_S = 180.0
PREDICT_BODY = {"features": [5.1, 3.5, 1.4, 0.2]}


def scrape(port: int, accept: str | None = None) -> tuple[str, str]:
    """``(content type, body)`` of one scrape of the metrics port."""
    request = urllib.request.Request(f"http://localhost:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(port: int) -> list[Sample]:
    """Every sample of one scrape (text format)."""
    _, text = scrape(port)
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(found: Sequence[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in found if s.name == name and labels.items() <= s.labels.items())


def worker_pids(found: Sequence[Sample]) -> set[int]:
    """The workers a scrape reports (``target_info`` has one series per live worker)."""
    return {int(s.labels["pid"]) for s in found if s.name == "target_info"}


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment a user would have: no OTEL_* variable but the ones given. TMPDIR
    keeps the workers' shared directory inside the test's own temporary directory."""
    return clean_environment(TMPDIR=str(tmp_path), OTEL_MLMON_GPU_METRICS="false", **extra)


class Service:
    """A server started by its documented command line, from the repository root."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT, text=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text()

    def wait_healthy(self) -> None:
        try:
            wait_healthy(self.url(""), self.process, TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-3000:]}") from None

    def predict(self, n: int) -> None:
        """``n`` predictions, each on a new connection so they spread over the workers."""
        import httpx

        for _ in range(n):
            with httpx.Client(timeout=60, headers={"Connection": "close"}) as client:
                response = client.post(self.url("/predict"), json=PREDICT_BODY)
                assert 200 == response.status_code, response.text

    def stop(self) -> None:
        stop_process(self.process)
        self._out.close()


@contextmanager
def service(command: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[Service]:
    started = Service(command, env, log, port)
    try:
        yield started
    finally:
        started.stop()


def gunicorn_flask(workers: int, port: int, *extra: str) -> list[str]:
    """The Flask example's documented command (examples/flask_app.py)."""
    return [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
            *extra, "--chdir", "examples", "flask_app:create_app()"]  # fmt: skip


def uvicorn_fastapi(workers: int, port: int) -> list[str]:
    """The FastAPI example's documented multi-worker command (examples/fastapi_app.py)."""
    return [sys.executable, "-m", "uvicorn", "--factory", "--workers", str(workers),
            "--port", str(port), "--app-dir", "examples", "fastapi_app:create_app"]  # fmt: skip


class Prometheus:
    """Debian's Prometheus scraping one target every half second, exemplar storage on."""

    def __init__(self, target_port: int, workdir: Path) -> None:
        if not Path(PROMETHEUS).exists():
            pytest.skip("no prometheus binary (apt-get install prometheus)")
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "500ms", "scrape_timeout": "500ms"},
                    "scrape_configs": [
                        {
                            "job_name": "service",
                            "static_configs": [{"targets": [f"localhost:{target_port}"]}],
                        }
                    ],
                }
            )
        )
        self._log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--enable-feature=exemplar-storage"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        eventually(lambda: self._get("/-/ready", raw=True), "Prometheus to be ready")

    def _get(self, path: str, raw: bool = False, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
        return body if raw else json.loads(body)["data"]

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, ``None`` when it has none."""
        result = self._get("/api/v1/query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, expected: float) -> None:
        eventually(lambda: self.value(expr) == expected, f"{expr} == {expected} in Prometheus")

    def exemplars(self, expr: str) -> list[dict[str, Any]]:
        data = self._get(
            "/api/v1/query_exemplars", query=expr, start="0", end=f"{time.time() + 60}"
        )
        return [e for series in data for e in series["exemplars"]]

    def stop(self) -> None:
        stop_process(self.process, timeout=20)
        self._log.close()


@contextmanager
def prometheus(target_port: int, workdir: Path) -> Iterator[Prometheus]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = Prometheus(target_port, workdir)
    try:
        yield server
    finally:
        server.stop()
