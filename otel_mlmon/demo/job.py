"""``otel-mlmon demo``: the iris service under synthetic traffic, with a live summary.

Starts ``examples/fastapi_app.py`` in this process on a loopback port, on the embedded default
(:func:`otel_mlmon.configure`: metrics on the Prometheus endpoint) or, with ``--otlp-endpoint``,
exporting every signal to that collector. It drives traffic at the service over real HTTP:
single and batch predictions, some malformed requests (422), a few model errors (NaN features:
500 with ``error.type=ValueError``), delayed labels for part of the predictions and, part-way
through, a drift (shifted petal and sepal measurements) that also lowers the accuracy.

The terminal shows only the summary: the service's log lines (JSON, from ``configure()``'s
logging bridge) go to ``--log-file`` (default ``otel-mlmon-demo.log`` in the temporary
directory), which the summary names, and the traffic client's own HTTP chatter (httpx's INFO
lines) is not logged at all. The summary refreshes in place and is read back from the
service's own Prometheus endpoint,
the real SDK metrics a Prometheus server would scrape: requests, p50/p95 latency, error rate,
accuracy, the drift scores with their state (or how full the drift window is before the
first scores), and the last trace ID (each request carries a W3C
``traceparent`` the demo made, so it knows the trace the server span joined). Ctrl-C, or the end
of ``--duration``, stops the traffic, flushes every signal and exits 0.

    otel-mlmon demo [--duration 120] [--rate 20] [--otlp-endpoint URL] [--no-drift]
                    [--log-file PATH]

Needs the ``examples`` extra (scikit-learn, uvicorn) and a source checkout for
``examples/fastapi_app.py``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TextIO

_logger: Final = logging.getLogger("otel_mlmon.demo")

EXAMPLE: Final = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"
DEFAULT_DURATION: Final = 120.0
DEFAULT_RATE: Final = 20.0
#: Fraction of the run after which the drift starts.
DRIFT_AT: Final = 0.4
#: Traffic mix: fractions of the requests sent.
BATCH_SHARE: Final = 0.05
BAD_REQUEST_SHARE: Final = 0.04
MODEL_ERROR_SHARE: Final = 0.01
#: Fraction of successful predictions whose label is fed back.
LABEL_SHARE: Final = 0.6
WORKERS: Final = 4

_HTTP_DURATION: Final = "http_server_request_duration_seconds"
_MODEL_DURATION: Final = "ml_model_prediction_duration_seconds"
_ACCURACY: Final = "ml_model_accuracy"
_DRIFT_SCORE: Final = "ml_drift_score"
_DRIFT_DETECTED: Final = "ml_drift_detected"
_DRIFT_THRESHOLD: Final = "ml_drift_threshold"
_DRIFT_WINDOW: Final = "ml_drift_window_samples"
#: Where the service's log lines go unless --log-file says otherwise.
DEFAULT_LOG_FILE: Final = Path(tempfile.gettempdir()) / "otel-mlmon-demo.log"
#: Loggers of the demo's own HTTP client: their per-request INFO lines are not the service's.
QUIET_LOGGERS: Final = ("httpx", "httpcore")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (the ``otel-mlmon demo`` subcommand)."""
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        help=f"seconds to run; 0 runs until Ctrl-C (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"requests per second sent to the service (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=None,
        help="export traces, metrics and logs over OTLP to this collector, e.g. "
        "http://localhost:4318 (default: the embedded Prometheus endpoint)",
    )
    parser.add_argument("--no-drift", action="store_true", help="do not inject a drift")
    parser.add_argument(
        "--port", type=int, default=0, help="port of the service on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        help="port of the Prometheus endpoint (default 9464 or OTEL_EXPORTER_PROMETHEUS_PORT)",
    )
    parser.add_argument(
        "--refresh", type=float, default=1.0, help="seconds between summary refreshes"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the traffic generator")
    parser.add_argument(
        "--log-file",
        type=Path,
        default=DEFAULT_LOG_FILE,
        help=f"file the service's JSON log lines are appended to (default {DEFAULT_LOG_FILE})",
    )


# --- reading the summary from the Prometheus endpoint ---------------------------------------


Sample = tuple[str, Mapping[str, str], float]


def parse_samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition: ``(name, labels, value)``."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}``, interpolated
    linearly inside the bucket as PromQL's ``histogram_quantile`` does; ``None`` when empty."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


@dataclass
class DriftRow:
    """One feature's drift by one method, as the gauges report it."""

    feature: str
    method: str
    score: float
    threshold: float | None
    drifting: bool


@dataclass
class Summary:
    """What the live view shows, computed from one scrape."""

    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    http_p50: float | None = None
    http_p95: float | None = None
    model_p50: float | None = None
    model_p95: float | None = None
    predictions: int = 0
    model_errors: int = 0
    labels: int = 0
    accuracy: float | None = None
    drift: list[DriftRow] = field(default_factory=list)
    drift_available: bool = False
    #: Rows in the live drift window (``ml.drift.window.samples``); None before the first.
    drift_window: int | None = None

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a 5xx."""
        return self.server_errors / self.requests if self.requests else 0.0


def summarize(samples: Iterable[Sample]) -> Summary:
    """Fold the samples of one scrape into a :class:`Summary`."""
    summary = Summary()
    http_buckets: dict[float, float] = {}
    model_buckets: dict[float, float] = {}
    thresholds: dict[str, float] = {}
    scores: dict[tuple[str, str], float] = {}
    detected: dict[tuple[str, str], bool] = {}
    for name, labels, value in samples:
        if name == f"{_HTTP_DURATION}_count":
            summary.requests += int(value)
            status = labels.get("http_response_status_code", "")
            if status.startswith("4"):
                summary.client_errors += int(value)
            elif status.startswith("5"):
                summary.server_errors += int(value)
        elif name == f"{_HTTP_DURATION}_bucket" and labels.get("http_route") == "/predict":
            bound = float(labels["le"])
            http_buckets[bound] = http_buckets.get(bound, 0.0) + value
        elif name == f"{_MODEL_DURATION}_bucket" and not labels.get("error_type"):
            bound = float(labels["le"])
            model_buckets[bound] = model_buckets.get(bound, 0.0) + value
        elif name == "ml_model_predictions_total":
            summary.predictions += int(value)
        elif name == "ml_model_errors_total":
            summary.model_errors += int(value)
        elif name == "ml_model_labels_total" and labels.get("ml_label_outcome") == "matched":
            summary.labels += int(value)
        elif name == _ACCURACY:
            summary.accuracy = value
        elif name.startswith(_DRIFT_SCORE):
            scores[(labels.get("ml_feature_name", "?"), labels.get("ml_drift_method", "?"))] = value
        elif name.startswith(_DRIFT_DETECTED):
            key = (labels.get("ml_feature_name", "?"), labels.get("ml_drift_method", "?"))
            detected[key] = value >= 1
        elif name.startswith(_DRIFT_THRESHOLD):
            thresholds[labels.get("ml_drift_method", "?")] = value
        elif name.startswith(_DRIFT_WINDOW):
            summary.drift_window = int(value)
    summary.http_p50 = histogram_quantile(0.5, http_buckets)
    summary.http_p95 = histogram_quantile(0.95, http_buckets)
    summary.model_p50 = histogram_quantile(0.5, model_buckets)
    summary.model_p95 = histogram_quantile(0.95, model_buckets)
    summary.drift_available = bool(scores)
    rows = [
        DriftRow(
            feature, method, score, thresholds.get(method), detected.get((feature, method), False)
        )
        for (feature, method), score in scores.items()
    ]
    # Drifting first, then by how far past (or close to) its threshold each score is.
    rows.sort(key=lambda r: (not r.drifting, -_severity(r)))
    summary.drift = rows
    return summary


def _severity(row: DriftRow) -> float:
    """How far past its threshold a drifting score is, or how close a quiet one comes, as a
    ratio >= 1 or <= 1; p-values (drift below the threshold) and distances (above) alike."""
    if row.threshold is None or row.threshold <= 0 or row.score <= 0:
        return row.score
    ratio = row.score / row.threshold
    return max(ratio, 1 / ratio) if row.drifting else min(ratio, 1 / ratio)


# --- traffic ---------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Counters of what the driver sent, and the last trace it started."""

    sent: int = 0
    failed: int = 0
    drifting: bool = False
    last_trace_id: str | None = None
    last_request_id: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Driver:
    """Worker threads sending the traffic mix at ``rate`` requests per second in total."""

    def __init__(
        self,
        base_url: str,
        rows: Any,
        targets: Any,
        rate: float,
        drift_after: float | None,
        seed: int | None,
    ) -> None:
        self.base_url = base_url
        self.rows = rows
        self.targets = targets
        self.rate = rate
        self.drift_after = drift_after
        self.traffic = Traffic()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self._seed = seed
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"demo-traffic-{i}", daemon=True)
            for i in range(WORKERS)
        ]

    def start(self) -> None:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _drifting(self) -> bool:
        return self.drift_after is not None and time.monotonic() - self.started >= self.drift_after

    def _row(self, rng: random.Random) -> tuple[list[float], int]:
        index = rng.randrange(len(self.rows))
        row = [float(v) + rng.gauss(0.0, 0.05) for v in self.rows[index]]
        # Rounded to the data set's precision (0.1 cm) below: the reference is on that grid,
        # and PSI and Jensen-Shannon on quantile bins of it score continuous jitter as drift
        # (petal_width above 0.1 on every seed tried), a false alarm before the injected one.
        if self._drifting():
            # Longer petals and wider sepals than anything in training: the model answers
            # "virginica" far more often, the labels disagree, the drift statistics fire.
            row[1] *= 1.3
            row[2] += 2.5
            row[3] += 0.8
        return [round(v, 1) for v in row], int(self.targets[index])

    def _work(self, worker: int) -> None:
        import httpx

        rng = random.Random(None if self._seed is None else self._seed + worker)
        interval = WORKERS / self.rate
        next_at = time.monotonic() + rng.random() * interval
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    self._one(client, rng)
                except Exception as exc:  # a demo keeps going; the count shows it
                    with self.traffic.lock:
                        self.traffic.failed += 1
                    _logger.debug("demo request failed: %r", exc)

    def _one(self, client: Any, rng: random.Random) -> None:
        trace_id = f"{rng.getrandbits(128):032x}"
        request_id = f"demo-{rng.getrandbits(48):012x}"
        headers = {
            "traceparent": f"00-{trace_id}-{rng.getrandbits(64) or 1:016x}-01",
            "X-Request-ID": request_id,
        }
        draw = rng.random()
        label: Any = None
        if draw < BAD_REQUEST_SHARE:
            body: Any = {"features": [1.0, 2.0]}  # too few features: 422
        elif draw < BAD_REQUEST_SHARE + MODEL_ERROR_SHARE:
            row, _ = self._row(rng)
            row[rng.randrange(len(row))] = float("nan")  # the model rejects NaN: 500
            body = {"features": row}
            # Starlette re-raises an unhandled error after its 500: uvicorn then closes the
            # connection, so this request does not keep it alive.
            headers["Connection"] = "close"
        elif draw < BAD_REQUEST_SHARE + MODEL_ERROR_SHARE + BATCH_SHARE:
            pairs = [self._row(rng) for _ in range(8)]
            body = {"features": [r for r, _ in pairs]}
            label = [y for _, y in pairs]
        else:
            row, y = self._row(rng)
            body = {"features": row}
            label = y
        # json.dumps writes NaN (as Python's json module and FastAPI read it); httpx's json=
        # refuses NaN, so the body is encoded here.
        headers["Content-Type"] = "application/json"
        response = client.post("/predict", content=json.dumps(body), headers=headers)
        with self.traffic.lock:
            self.traffic.sent += 1
            self.traffic.drifting = self._drifting()
            self.traffic.last_trace_id = trace_id
            self.traffic.last_request_id = response.headers.get("x-request-id")
        if response.status_code == 200 and label is not None and rng.random() < LABEL_SHARE:
            prediction_id = response.json()["prediction_id"]
            client.post("/feedback", json={"prediction_id": prediction_id, "label": label})


# --- the live view -------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "   -   " if seconds is None else f"{seconds * 1000:7.2f}"


def render(
    summary: Summary,
    traffic: Traffic,
    *,
    elapsed: float,
    duration: float,
    service_url: str,
    metrics_url: str | None,
    otlp_endpoint: str | None,
    min_samples: int | None = None,
    log_file: Path | None = None,
) -> list[str]:
    """The lines of the live summary. ``min_samples`` is the drift window's fill level at
    which the first scores appear; ``log_file`` is where the service's log lines go."""
    total = "until Ctrl-C" if duration <= 0 else f"of {duration:.0f}s"
    phase = "DRIFT INJECTED" if traffic.drifting else "normal traffic"
    lines = [
        f"otel-mlmon demo  {elapsed:5.1f}s {total}  [{phase}]   service {service_url}",
        f"  requests {summary.requests:7d} (all routes)   4xx {summary.client_errors:5d}   "
        f"5xx {summary.server_errors:4d}   error rate {summary.error_rate:6.2%}",
        f"  latency ms   http /predict p50 {_ms(summary.http_p50)}  p95 {_ms(summary.http_p95)}"
        f"   model p50 {_ms(summary.model_p50)}  p95 {_ms(summary.model_p95)}",
        f"  predictions {summary.predictions:6d}   model errors {summary.model_errors:4d}   "
        f"labels {summary.labels:6d}   accuracy "
        + ("   -  " if summary.accuracy is None else f"{summary.accuracy:6.3f}"),
    ]
    if not summary.drift_available:
        lines.append(f"  drift        {_drift_state(summary, min_samples)}")
    else:
        lines.append("  drift        feature          method          score   threshold  state")
        for row in summary.drift[:5]:
            threshold = "      -" if row.threshold is None else f"{row.threshold:8.3f}"
            state = "DRIFT" if row.drifting else "ok"
            lines.append(
                f"               {row.feature:<16.16} {row.method:<14.14} {row.score:7.3f}  "
                f"{threshold}  {state}"
            )
    if traffic.last_trace_id:
        lines.append(
            f"  last trace   {traffic.last_trace_id}  (X-Request-ID {traffic.last_request_id})"
        )
        if otlp_endpoint:
            lines.append(
                f"               sent to {otlp_endpoint}: open your trace UI, e.g. Jaeger "
                f"http://localhost:16686/trace/{traffic.last_trace_id}"
            )
        else:
            lines.append(
                "               spans are not exported on the embedded default: look it up "
                "with --otlp-endpoint"
            )
    if metrics_url:
        lines.append(f"  prometheus   {metrics_url}   (curl it while the demo runs)")
    if log_file is not None:
        lines.append(f"  logs         {log_file}   (the service's JSON log lines)")
    if traffic.failed:
        lines.append(f"  client-side failures {traffic.failed}")
    return lines


def _drift_state(summary: Summary, min_samples: int | None) -> str:
    """What the drift line says before the first scores: the window's fill level."""
    if summary.drift_window is None:
        return "no drift window reported (this ModelMonitor has no drift reference)"
    if min_samples is not None and summary.drift_window < min_samples:
        return (
            f"filling the window: {summary.drift_window}/{min_samples} rows before the first scores"
        )
    needed = "enough" if min_samples is None else str(min_samples)
    return (
        f"{summary.drift_window} rows in the window, no scores yet "
        f"(each feature needs {needed} usable values)"
    )


class LiveView:
    """Rewrites the summary in place on a terminal; appends blocks otherwise."""

    def __init__(self, stream: TextIO, width: int | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._shown = 0
        self._fixed_width = width

    def _width(self) -> int:
        """Columns of the terminal (``width`` if given); 0 when unknown."""
        if self._fixed_width is not None:
            return self._fixed_width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 0

    def show(self, lines: list[str]) -> None:
        width = self._width() if self.tty else 0
        if width > 1:
            # A line the terminal wraps takes two rows: the cursor-up count below would miss
            # it and the block would creep down the screen instead of refreshing in place.
            lines = [line[: width - 1] for line in lines]
        if self.tty and self._shown:
            # Cursor up to the first line of the previous block, clear to the end of screen.
            self.stream.write(f"\x1b[{self._shown}F\x1b[J")
        elif not self.tty and self._shown:
            self.stream.write("\n")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._shown = len(lines)


# --- the job -------------------------------------------------------------------------------


def load_example(path: Path = EXAMPLE) -> ModuleType:
    """Import ``examples/fastapi_app.py`` from the source checkout."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: otel-mlmon demo runs from a source checkout (make demo)"
        )
    spec = importlib.util.spec_from_file_location("otel_mlmon_demo_fastapi_app", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _scrape(url: str) -> Summary:
    import httpx

    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    return summarize(parse_samples(response.text))


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run the demo; returns the process exit status (0, or 2 when it cannot start)."""
    out = stream or sys.stdout
    if args.rate <= 0:
        print("otel-mlmon demo: --rate must be positive", file=sys.stderr)
        return 2
    try:
        import uvicorn

        example = load_example()
    except (ImportError, FileNotFoundError) as exc:
        print(f"otel-mlmon demo: {exc} (pip install 'otel-mlmon[examples]')", file=sys.stderr)
        return 2

    import otel_mlmon

    try:
        log_stream = args.log_file.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        print(f"otel-mlmon demo: cannot write the log file: {exc}", file=sys.stderr)
        return 2
    try:
        telemetry = otel_mlmon.configure(
            service_name="iris-demo",
            otlp_endpoint=args.otlp_endpoint,
            # The live summary reads the Prometheus endpoint, so it stays up with OTLP too.
            prometheus=True,
            prometheus_port=args.prometheus_port,
            # The logging bridge is set up below, writing to the log file, not the terminal.
            logs=False,
        )
        from otel_mlmon.logs import configure_logging

        configure_logging(
            logger_provider=telemetry.logger_provider,
            export=not telemetry.actions.get("logs", "").endswith(": none"),
            stream=log_stream,
        )
    except otel_mlmon.ConfigurationError as exc:
        print(f"otel-mlmon demo: {exc}", file=sys.stderr)
        log_stream.close()
        return 2
    for name in QUIET_LOGGERS:
        # One INFO line per request of the demo's own client: neither the service's logs nor
        # telemetry of it, so kept out of the log file and of the exported records.
        logging.getLogger(name).setLevel(logging.WARNING)
    metrics_url = None
    if telemetry.prometheus_address:
        host, port = telemetry.prometheus_address
        metrics_url = f"http://{host}:{port}/metrics"

    model = example.IrisModel()
    drift_config = getattr(example, "DRIFT", None)
    min_samples = getattr(drift_config, "min_samples", None)
    app = example.create_app(model=model)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    server_thread = threading.Thread(target=server.run, name="demo-uvicorn", daemon=True)
    server_thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not server_thread.is_alive() or time.monotonic() > deadline:
            print("otel-mlmon demo: the service did not start", file=sys.stderr)
            telemetry.shutdown()
            log_stream.close()
            return 2
        time.sleep(0.02)
    service_port = server.servers[0].sockets[0].getsockname()[1]
    service_url = f"http://127.0.0.1:{service_port}"
    print(f"service     {service_url}  (POST /predict, POST /feedback, GET /health)", file=out)
    if metrics_url:
        print(f"prometheus  {metrics_url}", file=out)
    if args.otlp_endpoint:
        print(f"exporting   traces, metrics and logs to {args.otlp_endpoint}", file=out)
    print(f"logs        {args.log_file}  (tail -f it)", file=out)
    print("Ctrl-C to stop\n", file=out, flush=True)

    drift_after = None
    if not args.no_drift:
        drift_after = (args.duration if args.duration > 0 else 150.0) * DRIFT_AT
    driver = Driver(service_url, model.reference, model.targets, args.rate, drift_after, args.seed)
    view = LiveView(out)
    interrupted = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    started = time.monotonic()
    driver.start()
    summary = Summary()

    def refresh(elapsed: float) -> None:
        """Scrape the service's metrics (keeping the last summary if that fails) and redraw."""
        nonlocal summary
        if metrics_url:
            try:
                summary = _scrape(metrics_url)
            except Exception as exc:
                _logger.debug("demo: scrape failed: %r", exc)
        view.show(
            render(
                summary,
                driver.traffic,
                elapsed=elapsed,
                duration=args.duration,
                service_url=service_url,
                metrics_url=metrics_url,
                otlp_endpoint=args.otlp_endpoint,
                min_samples=min_samples,
                log_file=args.log_file,
            )
        )

    try:
        while not interrupted.is_set():
            elapsed = time.monotonic() - started
            if args.duration > 0 and elapsed >= args.duration:
                break
            refresh(elapsed)
            interrupted.wait(args.refresh)
    except KeyboardInterrupt:
        pass
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        driver.join(timeout=5)
        refresh(time.monotonic() - started)
        server.should_exit = True
        server_thread.join(timeout=10)
        flushed = telemetry.force_flush(timeout_millis=10_000)
        telemetry.shutdown()
        log_stream.flush()
    print(
        f"\nstopped after {driver.traffic.sent} predict requests; telemetry "
        + ("flushed" if flushed else "flush timed out"),
        file=out,
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m otel_mlmon.demo``: the same job as ``otel-mlmon demo``."""
    parser = argparse.ArgumentParser(prog="otel-mlmon demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
