"""What a delayed label and a business outcome cost, and a reader's collection of quality.

Rows (issues 18 and 16), variants interleaved round by round in one process:

- ``record_label`` of a matched label (verify the signed id, count the confusion-matrix cell)
  against the bare SDK's ``Counter.add`` of the same count, and as a ratio to issue 18's
  yardstick (``bench._yardstick``) for its budget;
- ``record_outcome`` of a summed outcome and of a score, against ``record_label`` in the same
  rounds (issue 16);
- a metric reader's collection of one monitor holding a confusion matrix of 10 classes.

The predictions whose ids are labelled are made untimed before each round, so every label of a
round matches once.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from bench import Row, best, interleaved, median_ratio, quick
from bench._otel import Providers
from bench._yardstick import YARDSTICK_US, loop_yardstick, yardstick_target
from bench.hot_path import MODEL, PAIRS, VERSION, BareOTel
from otel_mlmon import ModelMonitor
from otel_mlmon.monitor import Outcomes

_US = 1e-3  # ns -> us


def label_rows() -> list[Row]:
    providers, bare_providers = Providers(), Providers()
    bare = BareOTel(bare_providers)
    n = 500 if quick() else 5_000
    rounds = 2 if quick() else 15
    outcomes = Outcomes(kinds=("revenue",), scores=("rating",), unit="{USD}")
    monitor = ModelMonitor(MODEL, version=VERSION, trace=False, outcomes=outcomes,
                           **providers.kwargs)  # fmt: skip
    ids: list[str] = []

    def setup(name: str) -> None:
        ids.clear()
        if name == "counter":
            return
        for i in range(n):
            value, confidence = PAIRS[i & 1023]
            with monitor.predict() as p:
                p.record(value, confidence)
            ids.append(p.id)

    def label_loop(count: int) -> None:
        record_label = monitor.record_label
        for i in range(count):
            record_label(ids[i], PAIRS[(i + 1) & 1023][0])

    def outcome_loop(kind: str, value: float) -> Callable[[int], None]:
        def loop(count: int) -> None:
            record_outcome = monitor.record_outcome
            for i in range(count):
                record_outcome(ids[i], kind, value)

        return loop

    def loop_counter(count: int) -> None:
        add, attributes = bare.labels.add, bare.matched
        for _ in range(count):
            add(1, attributes)

    loops = {
        "record_label": label_loop,
        "outcome": outcome_loop("revenue", 12.5),
        "outcome_score": outcome_loop("rating", 4),
        "counter": loop_counter,
        "yardstick": loop_yardstick,
    }
    interleaved(loops, n, 1, setup=setup)
    t = interleaved(loops, n, rounds, setup=setup)
    providers.shutdown()
    bare_providers.shutdown()
    return [*_label_rows(t), *_outcome_rows(t)]


def _outcome_rows(t: dict[str, list[float]]) -> list[Row]:
    """``record_outcome`` against ``record_label``, same rounds (issue 16)."""
    summed = median_ratio(t["outcome"], t["record_label"])
    score = median_ratio(t["outcome_score"], t["record_label"])
    return [
        Row(
            "Labels and quality",
            "ModelMonitor.record_outcome, summed kind (revenue)",
            best(t["outcome"]) * _US,
            "us/outcome",
            summed,
            "<= 1.00x",
            summed <= 1.0,
            "over record_label, same rounds: verify the id, count and sum for the version that "
            "made the prediction (ObservableCounter)",
        ),
        Row(
            "Labels and quality",
            "ModelMonitor.record_outcome, score kind (rating)",
            best(t["outcome_score"]) * _US,
            "us/outcome",
            score,
            note="over record_label, same rounds: the score goes through the SDK's "
            "Histogram.record (a distribution: no observable histogram in OpenTelemetry)",
        ),
    ]


def _label_rows(t: dict[str, list[float]]) -> list[Row]:
    ratio, met = yardstick_target(t, "record_label", 5)
    return [
        Row(
            "Labels and quality",
            "bare OTel Counter.add (the label count alone)",
            best(t["counter"]) * _US,
            "us/label",
            1.0,
            note="3 attributes",
        ),
        Row(
            "Labels and quality",
            "ModelMonitor.record_label, matched",
            best(t["record_label"]) * _US,
            "us/label",
            median_ratio(t["record_label"], t["counter"]),
            note="verify the signed id (base64url, keyed BLAKE2b), count the confusion-matrix "
            "cell for the ObservableCounter; a replayed id counts once; seed: ~5,800 us",
        ),
        Row(
            "Labels and quality",
            "ModelMonitor.record_label over the yardstick",
            "-",
            ratio=ratio,
            target=f"<= 5 us: <= {5 / YARDSTICK_US:.2f}x",
            met=met,
            note=f"keyed BLAKE2b-64 of 28 bytes, same rounds: {best(t['yardstick']) * _US:.2f} us "
            f"here, {YARDSTICK_US} us on issue 18's machine",
        ),
    ]


def quality_rows() -> list[Row]:
    labels = 10_000
    n, rounds = (2, 2) if quick() else (20, 7)
    rng = random.Random(5)
    providers = Providers()
    monitor = ModelMonitor(MODEL, version=VERSION, trace=False, **providers.kwargs)
    for _ in range(labels):  # 10 classes: a confusion matrix of up to 100 cells
        y = rng.randrange(10)
        with monitor.predict() as pred:
            pred.record(y if rng.random() < 0.8 else rng.randrange(10))
        monitor.record_label(pred.id, y)

    def loop_collect(count: int) -> None:
        for _ in range(count):
            with monitor.predict() as pred:
                pred.record(1)
            monitor.record_label(pred.id, 1)
            providers.collect()

    interleaved({"collect": loop_collect}, n, 1)
    t = interleaved({"collect": loop_collect}, n, rounds)
    providers.shutdown()
    return [
        Row(
            "Labels and quality",
            f"metric reader collect, {labels:,} labels of 10 classes",
            best(t["collect"]) * 1e-6,
            "ms/collection",
            note="whole collection of one monitor; quality is counted, nothing computed",
        )
    ]


def main() -> list[Row]:
    return label_rows() + quality_rows()


if __name__ == "__main__":
    from bench.__main__ import table

    print(table([row.as_dict() for row in main()]))
