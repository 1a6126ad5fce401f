"""Quality counters: the confusion matrix and error sums of one version, replays, retirement."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.metrics import CallbackOptions

from otel_mlmon import semconv
from otel_mlmon.monitor._attributes import ModelAttributes
from otel_mlmon.monitor.quality import RECENT_IDS, QualityCounts

OPTIONS = CallbackOptions()


def _labels(counts: QualityCounts) -> dict[tuple[Any, ...], float]:
    return {
        tuple(sorted(o.attributes.items())): o.value  # type: ignore[union-attr]
        for o in counts.observe_labels(OPTIONS)
    }


def _attributes(task: str = "classification", version: str = "1") -> ModelAttributes:
    return ModelAttributes("iris", version, task, 10)


def _matrix(counts: QualityCounts) -> dict[tuple[str, str], float]:
    return {
        (o.attributes[semconv.ML_PREDICTION_CLASS], o.attributes[semconv.ML_LABEL_CLASS]): o.value  # type: ignore[index]
        for o in counts.observe_labels(OPTIONS)
        if o.attributes and semconv.ML_LABEL_CLASS in o.attributes
    }


def test_matched_pairs_of_a_classifier_are_its_confusion_matrix() -> None:
    counts = QualityCounts(_attributes())
    counts.classes(b"a" * 8, [("cat", "cat")])
    counts.classes(b"b" * 8, [("cat", "dog"), ("dog", "dog"), ("cat", "cat")])
    counts.outcome(semconv.LABEL_INVALID)

    assert {("cat", "cat"): 2, ("cat", "dog"): 1, ("dog", "dog"): 1} == _matrix(counts)
    invalid = [
        o.value
        for o in counts.observe_labels(OPTIONS)
        if o.attributes and o.attributes[semconv.ML_LABEL_OUTCOME] == semconv.LABEL_INVALID
    ]
    assert [1] == invalid
    # A classifier reports matched labels only by class pair: their sum is the matched total.
    assert 4 == sum(_matrix(counts).values())


def test_a_replayed_id_counts_once_and_the_memory_of_ids_is_bounded() -> None:
    counts = QualityCounts(_attributes())
    counts.classes(b"first-id", [("1", "1")])
    counts.classes(b"first-id", [("1", "0")])
    for n in range(RECENT_IDS - 1):  # the first id is among the last RECENT_IDS matches
        counts.classes(n.to_bytes(8, "big"), [("1", "1")])
    counts.classes(b"first-id", [("1", "1")])
    for n in range(RECENT_IDS, 2 * RECENT_IDS):  # no longer
        counts.classes(n.to_bytes(8, "big"), [("1", "1")])
    counts.classes(b"first-id", [("1", "1")])  # forgotten by now: counted again (best effort)

    outcomes = {
        o.attributes[semconv.ML_LABEL_OUTCOME]: o.value  # type: ignore[index]
        for o in counts.observe_labels(OPTIONS)
        if o.attributes and semconv.ML_LABEL_CLASS not in o.attributes
    }
    assert {"duplicate": 2} == outcomes
    assert {("1", "1"): 2 * RECENT_IDS + 1} == _matrix(counts)
    assert len(counts._recent) + len(counts._older) <= 2 * RECENT_IDS


def test_regression_sums_absolute_and_squared_errors() -> None:
    counts = QualityCounts(_attributes("regression"))
    counts.errors(b"a" * 8, [-1.0, 0.0, 3.0])
    assert [4.0] == [o.value for o in counts.observe_absolute_error(OPTIONS)]
    assert [10.0] == [o.value for o in counts.observe_squared_error(OPTIONS)]
    assert [3] == [o.value for o in counts.observe_labels(OPTIONS)]


def test_a_classifier_reports_no_error_sums() -> None:
    counts = QualityCounts(_attributes())
    assert [] == list(counts.observe_absolute_error(OPTIONS))
    assert [] == list(counts.observe_squared_error(OPTIONS))


def test_a_new_version_starts_from_zero_and_the_old_series_stop() -> None:
    counts = QualityCounts(_attributes(version="1"))
    counts.classes(b"a" * 8, [("1", "1")])
    counts.start(_attributes(version="2"))
    counts.classes(b"a" * 8, [("1", "0")])  # the same MAC is new to the new version

    versions = {o.attributes[semconv.ML_MODEL_VERSION] for o in counts.observe_labels(OPTIONS)}  # type: ignore[index]
    assert {"2"} == versions
    assert {("1", "0"): 1} == _matrix(counts)


def test_eight_threads_lose_no_label() -> None:
    counts = QualityCounts(_attributes())
    barrier = threading.Barrier(8)

    def work(thread: int) -> None:
        barrier.wait()
        for n in range(2000):
            counts.classes(f"{thread}-{n}".encode(), [("1", "1")])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {("1", "1"): 16_000} == _matrix(counts)
