"""16 threads and 500 concurrent asyncio tasks recording predictions, labels and logs through one
monitor: exact counts, no lost or duplicated prediction, and no context bleeding from one
request into another (spans, log records and the model context stay with their own request)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.context import get_model
from otel_mlmon.testing import InMemoryTelemetry

THREADS = 16
PER_THREAD = 256
TASKS = 500
CLASSES = ("a", "b", "c", "d")


def _by_class(telemetry: InMemoryTelemetry) -> dict[str, float]:
    return {
        p.attributes[semconv.ML_PREDICTION_CLASS]: p.value
        for p in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
    }


def _labels(telemetry: InMemoryTelemetry) -> dict[str, float]:
    # Summed: matched labels of a classifier come in one series per (predicted, true) class.
    return telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)


def _assert_every_prediction_once_with_its_own_log(
    telemetry: InMemoryTelemetry, ids: list[str], total: int
) -> None:
    spans = [s for s in telemetry.spans() if s.name == "predict m"]
    span_ids = Counter(s.attributes[semconv.ML_PREDICTION_ID] for s in spans)  # type: ignore[index]
    assert total == len(ids) == len(set(ids))
    assert Counter(ids) == span_ids  # none lost, none duplicated
    # Each log record carries the context of the prediction that emitted it, and names it.
    context_of = {s.context.span_id: s.attributes[semconv.ML_PREDICTION_ID] for s in spans}  # type: ignore[index]
    logged = Counter()
    for record in telemetry.logs():
        body = record.log_record.body
        assert context_of[record.log_record.span_id] == body  # type: ignore[index]
        logged[body] += 1
    assert Counter(ids) == logged


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    """Switch threads every few bytecodes instead of every 5 ms, so races get their chance."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("eager_thread_switching")
def test_sixteen_threads_record_exact_counts_without_bleeding() -> None:
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("m", **telemetry.providers)
        logger = telemetry.logger_provider.get_logger("concurrency")
        ids: list[str] = []
        errors: list[BaseException] = []
        start = threading.Barrier(THREADS)

        def worker(index: int) -> None:
            try:
                start.wait()
                mine = []
                for i in range(PER_THREAD):
                    with monitor.predict(features=[index, i]) as p:
                        assert monitor.name == get_model().name  # type: ignore[union-attr]
                        p.record(CLASSES[i % len(CLASSES)], 0.5)
                        logger.emit(body=p.id)
                    mine.append(p.id)
                for i, prediction_id in enumerate(mine):
                    monitor.record_label(prediction_id, CLASSES[i % len(CLASSES)])
                ids.extend(mine)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [] == errors
        total = THREADS * PER_THREAD
        assert {c: total / len(CLASSES) for c in CLASSES} == _by_class(telemetry)
        assert {semconv.LABEL_MATCHED: total} == _labels(telemetry)
        _assert_every_prediction_once_with_its_own_log(telemetry, ids, total)
        assert get_model() is None


def test_500_asyncio_tasks_record_exact_counts_without_bleeding() -> None:
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("m", **telemetry.providers)
        tracer = telemetry.tracer_provider.get_tracer("requests")
        logger = telemetry.logger_provider.get_logger("concurrency")
        parent_of: dict[str, int] = {}

        async def request(index: int) -> str:
            with tracer.start_as_current_span(f"request {index}") as request_span:
                with monitor.predict(features=[index]) as p:
                    await asyncio.sleep(0)  # every task is inside a prediction at once
                    assert trace.get_current_span().get_span_context().span_id == (
                        p._span.get_span_context().span_id  # type: ignore[union-attr]
                    )
                    p.record(CLASSES[index % len(CLASSES)], 0.5)
                    await asyncio.sleep(0)
                    logger.emit(body=p.id)
                    assert monitor.name == get_model().name  # type: ignore[union-attr]
                parent_of[p.id] = request_span.get_span_context().span_id
                assert get_model() is None
                await asyncio.sleep(0)
                monitor.record_label(p.id, CLASSES[index % len(CLASSES)])
                return p.id

        async def main() -> list[str]:
            return await asyncio.gather(*(request(i) for i in range(TASKS)))

        ids = asyncio.run(main())
        assert {c: TASKS / len(CLASSES) for c in CLASSES} == _by_class(telemetry)
        assert {semconv.LABEL_MATCHED: TASKS} == _labels(telemetry)
        _assert_every_prediction_once_with_its_own_log(telemetry, ids, TASKS)
        # Each prediction span is the child of its own request's span, never of another's.
        for span in telemetry.spans():
            if span.name == "predict m":
                prediction_id = span.attributes[semconv.ML_PREDICTION_ID]  # type: ignore[index]
                assert parent_of[prediction_id] == span.parent.span_id  # type: ignore[union-attr,index]
