"""What a prediction costs while the OTLP backend is healthy, refusing, black-holing, answering
503 or answering slowly, side by side in one run.

    python -m bench.backend_faults [--predictions 20000] [--rounds 3] [--export-timeout 10]

Each scenario configures otel-mlmon against a real OTLP/HTTP endpoint on loopback in that state
(the receiver of the test suite), then times ``predict() + record() + one log record`` per call
on the caller's thread: the latency a request pays for its telemetry. ``none`` is the same code
with no SDK behind the API (the floor). Rounds interleave the scenarios so drift of the machine
hits them alike; the table shows the median over rounds of each percentile, the RSS growth over
the run (queues are bounded) and how long shutdown took (bounded by shutdown_timeout_millis).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _otlp import BlackHole, OtlpHttpServer, refusing_endpoint

import otel_mlmon
from otel_mlmon import ModelMonitor, sdk

SCENARIOS = ("none", "healthy", "refusing", "black_hole", "503", "slow")
SLOW_DELAY_S = 0.5


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


def run_scenario(kind: str, predictions: int, shutdown_timeout_ms: int) -> dict[str, float]:
    """Latency percentiles (µs) of one prediction, RSS growth (MiB) and shutdown time (s)."""
    with backend(kind) as endpoint:
        telemetry = None
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

        process = psutil.Process()
        gc.collect()
        rss_before = process.memory_info().rss
        features = [5.1, 3.5, 1.4, 0.2]
        timings = []
        clock = time.perf_counter_ns
        for i in range(predictions):
            start = clock()
            with monitor.predict(features=features) as p:
                p.record(i % 3, 0.9)
                emit("prediction_made")
            timings.append(clock() - start)
        rss_growth = (process.memory_info().rss - rss_before) / 2**20
        shutdown_s = 0.0
        if telemetry is not None:
            start = clock()
            telemetry.shutdown()
            shutdown_s = (clock() - start) / 1e9
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
    args = parser.parse_args(argv)
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = str(args.export_timeout)

    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in SCENARIOS}
    for round_ in range(args.rounds):
        for kind in SCENARIOS:
            results[kind].append(run_scenario(kind, args.predictions, args.shutdown_timeout_ms))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)

    columns = ("mean", "p50", "p99", "p99.9", "max", "rss_mib", "shutdown_s")
    print(
        f"\n{args.predictions} predictions x {args.rounds} rounds; latency of predict+record+log "
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
