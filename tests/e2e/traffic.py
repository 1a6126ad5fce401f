"""Traffic of the end-to-end test: requests to ``examples/fastapi_app.py`` over real HTTP.

The example runs by one of its documented commands (one process exporting to the collector, or
several uvicorn workers serving one /metrics port), with ``EXAMPLE_FAULTS=1`` so that the
``X-Example-Fault`` header works. The mix is fixed so that every alert rule's condition holds
afterwards:

- single predictions and small batches of the training rows, and the whole training set as
  one batch (predictions of every class);
- every fifth call a model error (a NaN feature: ``ValueError``, plus two injected
  ``InjectedFault`` errors): about 18 % of the calls fail, above the 10 % of the error-rate rule;
- three calls slowed by the ``slow`` fault (0.6 s): the p99 latency is above 0.5 s;
- labels fed back through ``/feedback`` for every single prediction and, by its batch id, for
  every row of the whole-training-set batch, half of them wrong: accuracy about 0.5, below the
  0.8 of the accuracy rule, on more labels than its minimum of 20. Each label goes over a new
  connection, so that under several workers it reaches any of them (a signed id joins
  anywhere);
- at the end, batches of drifted rows (longer petals, wider sepals) over one kept-alive
  connection, so that one worker's drift window holds more than its ``min_samples`` of them
  however many workers share the traffic: every drift statistic detects the drift, most of
  them twice past their threshold.

Calls are spread over several seconds (several metric exports and scrapes) so that Prometheus
sees the counters rise and ``rate()`` has something to measure.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx

SERVICE_NAME = "iris-fastapi"
MODEL_NAME = "iris"
MODEL_VERSION = "1.0.0"
#: Single-row calls of the mix (each followed by a short pause).
SINGLE_CALLS = 45
PAUSE_SECONDS = 0.1
#: Drifted rows sent at the end, in batches of at most 256 (the example's MAX_BATCH), to one
#: worker: more than the example's drift min_samples (500), most of its window (1,000).
DRIFTED_ROWS = 600
DRIFT_BATCH = 200


def _traceparent(rng: random.Random) -> tuple[str, str]:
    trace_id = f"{rng.getrandbits(128) or 1:032x}"
    return trace_id, f"00-{trace_id}-{rng.getrandbits(64) or 1:016x}-01"


def drifted(row: list[float]) -> list[float]:
    """A training row moved far outside the training data (as otel-mlmon demo drifts it)."""
    return [row[0], round(row[1] * 1.3, 1), round(row[2] + 2.5, 1), round(row[3] + 0.8, 1)]


def _wrong_half(index: int, truth: int) -> int:
    """The label sent for row ``index``: its true class, or another one for every other row."""
    return truth if index % 2 == 0 else (truth + 1) % 3


def drive(base_url: str, reference: list[list[float]], targets: list[int]) -> dict[str, Any]:
    """Send the mix to the service at ``base_url``; returns what the test looks up and counts:
    the trace, request and prediction IDs of one successful and one failed request, the trace
    IDs of every failed and every slow request in order, the predicted rows, the calls and the
    failed calls by ``error.type``, the labels sent and their confusion matrix ("predicted
    class|label class" -> labels)."""
    rng = random.Random(6)
    result: dict[str, Any] = {
        "started_at": time.time(),
        "service_name": SERVICE_NAME,
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
    }
    rows = calls = slow = 0
    errors: dict[str, int] = {}
    confusion: dict[str, int] = {}
    error_traces: list[str] = []
    slow_traces: list[str] = []

    def predict(body: Any, **headers: str) -> httpx.Response:
        nonlocal calls
        calls += 1
        # json.dumps writes NaN as FastAPI reads it; httpx's json= refuses NaN.
        return client.post(
            "/predict",
            content=json.dumps(body),
            headers={"content-type": "application/json", **headers},
        )

    def feedback(prediction_id: str, predicted: list[int], labels: list[int]) -> None:
        # A new connection for each label: under several workers, any of them may join it.
        with httpx.Client(base_url=base_url, timeout=10.0) as fresh:
            label: int | list[int] = labels if len(labels) > 1 else labels[0]
            answer = fresh.post("/feedback", json={"prediction_id": prediction_id, "label": label})
        assert answer.status_code == 202, answer.text
        for cell in zip(predicted, labels, strict=True):
            key = "|".join(map(str, cell))
            confusion[key] = confusion.get(key, 0) + 1

    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for i in range(SINGLE_CALLS):
            index = (i * 7) % len(reference)
            row = reference[index]
            trace_id, traceparent = _traceparent(rng)
            request_id = f"e2e-{i:04d}"
            if i % 5 == 4:
                # A model error: NaN for ValueError, twice the injected fault.
                fault = {"x-example-fault": "error"} if i in (9, 29) else {}
                body = {"features": row} if fault else {"features": [float("nan"), *row[1:]]}
                # Starlette re-raises after its 500 and uvicorn closes the connection: this
                # request does not keep it alive.
                response = predict(body, traceparent=traceparent, connection="close", **fault)
                assert response.status_code == 500, response.text
                error_type = "otel_mlmon.examples.iris.InjectedFault" if fault else "ValueError"
                errors[error_type] = errors.get(error_type, 0) + 1
                result.setdefault("error_trace_id", trace_id)
                result.setdefault("error_type", error_type)
                error_traces.append(trace_id)
                continue
            if i % 10 == 3:
                # A batch of three rows, spread through the run so the batch-size histogram
                # rises across scrapes.
                batch = [reference[(index + k * 50) % len(reference)] for k in range(3)]
                response = predict({"features": batch})
                assert response.status_code == 200, response.text
                rows += len(batch)
            fault = {"x-example-fault": "slow"} if i % 15 == 1 else {}
            slow += bool(fault)
            if fault:
                slow_traces.append(trace_id)
            response = predict(
                {"features": row}, traceparent=traceparent, **{"x-request-id": request_id}, **fault
            )
            assert response.status_code == 200, response.text
            body = response.json()
            rows += 1
            if "ok_trace_id" not in result:
                result.update(
                    ok_trace_id=trace_id,
                    ok_request_id=body["request_id"],
                    ok_prediction_id=body["prediction_id"],
                    ok_class=str(body["prediction"]),
                )
            # Half of the labels disagree with the truth the model mostly predicts.
            feedback(body["prediction_id"], [body["prediction"]],
                     [_wrong_half(i, targets[index])])  # fmt: skip
            time.sleep(PAUSE_SECONDS)
        # The whole training set as one batch (every class predicted), labelled by its batch id.
        response = predict({"features": reference})
        assert response.status_code == 200, response.text
        rows += len(reference)
        body = response.json()
        truths = [_wrong_half(k, target) for k, target in enumerate(targets)]
        feedback(body["prediction_id"], body["predictions"], truths)
    with httpx.Client(base_url=base_url, timeout=10.0) as drift_client:
        # One kept-alive connection: one worker gets every drifted row.
        shifted = [drifted(reference[i % len(reference)]) for i in range(DRIFTED_ROWS)]
        for start in range(0, len(shifted), DRIFT_BATCH):
            batch = shifted[start : start + DRIFT_BATCH]
            calls += 1
            response = drift_client.post("/predict", json={"features": batch})
            assert response.status_code == 200, response.text
            rows += len(batch)
            time.sleep(PAUSE_SECONDS)
    result.update(
        predictions=rows,
        calls=calls,
        errors=errors,
        slow_calls=slow,
        labels=sum(confusion.values()),
        confusion=confusion,
        error_trace_ids=error_traces,
        slow_trace_ids=slow_traces,
    )
    return result
