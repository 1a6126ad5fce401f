"""Per-prediction cost of ModelMonitor against the bare OpenTelemetry SDK and the seed's code.

Rows (issue 8, items 1 and 2), all measured in one process, variants interleaved round by round:

- one prediction, metrics only: ``ModelMonitor(trace=False)`` against the bare SDK recording the
  same three instruments with the same prebuilt attribute dicts (``ml.model.predictions`` by
  class, ``ml.model.prediction.confidence``, ``ml.model.prediction.duration``), and against the
  seed's ``prometheus_client`` code;
- one prediction, metrics and a span: the same plus an INTERNAL span with the same attributes
  (prediction id, class, confidence), made current while the prediction runs;
- the same with the drift window fed 20 features (when ``otel_mlmon.drift`` is present);
- a batch of 64 (numpy predictions and confidences), per row, metrics only;
- what reading ``p.id`` adds (the signed id is made only when read), three ways: the read
  timed where it runs, right after each prediction; the reads of a round's predictions timed
  together, after recording them untimed; and as a cross-check only, the median of per-round
  differences between the loops with and without the read (two ~30 us rows: a few us of
  noise). Issue 18's budget holds as a ratio to its yardstick (``bench._yardstick``) timed in
  the same rounds, and in the same place for the first;
- a shadow's prediction against a served one (issue 16).

Labels, outcomes and collection are in ``bench.labels``. The ratio column is ours over the bare
SDK in the same rounds (the median of per-round ratios), unless the note names another
baseline. Over 400 lines: one benchmark whose rows share rounds (and their row literals).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind

from bench import Row, best, interleaved, median, median_ratio, quick, ratio_interval
from bench import _yardstick as yardstick
from bench._baseline import baseline_revision, load_baseline
from bench._otel import DRIFT_MISSING, Providers, drift_available
from bench._seed_prometheus import SeedMonitoring
from bench._yardstick import YARDSTICK_US, loop_yardstick, yardstick_target
from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.monitor import Drift

MODEL, VERSION = "iris", "1.2.0"
CLASSES = (0, 1, 2)
FEATURES = 20
BATCH = 64
_US = 1e-3  # ns -> us

# Predictions cycle through a fixed table so every variant sees the same values.
_rng = random.Random(8)
PAIRS = [(CLASSES[_rng.randrange(3)], _rng.uniform(0.5, 1.0)) for _ in range(1024)]
_np_rng = np.random.default_rng(8)
ROWS = _np_rng.normal(size=(1024, FEATURES))
BATCH_PREDICTIONS = _np_rng.integers(0, 3, size=BATCH)
BATCH_CONFIDENCES = _np_rng.uniform(0.5, 1.0, size=BATCH)


class BareOTel:
    """The same instruments, attributes and span as ModelMonitor, with the SDK alone."""

    def __init__(self, providers: Providers) -> None:
        meter = providers.meter_provider.get_meter("bench.bare")
        self.tracer = providers.tracer_provider.get_tracer("bench.bare")
        self.predictions = semconv.create_ml_model_predictions(meter)
        self.duration = semconv.create_ml_model_prediction_duration(meter)
        self.confidence = semconv.create_ml_model_prediction_confidence(meter)
        self.batch_size = semconv.create_ml_model_batch_size(meter)
        # The straightforward way to count labels: a Counter.add per label.
        self.labels = meter.create_counter(semconv.ML_MODEL_LABELS, unit="{label}")
        self.base = {semconv.ML_MODEL_NAME: MODEL, semconv.ML_MODEL_VERSION: VERSION}
        self.span_attributes = {**self.base, semconv.ML_MODEL_TASK: "classification"}
        self.by_class = {c: {**self.base, semconv.ML_PREDICTION_CLASS: str(c)} for c in CLASSES}
        self.matched = {**self.base, semconv.ML_LABEL_OUTCOME: semconv.LABEL_MATCHED}
        self.span_name = f"predict {MODEL}"

    def predict(self, value: int, confidence: float) -> None:
        start = time.perf_counter()
        self.predictions.add(1, self.by_class[value])
        self.confidence.record(confidence, self.base)
        self.duration.record(time.perf_counter() - start, self.base)

    def predict_span(self, value: int, confidence: float) -> None:
        span = self.tracer.start_span(
            self.span_name, kind=SpanKind.INTERNAL, attributes=self.span_attributes
        )
        span.set_attribute(semconv.ML_PREDICTION_ID, f"{random.getrandbits(64):016x}")
        token = otel_context.attach(trace_api.set_span_in_context(span))
        start = time.perf_counter()
        attributes = self.by_class[value]
        self.predictions.add(1, attributes)
        span.set_attribute(semconv.ML_PREDICTION_CLASS, attributes[semconv.ML_PREDICTION_CLASS])
        self.confidence.record(confidence, self.base)
        span.set_attribute(semconv.ML_PREDICTION_CONFIDENCE, confidence)
        self.duration.record(time.perf_counter() - start, self.base)
        span.end()
        otel_context.detach(token)

    def predict_batch(self, predictions: np.ndarray, confidences: np.ndarray) -> None:
        start = time.perf_counter()
        values = predictions.tolist()
        self.batch_size.record(len(values), self.base)
        for value, count in Counter(values).items():
            self.predictions.add(count, self.by_class[value])
        record, base = self.confidence.record, self.base
        for score in confidences.tolist():
            record(score, base)
        self.duration.record(time.perf_counter() - start, self.base)


def _loops(
    providers: Providers, bare_providers: Providers, n: int, in_place_ns: dict[str, list[float]]
) -> tuple[dict[str, Callable[[int], object]], dict[str, str], list[Any], Callable[[str], None]]:
    bare = BareOTel(bare_providers)
    seed = SeedMonitoring(MODEL, VERSION)
    metrics_only = ModelMonitor(MODEL, version=VERSION, trace=False, **providers.kwargs)
    traced = ModelMonitor(MODEL, version=VERSION, **providers.kwargs)
    monitors: list[Any] = [metrics_only, traced]
    # A challenger recorded beside the served prediction of each request (issue 16): the
    # shadow's default (no span), and with a span as a served prediction has.
    shadow, shadow_traced = traced.shadow("2.0.0"), traced.shadow("2.1.0", trace=True)
    with traced.predict() as served:
        served.record(1, 0.9)

    def loop_bare(n: int) -> None:
        predict = bare.predict
        for i in range(n):
            value, confidence = PAIRS[i & 1023]
            predict(value, confidence)

    def loop_bare_span(n: int) -> None:
        predict = bare.predict_span
        for i in range(n):
            value, confidence = PAIRS[i & 1023]
            predict(value, confidence)

    def loop_seed(n: int) -> None:
        predict = seed.predict
        for i in range(n):
            value, confidence = PAIRS[i & 1023]
            predict(value, confidence)

    def monitor_loop(monitor: ModelMonitor, features: bool) -> Callable[[int], None]:
        def loop(n: int) -> None:
            predict = monitor.predict
            for i in range(n):
                value, confidence = PAIRS[i & 1023]
                with predict(features=ROWS[i & 1023] if features else None) as p:
                    p.record(value, confidence)

        return loop

    def id_loop(monitor: Any) -> Callable[[int], None]:
        # A service that returns the prediction id, so that a label can be joined later.
        def loop(n: int) -> None:
            predict = monitor.predict
            for i in range(n):
                value, confidence = PAIRS[i & 1023]
                with predict() as p:
                    p.record(value, confidence)
                p.id  # noqa: B018

        return loop

    def in_place(name: str, after: Callable[[Any], object]) -> Callable[[int], None]:
        # A prediction, then after(p) timed where it runs, its clock readings in in_place_ns: what
        # it adds to a prediction, with the caches a prediction leaves behind.
        def loop(n: int) -> None:
            predict, clock = metrics_only.predict, time.perf_counter_ns
            spent = 0
            for i in range(n):
                value, confidence = PAIRS[i & 1023]
                with predict() as p:
                    p.record(value, confidence)
                start = clock()
                after(p)
                spent += clock() - start
            in_place_ns.setdefault(name, []).append(spent / n)

        return loop

    key, message = yardstick.KEY, yardstick.MESSAGE

    def read_id(p: Any) -> object:
        return p.id

    def yardstick_call(p: Any) -> object:
        return hashlib.blake2b(message, key=key, digest_size=8).digest()

    # Predictions recorded (untimed) before each "id_read" round, whose ids that round reads.
    unread: list[Any] = []

    def record_unread(name: str) -> None:
        if name == "id_read":
            unread.clear()
            predict = metrics_only.predict
            for i in range(n):
                value, confidence = PAIRS[i & 1023]
                with predict() as p:
                    p.record(value, confidence)
                unread.append(p)

    def loop_id_read(count: int) -> None:
        for p in unread[:count]:
            p.id  # noqa: B018

    def shadow_loop(challenger: Any) -> Callable[[int], None]:
        def loop(n: int) -> None:
            predict = challenger.predict
            for i in range(n):
                value, confidence = PAIRS[i & 1023]
                with predict(served) as s:
                    s.record(value, confidence)

        return loop

    def loop_bare_batch(n: int) -> None:
        for _ in range(n // BATCH):
            bare.predict_batch(BATCH_PREDICTIONS, BATCH_CONFIDENCES)

    def loop_ours_batch(n: int) -> None:
        predict = metrics_only.predict
        for _ in range(n // BATCH):
            with predict() as p:
                p.record(BATCH_PREDICTIONS, BATCH_CONFIDENCES)

    loops: dict[str, Callable[[int], object]] = {
        "bare": loop_bare,
        "seed": loop_seed,
        "ours": monitor_loop(metrics_only, False),
        "ours_id": id_loop(metrics_only),
        "id_in_place": in_place("id", read_id),
        "yardstick_in_place": in_place("yardstick", yardstick_call),
        "nothing_in_place": in_place("nothing", lambda p: None),
        "id_read": loop_id_read,
        "yardstick": loop_yardstick,
        "bare_span": loop_bare_span,
        "ours_span": monitor_loop(traced, False),
        "shadow": shadow_loop(shadow),
        "shadow_span": shadow_loop(shadow_traced),
        "bare_batch": loop_bare_batch,
        "ours_batch": loop_ours_batch,
    }
    notes = {}
    revision = baseline_revision()
    if revision is not None:
        # The same two loops with the ModelMonitor of another revision, on providers of its own.
        baseline_providers = Providers()
        monitors.append(baseline_providers)  # kept alive with the monitors
        old = load_baseline(revision).ModelMonitor(
            MODEL, version=VERSION, trace=False, **baseline_providers.kwargs
        )
        monitors.append(old)
        loops["today"] = monitor_loop(old, False)
        loops["today_id"] = id_loop(old)
    if drift_available():
        reference = np.random.default_rng(3).normal(size=(10_000, FEATURES))
        drift = Drift(reference=reference, feature_names=[f"f{i}" for i in range(FEATURES)])
        drifting = ModelMonitor(MODEL, version=VERSION, drift=drift, **providers.kwargs)
        monitors.append(drifting)
        loops["ours_span_drift"] = monitor_loop(drifting, True)
    else:
        notes["ours_span_drift"] = DRIFT_MISSING
    return loops, notes, monitors, record_unread


def hot_path_rows() -> list[Row]:
    # Each side records into its own providers, configured alike, as two applications would.
    providers, bare_providers = Providers(), Providers()
    # Many short rounds: neighbours in time see the same machine, so their ratio holds.
    n = 256 if quick() else 1024
    rounds = 2 if quick() else 31
    in_place_ns: dict[str, list[float]] = {}
    loops, notes, _monitors, setup = _loops(providers, bare_providers, n, in_place_ns)
    interleaved(loops, n, 1, setup=setup)  # warm-up: the SDK's storages, the id parts' cache
    in_place_ns.clear()
    t = interleaved(loops, n, rounds, setup=setup)
    providers.shutdown()
    bare_providers.shutdown()

    single = best(t["ours"])
    batch = best(t["ours_batch"])
    ratio = median_ratio(t["ours"], t["bare"])
    ratio_span = median_ratio(t["ours_span"], t["bare_span"])
    ratio_id = median_ratio(t["ours_id"], t["bare"])
    batch_share = median_ratio(t["ours_batch"], t["ours"])
    id_read = best(t["id_read"]) * _US
    id_ratio, id_met = yardstick_target(t, "id_read", 2)
    id_difference = median([a - b for a, b in zip(t["ours_id"], t["ours"], strict=True)]) * _US
    # Timed where they run, less the clock readings and the call around them.
    id_there, yardstick_there = (
        [a - b for a, b in zip(in_place_ns[name], in_place_ns["nothing"], strict=True)]
        for name in ("id", "yardstick")
    )
    in_loop = median_ratio(id_there, yardstick_there)
    today = _today_rows(t)
    rows = [
        Row(
            "Hot path",
            "bare OTel SDK, metrics only",
            best(t["bare"]) * _US,
            "us/prediction",
            1.0,
            note="3 instruments, prebuilt attribute dicts",
        ),
        Row(
            "Hot path",
            "seed-style prometheus_client",
            best(t["seed"]) * _US,
            "us/prediction",
            median_ratio(t["seed"], t["bare"]),
            note="labels(**kw).inc()/observe(), 4 series",
        ),
        Row(
            "Hot path",
            "ModelMonitor, metrics only",
            single * _US,
            "us/prediction",
            ratio,
            "<= 20 us and <= 1.10x",
            single * _US <= 20 and ratio <= 1.10,
            "id never read: no label can come, none awaited",
        ),
        Row(
            "Hot path",
            "ModelMonitor, metrics only, id read",
            best(t["ours_id"]) * _US,
            "us/prediction",
            ratio_id,
            "<= 20 us and <= 1.10x",
            best(t["ours_id"]) * _US <= 20 and ratio_id <= 1.10,
            "p.id read after the block: the signed id is made",
        ),
        Row(
            "Hot path",
            "reading p.id, as a difference",
            id_difference,
            "us/prediction",
            note="median per-round difference of the two rows above; a cross-check, noisy: "
            "the difference of two ~30 us rows",
        ),
        Row(
            "Hot path",
            "reading p.id right after a prediction",
            best(id_there) * _US,
            "us/prediction",
            in_loop,
            f"<= 2 us: <= {2 / YARDSTICK_US:.2f}x",
            in_loop <= 2 / YARDSTICK_US,
            "timed where it runs, after each prediction; ratio to the yardstick timed there "
            f"(best round {best(yardstick_there) * _US:.2f} us): both pay for the caches a "
            "prediction leaves cold",
        ),
        Row(
            "Hot path",
            "reading p.id (signed id made)",
            id_read,
            "us/prediction",
            id_ratio,
            f"<= 2 us: <= {2 / YARDSTICK_US:.2f}x",
            id_met,
            "the first read of a recorded prediction's id; ratio to the yardstick below",
        ),
        Row(
            "Hot path",
            "yardstick: keyed BLAKE2b-64 of 28 bytes",
            best(t["yardstick"]) * _US,
            "us/call",
            1.0,
            note=f"issue 18's machine: {YARDSTICK_US} us; the same rounds as the rows above",
        ),
        *today,
        Row(
            "Hot path",
            "bare OTel SDK, metrics + span",
            best(t["bare_span"]) * _US,
            "us/prediction",
            1.0,
            note="batch span processor, null exporter",
        ),
        Row(
            "Hot path",
            "ModelMonitor, metrics + span",
            best(t["ours_span"]) * _US,
            "us/prediction",
            ratio_span,
            "<= 1.10x",
            ratio_span <= 1.10,
        ),
    ]
    rows += _shadow_rows(t)
    if "ours_span_drift" in t:
        extra = median([a - b for a, b in zip(t["ours_span_drift"], t["ours_span"], strict=True)])
        rows.append(
            Row(
                "Hot path",
                f"ModelMonitor, metrics + span + drift ({FEATURES} features)",
                best(t["ours_span_drift"]) * _US,
                "us/prediction",
                median_ratio(t["ours_span_drift"], t["bare_span"]),
                note=f"drift append adds {extra * _US:.2f} us (bare: no drift)",
            )
        )
    else:
        rows.append(
            Row(
                "Hot path",
                "ModelMonitor, metrics + span + drift",
                "-",
                note=notes["ours_span_drift"],
            )
        )
    rows += [
        Row(
            "Hot path",
            f"bare OTel SDK, batch of {BATCH}, per row",
            best(t["bare_batch"]) * _US,
            "us/row",
            1.0,
            note=f"{BATCH} confidence records: OTel has no bulk histogram record",
        ),
        Row(
            "Hot path",
            f"ModelMonitor, batch of {BATCH}, per row",
            batch * _US,
            "us/row",
            median_ratio(t["ours_batch"], t["bare_batch"]),
            "<= 0.5x single record",
            batch_share <= 0.5,
            f"{batch_share:.2f}x the single-record cost",
        ),
    ]
    return rows


def _shadow_rows(t: dict[str, list[float]]) -> list[Row]:
    """A shadow's prediction against a served one, same rounds: the shadow's default (no span)
    and a shadow with a span, each with its agreement with the served prediction counted."""
    shadow = median_ratio(t["shadow"], t["ours_span"])
    traced = median_ratio(t["shadow_span"], t["ours_span"])
    untraced = median_ratio(t["shadow"], t["ours"])
    return [
        Row(
            "Hot path",
            "shadow prediction (ModelMonitor.shadow), metrics",
            best(t["shadow"]) * _US,
            "us/prediction",
            shadow,
            "<= 1.00x",
            shadow <= 1.0,
            "over a served prediction (metrics + span): the shadow's default opens no span",
        ),
        Row(
            "Hot path",
            "shadow prediction, metrics + span (trace=True)",
            best(t["shadow_span"]) * _US,
            "us/prediction",
            traced,
            "<= 1.00x",
            traced <= 1.0,
            "over a served prediction (metrics + span); no server-span attributes to set",
        ),
        Row(
            "Hot path",
            "shadow prediction over a served one, both metrics only",
            "-",
            ratio=untraced,
            note="the same work plus the agreement count (served: trace=False)",
        ),
    ]


def _today_rows(t: dict[str, list[float]]) -> list[Row]:
    """The same predictions through the ModelMonitor of the baseline revision, same rounds."""
    revision = baseline_revision()
    if revision is None or "today" not in t:
        return []
    low, high = ratio_interval(t["ours"], t["today"])
    return [
        Row(
            "Hot path",
            f"ModelMonitor of {revision}, metrics only",
            best(t["today"]) * _US,
            "us/prediction",
            median_ratio(t["today"], t["bare"]),
            note="id never read",
        ),
        Row(
            "Hot path",
            f"this ModelMonitor / {revision}'s, id never read",
            "-",
            ratio=median_ratio(t["ours"], t["today"]),
            target="<= 1.00x",
            met=low <= 1.0,
            note=f"median of same-round ratios, 95 % interval {low:.3f} to {high:.3f}: met while "
            "the run finds ours no slower",
        ),
        Row(
            "Hot path",
            f"this ModelMonitor / {revision}'s, p.id read",
            "-",
            ratio=median_ratio(t["ours_id"], t["today_id"]),
            note=f"{revision}: random id + pending-label entry; here: the signed id",
        ),
    ]


def main() -> list[Row]:
    return hot_path_rows()


if __name__ == "__main__":
    from bench.__main__ import table

    print(table([row.as_dict() for row in main()]))
