"""What a prediction costs while the OTLP backend is healthy, refusing, black-holing, answering
503 or answering slowly, side by side in one run.

    python -m bench.backend_faults [--predictions 20000] [--rounds 3] [--export-timeout 10]
    python -m bench.backend_faults --requests [--predictions 3000]   # HTTP request level

Each scenario configures otel-mlmon against a real OTLP/HTTP endpoint on loopback in that state
(the receiver of the test suite), then times ``predict() + record() + one log record`` per call
on the caller's thread: the latency a request pays for its telemetry. ``none`` is the same code
with no SDK behind the API (the floor). Rounds interleave the scenarios so drift of the machine
hits them alike; the table shows the median over rounds of each percentile, the RSS growth over
the run (queues are bounded) and how long shutdown took (bounded by shutdown_timeout_millis).

With ``--requests`` each call is instead one ``POST /predict`` into the FastAPI example service
(``examples/fastapi_app.py``: native server span, request ID, predict span, drift), straight
through ASGI in process: what an HTTP request pays, framework included, without socket noise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _otlp import BlackHole, OtlpHttpServer, refusing_endpoint

import otel_mlmon
from otel_mlmon import ModelMonitor, sdk

SCENARIOS = ("none", "healthy", "refusing", "black_hole", "503", "slow")
SLOW_DELAY_S = 0.5
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
ROW = [5.1, 3.5, 1.4, 0.2]


def _example() -> ModuleType:
    """``examples/fastapi_app.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_fastapi_app", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def _post_predict(app: Any) -> int:
    """One ``POST /predict`` into the ASGI app; its status."""
    body = json.dumps({"features": ROW}).encode()
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict", "raw_path": b"/predict", "root_path": "",
        "query_string": b"", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    await app(scope, receive, send)
    return status


@contextmanager
def backend(kind: str) -> Iterator[str | None]:
    """An endpoint in state ``kind`` (``None`` for no telemetry at all)."""
    if kind == "none":
        yield None
    elif kind == "refusing":
        yield refusing_endpoint()
    elif kind == "black_hole":
        hole = BlackHole()
        try:
            yield hole.endpoint
        finally:
            hole.close()
    else:
        server = OtlpHttpServer()
        server.receiver.status = 503 if kind == "503" else 200
        server.receiver.delay = SLOW_DELAY_S if kind == "slow" else 0.0
        try:
            yield server.endpoint
        finally:
            server.close()


def run_scenario(
    kind: str, predictions: int, shutdown_timeout_ms: int, example: ModuleType | None = None
) -> dict[str, float]:
    """Latency percentiles (µs) of one prediction (or, given the example module, one HTTP
    request), RSS growth (MiB) and shutdown time (s)."""
    with backend(kind) as endpoint:
        telemetry = None
        if example is not None:
            if endpoint is not None:
                telemetry = otel_mlmon.configure(
                    service_name="bench",
                    otlp_endpoint=endpoint,
                    set_global=False,
                    logs=False,
                    prometheus=False,
                    gpu_metrics=False,
                    process_metrics=False,
                    handle_sigterm=False,
                    metric_export_interval_millis=1_000,
                    shutdown_timeout_millis=shutdown_timeout_ms,
                )
            providers = (
                {}
                if telemetry is None
                else {
                    "tracer_provider": telemetry.tracer_provider,
                    "meter_provider": telemetry.meter_provider,
                    "logger_provider": telemetry.logger_provider,
                }
            )
            app = example.create_app(model=_iris(example), telemetry=providers)
            loop = asyncio.new_event_loop()
            loop.run_until_complete(_post_predict(app))  # builds the middleware stack
            return _timed(
                lambda i: _expect_200(loop.run_until_complete(_post_predict(app))),
                predictions,
                telemetry,
                after=loop.close,
            )
        if endpoint is None:
            monitor = ModelMonitor("bench")  # API only: no-op providers
            emit: Callable[[str], None] = lambda body: None  # noqa: E731
        else:
            telemetry = otel_mlmon.configure(
                service_name="bench",
                otlp_endpoint=endpoint,
                set_global=False,
                logs=False,
                prometheus=False,
                gpu_metrics=False,
                process_metrics=False,
                handle_sigterm=False,
                metric_export_interval_millis=1_000,
                shutdown_timeout_millis=shutdown_timeout_ms,
            )
            monitor = ModelMonitor(
                "bench",
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            )
            logger = telemetry.logger_provider.get_logger("bench")

            def emit(body: str) -> None:
                logger.emit(body=body)

        def one(i: int) -> None:
            with monitor.predict(features=ROW) as p:
                p.record(i % 3, 0.9)
                emit("prediction_made")

        return _timed(one, predictions, telemetry)


_models: dict[int, Any] = {}


def _iris(example: ModuleType) -> Any:
    """The example's model, trained once per run."""
    if id(example) not in _models:
        _models[id(example)] = example.iris.IrisModel()
    return _models[id(example)]


def _expect_200(status: int) -> None:
    if status != 200:
        raise RuntimeError(f"the example answered {status}")


def _timed(
    call: Callable[[int], None],
    count: int,
    telemetry: otel_mlmon.Telemetry | None,
    after: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Time ``count`` calls, then the shutdown; the row of the table."""
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    timings = []
    clock = time.perf_counter_ns
    for i in range(count):
        start = clock()
        call(i)
        timings.append(clock() - start)
    rss_growth = (process.memory_info().rss - rss_before) / 2**20
    shutdown_s = 0.0
    if telemetry is not None:
        start = clock()
        telemetry.shutdown()
        shutdown_s = (clock() - start) / 1e9
    if after is not None:
        after()
    timings.sort()

    def pct(q: float) -> float:
        return timings[min(len(timings) - 1, int(q * len(timings)))] / 1000

    return {
        "mean": statistics.fmean(timings) / 1000,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "p99.9": pct(0.999),
        "max": timings[-1] / 1000,
        "rss_mib": rss_growth,
        "shutdown_s": shutdown_s,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--export-timeout", type=float, default=10.0, help="OTEL_EXPORTER_OTLP_TIMEOUT, seconds"
    )
    parser.add_argument("--shutdown-timeout-ms", type=int, default=sdk.SHUTDOWN_TIMEOUT_MILLIS)
    parser.add_argument(
        "--requests",
        action="store_true",
        help="time HTTP requests into the FastAPI example instead of bare predictions",
    )
    args = parser.parse_args(argv)
    example = _example() if args.requests else None
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = str(args.export_timeout)

    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in SCENARIOS}
    for round_ in range(args.rounds):
        for kind in SCENARIOS:
            results[kind].append(
                run_scenario(kind, args.predictions, args.shutdown_timeout_ms, example)
            )
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    columns = ("mean", "p50", "p99", "p99.9", "max", "rss_mib", "shutdown_s")
    print(
        f"\n{args.predictions} {'requests' if args.requests else 'predictions'} x {args.rounds} "
        f"rounds; latency of "
        f"{'POST /predict into the FastAPI example' if args.requests else 'predict+record+log'} "
        f"per call in µs (median over rounds); export timeout {args.export_timeout:g} s; "
        f"slow = {SLOW_DELAY_S:g} s per answer; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs\n"
    )
    header = f"| {'backend':<10} | " + " | ".join(f"{c:>10}" for c in columns)
    header += f" | {'p50 vs healthy':>14} |"
    print(header)
    print("|" + "|".join("-" * (len(part) + 0) for part in header.split("|")[1:-1]) + "|")
    healthy_p50 = statistics.median(r["p50"] for r in results["healthy"])
    for kind in SCENARIOS:
        row = {c: statistics.median(r[c] for r in results[kind]) for c in columns}
        cells = " | ".join(f"{row[c]:>10.2f}" for c in columns)
        ratio = f"{row['p50'] / healthy_p50:>13.2f}x"
        print(f"| {kind:<10} | {cells} | {ratio} |")


if __name__ == "__main__":
    main()
