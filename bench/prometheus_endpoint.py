"""What the embedded Prometheus endpoint costs a prediction: as one of several workers sharing
the port, and with exemplars on.

Rows (issues 13 and 15), each a ratio of variants interleaved round by round in one process:

- multi-process: three worker processes (spawned, as ``uvicorn --workers`` does) serve one
  port, scraped every :data:`SCRAPE_INTERVAL_S` (far more often than Prometheus would, so the
  snapshot requests are in the rounds); worker 0 times predictions into a monitor whose
  MeterProvider is a member of that group against predictions into a second monitor of the
  same process whose MeterProvider serves a port of its own, alone, scraped as often;
- exemplars: predictions (with their span) into a MeterProvider with the SDK's default
  ``trace_based`` exemplar filter against one with ``always_off``.

Also reported: how long one scrape of the shared port takes (three workers) against one of a
lone process's port.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from bench import Row, best, interleaved, median_ratio, quick
from bench._otel import NullSpanExporter
from otel_mlmon import ModelMonitor, default_views
from otel_mlmon.sdk.prometheus import PrometheusEndpoint, ScrapeReader

WORKERS = 3
SCRAPE_INTERVAL_S = 0.2
_US = 1e-3
_PAIRS = [(i % 3, 0.5 + (i % 50) / 100) for i in range(1024)]


def _provider(**kwargs: Any) -> tuple[MeterProvider, ScrapeReader]:
    reader = ScrapeReader()
    provider = MeterProvider(
        metric_readers=[reader], views=default_views(), shutdown_on_exit=False, **kwargs
    )
    return provider, reader


def _tracer() -> TracerProvider:
    tracer = TracerProvider(shutdown_on_exit=False)
    tracer.add_span_processor(BatchSpanProcessor(NullSpanExporter()))
    return tracer


def _loop(monitor: ModelMonitor) -> Callable[[int], None]:
    def run(n: int) -> None:
        predict = monitor.predict
        for i in range(n):
            value, confidence = _PAIRS[i & 1023]
            with predict() as p:
                p.record(value, confidence)

    return run


def _scrape(port: int) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        response.read()
    return time.perf_counter() - start


def _worker(index: int, port: int, results: Any, stop: Any) -> None:
    """One worker: a member of the shared port; worker 0 also times the two variants."""
    tracer = _tracer()
    shared_provider, shared_reader = _provider()
    shared = PrometheusEndpoint(
        shared_reader, "127.0.0.1", port, service_name="bench", meter_provider=shared_provider
    )
    monitor = ModelMonitor("iris", tracer_provider=tracer, meter_provider=shared_provider)
    if index != 0:
        results.put(("ready", index))
        run = _loop(monitor)
        while not stop.is_set():
            run(64)
            time.sleep(0.001)  # a worker between requests
        shared.stop()
        return
    alone_provider, alone_reader = _provider()
    alone = PrometheusEndpoint(
        alone_reader, "127.0.0.1", 0, service_name="bench-alone", meter_provider=alone_provider
    )
    alone_monitor = ModelMonitor("iris", tracer_provider=tracer, meter_provider=alone_provider)
    results.put(("alone", alone.port))
    results.put(("ready", index))
    loops = {"shared": _loop(monitor), "alone": _loop(alone_monitor)}
    n = 256 if quick() else 1024
    rounds = 3 if quick() else 31
    interleaved(loops, n, 1)
    times = interleaved(loops, n, rounds)
    results.put(("times", times))
    stop.wait(300)
    alone.stop()
    shared.stop()


def multiprocess_rows() -> list[Row]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop = context.Event()
    port = _free_port()
    workers = [
        context.Process(target=_worker, args=(i, port, results, stop), daemon=True)
        for i in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    alone_port, ready = 0, 0
    while ready < WORKERS:
        kind, value = results.get(timeout=120)
        if kind == "alone":
            alone_port = value
        elif kind == "ready":
            ready += 1
    scrapes: dict[str, list[float]] = {"shared": [], "alone": []}
    scraping = threading.Event()

    def scrape_both() -> None:
        while not scraping.is_set():
            scrapes["shared"].append(_scrape(port))
            scrapes["alone"].append(_scrape(alone_port))
            scraping.wait(SCRAPE_INTERVAL_S)

    scraper = threading.Thread(target=scrape_both, daemon=True)
    scraper.start()
    kind, times = results.get(timeout=600)
    scraping.set()
    scraper.join()
    stop.set()
    for worker in workers:
        worker.join(timeout=30)
    ratio = median_ratio(times["shared"], times["alone"])
    scrape_ratio = statistics.median(scrapes["shared"]) / statistics.median(scrapes["alone"])
    return [
        Row(
            "Prometheus endpoint",
            "prediction + span, lone process on its port",
            best(times["alone"]) * _US,
            "us/prediction",
            1.0,
            note=f"scraped every {SCRAPE_INTERVAL_S} s",
        ),
        Row(
            "Prometheus endpoint",
            f"prediction + span, one of {WORKERS} workers sharing the port",
            best(times["shared"]) * _US,
            "us/prediction",
            ratio,
            "<= 1.10x",
            ratio <= 1.10,
            f"same process, interleaved; {len(scrapes['shared'])} scrapes during the rounds",
        ),
        Row(
            "Prometheus endpoint",
            f"one scrape, {WORKERS} workers",
            statistics.median(scrapes["shared"]) * 1e3,
            "ms",
            scrape_ratio,
            note="median; ratio against one scrape of a lone process",
        ),
    ]


def exemplar_rows() -> list[Row]:
    tracer = _tracer()
    on_provider, _ = _provider()  # the SDK's default filter: trace_based
    off_provider, _ = _provider(exemplar_filter=AlwaysOffExemplarFilter())
    loops = {
        "on": _loop(ModelMonitor("iris", tracer_provider=tracer, meter_provider=on_provider)),
        "off": _loop(ModelMonitor("iris", tracer_provider=tracer, meter_provider=off_provider)),
    }
    n = 256 if quick() else 1024
    rounds = 3 if quick() else 61  # the difference is a few microseconds: more rounds, less noise
    interleaved(loops, n, 1)
    times = interleaved(loops, n, rounds)
    ratio = median_ratio(times["on"], times["off"])
    return [
        Row(
            "Exemplars",
            "prediction + span, exemplar filter always_off",
            best(times["off"]) * _US,
            "us/prediction",
            1.0,
        ),
        Row(
            "Exemplars",
            "prediction + span, exemplars on (trace_based, sampled)",
            best(times["on"]) * _US,
            "us/prediction",
            ratio,
            "<= 1.10x",
            ratio <= 1.10,
            "the SDK's filter on every record; reservoirs on latency and errors only",
        ),
    ]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> list[Row]:
    return exemplar_rows() + multiprocess_rows()


if __name__ == "__main__":
    from bench.__main__ import table

    print(table([row.as_dict() for row in main()]))
