"""How many exemplars reach Prometheus, by path and intervals (docs/stack.md, "Exemplars").

Not a test: a measurement behind a configuration choice. An instrumented process makes predict
calls inside sampled spans, at most one per metric export interval, each in the same bucket of
``ml.model.prediction.duration``: every call is an exemplar the SDK exports. The script counts
how many of their trace IDs Prometheus' exemplar storage returns:

- ``scrape``: SDK -> OTLP -> the bundled collector config (prometheus exporter, OpenMetrics)
  -> Prometheus scraping it, for several export and scrape intervals;
- ``otlp``: SDK -> OTLP -> the collector -> Prometheus' native OTLP receiver (Prometheus 2.47 or
  later with ``--web.enable-otlp-receiver``; give its binary with ``--otlp-prometheus``).

    .venv/bin/python tests/e2e/measure_exemplars.py [--calls 15] [--otlp-prometheus PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))

from e2e_stack import free_port
from stack_files import (
    cache_bin,
    command_flag,
    compose_command,
    load_yaml,
    reproduce_mounts,
)

SERVICE = "exemplar-probe"


def _get(url: str, params: dict[str, str] | None = None) -> Any:
    if params:
        url = f"{url}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


def emit(calls: int, spacing: float) -> None:
    """Child process: ``calls`` predict calls ``spacing`` seconds apart, each in a sampled
    span; prints the trace IDs as one JSON list."""
    from opentelemetry import trace

    import otel_mlmon

    telemetry = otel_mlmon.configure(service_name=SERVICE, logs=False)
    monitor = otel_mlmon.ModelMonitor("probe", version="1")
    tracer = trace.get_tracer("probe")
    traces = []
    for _ in range(calls):
        with tracer.start_as_current_span("request") as span, monitor.predict() as prediction:
            prediction.record(prediction=1)
        traces.append(f"{span.get_span_context().trace_id:032x}")
        time.sleep(spacing)
    telemetry.shutdown()
    print(json.dumps(traces), flush=True)


def measure(
    path: str, prometheus: str, export_s: float, scrape_s: float, calls: int, work: Path
) -> tuple[int, int]:
    """Sent and found exemplars for one configuration."""
    root = work / f"{path}-{export_s}-{scrape_s}"
    procs: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    ports = {name: free_port() for name in ("grpc", "http", "exporter", "self", "health", "prom")}
    try:
        prom_url = f"http://127.0.0.1:{ports['prom']}"
        reproduce_mounts("prometheus", root)
        command = compose_command("prometheus", root)
        config_path = Path(command_flag(command, "--config.file"))
        config = load_yaml(config_path)
        config["global"].update(scrape_interval=f"{scrape_s}s", evaluation_interval="15s")
        config["rule_files"] = []
        config["scrape_configs"] = [
            job for job in config["scrape_configs"] if job["job_name"] == "otel-collector"
        ]
        config["scrape_configs"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{ports['exporter']}"]}
        ]
        extra = []
        if path == "otlp":
            config["scrape_configs"] = []
            extra = ["--web.enable-otlp-receiver"]
        config_path.write_text(yaml.safe_dump(config))
        procs.append(subprocess.Popen(
            [prometheus, *command, f"--web.listen-address=127.0.0.1:{ports['prom']}", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))  # fmt: skip
        _wait(f"{prom_url}/-/ready", procs[-1])

        reproduce_mounts("otel-collector", root)
        collector_config = Path(command_flag(compose_command("otel-collector", root), "--config"))
        overlay = root / "overlay.yaml"
        if path == "otlp":
            overlay.write_text(yaml.safe_dump({
                "exporters": {"otlp_http/prometheus": {
                    "endpoint": f"{prom_url}/api/v1/otlp", "tls": {"insecure": True}}},
                "service": {"pipelines": {"metrics": {"exporters": ["otlp_http/prometheus"]}}},
            }))  # fmt: skip
        else:
            overlay.write_text("{}\n")
        procs.append(subprocess.Popen(
            [str(cache_bin() / "otelcol-mlmon"), f"--config={collector_config}",
             f"--config={overlay}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={
                **env,
                "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
                "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
                "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['exporter']}",
                "OTELCOL_HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{ports['health']}",
                "OTELCOL_METRICS_HOST": "127.0.0.1", "OTELCOL_METRICS_PORT": str(ports["self"]),
                "JAEGER_OTLP_ENDPOINT": "127.0.0.1:9", "LOGS_OTLP_ENDPOINT": "http://127.0.0.1:9",
            }))  # fmt: skip
        _wait(f"http://127.0.0.1:{ports['health']}/", procs[-1])
        if path == "scrape":  # until the first scrape (discovery hands targets over late)
            deadline = time.monotonic() + 30
            while not _get(f"{prom_url}/api/v1/query", {"query": "up == 1"})["data"]["result"]:
                if time.monotonic() > deadline:
                    raise TimeoutError("no scrape")
                time.sleep(0.3)

        started = time.time()
        child = subprocess.run(
            [sys.executable, __file__, "--emit", str(calls), "--spacing", str(1.5 * export_s)],
            capture_output=True, text=True, check=True, env={
                **env, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['http']}",
                "OTEL_METRIC_EXPORT_INTERVAL": str(int(export_s * 1000)),
            })  # fmt: skip
        sent = set(json.loads(child.stdout.strip().splitlines()[-1]))
        time.sleep(2 * max(export_s, scrape_s) + 2)
        name = "ml_model_prediction_duration_seconds_bucket"
        answer = _get(f"{prom_url}/api/v1/query_exemplars", {
            "query": f'{{__name__=~"{name}|{name.replace("_seconds", "")}"}}',
            "start": f"{started - 1:.3f}", "end": f"{time.time() + 1:.3f}",
        })  # fmt: skip
        found = {e["labels"].get("trace_id") for s in answer["data"] for e in s["exemplars"]}
        return len(sent), len(sent & found)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--otlp-prometheus", help="a Prometheus >= 2.47 for the OTLP receiver")
    parser.add_argument("--emit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--spacing", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        emit(args.emit, args.spacing)
        return
    debian = shutil.which("prometheus") or "prometheus"
    runs = [("scrape", debian, e, s) for e, s in ((1, 2), (1, 1), (2, 1), (4, 1))]
    if args.otlp_prometheus:
        runs += [("scrape", args.otlp_prometheus, 2, 1), ("otlp", args.otlp_prometheus, 1, 1)]
    print("| path | Prometheus | export interval | scrape interval | exemplars sent | found |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for path, prometheus, export_s, scrape_s in runs:
            version = subprocess.run([prometheus, "--version"], capture_output=True, text=True)
            release = (version.stdout or version.stderr).split()[2]
            sent, found = measure(path, prometheus, export_s, scrape_s, args.calls, Path(work))
            scrape = f"{scrape_s} s" if path == "scrape" else "-"
            print(f"| {path} | {release} | {export_s} s | {scrape} | {sent} | {found} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
