"""DriftProcessor through ModelMonitor: gauges, caching, transitions, bad input, references."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_mlmon import Drift, ModelMonitor, semconv
from otel_mlmon.drift import DriftConfig, DriftProcessor, processor
from otel_mlmon.drift.reference import evaluate
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.testing import InMemoryTelemetry

NAMES = [f"x{i}" for i in range(4)]


def _points(telemetry: InMemoryTelemetry, name: str) -> dict[tuple[str, ...], Any]:
    """Values of a metric by (feature, method) or (method,) or (reason,) attributes."""
    found = {}
    for point in telemetry.metric_points(name):
        attributes = telemetry.attributes_of(point)
        key = tuple(
            attributes[k]
            for k in (
                semconv.ML_FEATURE_NAME,
                semconv.ML_DRIFT_METHOD,
                semconv.ML_DRIFT_STATE,
                semconv.ML_REJECTION_REASON,
            )
            if k in attributes
        )
        found[key] = point.value
    return found


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)


@pytest.fixture
def monitor(telemetry: InMemoryTelemetry, rng: np.random.Generator) -> ModelMonitor:
    return ModelMonitor(
        "iris",
        version="1.0",
        drift=Drift(
            feature_names=NAMES,
            reference=rng.normal(size=(2_000, 4)),
            config=DriftConfig(window=300, min_samples=200),
        ),
        **telemetry.providers,
    )


def _feed(monitor: ModelMonitor, rows: np.ndarray) -> None:
    for row in rows:
        with monitor.predict(features=row) as p:
            p.record("a")


def test_every_feature_and_method_reports_a_score_with_model_attributes(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    _feed(monitor, rng.normal(size=(300, 4)))
    points = telemetry.metric_points(semconv.ML_DRIFT_SCORE)
    keys = {
        (
            telemetry.attributes_of(p)[semconv.ML_FEATURE_NAME],
            telemetry.attributes_of(p)[semconv.ML_DRIFT_METHOD],
        )
        for p in points
    }
    assert keys == {(f, m) for f in NAMES for m in ("ks", "psi", "jensen_shannon", "wasserstein")}
    for point in points:
        attributes = telemetry.attributes_of(point)
        assert (
            attributes[semconv.ML_MODEL_NAME],
            attributes[semconv.ML_MODEL_VERSION],
        ) == ("iris", "1.0")


def test_scores_are_those_of_evaluate_on_the_window(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    rows = rng.normal(size=(300, 4))
    _feed(monitor, rows)
    drift = monitor._drift
    stream = drift._features
    expected = {
        (s.feature, s.method): s.score
        for s in evaluate(stream.reference, rows, drift._methods, drift._thresholds, 200)
    }
    assert expected == _points(telemetry, semconv.ML_DRIFT_SCORE)


def test_nothing_is_scored_before_min_samples_but_thresholds_are_reported(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    _feed(monitor, rng.normal(size=(199, 4)))
    assert _points(telemetry, semconv.ML_DRIFT_SCORE) == {}
    assert _points(telemetry, semconv.ML_DRIFT_DETECTED) == {}
    assert (_points(telemetry, semconv.ML_DRIFT_THRESHOLD)) == {
        ("ks",): 0.01,
        ("psi",): 0.1,
        ("jensen_shannon",): 0.12,
        ("wasserstein",): 0.15,
    }
    assert [p.value for p in telemetry.metric_points(semconv.ML_DRIFT_WINDOW_SAMPLES)] == [199]


def test_a_shifted_feature_is_detected_and_the_others_are_not(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    rows = rng.normal(size=(300, 4))
    rows[:, 2] += 1.0
    _feed(monitor, rows)
    detected = _points(telemetry, semconv.ML_DRIFT_DETECTED)
    assert {k: 1 for k in detected if k[0] == "x2"} == {
        k: v for k, v in detected.items() if k[0] == "x2"
    }
    assert sum(v for k, v in detected.items() if k[0] != "x2") == 0


def test_scores_are_computed_once_per_window_change_across_gauges_and_readers(
    monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    calls = []
    original = processor.evaluate

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(processor, "evaluate", counting)
    readers = [InMemoryMetricReader(), InMemoryMetricReader()]
    provider = MeterProvider(metric_readers=readers)
    monitor = ModelMonitor(
        "m",
        drift=Drift(
            feature_names=NAMES,
            reference=rng.normal(size=(500, 4)),
            config=DriftConfig(window=100, min_samples=50),
        ),
        meter_provider=provider,
    )
    _feed(monitor, rng.normal(size=(100, 4)))
    for reader in readers:
        reader.get_metrics_data()
    assert len(calls) == 1
    _feed(monitor, rng.normal(size=(1, 4)))
    readers[0].get_metrics_data()
    assert len(calls) == 2
    provider.shutdown()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_transitions_emit_one_event_each_and_respect_the_cooldown(
    telemetry: InMemoryTelemetry, rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="otel_mlmon.events")
    clock = _Clock()
    meter = telemetry.meter_provider.get_meter("test")
    drift = DriftProcessor(
        meter,
        attributes=lambda: {semconv.ML_MODEL_NAME: "m", semconv.ML_MODEL_VERSION: "1"},
        feature_names=["x"],
        reference=rng.normal(size=(1_000, 1)),
        config=DriftConfig(window=200, min_samples=200, methods=("ks",), cooldown=60.0),
        clock=clock,
    )

    def collect(shift: float) -> None:
        drift.append(rng.normal(shift, size=(200, 1)))
        telemetry.metric_points(semconv.ML_DRIFT_SCORE)

    collect(2.0)  # into drift
    collect(2.0)  # drift persists: no event
    clock.now = 10.0
    collect(0.0)  # back, inside the cooldown: suppressed
    collect(2.0)
    clock.now = 100.0
    collect(0.0)  # back, after the cooldown
    drift_events = [r for r in caplog.records if r.getMessage() == semconv.EVENT_DRIFT_DETECTED]
    assert [getattr(r, semconv.ML_DRIFT_STATE) for r in drift_events] == ["drift", "no_drift"]
    first = drift_events[0]
    assert (
        getattr(first, semconv.ML_FEATURE_NAME),
        getattr(first, semconv.ML_DRIFT_METHOD),
        getattr(first, semconv.ML_MODEL_NAME),
        getattr(first, semconv.ML_MODEL_VERSION),
    ) == ("x", "ks", "m", "1")
    assert first.levelno == logging.WARNING
    assert _points(telemetry, semconv.ML_DRIFT_TRANSITIONS) == {
        ("x", "ks", "drift"): 1,
        ("x", "ks", "no_drift"): 1,
    }


def test_bad_input_is_counted_by_reason_and_never_raises(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor
) -> None:
    drift = monitor._drift
    drift.append([1.0, float("nan"), None, float("inf")])  # 3 missing values
    drift.append([1.0, "two", 3.0, 4.0])  # 1 not numeric
    drift.append(np.array([1.0, 2.0]))  # wrong width
    drift.append([[1.0, 2.0, 3.0, 4.0], [1.0]])  # one good row, one wrong width
    drift.append("x0=1")  # not a row
    drift.append(object())
    drift.append({"x0": 1.0, "x1": 2.0})  # absent keys: 2 missing values
    drift.append(np.array([[np.nan] * 4]))  # 4 missing values
    rejected = _points(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS)
    assert rejected == {
        (semconv.REJECT_DRIFT_MISSING_VALUE,): 9,
        (semconv.REJECT_DRIFT_NOT_NUMERIC,): 1,
        (semconv.REJECT_DRIFT_WRONG_WIDTH,): 2,
        (semconv.REJECT_DRIFT_INVALID_ROW,): 2,
    }
    assert drift.window_samples() == 5


def test_rows_as_mappings_frames_tuples_and_batches_all_reach_the_window(
    monitor: ModelMonitor,
) -> None:
    drift = monitor._drift
    drift.append({"x3": 4.0, "x2": 3.0, "x1": 2.0, "x0": 1.0})
    drift.append((1.0, 2.0, 3.0, 4.0))
    drift.append([{"x0": 1, "x1": 2, "x2": 3, "x3": 4}] * 2)
    drift.append(pd.DataFrame({"x3": [4.0], "x0": [1.0], "x1": [2.0], "x2": [3.0]}))
    drift.append(np.array([[1, 2, 3, 4]] * 3, dtype=np.int32))
    snapshot, _ = drift._features.window.snapshot()
    assert snapshot.tolist() == [[1.0, 2.0, 3.0, 4.0]] * 8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reference": np.empty((0, 4))},
        {"reference": []},
        {"reference": np.zeros((10, 4)), "feature_names": ["a"]},
        {"reference": np.zeros((10, 4)), "feature_names": ["a", "a", "b", "c"]},
        {"reference": np.full((10, 4), np.nan)},
        {"predictions": []},
        {"config": DriftConfig()},
    ],
)
def test_invalid_drift_configuration_raises_at_construction(
    telemetry: InMemoryTelemetry, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        ModelMonitor("m", drift=Drift(**kwargs), **telemetry.providers)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"min_samples": 0},
        {"window": 10, "min_samples": 11},
        {"methods": ("nope",)},
        {"methods": ()},
        {"thresholds": {"nope": 0.1}},
        {"thresholds": {"ks": float("nan")}},
        {"bins": 1},
        {"cooldown": -1},
        {"learn_reference_from": 0},
    ],
)
def test_invalid_drift_config_raises_a_value_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DriftConfig(**kwargs)


def test_set_reference_rescores_the_same_window(
    telemetry: InMemoryTelemetry, monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    rows = rng.normal(3.0, size=(300, 4))
    _feed(monitor, rows)
    assert all(v == 1 for v in _points(telemetry, semconv.ML_DRIFT_DETECTED).values())
    monitor.set_reference(pd.DataFrame(rng.normal(3.0, size=(2_000, 4)), columns=NAMES))
    assert sum(_points(telemetry, semconv.ML_DRIFT_DETECTED).values()) == 0
    with pytest.raises(ConfigurationError):
        monitor.set_reference(pd.DataFrame({"other": [1.0]}))


def test_reference_can_be_learned_from_the_first_rows(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        drift=Drift(
            feature_names=NAMES,
            config=DriftConfig(window=200, min_samples=200, learn_reference_from=1_000),
        ),
        **telemetry.providers,
    )
    _feed(monitor, rng.normal(size=(1_000, 4)))
    assert _points(telemetry, semconv.ML_DRIFT_SCORE) == {}
    shifted = rng.normal(size=(200, 4))
    shifted[:, 0] += 1.0
    _feed(monitor, shifted)
    detected = _points(telemetry, semconv.ML_DRIFT_DETECTED)
    assert detected[("x0", "ks")] == 1
    assert detected[("x1", "ks")] == 0


def test_prediction_drift_of_classes_and_model_update(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        version="1",
        drift=Drift(
            predictions=rng.choice(["a", "b"], size=1_000),
            config=DriftConfig(window=200, min_samples=100),
        ),
        **telemetry.providers,
    )
    for _ in range(50):
        with monitor.predict() as p:
            p.record(["a", "a", "c", "a"])  # "c" is unseen
    scores = _points(telemetry, semconv.ML_DRIFT_SCORE)
    assert {
        (semconv.PREDICTION_FEATURE, "chi_square"),
        (semconv.PREDICTION_FEATURE, "jensen_shannon"),
    } == set(scores)
    assert scores[(semconv.PREDICTION_FEATURE, "chi_square")] < 0.01
    monitor.update_model("2")
    assert _points(telemetry, semconv.ML_DRIFT_SCORE) == {}
    with monitor.predict() as p:
        p.record(np.array(["a", "b"] * 60))
    versions = {
        telemetry.attributes_of(p)[semconv.ML_MODEL_VERSION]
        for p in telemetry.metric_points(semconv.ML_DRIFT_SCORE)
    }
    assert {"2"} == versions


def test_regression_prediction_drift_is_numeric(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        task="regression",
        drift=Drift(
            predictions=rng.normal(size=1_000), config=DriftConfig(window=100, min_samples=100)
        ),
        **telemetry.providers,
    )
    for value in rng.normal(size=100):
        with monitor.predict() as p:
            p.record(float(value))
    methods = {k[1] for k in _points(telemetry, semconv.ML_DRIFT_SCORE)}
    assert {"ks", "psi", "jensen_shannon", "wasserstein"} == methods


def test_categorical_features_mix_with_numeric_ones(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    reference = [
        {"size": float(v), "colour": c}
        for v, c in zip(rng.normal(size=500), rng.choice(["red", "blue"], 500), strict=True)
    ]
    monitor = ModelMonitor(
        "m",
        drift=Drift(reference=reference, config=DriftConfig(window=100, min_samples=100)),
        **telemetry.providers,
    )
    for value in rng.normal(size=100):
        with monitor.predict(features={"size": value, "colour": "green"}) as p:
            p.record(1)
    detected = _points(telemetry, semconv.ML_DRIFT_DETECTED)
    assert detected[("colour", "chi_square")] == 1
    assert detected[("size", "ks")] == 0


def test_default_thresholds_hold_false_alarms_to_5_percent_and_catch_a_half_sd_shift(
    telemetry: InMemoryTelemetry,
) -> None:
    """Seeded, not timed: the claims of docs/drift.md at the default window and min_samples,
    with a reference of one window (bench/drift.py measures the same with more trials)."""
    rng = np.random.default_rng(7)
    features = [f"f{i}" for i in range(20)]
    config = DriftConfig()
    false_alarms: dict[str, int] = {}
    trials = 5
    for trial in range(trials):
        meter = telemetry.meter_provider.get_meter(f"trial{trial}")
        drift = DriftProcessor(
            meter,
            attributes=dict,
            feature_names=features,
            reference=rng.normal(size=(config.window, 20)),
            config=config,
        )
        drift.append(rng.normal(size=(config.min_samples, 20)))  # first scores: least data
        for score in drift.scores():
            false_alarms[score.method] = false_alarms.get(score.method, 0) + score.drifted
        shifted = rng.normal(size=(config.window, 20))
        shifted[:, 3] += 0.5
        drift.append(shifted)
        flagged = {s.method for s in drift.scores() if s.feature == "f3" and s.drifted}
        assert {"ks", "psi", "jensen_shannon", "wasserstein"} == flagged
    for method, count in false_alarms.items():
        assert count / (20 * trials) <= 0.05, method


def test_memory_of_the_window_does_not_grow_over_a_million_rows(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        drift=Drift(feature_names=NAMES, reference=rng.normal(size=(1_000, 4))),
        **telemetry.providers,
    )
    drift = monitor._drift
    nbytes = drift.window_nbytes()
    batch = rng.normal(size=(10_000, 4))
    drift.append(batch)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(99):
            drift.append(batch)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert nbytes == drift.window_nbytes()
    assert after - before < 64 * 1024
    assert drift.config.window == drift.window_samples()


def test_importing_the_package_imports_no_scipy_pandas_or_sklearn() -> None:
    code = (
        "import sys, otel_mlmon, otel_mlmon.drift; "
        "print(sorted(m for m in ('scipy', 'pandas', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_concurrent_appends_and_collections_lose_no_row_and_never_fail(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        drift=Drift(
            feature_names=NAMES,
            reference=rng.normal(size=(500, 4)),
            config=DriftConfig(window=50_000, min_samples=10),
        ),
        **telemetry.providers,
    )
    drift = monitor._drift
    rows = rng.normal(size=(2_000, 4))
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for row in rows:
                drift.append(row)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        drift.scores()
    for thread in threads:
        thread.join()
    assert errors == []
    assert drift.window_samples() == 8_000


def test_a_forked_child_gets_fresh_locks_and_keeps_working(
    monitor: ModelMonitor, rng: np.random.Generator
) -> None:
    drift = monitor._drift
    window = drift._features.window
    window._lock.acquire()  # as if another thread held it when the process forked
    monitor._reset_after_fork()
    drift.append(rng.normal(size=4))
    assert drift.window_samples() == 1


def test_numeric_predictions_count_text_and_missing_values(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m",
        task="regression",
        drift=Drift(
            predictions=rng.normal(size=100), config=DriftConfig(window=100, min_samples=1)
        ),
        **telemetry.providers,
    )
    drift = monitor._drift
    drift.append_predictions(np.array([0.1, np.nan, 0.3]))
    drift.append_predictions([0.5, None, "0.7", "high"])
    drift.append_predictions(0.9)
    drift.append_predictions("also text")
    assert _points(telemetry, semconv.ML_MONITOR_REJECTED_INPUTS) == {
        (semconv.REJECT_DRIFT_MISSING_VALUE,): 2,
        (semconv.REJECT_DRIFT_NOT_NUMERIC,): 2,
    }
    snapshot, _ = drift._predictions.window.snapshot()
    assert sorted(v for v in snapshot[:, 0].tolist() if v == v) == [0.1, 0.3, 0.5, 0.7, 0.9]
