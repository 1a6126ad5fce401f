"""Fleet drift in one process: the per-bin counters and reference gauges a backend sums.

The counts sit on the bins in-process PSI and Jensen-Shannon use, so PSI and JS computed from
the exported series alone equal the processor's scores on the same rows; every bin exists at
zero from the start; counting happens per block of rows, never per append.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from otel_mlmon import Drift, ModelMonitor, semconv
from otel_mlmon.drift import DriftConfig, statistics
from otel_mlmon.drift.bins import MISSING_BIN, LiveBins
from otel_mlmon.drift.config import DEFAULT_MAX_FLEET_FEATURES
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.testing import InMemoryTelemetry

NAMES = ["x0", "x1", "x2", "x3"]


def _series(telemetry: InMemoryTelemetry, name: str) -> dict[tuple[str, str, str], float]:
    """Values by (version, feature, bin)."""
    found = {}
    for point in telemetry.metric_points(name):
        a = telemetry.attributes_of(point)
        key = (a[semconv.ML_MODEL_VERSION], a[semconv.ML_FEATURE_NAME], a[semconv.ML_DRIFT_BIN])
        found[key] = point.value
    return found


def _by_feature(series: dict[tuple[str, str, str], float]) -> dict[str, dict[str, float]]:
    grouped: dict[str, dict[str, float]] = defaultdict(dict)
    for (_, feature, bin_label), value in series.items():
        grouped[feature][bin_label] = value
    return grouped


def _cells(bins: dict[str, float]) -> np.ndarray:
    """The usable bins in index order (the missing bin left out)."""
    return np.array([bins[str(i)] for i in range(len(bins) - 1)])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)


def _monitor(telemetry: InMemoryTelemetry, reference: Any, **config: Any) -> ModelMonitor:
    names = list(reference.columns) if hasattr(reference, "columns") else NAMES
    settings = DriftConfig(**{"window": 1_000, "min_samples": 100, **config})
    return ModelMonitor(
        "m",
        version="1",
        drift=Drift(feature_names=names, reference=reference, config=settings),
        **telemetry.providers,
    )


def test_every_bin_exists_at_zero_before_any_traffic(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)))
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))
    assert set(NAMES) == set(live)
    assert {f: [*map(str, range(10)), MISSING_BIN] for f in NAMES} == {
        f: sorted(bins, key=lambda b: (b == MISSING_BIN, int(b) if b.isdigit() else 0))
        for f, bins in live.items()
    }
    assert {0.0} == {v for bins in live.values() for v in bins.values()}
    below = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES_AT_OR_BELOW))
    assert {f: 10 for f in NAMES} == {f: len(bins) for f, bins in below.items()}
    del monitor  # held until here: the provider holds monitors weakly


def test_psi_and_js_from_the_exported_series_equal_the_processors_scores(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(2_000, 4)))
    rows = rng.normal(size=(800, 4))
    rows[:, 2] += 0.5
    rows[::50, 1] = np.nan  # missing values: their own bin, outside PSI and JS
    for row in rows[:300]:
        monitor._drift.append(row)
    monitor._drift.append(rows[300:])
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))
    reference = _by_feature(_series(telemetry, semconv.ML_DRIFT_REFERENCE_VALUES))
    scores = {(s.feature, s.method): s.score for s in monitor._drift.scores()}
    for feature in NAMES:
        q, p = _cells(live[feature]), _cells(reference[feature])
        assert scores[(feature, "psi")] == pytest.approx(statistics.psi(p, q), rel=1e-12)
        assert scores[(feature, "jensen_shannon")] == pytest.approx(
            statistics.jensen_shannon_distance(p, q), rel=1e-12
        )
    assert 16.0 == live["x1"][MISSING_BIN]
    assert (800.0, 2_000.0) == (sum(live["x0"].values()), sum(reference["x0"].values()))
    cumulative = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES_AT_OR_BELOW))
    assert np.cumsum(_cells(live["x1"])).tolist() == [cumulative["x1"][str(i)] for i in range(10)]


def test_categorical_features_count_on_the_jensen_shannon_cells(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    import pandas as pd

    colours = ["red"] * 50 + ["blue"] * 30 + [f"rare{i}" for i in range(20)]
    reference = pd.DataFrame({"colour": rng.choice(colours, 1_000), "x": rng.normal(size=1_000)})
    monitor = _monitor(telemetry, reference)
    monitor._drift.append(
        pd.DataFrame({"colour": ["red", "blue", "rare3", "never-seen", None], "x": [0.0] * 5})
    )
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))["colour"]
    # red and blue hold >= 1/10 of the reference: a cell each; every other category, the
    # unseen one included, shares the last cell; None is missing.
    assert ([1.0, 1.0], 2.0, 1.0) == (sorted([live["0"], live["1"]]), live["2"], live[MISSING_BIN])
    assert {"0", "1", "2", MISSING_BIN} == set(live)
    below = _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES_AT_OR_BELOW)
    assert set() == {k for k in below if k[1] == "colour"}  # no order, no binned KS

    monitor._drift.append(pd.DataFrame({"colour": rng.choice(colours[30:], 300), "x": 0.0}))
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))["colour"]
    shares = _by_feature(_series(telemetry, semconv.ML_DRIFT_REFERENCE_VALUES))["colour"]
    score = next(s.score for s in monitor._drift.scores()
                 if (s.feature, s.method) == ("colour", "jensen_shannon"))  # fmt: skip
    assert score == pytest.approx(
        statistics.jensen_shannon_distance(_cells(shares), _cells(live)), rel=1e-12
    )


def test_rows_are_counted_per_block_never_per_append(
    monkeypatch: pytest.MonkeyPatch, telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    calls: list[int] = []
    original = LiveBins.count

    def counting(self: LiveBins, rows: np.ndarray) -> None:
        calls.append(rows.shape[0])
        original(self, rows)

    monkeypatch.setattr(LiveBins, "count", counting)
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)), window=100, min_samples=50)
    for row in rng.normal(size=(250, 4)):
        monitor._drift.append(row)
    assert [] == calls  # the window holds fleet_buffer (4) windows: counted at collection
    telemetry.metrics()
    assert [250] == calls  # one block, once for both counters
    for row in rng.normal(size=(450, 4)):
        monitor._drift.append(row)
    # The 400 rows that waited are counted before their slots are reused: in one block, or
    # two where they wrap around the ring's end.
    assert (400, True) == (sum(calls[1:]), len(calls[1:]) <= 2)
    telemetry.metrics()
    assert 50 == calls[-1]


def test_a_new_model_version_starts_its_series_at_zero(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)))
    monitor._drift.append(rng.normal(size=(40, 4)))
    assert 40.0 == sum(_by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))["x0"].values())
    monitor._drift.append(rng.normal(size=(5, 4)))
    monitor.update_model("2")
    monitor._drift.append(rng.normal(size=(7, 4)))
    versions = {k[0] for k in _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)}
    current = {k: v for k, v in _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES).items()
               if k[0] == "2" and k[1] == "x0"}  # fmt: skip
    assert "2" in versions
    assert 7.0 == sum(current.values())


def test_a_new_reference_gets_a_new_id_and_fresh_counts(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)))
    monitor._drift.append(rng.normal(size=(30, 4)))

    def ids() -> set[str]:
        return {
            telemetry.attributes_of(p)[semconv.ML_DRIFT_REFERENCE_ID]
            for p in telemetry.metric_points(semconv.ML_DRIFT_LIVE_VALUES)
            if telemetry.attributes_of(p)[semconv.ML_FEATURE_NAME] == "x0"
        }

    before = ids()
    monitor.set_reference(rng.normal(2.0, size=(1_000, 4)))
    after = ids()
    assert 1 == len(before) == len(after) and before != after
    assert 0.0 == sum(_by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))["x0"].values())


def test_the_reference_id_is_the_same_for_the_same_reference_in_another_monitor(
    rng: np.random.Generator,
) -> None:
    reference = rng.normal(size=(1_000, 4))
    found = []
    for _ in range(2):
        with InMemoryTelemetry() as telemetry:
            monitor = _monitor(telemetry, reference.copy())
            found.append({
                telemetry.attributes_of(p)[semconv.ML_DRIFT_REFERENCE_ID]
                for p in telemetry.metric_points(semconv.ML_DRIFT_REFERENCE_VALUES)
            })  # fmt: skip
            del monitor  # held until here: the provider holds monitors weakly
    assert found[0] == found[1]
    assert 4 == len(found[0])


def test_fleet_features_limits_the_series(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)), fleet_features=("x1",))
    assert {"x1"} == {k[1] for k in _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)}
    del monitor  # held until here: the provider holds monitors weakly


def test_no_fleet_features_no_series(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)), fleet_features=())
    # Its drift thresholds report while its fleet series stay absent: the monitor is alive.
    assert 4 == len(telemetry.metric_points(semconv.ML_DRIFT_THRESHOLD))
    assert {} == _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)
    del monitor  # held until here: the provider holds monitors weakly


def test_an_unknown_fleet_feature_fails_at_construction(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    with pytest.raises(ConfigurationError, match="fleet_features: 'nope' is not a feature"):
        _monitor(telemetry, rng.normal(size=(1_000, 4)), fleet_features=("nope",))


def test_many_features_are_bounded_by_default_with_one_warning(
    telemetry: InMemoryTelemetry, rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    width = DEFAULT_MAX_FLEET_FEATURES + 8
    reference = pd.DataFrame(rng.normal(size=(500, width)), columns=[f"f{i}" for i in range(width)])
    with caplog.at_level(logging.WARNING):
        monitor = _monitor(telemetry, reference)
    exported = {k[1] for k in _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)}
    assert {f"f{i}" for i in range(DEFAULT_MAX_FLEET_FEATURES)} == exported
    assert 1 == caplog.text.count("fleet-drift counters cover the first 32 of 40 features")
    del monitor  # held until here: the provider holds monitors weakly


def test_predictions_are_counted_too(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m", version="1", task="regression", drift=Drift(predictions=rng.normal(size=1_000)),
        **telemetry.providers,
    )  # fmt: skip
    for value in rng.normal(size=25):
        with monitor.predict() as p:
            p.record(float(value))
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))
    assert 25.0 == sum(live[semconv.PREDICTION_FEATURE].values())


def test_a_learned_reference_counts_from_when_it_is_known(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = ModelMonitor(
        "m", version="1",
        drift=Drift(feature_names=NAMES,
                    config=DriftConfig(window=200, min_samples=50, learn_reference_from=100)),
        **telemetry.providers,
    )  # fmt: skip
    monitor._drift.append(rng.normal(size=(60, 4)))
    assert {} == _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)  # no reference, no bins
    monitor._drift.append(rng.normal(size=(40, 4)))  # the reference is complete
    learned = _series(telemetry, semconv.ML_DRIFT_LIVE_VALUES)  # the collection learns it
    assert (44, {0.0}) == (len(learned), set(learned.values()))
    monitor._drift.append(rng.normal(size=(30, 4)))
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))
    assert 30.0 == sum(live["x0"].values())


def test_a_forked_child_starts_from_zero(
    telemetry: InMemoryTelemetry, rng: np.random.Generator
) -> None:
    monitor = _monitor(telemetry, rng.normal(size=(1_000, 4)))
    monitor._drift.append(rng.normal(size=(40, 4)))
    telemetry.metrics()
    monitor._drift.append(rng.normal(size=(3, 4)))  # written, not yet counted: the parent's
    monitor._drift.reset_after_fork()  # what the child runs after fork
    monitor._drift.append(rng.normal(size=(2, 4)))
    live = _by_feature(_series(telemetry, semconv.ML_DRIFT_LIVE_VALUES))
    assert 2.0 == sum(live["x0"].values())
