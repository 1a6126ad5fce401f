"""The prepared reference, and scoring against it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from otel_mlmon.drift import statistics
from otel_mlmon.drift.encoding import Schema
from otel_mlmon.drift.reference import Reference, evaluate
from otel_mlmon.exceptions import ConfigurationError

THRESHOLDS = {name: m.default_threshold for name, m in statistics.METHODS.items()}
ALL = tuple(statistics.METHODS)


def _numeric_reference(columns: np.ndarray) -> Reference:
    names = tuple(f"x{i}" for i in range(columns.shape[1]))
    return Reference.from_matrix(Schema.build(names, [False] * len(names), 10), columns, 10)


def test_scores_equal_scipy_on_the_same_columns() -> None:
    rng = np.random.default_rng(5)
    reference_data, current = rng.normal(size=(800, 2)), rng.normal(0.3, size=(300, 2))
    scores = {
        (s.feature, s.method): s.score
        for s in evaluate(_numeric_reference(reference_data), current, ALL, THRESHOLDS)
    }
    for i in range(2):
        ks = stats.ks_2samp(reference_data[:, i], current[:, i]).statistic
        en = 800 * 300 / 1100
        assert stats.kstwobign.sf(math.sqrt(en) * ks) == pytest.approx(
            scores[(f"x{i}", "ks")], abs=1e-9
        )
        wasserstein = stats.wasserstein_distance(reference_data[:, i], current[:, i])
        assert wasserstein / np.std(reference_data[:, i]) == pytest.approx(
            scores[(f"x{i}", "wasserstein")], abs=1e-9
        )
        edges = np.unique(np.quantile(reference_data[:, i], np.linspace(0, 1, 11)[1:-1]))
        bins = np.concatenate([[-np.inf], edges, [np.inf]])
        # (a, b] bins: histogram of the negated values on the negated edges
        reference_counts = np.histogram(-reference_data[:, i], -bins[::-1])[0][::-1]
        current_counts = np.histogram(-current[:, i], -bins[::-1])[0][::-1]
        assert jensenshannon(reference_counts, current_counts, base=2) == pytest.approx(
            scores[(f"x{i}", "jensen_shannon")], abs=1e-9
        )
        assert statistics.psi(reference_counts, current_counts) == pytest.approx(
            scores[(f"x{i}", "psi")], abs=1e-9
        )


def test_missing_values_are_skipped_per_feature_and_min_samples_applies() -> None:
    rng = np.random.default_rng(1)
    reference = _numeric_reference(rng.normal(size=(200, 2)))
    current = rng.normal(size=(100, 2))
    current[:60, 1] = np.nan
    current[60:70, 1] = np.inf
    scores = evaluate(reference, current, ("ks",), THRESHOLDS, min_samples=50)
    assert [(s.feature, s.samples) for s in scores] == [("x0", 100)]
    scores = evaluate(reference, current, ("ks",), THRESHOLDS, min_samples=30)
    assert [(s.feature, s.samples) for s in scores] == [("x0", 100), ("x1", 30)]


def test_constant_reference_gets_every_method_but_wasserstein() -> None:
    reference = _numeric_reference(np.zeros((100, 1)))
    scores = evaluate(reference, np.ones((100, 1)), ALL, THRESHOLDS)
    assert {"ks", "psi", "jensen_shannon"} == {s.method for s in scores}
    assert all(s.drifted for s in scores)


def test_unseen_categories_count_as_their_own_categories() -> None:
    schema = Schema.build(("c",), (True,), 100)
    encoder = schema.encoders[0]
    assert encoder is not None
    reference_values = ["a"] * 60 + ["b"] * 40
    reference = Reference.from_matrix(
        schema, np.array([[encoder.code(v)] for v in reference_values]), 10
    )
    current_values = ["a"] * 30 + ["b"] * 30 + ["new"] * 40
    current = np.array([[encoder.code(v)] for v in current_values])
    scores = {s.method: s.score for s in evaluate(reference, current, ALL, THRESHOLDS)}
    table = np.array([[60, 40, 0], [30, 30, 40]])
    assert stats.chi2_contingency(table).pvalue == pytest.approx(scores["chi_square"], abs=1e-9)
    assert jensenshannon(table[0], table[1], base=2) == pytest.approx(
        scores["jensen_shannon"], abs=1e-9
    )


def test_reference_without_usable_values_raises() -> None:
    with pytest.raises(ConfigurationError):
        _numeric_reference(np.full((10, 1), np.nan))
    with pytest.raises(ConfigurationError):
        _numeric_reference(np.empty((0, 1)))


def test_jensen_shannon_pools_categories_smaller_than_a_bin_into_one_cell() -> None:
    schema = Schema.build(("c",), (True,), 100)
    encoder = schema.encoders[0]
    assert encoder is not None
    sizes = [300, 200, 150, 40, 30, 20, 10]
    labels = [f"k{i}" for i in range(len(sizes))]
    reference_values = [
        label for label, size in zip(labels, sizes, strict=True) for _ in range(size)
    ]
    current_values = [label for label in labels for _ in range(25)] + ["unseen"] * 30
    reference = Reference.from_matrix(
        schema, np.array([[encoder.code(v)] for v in reference_values]), 4
    )
    current = np.array([[encoder.code(v)] for v in current_values])
    scores = {s.method: s.score for s in evaluate(reference, current, ALL, THRESHOLDS)}
    # 4 bins: categories with at least 750/4 = 187.5 rows keep a cell (k0, k1); the rest,
    # unseen included, share one.
    reference_cells = [300, 200, 250]
    current_cells = [25, 25, 25 * 5 + 30]
    assert jensenshannon(reference_cells, current_cells, base=2) == pytest.approx(
        scores["jensen_shannon"], abs=1e-9
    )
    table = np.array([[*sizes, 0], [25] * len(sizes) + [30]])
    assert stats.chi2_contingency(table).pvalue == pytest.approx(scores["chi_square"], abs=1e-9)
