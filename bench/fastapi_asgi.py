"""What FastAPI telemetry and the otel-mlmon layer cost per request: raw ASGI, one process.

    .venv/bin/python -m bench.fastapi_asgi            # about a minute on 2 cores
    .venv/bin/python -m bench.fastapi_asgi --quick    # a few seconds, noisier

Every variant is called in the same event loop with the same hand-built ASGI scope (no
server, no sockets), variants interleaved round by round so that drift of the machine hits
all of them alike. The cost column is the process CPU time per request (all threads) of the
least disturbed round (the minimum over rounds: other load on the machine only ever adds):
what the telemetry costs, without the thread-pool wake-up latency that dominates wall times on
a busy machine. Wall-clock median and 90th percentile per request beside it.
Spans go through the real SDK (``SimpleSpanProcessor`` into an exporter that drops them),
metrics into the real SDK aggregation (an ``InMemoryMetricReader`` that is never collected).

Part 1 reproduces the issue's measurements on a trivial ``async`` endpoint: telemetry off,
FastAPI's native telemetry without and with operation spans, and the contrib
``opentelemetry-instrumentation-fastapi`` (which turns the native telemetry off).

Part 2 is the claim of the issue: the iris service's ``/predict`` (a sync endpoint, scikit-learn
in FastAPI's thread pool) with FastAPI's native telemetry as we recommend it
(``operation_spans=False``) plus the otel-mlmon layer (request ID, ML attributes on the server
span, the predict span, ML metrics) against the same endpoint with FastAPI's native telemetry
defaults and no ML layer at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_mlmon
from otel_mlmon.instrumentation import instrument_fastapi

ROOT = Path(__file__).resolve().parent.parent
ROW = [5.1, 3.5, 1.4, 0.2]


class CountingExporter(SpanExporter):
    """Drops spans after counting them: the export path without I/O."""

    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


@dataclass
class Variant:
    name: str
    app: Any
    exporter: CountingExporter | None
    method: str
    path: str
    body: bytes


def providers() -> tuple[TracerProvider, MeterProvider, CountingExporter]:
    exporter = CountingExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    return tracer_provider, meter_provider, exporter


def trivial_app(telemetry: dict[str, Any]) -> FastAPI:
    app = FastAPI(telemetry=telemetry)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"status": "ok"}

    return app


def part_one() -> list[Variant]:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    variants = [
        Variant(
            "telemetry off",
            trivial_app({"tracing": False, "metrics": False, "logs": False}),
            None,
            "GET",
            "/",
            b"",
        )
    ]
    for name, extra in (
        ("native, operation_spans=False", {"operation_spans": False}),
        ("native defaults", {}),
    ):
        tracer_provider, meter_provider, exporter = providers()
        app = trivial_app(
            {"tracer_provider": tracer_provider, "meter_provider": meter_provider, **extra}
        )
        variants.append(Variant(name, app, exporter, "GET", "/", b""))
    tracer_provider, meter_provider, exporter = providers()
    app = trivial_app(
        {"tracer_provider": tracer_provider, "meter_provider": meter_provider,
         "operation_spans": False}
    )  # fmt: skip
    instrument_fastapi(app)
    variants.append(
        Variant("native, operation_spans=False + otel-mlmon layer", app, exporter, "GET", "/", b"")
    )
    tracer_provider, meter_provider, exporter = providers()
    app = trivial_app({})
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    variants.append(Variant("contrib instrumentation", app, exporter, "GET", "/", b""))
    return variants


def load_example() -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import fastapi_app
    finally:
        sys.path.pop(0)
    return fastapi_app


def part_two() -> list[Variant]:
    # The comparison is about the telemetry layers: the example's sampled prediction_made log
    # line is a cost of its own (docs/logging.md), so it is sampled out here.
    import os

    from otel_mlmon.logs import configure_logging

    configure_logging(export=False, stream=open(os.devnull, "w"), sample_predictions=0.0)  # noqa: SIM115
    example = load_example()
    model = example.iris.IrisModel()
    body = json.dumps({"features": ROW}).encode()

    # The same endpoint as the example, minus the monitor: no ML layer at all.
    tracer_provider, meter_provider, exporter = providers()
    baseline = FastAPI(
        telemetry={"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    )

    def predict(request: Any) -> dict[str, Any]:
        batch = bool(request.features) and isinstance(request.features[0], list)
        rows = np.asarray(request.features if batch else [request.features], dtype=np.float64)
        classes, confidences = model.predict(rows)
        return {"prediction": int(classes[0]), "confidence": round(float(confidences[0]), 6)}

    # The body model lives in the example module: give FastAPI the class itself.
    predict.__annotations__ = {"request": example.PredictRequest, "return": dict[str, Any]}
    baseline.post("/predict")(predict)

    variants = [
        Variant("iris /predict: native defaults, no ML layer", baseline, exporter, "POST",
                "/predict", body),
    ]  # fmt: skip
    tracer_provider, meter_provider, exporter = providers()
    recommended = example.create_app(
        model=model,
        telemetry={"tracer_provider": tracer_provider, "meter_provider": meter_provider},
    )
    variants.append(
        Variant("iris /predict: recommended + otel-mlmon layer", recommended, exporter, "POST",
                "/predict", body)
    )  # fmt: skip
    return variants


def scope_for(variant: Variant) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"user-agent", b"bench")]
    if variant.body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(variant.body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": variant.method,
        "scheme": "http",
        "path": variant.path,
        "raw_path": variant.path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def time_variant(variant: Variant, calls: int) -> tuple[list[float], float]:
    """Wall time of each call, and the process CPU time per call (all threads: the thread
    pool's work counts, waiting for a thread to wake up does not)."""
    scope = scope_for(variant)
    durations = []
    clock = time.perf_counter
    cpu_started = time.process_time()
    for _ in range(calls):
        started = clock()
        await call(variant.app, scope, variant.body)
        durations.append(clock() - started)
    return durations, (time.process_time() - cpu_started) / calls


async def measure(variants: list[Variant], calls: int, rounds: int) -> list[Result]:
    for variant in variants:  # warm up; check every variant answers 200
        status = await call(variant.app, scope_for(variant), variant.body)
        if status != 200:
            raise RuntimeError(f"{variant.name}: status {status}")
        await time_variant(variant, max(10, calls // 10))
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    cpu: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(rounds):
        for variant in variants:
            durations, cpu_per_call = await time_variant(variant, calls)
            samples[variant.name].extend(durations)
            cpu[variant.name].append(cpu_per_call)
    results = []
    for variant in variants:
        before = variant.exporter.count if variant.exporter else 0
        await call(variant.app, scope_for(variant), variant.body)
        spans = (variant.exporter.count - before) if variant.exporter else 0
        durations = samples[variant.name]
        p90 = statistics.quantiles(durations, n=10)[-1]
        results.append(
            (variant, statistics.median(durations), p90, min(cpu[variant.name]), float(spans))
        )  # fmt: skip
    return results


Result = tuple[Variant, float, float, float, float]


def table(title: str, results: list[Result]) -> str:
    base = results[0][3]
    lines = [
        f"### {title}",
        "",
        "| variant | spans / request | CPU us / request | vs first row | wall median us "
        "| wall p90 us |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant, median, p90, cpu, spans in results:
        lines.append(
            f"| {variant.name} | {spans:.0f} | {cpu * 1e6:.0f} | {cpu / base:.2f}x "
            f"| {median * 1e6:.0f} | {p90 * 1e6:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    calls, rounds = (200, 3) if args.quick else (2000, 7)
    rounds = args.rounds or rounds

    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    # One BLAS thread: process CPU time is then the request's work, not spinning threads.
    with threadpool_limits(limits=1):
        first = asyncio.run(measure(part_one(), calls, rounds))
        second = asyncio.run(measure(part_two(), calls // 2, rounds))
    print(
        f"Python {sys.version.split()[0]}, otel-mlmon {otel_mlmon.__version__}, {calls} calls "
        f"x {rounds} rounds per variant, interleaved; per-request times\n"
    )
    print(table("Trivial async endpoint", first))
    print()
    print(table("Example service /predict (sync, scikit-learn)", second))
    baseline, ours = second[0][3], second[1][3]
    verdict = "holds" if ours <= baseline else "does NOT hold"
    print(
        f"\nClaim (recommended + otel-mlmon layer costs no more CPU than native defaults "
        f"without ML): {verdict} ({ours * 1e6:.0f} us vs {baseline * 1e6:.0f} us). "
        f"Ran {time.perf_counter() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
