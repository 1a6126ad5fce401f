"""Traffic of the end-to-end test: requests to ``examples/fastapi_app.py`` over real HTTP.

The example runs by one of its documented commands (one process exporting to the collector, or
several uvicorn workers serving one /metrics port), with ``EXAMPLE_FAULTS=1`` so that the
``X-Example-Fault`` header works. The mix is fixed so that every alert rule's condition holds
afterwards:

- single predictions and small batches of the training rows, and the whole training set as
  one batch (predictions of every class);
- every fifth call a model error (a NaN feature: ``ValueError``, plus two injected
  ``InjectedFault`` errors): about 17 % of the calls fail, above the 10 % of the error-rate rule;
- two calls slowed by the ``slow`` fault (0.6 s): the p99 latency is above 0.5 s, the p95 not;
- labels fed back through ``/feedback`` for every single prediction and, by its batch id, for
  every row of the whole-training-set batch, half of them wrong: accuracy about 0.5, below the
  0.8 of the accuracy rule, on more labels than its minimum of 20. Each label goes over a new
  connection, so that under several workers it reaches any of them (a signed id joins
  anywhere);
- a business outcome for every single prediction (revenue, and a rating for every third),
  posted to the canary service: it counts for the stable version that made the prediction;
- at the end, batches of drifted rows (longer petals, wider sepals) over one kept-alive
  connection, so that one worker's drift window holds more than its ``min_samples`` of them
  however many workers share the traffic: every drift statistic detects the drift, most of
  them twice past their threshold.

Beside the stable version (1.0.0, with a 2.0.0 challenger in its shadow) a canary serves 1.1.0
(``EXAMPLE_MODEL_VERSION``), both with one label key and the fleet's versions, as
docs/rollouts.md runs a canary: :func:`drive_rollout` sends it :data:`CANARY_CALLS` calls, every
other one a model error (50 %, over twice the stable version's 17 %) and three of them slowed
(its p95 latency past 0.5 s, while the stable version's two slow calls of 70 set its p99 but not
its p95), and posts the labels and outcomes of its predictions to the stable service. Every canary
alert holds afterwards, and each version's labels and outcomes are those of its own
predictions, whichever service received them.

Calls are spread over several seconds (several metric exports and scrapes) so that Prometheus
sees the counters rise and ``rate()`` has something to measure.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

SERVICE_NAME = "iris-fastapi"
MODEL_NAME = "iris"
MODEL_VERSION = "1.0.0"
CANARY_VERSION = "1.1.0"
#: The challenger run in the shadow of the stable version (never served).
SHADOW_VERSION = "2.0.0"
#: The label key and the fleet's versions both services share (docs/rollouts.md).
ROLLOUT_ENV = {
    "OTEL_MLMON_LABEL_KEY": "ZTJlLXJvbGxvdXQta2V5LW9mLXRoZS10ZXN0LWZsZWV0IQ==",
    "OTEL_MLMON_FLEET_VERSIONS": f"{MODEL_VERSION},{CANARY_VERSION}",
}
STABLE_ENV = {**ROLLOUT_ENV, "EXAMPLE_SHADOW_VERSION": SHADOW_VERSION}
CANARY_ENV = {**ROLLOUT_ENV, "EXAMPLE_MODEL_VERSION": CANARY_VERSION}
#: Calls to the canary, one every fifth single call: every other one fails, three are slowed
#: (none the first: calls made before a series' first export or scrape are not in its rate()).
CANARY_CALLS = 12
CANARY_SLOW_CALLS = (4, 6, 8)
#: Single-row calls of the mix (each followed by a short pause).
SINGLE_CALLS = 60
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


def _post(base_url: str, route: str, body: dict[str, Any]) -> None:
    """POST ``body`` over a new connection (under several workers any of them may get it)."""
    with httpx.Client(base_url=base_url, timeout=10.0) as fresh:
        answer = fresh.post(route, json=body)
    assert answer.status_code == 202, answer.text


def _outcomes_of(i: int) -> dict[str, float]:
    """The outcomes of the ``i``-th prediction: revenue (a multiple of 0.25, so that the sums
    are exact) and, for every third, a 1-5 rating."""
    outcomes = {"revenue": 5.0 + (i % 7) * 2.25}
    if i % 3 == 0:
        outcomes["rating"] = float(1 + i % 5)
    return outcomes


def _send_outcomes(
    base_url: str, prediction_id: str, outcomes: dict[str, float], sent: dict[str, list[float]]
) -> None:
    for kind, value in outcomes.items():
        _post(base_url, "/outcome", {"prediction_id": prediction_id, "kind": kind, "value": value})
        sent.setdefault(kind, []).append(value)


class _Canary:
    """The canary's calls, each one's label and outcomes posted to the stable service, and
    what was sent (see :func:`drive_rollout`)."""

    def __init__(self, canary_url: str, stable_url: str, reference: list[list[float]],
                 targets: list[int]) -> None:  # fmt: skip
        self.stable_url, self.reference, self.targets = stable_url, reference, targets
        self.client = httpx.Client(base_url=canary_url, timeout=10.0)
        self.rng = random.Random(11)
        self.sent: dict[str, Any] = {"calls": 0, "errors": 0, "slow_calls": 0, "predictions": 0,
                                     "labels": 0, "error_trace_ids": []}  # fmt: skip
        self.outcomes: dict[str, list[float]] = {}

    def call(self, i: int) -> None:
        """The ``i``-th call: a model error for odd ``i``, slowed for :data:`CANARY_SLOW_CALLS`."""
        index = (i * 11) % len(self.reference)
        row = self.reference[index]
        self.sent["calls"] += 1
        if i % 2 == 1:
            trace_id, traceparent = _traceparent(self.rng)
            response = self.client.post(
                "/predict",
                content=json.dumps({"features": [float("nan"), *row[1:]]}),
                headers={"content-type": "application/json", "connection": "close",
                         "traceparent": traceparent},
            )  # fmt: skip
            assert response.status_code == 500, response.text
            self.sent["errors"] += 1
            self.sent["error_trace_ids"].append(trace_id)
            return
        fault = {"x-example-fault": "slow"} if i in CANARY_SLOW_CALLS else {}
        self.sent["slow_calls"] += bool(fault)
        response = self.client.post("/predict", json={"features": row}, headers=fault)
        assert response.status_code == 200, response.text
        prediction_id = response.json()["prediction_id"]
        self.sent["predictions"] += 1
        _post(self.stable_url, "/feedback", {"prediction_id": prediction_id,
                                             "label": self.targets[index]})  # fmt: skip
        self.sent["labels"] += 1
        _send_outcomes(self.stable_url, prediction_id, _outcomes_of(i), self.outcomes)


def drive_rollout(
    stable_url: str, canary_url: str, reference: list[list[float]], targets: list[int]
) -> dict[str, Any]:
    """:func:`drive` the stable service at ``stable_url`` (its outcomes posted to the canary),
    with a call to the canary at ``canary_url`` every fifth single call (its labels and
    outcomes posted to the stable service). Spread over the whole run, the canary's counters
    rise across several exports and scrapes, as rate() and increase() need: a burst within one
    export interval would reach Prometheus as a series born at its final value.

    The result is :func:`drive`'s, for the stable version, with ``canary``: the canary's calls,
    errors, slow calls, rows and labels, and ``outcomes``: version -> kind -> the values sent
    for its predictions."""
    canary = _Canary(canary_url, stable_url, reference, targets)
    with canary.client:
        result = drive(stable_url, reference, targets, outcomes_url=canary_url,
                       between=lambda i: canary.call(i // 5) if i % 5 == 0 else None)  # fmt: skip
    assert CANARY_CALLS == canary.sent["calls"]
    result.update(
        canary=canary.sent, outcomes={CANARY_VERSION: canary.outcomes, **result["outcomes"]},
        shadow_version=SHADOW_VERSION, canary_version=CANARY_VERSION,
    )  # fmt: skip
    return result


def drive(
    base_url: str,
    reference: list[list[float]],
    targets: list[int],
    outcomes_url: str | None = None,
    between: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Send the mix to the service at ``base_url``; returns what the test looks up and counts:
    the trace, request and prediction IDs of one successful and one failed request, the trace
    IDs of every failed and every slow request in order, the predicted rows, the calls and the
    failed calls by ``error.type``, the labels sent and their confusion matrix ("predicted
    class|label class" -> labels), and the outcomes sent (``outcomes``: version -> kind ->
    values) to ``outcomes_url`` (default ``base_url``). ``between(i)`` runs before the
    ``i``-th single call."""
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
    outcomes: dict[str, list[float]] = {}
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
        label: int | list[int] = labels if len(labels) > 1 else labels[0]
        _post(base_url, "/feedback", {"prediction_id": prediction_id, "label": label})
        for cell in zip(predicted, labels, strict=True):
            key = "|".join(map(str, cell))
            confusion[key] = confusion.get(key, 0) + 1

    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for i in range(SINGLE_CALLS):
            if between is not None:
                between(i)
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
            # Two slow calls of 70: the p99 latency alert's, far from the p95 (the heavy batches
            # are slower than single calls: the p95 must not need them fast to stay fast).
            fault = {"x-example-fault": "slow"} if i in (1, 16) else {}
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
            _send_outcomes(outcomes_url or base_url, body["prediction_id"], _outcomes_of(i),
                           outcomes)  # fmt: skip
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
        outcomes={MODEL_VERSION: outcomes},
    )
    return result
