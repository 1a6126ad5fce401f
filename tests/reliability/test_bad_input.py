"""Fuzzed bad input (hypothesis): random shapes, dtypes, NaN, inf, None, huge and empty arrays,
strings, bytes and nested objects thrown at predict(features=...), record(...) and
record_label(...), with and without the drift processor. Nothing raises into the caller (and
under OTEL_MLMON_STRICT=true, the suite's default, no internal error happens either), every input
is accounted for: used, or counted as rejected by reason, every label counted once by outcome,
and nothing exported is negative or NaN; every drift score, threshold and flag is finite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from otel_mlmon import Classes, Drift, ModelMonitor, semconv
from otel_mlmon.drift import DriftConfig
from otel_mlmon.testing import InMemoryTelemetry

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_arrays = hnp.arrays(
    dtype=st.one_of(hnp.scalar_dtypes(), st.just(np.dtype(object))),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    elements=None,
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.complex_numbers(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.sampled_from([np.float32("nan"), np.int64(7), np.bool_(True), np.str_("x")]),
)
#: Anything a caller might hand over by mistake, nested a few levels.
anything = st.recursive(
    st.one_of(_scalars, _arrays),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=5), children, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=12,
)


def _sum(metrics: dict[str, Any], name: str, **attributes: str) -> float:
    """Sum of counter ``name`` (or count of histogram ``name``) over matching points."""
    metric = metrics.get(name)
    if metric is None:
        return 0.0
    return sum(
        getattr(point, "value", getattr(point, "count", 0))
        for point in metric.data.data_points
        if all(point.attributes.get(k) == v for k, v in attributes.items())
    )


def _snapshot(telemetry: InMemoryTelemetry) -> dict[str, float]:
    metrics = telemetry.metrics()  # one collection
    return {
        "predictions": _sum(metrics, semconv.ML_MODEL_PREDICTIONS),
        "confidences": _sum(metrics, semconv.ML_MODEL_PREDICTION_CONFIDENCE),
        "labels": _sum(metrics, semconv.ML_MODEL_LABELS),
        **{
            reason: _sum(
                metrics, semconv.ML_MONITOR_REJECTED_INPUTS, **{semconv.ML_REJECTION_REASON: reason}
            )
            for reason in semconv.REJECTION_REASONS
        },
    }


def _assert_nothing_negative_or_nan(telemetry: InMemoryTelemetry) -> None:
    for name, metric in telemetry.metrics().items():
        for point in metric.data.data_points:
            for field in ("value", "sum", "min", "max"):
                value = getattr(point, field, None)
                if value is not None:
                    assert math.isfinite(value), (name, field, value)
            if hasattr(point, "count") or name in semconv.FACTORIES:
                value = getattr(point, "value", getattr(point, "count", 0))
                if metric.name not in (semconv.ML_MODEL_LOAD_TIME,):
                    assert value >= 0, (name, value)


def _is_batch(value: object) -> bool:
    """The documented batch forms: a list, a tuple or an array of at least one dimension."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0)


def _no_class(prediction: object) -> bool:
    """What a classifier's monitor rejects as no class: None, NaN and infinities."""
    value = prediction.item() if isinstance(prediction, np.generic) else prediction
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def _rows(value: object) -> int:
    return len(value) if _is_batch(value) else 1  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def telemetry() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as providers:
        yield providers


_monitors: dict[tuple[int, str], ModelMonitor] = {}


def _monitor(telemetry: InMemoryTelemetry, task: str) -> ModelMonitor:
    """One monitor per task and telemetry: a new one per example would add callbacks to every
    collection and make the suite slow."""
    key = (id(telemetry), task)
    if key not in _monitors:
        _monitors[key] = ModelMonitor(f"fuzz-{task}", task=task, **telemetry.providers)  # type: ignore[arg-type]
    return _monitors[key]


#: The drift monitors' features: three numeric, one categorical in the "mixed" monitor.
DRIFT_NAMES = ("x0", "x1", "x2", "color")
#: Rows the drift window holds: more than the whole module appends, so that nothing written is
#: overwritten and the window's content is everything the fuzz got through (checked).
DRIFT_WINDOW = 20_000
DRIFT_MIN_SAMPLES = 5
DRIFT_REASONS = (
    semconv.REJECT_DRIFT_MISSING_VALUE,
    semconv.REJECT_DRIFT_NOT_NUMERIC,
    semconv.REJECT_DRIFT_WRONG_WIDTH,
    semconv.REJECT_DRIFT_INVALID_ROW,
)


#: One telemetry per drift monitor: a second monitor's observable gauges on one MeterProvider
#: are not reported (see test_two_monitors_on_one_meter_provider_both_report_their_gauges).
_drift_telemetry: dict[str, InMemoryTelemetry] = {}


def _drift_monitor(kind: str) -> tuple[ModelMonitor, InMemoryTelemetry]:
    """A monitor with feature and prediction drift, its window seeded with reference rows so
    that every collection computes every score: ``numeric`` (a regression model, numeric
    features as an array) or ``mixed`` (a classifier, rows as mappings with a categorical
    feature)."""
    if kind not in _drift_telemetry:
        telemetry = _drift_telemetry[kind] = InMemoryTelemetry()
        rng = np.random.default_rng(20261128)
        numbers = rng.normal(size=(200, 4))
        reference: object
        if kind == "numeric":
            reference, task, predictions = numbers, "regression", rng.normal(size=200)
        else:
            colors = rng.choice(["red", "green", "blue"], size=200)
            reference = [
                {"x0": a, "x1": b, "x2": c, "color": color}
                for (a, b, c, _), color in zip(numbers.tolist(), colors.tolist(), strict=True)
            ]
            task, predictions = "classification", rng.choice(["a", "b"], size=200)
        monitor = ModelMonitor(
            f"fuzz-drift-{kind}",
            task=task,  # type: ignore[arg-type]
            drift=Drift(
                feature_names=DRIFT_NAMES,
                reference=reference,
                predictions=predictions,
                config=DriftConfig(window=DRIFT_WINDOW, min_samples=DRIFT_MIN_SAMPLES),
            ),
            **telemetry.providers,  # type: ignore[arg-type]
        )
        seed = reference[:DRIFT_MIN_SAMPLES]  # type: ignore[index]
        with monitor.predict(features=seed) as p:
            p.record(predictions[:DRIFT_MIN_SAMPLES].tolist())
        _monitors[(id(telemetry), kind)] = monitor
    telemetry = _drift_telemetry[kind]
    return _monitors[(id(telemetry), kind)], telemetry


FEATURE_CONSUMERS: list[Callable[[InMemoryTelemetry], tuple[ModelMonitor, InMemoryTelemetry]]] = [
    lambda t: (_monitor(t, "classification"), t),
    lambda t: _drift_monitor("numeric"),
    lambda t: _drift_monitor("mixed"),
]


def _no_class(prediction: Any) -> bool:
    """None, NaN and infinities are rejected as classes (numpy scalars included)."""
    value = prediction.item() if isinstance(prediction, np.generic) else prediction
    return value is None or (isinstance(value, float) and not math.isfinite(value))


@pytest.mark.parametrize("task", ["classification", "regression", "other"])
@EXAMPLES
@given(prediction=anything, confidence=anything, features=anything)
def test_record_accounts_for_every_prediction_and_confidence(
    telemetry: InMemoryTelemetry, task: str, prediction: Any, confidence: Any, features: Any
) -> None:
    monitor = _monitor(telemetry, task)
    before = _snapshot(telemetry)
    with monitor.predict(features=features) as p:
        p.record(prediction, confidence)
        p.record(prediction, confidence)  # a second record is refused and counted, not raised
    after = _snapshot(telemetry)
    delta = {key: after[key] - before[key] for key in after}
    rows = _rows(prediction)

    assert 1 == delta[semconv.REJECT_RECORDED_TWICE]
    if task == "classification":
        # Each row is either counted under a class or rejected as invalid.
        assert rows == delta["predictions"] + delta[semconv.REJECT_PREDICTION_INVALID]
    else:
        assert rows == delta["predictions"]
        assert delta[semconv.REJECT_PREDICTION_INVALID] in (0, 1)
    if confidence is None:
        assert 0 == delta["confidences"] + delta[semconv.REJECT_CONFIDENCE_INVALID]
    elif not _is_batch(prediction):
        # A rejected classification carries its confidence away with it, uncounted twice.
        used = 0 if task == "classification" and _no_class(prediction) else 1
        assert used == delta["confidences"] + delta[semconv.REJECT_CONFIDENCE_INVALID]
    elif _is_batch(confidence) and len(confidence) == rows:
        assert rows == delta["confidences"] + delta[semconv.REJECT_CONFIDENCE_INVALID]
    else:
        assert 1 == delta[semconv.REJECT_CONFIDENCE_LENGTH]
    _assert_nothing_negative_or_nan(telemetry)


@pytest.mark.parametrize("task", ["classification", "regression", "other"])
@EXAMPLES
@given(
    prediction=anything,
    label=anything,
    foreign_id=anything,
    use_real_id=st.booleans(),
)
def test_record_label_counts_every_label_once_by_outcome(
    telemetry: InMemoryTelemetry,
    task: str,
    prediction: Any,
    label: Any,
    foreign_id: Any,
    use_real_id: bool,
) -> None:
    monitor = _monitor(telemetry, task)
    with monitor.predict() as p:
        p.record(prediction)
    before = _snapshot(telemetry)
    monitor.record_label(p.id if use_real_id else foreign_id, label)
    monitor.record_label(p.id, label)  # a replay of one id counts as a duplicate
    after = _snapshot(telemetry)
    # Each call counts one label, or one per row when a batch's id matches its labels.
    assert after["labels"] - before["labels"] in {2, 1 + _rows(prediction)}
    _assert_nothing_negative_or_nan(telemetry)


@pytest.mark.parametrize("consumer", range(len(FEATURE_CONSUMERS)))
@EXAMPLES
@given(features=anything)
def test_features_of_any_shape_never_raise(
    telemetry: InMemoryTelemetry, consumer: int, features: Any
) -> None:
    monitor, telemetry = FEATURE_CONSUMERS[consumer](telemetry)
    before = _snapshot(telemetry)
    with monitor.predict(features=features) as p:
        p.record("a", 0.5)
    after = _snapshot(telemetry)
    assert 1 == after["predictions"] - before["predictions"]
    _assert_nothing_negative_or_nan(telemetry)


def _drift_points(telemetry: InMemoryTelemetry, model: str) -> dict[str, list[Any]]:
    """Every ml.drift.* data point of ``model``, by metric name (one collection)."""
    return {
        name: [
            point
            for point in metric.data.data_points
            if point.attributes.get(semconv.ML_MODEL_NAME) == model
        ]
        for name, metric in telemetry.metrics().items()
        if name.startswith("ml.drift.")
    }


def _drift_rejections(telemetry: InMemoryTelemetry, model: str) -> dict[str, float]:
    metrics = telemetry.metrics()
    return {
        reason: _sum(
            metrics,
            semconv.ML_MONITOR_REJECTED_INPUTS,
            **{semconv.ML_MODEL_NAME: model, semconv.ML_REJECTION_REASON: reason},
        )
        for reason in DRIFT_REASONS
    }


def _non_finite_in_windows(monitor: ModelMonitor) -> int:
    """Values stored as missing (NaN, +-inf) in the feature and prediction windows."""
    drift = monitor._drift
    count = 0
    for stream in (drift._features, drift._predictions):
        rows, _ = stream.window.snapshot()
        assert len(rows) < DRIFT_WINDOW, "the window wrapped: make DRIFT_WINDOW larger"
        count += int(np.count_nonzero(~np.isfinite(rows)))
    return count


def _empty_batch(features: object) -> bool:
    """A batch of no rows: nothing to append and nothing to reject."""
    if isinstance(features, (list, tuple)):
        return len(features) == 0
    return isinstance(features, np.ndarray) and features.ndim == 2 and features.shape[0] == 0


@pytest.mark.parametrize("kind", ["numeric", "mixed"])
@EXAMPLES
@given(features=anything, prediction=anything)
def test_drift_accounts_for_every_row_and_exports_only_finite_values(
    kind: str, features: Any, prediction: Any
) -> None:
    monitor, telemetry = _drift_monitor(kind)
    model = monitor.name
    window = monitor._drift._features.window
    rows_before = len(window)
    before = _drift_rejections(telemetry, model)
    with monitor.predict(features=features) as p:
        p.record(prediction)
    points = _drift_points(telemetry, model)  # a collection: missing values are counted now
    after = _drift_rejections(telemetry, model)
    delta = {reason: after[reason] - before[reason] for reason in DRIFT_REASONS}

    # Each call either reached the window or was counted as a rejected row, by reason.
    appended = len(window) - rows_before
    rejected_rows = (
        delta[semconv.REJECT_DRIFT_WRONG_WIDTH] + delta[semconv.REJECT_DRIFT_INVALID_ROW]
    )
    assert appended + rejected_rows >= (0 if features is None or _empty_batch(features) else 1)
    # Every value stored as missing was counted once, as missing or as not a number.
    counted = after[semconv.REJECT_DRIFT_MISSING_VALUE] + after[semconv.REJECT_DRIFT_NOT_NUMERIC]
    assert _non_finite_in_windows(monitor) == counted
    # Scores of every feature and of the predictions are exported, and all are finite.
    scored = {p.attributes[semconv.ML_FEATURE_NAME] for p in points[semconv.ML_DRIFT_SCORE]}
    assert {*DRIFT_NAMES, semconv.PREDICTION_FEATURE} == scored
    for name, found in points.items():
        for point in found:
            assert math.isfinite(point.value), (name, dict(point.attributes), point.value)
            assert point.value >= 0, (name, dict(point.attributes), point.value)


def test_huge_and_empty_batches_are_counted_exactly(telemetry: InMemoryTelemetry) -> None:
    monitor = _monitor(telemetry, "classification")
    before = _snapshot(telemetry)
    huge = np.zeros(20_000, dtype=np.int64)
    with monitor.predict(features=np.ones((20_000, 4))) as p:
        p.record(huge, np.full(20_000, 0.5))
    with monitor.predict(features=np.empty((0, 4))) as p:
        p.record(np.empty(0), np.empty(0))
    after = _snapshot(telemetry)
    assert 20_000 == after["predictions"] - before["predictions"]
    assert 20_000 == after["confidences"] - before["confidences"]
    _assert_nothing_negative_or_nan(telemetry)


class _Hostile:
    """An object every one of whose protocols raises."""

    def _boom(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("hostile")

    __hash__ = __eq__ = __str__ = __repr__ = __len__ = __iter__ = __float__ = _boom  # type: ignore[assignment]
    __bool__ = __index__ = __int__ = __lt__ = __format__ = _boom  # type: ignore[assignment]


def _record_scalar(monitor: ModelMonitor) -> None:
    with monitor.predict(features=_Hostile()) as p:
        p.record(_Hostile(), _Hostile())


def _record_batch(monitor: ModelMonitor) -> None:
    with monitor.predict(features=[_Hostile()]) as p:
        p.record([_Hostile(), 1], [_Hostile(), 0.5])


@pytest.mark.parametrize(
    "call",
    [
        _record_scalar,
        _record_batch,
        lambda m: m.record_label(_Hostile(), _Hostile()),
        lambda m: m.record_label("0" * 16, [_Hostile()]),
    ],
    ids=["record-scalar", "record-batch", "label-id", "label-batch"],
)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_objects_whose_every_method_raises_never_reach_the_caller(
    telemetry: InMemoryTelemetry,
    monkeypatch: pytest.MonkeyPatch,
    task: str,
    call: Callable[[ModelMonitor], object],
) -> None:
    # Production mode: an internal error is logged once and swallowed, never raised.
    monkeypatch.setenv("OTEL_MLMON_STRICT", "false")
    monitor = _monitor(telemetry, task)
    call(monitor)
    _assert_nothing_negative_or_nan(telemetry)


def test_nan_predictions_do_not_use_up_the_class_budget(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor("nan-budget", classes=Classes(limit=5), **telemetry.providers)
    for _ in range(10):
        with monitor.predict() as p:
            p.record(float("nan"))
    with monitor.predict() as p:
        p.record("cat")
    classes = {
        point.attributes[semconv.ML_PREDICTION_CLASS]
        for point in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
        if point.attributes[semconv.ML_MODEL_NAME] == "nan-budget"
    }
    assert {"cat"} == classes
    assert 10 == _rejected_for(telemetry, "nan-budget", semconv.REJECT_PREDICTION_INVALID)


def test_none_rows_of_a_batch_are_rejected_like_a_none_scalar(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("none-rows", **telemetry.providers)
    with monitor.predict() as p:
        p.record(["a", None, None])
    classes = {
        point.attributes[semconv.ML_PREDICTION_CLASS]: point.value
        for point in telemetry.metric_points(semconv.ML_MODEL_PREDICTIONS)
        if point.attributes[semconv.ML_MODEL_NAME] == "none-rows"
    }
    assert {"a": 1} == classes
    assert 2 == _rejected_for(telemetry, "none-rows", semconv.REJECT_PREDICTION_INVALID)


def _rejected_for(telemetry: InMemoryTelemetry, model: str, reason: str) -> float:
    return _sum(
        telemetry.metrics(),
        semconv.ML_MONITOR_REJECTED_INPUTS,
        **{semconv.ML_MODEL_NAME: model, semconv.ML_REJECTION_REASON: reason},
    )


def test_a_0d_array_in_a_batch_is_a_rejected_row(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_MLMON_STRICT", "false")  # production mode: nothing may escape
    monitor = ModelMonitor(
        "zero-d",
        drift=Drift(feature_names=["a", "b"], reference=np.zeros((10, 2))),
        **telemetry.providers,
    )
    with monitor.predict(features=([1.0, 2.0], np.array(3.0))) as p:
        p.record("x")
    assert 1 == _rejected_for(telemetry, "zero-d", semconv.REJECT_DRIFT_INVALID_ROW)


def test_two_monitors_on_one_meter_provider_both_report_their_gauges() -> None:
    telemetry = InMemoryTelemetry()  # of its own: the module's has the fuzz monitors on it
    reference = np.random.default_rng(1).normal(size=(100, 2))
    monitors = []  # alive to the end: a collected monitor stops reporting, by design
    for name in ("first", "second"):
        monitor = ModelMonitor(
            name,
            drift=Drift(
                feature_names=["a", "b"],
                reference=reference,
                config=DriftConfig(window=100, min_samples=5),
            ),
            **telemetry.providers,
        )
        with monitor.predict(features=reference[:10]) as p:
            p.record([1] * 10)
        monitors.append(monitor)
    for gauge in (semconv.ML_MODEL_INFO, semconv.ML_DRIFT_WINDOW_SAMPLES, semconv.ML_DRIFT_SCORE):
        models = {
            point.attributes[semconv.ML_MODEL_NAME] for point in telemetry.metric_points(gauge)
        }
        assert {"first", "second"} == models, gauge


def test_a_batch_of_ragged_predictions_is_counted_as_not_numeric(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_MLMON_STRICT", "false")  # production mode, as for the 0-d case
    monitor = ModelMonitor(
        "ragged",
        task="regression",
        drift=Drift(predictions=np.random.default_rng(1).normal(size=50)),
        **telemetry.providers,
    )
    with monitor.predict() as p:
        p.record([np.zeros(2), np.zeros((2, 2))])  # numpy cannot make one object array of these
    assert 2 == _rejected_for(telemetry, "ragged", semconv.REJECT_DRIFT_NOT_NUMERIC)
