"""Business outcomes joined to predictions: attributed to the version that made them, summed
exactly, hostile kinds and values bounded and counted, never raised."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from otel_mlmon import ConfigurationError, ModelMonitor, semconv
from otel_mlmon.monitor import Labels, Outcomes
from otel_mlmon.testing import InMemoryTelemetry

KEY = "outcomes-share-this-key-0123456789"
OUTCOMES = Outcomes(kinds=("revenue", "click"), scores=("rating",), unit="{USD}")


@pytest.fixture(autouse=True)
def _no_key_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_MLMON_LABEL_KEY", KEY)
    monkeypatch.delenv("OTEL_MLMON_FLEET_VERSIONS", raising=False)


def _monitor(telemetry: InMemoryTelemetry, version: str = "1", **kwargs: Any) -> ModelMonitor:
    kwargs.setdefault("outcomes", OUTCOMES)
    return ModelMonitor("shop", version=version, trace=False, **telemetry.providers, **kwargs)


def _predict(monitor: ModelMonitor, value: object = 1) -> str:
    with monitor.predict() as p:
        p.record(value)
    return p.id


def _statuses(telemetry: InMemoryTelemetry) -> dict[tuple[str, str, str], float]:
    return telemetry.values_by(semconv.ML_MODEL_OUTCOMES, semconv.ML_MODEL_VERSION,
                               semconv.ML_OUTCOME_KIND, semconv.ML_OUTCOME_STATUS)  # fmt: skip


def _values(telemetry: InMemoryTelemetry) -> dict[tuple[str, str], float]:
    return {
        (point.attributes[semconv.ML_MODEL_VERSION], point.attributes[semconv.ML_OUTCOME_KIND]):
        point.value
        for point in telemetry.metric_points(semconv.ML_MODEL_OUTCOME_VALUE)
    }  # fmt: skip


def test_values_are_summed_by_kind_and_events_counted(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    first, second = _predict(monitor), _predict(monitor, 2)
    monitor.record_outcome(first, "revenue", 12.5)
    monitor.record_outcome(first, "revenue", 0.25)  # a second purchase: both count
    monitor.record_outcome(second, "revenue", 3)
    monitor.record_outcome(second, "click")

    assert {("1", "revenue"): 15.75} == _values(telemetry)
    assert {("1", "revenue", "matched"): 3, ("1", "click", "matched"): 1} == _statuses(telemetry)
    metric = telemetry.metrics()[semconv.ML_MODEL_OUTCOME_VALUE]
    assert "{USD}" == metric.unit


def test_scores_go_to_a_histogram_with_their_distribution(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    for rating in (5, 4, 4, 1):
        monitor.record_outcome(_predict(monitor), "rating", rating)

    (point,) = telemetry.metric_points(semconv.ML_MODEL_OUTCOME_SCORE)
    assert (4, 14.0, 1, 5) == (point.count, point.sum, point.min, point.max)
    assert {"ml.model.name": "shop", "ml.model.version": "1", "ml.outcome.kind": "rating"} == dict(
        point.attributes
    )
    by_bound = dict(zip(point.explicit_bounds, point.bucket_counts, strict=False))
    assert (1, 0, 0, 2, 1) == tuple(by_bound[b] for b in (1, 2, 3, 4, 5))
    assert {("1", "rating", "matched"): 4} == _statuses(telemetry)


def test_an_outcome_counts_for_the_version_that_made_the_prediction(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry, version="1.0")
    old = _predict(monitor)
    monitor.update_model("1.1")
    new = _predict(monitor)
    monitor.record_outcome(old, "revenue", 2.5)
    monitor.record_outcome(new, "revenue", 4)

    assert {("1.0", "revenue"): 2.5, ("1.1", "revenue"): 4} == _values(telemetry)


def test_a_fleet_version_served_elsewhere_joins_here(telemetry: InMemoryTelemetry) -> None:
    code = (
        "from otel_mlmon import ModelMonitor\n"
        "m = ModelMonitor('shop', version='2.0-canary', trace=False)\n"
        "with m.predict() as p:\n    p.record(1)\nprint(p.id)"
    )
    env = {"OTEL_MLMON_LABEL_KEY": KEY, "PATH": "/usr/bin:/bin"}
    canary_id = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
        timeout=60,
    ).stdout.strip()  # fmt: skip
    stable = _monitor(telemetry, "1.0", labels=Labels(fleet_versions=["1.0", "2.0-canary"]))
    alone = ModelMonitor("shop", version="1.0", trace=False, outcomes=OUTCOMES)
    stable.record_outcome(canary_id, "revenue", 7.5)
    stable.record_outcome(_predict(stable), "revenue", 1)
    stable.record_label(canary_id, 1)
    alone.record_outcome(canary_id, "revenue", 7.5)  # not told of the canary: invalid

    assert {("1.0", "revenue"): 1, ("2.0-canary", "revenue"): 7.5} == _values(telemetry)
    assert {("2.0-canary", "matched")} == {
        (p.attributes[semconv.ML_MODEL_VERSION], p.attributes[semconv.ML_LABEL_OUTCOME])
        for p in telemetry.metric_points(semconv.ML_MODEL_LABELS)
    }


def test_fleet_versions_come_from_the_environment(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_MLMON_FLEET_VERSIONS", " 1.0 , 1.1-RC1,,")
    canary = _monitor(telemetry, "1.1-RC1")
    stable = _monitor(telemetry, "1.0")
    stable.record_outcome(_predict(canary), "click")
    assert {("1.1-RC1", "click", "matched"): 1} == _statuses(telemetry)


HOSTILE_KINDS: list[Any] = ["k" * (1 << 20), "Revenue", "", None, 3, b"revenue", ["revenue"],
                            "revenue\n", "é"]  # fmt: skip
BAD_VALUES: list[Any] = [float("nan"), float("inf"), -1.0, -0.01, 1e10, 10**400, True, "12",
                         [1.0], {}, object(), np.float64("nan"), complex(1, 0)]  # fmt: skip


def test_hostile_kinds_and_values_are_counted_bounded_and_never_raise(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = _monitor(telemetry)
    prediction_id = _predict(monitor)
    for kind in HOSTILE_KINDS:
        monitor.record_outcome(prediction_id, kind, 1.0)
    for value in BAD_VALUES:
        monitor.record_outcome(prediction_id, "revenue", value)
    monitor.record_outcome(prediction_id, "rating")  # a score needs a value
    for prediction in ("x" * (1 << 20), None, 7, prediction_id[:-2], prediction_id + "AAAA"):
        monitor.record_outcome(prediction, "revenue", 1.0)  # type: ignore[arg-type]

    assert {
        ("1", "_OTHER", "unknown_kind"): len(HOSTILE_KINDS),
        ("1", "revenue", "bad_value"): len(BAD_VALUES),
        ("1", "rating", "bad_value"): 1,
        ("1", "revenue", "invalid"): 5,
    } == _statuses(telemetry)
    assert {} == _values(telemetry)
    attribute_values = {
        value for p in telemetry.metric_points(semconv.ML_MODEL_OUTCOMES)
        for value in p.attributes.values()
    }  # fmt: skip
    assert all(len(str(value)) <= 16 for value in attribute_values)


def test_numbers_of_every_kind_are_values(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    prediction_id = _predict(monitor)
    for value in (1, 0.5, np.float32(0.25), np.int64(2), Decimal("0.125"), Fraction(1, 8), 0):
        monitor.record_outcome(prediction_id, "revenue", value)  # type: ignore[arg-type]
    assert {("1", "revenue"): 4.0} == _values(telemetry)


def test_hostile_outcomes_keep_no_memory(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry)
    genuine = _predict(monitor)
    calls = [(f"id-{i}", f"kind-{i}", 1.0) for i in range(20)] + [
        (genuine, "revenue", float("nan")),
        (genuine[:-1], "click", None),
        (genuine, f"{'x' * 1000}", 1.0),
    ]
    for call in calls:
        monitor.record_outcome(*call)  # type: ignore[arg-type]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(200):
            for prediction_id, kind, value in calls:
                monitor.record_outcome(f"{prediction_id}{n}", f"{kind}{n}", value)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown


def test_an_old_prediction_expires(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor = _monitor(telemetry, labels=Labels(max_age=60))
    prediction_id = _predict(monitor)
    real_time = __import__("time").time
    monkeypatch.setattr("otel_mlmon.monitor.outcomes._time", lambda: real_time() + 61)
    monitor.record_outcome(prediction_id, "revenue", 5)
    assert {("1", "revenue", "expired"): 1} == _statuses(telemetry)


def test_without_declared_kinds_every_outcome_is_unknown(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, outcomes=None)
    monitor.record_outcome(_predict(monitor), "revenue", 5)
    assert {("1", "_OTHER", "unknown_kind"): 1} == _statuses(telemetry)
    assert semconv.ML_MODEL_OUTCOME_VALUE not in telemetry.metrics()


def test_a_second_unit_on_one_meter_provider_fails_fast(telemetry: InMemoryTelemetry) -> None:
    _monitor(telemetry)
    _monitor(telemetry, outcomes=Outcomes(kinds=("refund",), unit="{USD}"))
    with pytest.raises(ConfigurationError, match="one instrument has one unit"):
        _monitor(telemetry, outcomes=Outcomes(kinds=("revenue",), unit="{EUR}"))


@pytest.mark.parametrize(
    "arguments",
    [
        {"kinds": "revenue"},
        {"kinds": ("",)},
        {"kinds": ("has space",)},
        {"kinds": ("_OTHER",)},
        {"kinds": ("x" * 64,)},
        {"kinds": ("a",), "scores": ("a",)},
        {"kinds": tuple(f"k{i}" for i in range(33))},
        {"kinds": (1,)},
        {"unit": "US dollars"},
        {"unit": ""},
        {"max_value": 0},
        {"max_value": math.inf},
        {"max_value": True},
    ],
)
def test_invalid_outcome_declarations_fail_fast(arguments: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Outcomes(**arguments)


def test_fleet_versions_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigurationError):
        Labels(fleet_versions="1.0")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Labels(fleet_versions=[f"v{i}" for i in range(17)])
    with pytest.raises(ConfigurationError):
        ModelMonitor("shop", outcomes={"kinds": ["revenue"]})  # type: ignore[arg-type]
