"""Traffic of the end-to-end test: a model service instrumented with otel-mlmon, in its own
process, exporting OTLP to the collector.

Stands in for the FastAPI example until it lands: each request is a SERVER span (the span the
FastAPI instrumentation would open) around ``ModelMonitor.predict``, with an OTel log record
emitted inside it through the LoggerProvider that ``configure()`` set up. The mix is fixed so
that every alert rule's condition holds afterwards: a fifth of the calls raise (error rate above
10 %), a few are slow (p99 latency above its threshold), and half of the delayed labels are
wrong (accuracy below 0.8).

    python tests/e2e/traffic.py --otlp-endpoint http://127.0.0.1:4318 --requests 60

Prints one JSON object on stdout: the service and model names, the trace IDs the test looks up
(one successful request, one failed request), and how many rows were predicted and calls failed.
"""

from __future__ import annotations

import argparse
import json
import time

from opentelemetry import _logs as logs_api
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_mlmon

SERVICE_NAME = "e2e-iris"
MODEL_NAME = "iris"
MODEL_VERSION = "1.0.0"
CLASSES = ("setosa", "versicolor", "virginica")
#: Seconds a slow call sleeps: above the p99 latency alert's threshold (0.5 s).
SLOW_SECONDS = 0.6
#: Seconds between two requests.
PAUSE_SECONDS = 0.1


class ModelOverloaded(RuntimeError):
    """The error a failing prediction raises: it becomes ``error.type`` on metrics and spans."""


def _trace_id() -> str:
    return f"{trace.get_current_span().get_span_context().trace_id:032x}"


def run(otlp_endpoint: str, requests: int) -> dict[str, object]:
    telemetry = otel_mlmon.configure(
        service_name=SERVICE_NAME,
        service_version="0.1.0",
        otlp_endpoint=otlp_endpoint,
        metric_export_interval_millis=1000,
    )
    monitor = otel_mlmon.ModelMonitor(
        MODEL_NAME, version=MODEL_VERSION, task="classification", classes=CLASSES
    )
    monitor.model_loaded(framework="sklearn")
    tracer = trace.get_tracer("otel_mlmon.e2e")
    logger = logs_api.get_logger("otel_mlmon.e2e")

    result: dict[str, object] = {
        "service_name": SERVICE_NAME,
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "error_type": f"{__name__}.{ModelOverloaded.__qualname__}",
    }
    rows = errors = 0
    for i in range(requests):
        predicted = CLASSES[i % len(CLASSES)]
        with tracer.start_as_current_span(
            "POST /predict",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/predict"},
        ) as server_span:
            try:
                with monitor.predict(features=[[5.1, 3.5, 1.4, 0.2]]) as p:
                    logger.emit(
                        body="prediction_made",
                        severity_number=SeverityNumber.INFO,
                        severity_text="INFO",
                        attributes={"ml.model.name": MODEL_NAME, "request.index": i},
                    )
                    if i % 20 == 1:
                        time.sleep(SLOW_SECONDS)
                    if i % 5 == 4:
                        raise ModelOverloaded("model overloaded")
                    if i % 10 == 3:  # a batch of three rows
                        batch = [predicted, *CLASSES[:2]]
                        p.record(batch, [0.9, 0.8, 0.7])
                        rows += len(batch)
                    elif i == 7:  # a confidence outside [0, 1]: counted as rejected
                        p.record(predicted, 1.5)
                        rows += 1
                    else:
                        p.record(predicted, 0.55 + 0.2 * (i % 3))
                        rows += 1
            except ModelOverloaded:
                server_span.set_status(Status(StatusCode.ERROR))
                errors += 1
                result.setdefault("error_trace_id", _trace_id())
                continue
            result.setdefault("ok_trace_id", _trace_id())
            result.setdefault("ok_class", predicted)
        # Half of the delayed labels disagree with the prediction: accuracy about 0.5.
        truth = predicted if i % 2 == 0 else CLASSES[(i + 1) % len(CLASSES)]
        monitor.record_label(p.id, [truth] * 3 if i % 10 == 3 else truth)
        # Spread the calls over several metric exports, so Prometheus sees counters rise.
        time.sleep(PAUSE_SECONDS)
    result.update(predictions=rows, errors=errors, calls=requests)
    # Two metric intervals, so the gauges computed at collection time are exported too.
    time.sleep(2.5)
    telemetry.force_flush()
    telemetry.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--otlp-endpoint", required=True, help="the collector's OTLP/HTTP URL")
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    print(json.dumps(run(args.otlp_endpoint, args.requests)), flush=True)


if __name__ == "__main__":
    main()
