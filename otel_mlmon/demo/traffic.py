"""The demo's traffic: worker threads sending the iris service a realistic mix over HTTP.

Single predictions and small batches of training rows with a little noise, a few malformed
requests (422), a few model errors (NaN features: 500), delayed labels for part of the
successful predictions, business outcomes (a purchase of :data:`PRICE` when the predicted
species was the right one, a 1-5 rating) and, after ``drift_after`` seconds, shifted
measurements (a drift that also lowers the accuracy). With a canary, a share of the predictions
goes to it, and each label and outcome goes to either service, as it would reach any replica.
Each request carries a W3C ``traceparent`` the driver made, so it knows the trace the server
span joined.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

_logger: Final = logging.getLogger("otel_mlmon.demo")

#: Traffic mix: fractions of the requests sent.
BATCH_SHARE: Final = 0.05
BAD_REQUEST_SHARE: Final = 0.04
MODEL_ERROR_SHARE: Final = 0.01
#: Fraction of successful predictions whose label is fed back.
LABEL_SHARE: Final = 0.6
#: Threads sending requests (each at rate / THREADS requests per second).
THREADS: Final = 4
#: Fraction of successful single predictions that lead to a purchase when they were right, and
#: what it earns (USD); fraction rated 1-5 (5 when right, 2 when wrong).
PURCHASE_SHARE: Final = 0.5
PRICE: Final = 12.5
RATING_SHARE: Final = 0.3


@dataclass
class Traffic:
    """Counters of what the driver sent, and the last trace it started."""

    sent: int = 0
    #: Predict requests sent to the canary.
    canary: int = 0
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
        canary: tuple[str, float] | None = None,
    ) -> None:
        self.base_url = base_url
        #: The canary's URL and its share of the predictions, or None.
        self.canary = canary
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
            for i in range(THREADS)
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
        interval = THREADS / self.rate
        next_at = time.monotonic() + rng.random() * interval
        urls = [self.base_url, *([self.canary[0]] if self.canary else [])]
        clients = [httpx.Client(base_url=url, timeout=10.0) for url in urls]
        try:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    self._one(clients, rng)
                except Exception as exc:  # a demo keeps going; the count shows it
                    with self.traffic.lock:
                        self.traffic.failed += 1
                    _logger.debug("demo request failed: %r", exc)
        finally:
            for client in clients:
                client.close()

    def _one(self, clients: list[Any], rng: random.Random) -> None:
        """One predict request to the stable service or the canary, then perhaps its label
        and outcomes, each to either service."""
        canary = self.canary is not None and rng.random() < self.canary[1]
        client = clients[1] if canary else clients[0]
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
            self.traffic.canary += canary
            self.traffic.drifting = self._drifting()
            self.traffic.last_trace_id = trace_id
            self.traffic.last_request_id = response.headers.get("x-request-id")
        if response.status_code == 200 and label is not None:
            self._after(clients, rng, response.json(), label)

    @staticmethod
    def _after(clients: list[Any], rng: random.Random, answer: Any, label: Any) -> None:
        """The label and the outcomes of a served prediction, each to a service at random."""
        prediction_id = answer["prediction_id"]
        if rng.random() < LABEL_SHARE:
            body = {"prediction_id": prediction_id, "label": label}
            rng.choice(clients).post("/feedback", json=body)
        if "prediction" not in answer:
            return  # a batch: outcomes are for single predictions here
        right = answer["prediction"] == label
        if right and rng.random() < PURCHASE_SHARE:
            body = {"prediction_id": prediction_id, "kind": "revenue", "value": PRICE}
            rng.choice(clients).post("/outcome", json=body)
        if rng.random() < RATING_SHARE:
            body = {"prediction_id": prediction_id, "kind": "rating", "value": 5 if right else 2}
            rng.choice(clients).post("/outcome", json=body)
