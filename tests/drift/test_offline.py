"""Two tables, one verdict: Holm across features, the effect gate, the minimum sample size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from otel_mlmon.drift import offline
from otel_mlmon.drift.encoding import Schema
from otel_mlmon.drift.reference import Reference


def _reference(matrix: np.ndarray, categorical: tuple[bool, ...] | None = None) -> Reference:
    names = tuple(f"x{i}" for i in range(matrix.shape[1]))
    flags = categorical if categorical is not None else (False,) * len(names)
    return Reference.from_matrix(Schema.build(names, flags, 100), matrix, 10)


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running maximum.
    assert [0.03, 0.06, 0.06] == pytest.approx(offline.holm([0.01, 0.04, 0.03]).tolist())
    assert [1.0, 1.0] == offline.holm([0.7, 0.9]).tolist()


def test_ks_entry_reports_d_and_scipys_default_p_value() -> None:
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=(300, 1)), rng.normal(0.3, size=(200, 1))
    (result,) = offline.compare(_reference(reference), current).features
    expected = stats.ks_2samp(reference[:, 0], current[:, 0])
    assert ("ks", "exact") == (result.test, result.p_value_method)
    assert float(expected.statistic) == result.statistic
    assert float(expected.pvalue) == pytest.approx(result.p_value, rel=1e-9)


def test_one_test_per_feature_and_the_verdict_needs_holm_and_the_effect() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(2_000, 3))
    current = rng.normal(size=(2_000, 3))
    current[:, 1] += 1.0
    comparison = offline.compare(_reference(reference), current)
    assert 3 == comparison.tests
    assert ("x1",) == comparison.drifted
    # Holm by its definition: the i-th smallest of m p-values times (m - i), a running maximum
    # in that order, at most 1; each feature keeps its place.
    p_values = [r.p_value for r in comparison.features]
    order = sorted(range(3), key=lambda i: p_values[i])
    expected, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * p_values[i]))  # type: ignore[operator]
        expected[i] = running
    assert pytest.approx(expected, rel=1e-12) == [r.adjusted_p_value for r in comparison.features]


def test_a_significant_but_negligible_shift_of_a_large_table_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=(200_000, 1)), rng.normal(0.03, size=(200_000, 1))
    (result,) = offline.compare(_reference(reference), current).features
    assert result.adjusted_p_value is not None and result.adjusted_p_value < 1e-6
    assert result.effect is not None and result.effect < offline.DEFAULT_MIN_EFFECT
    assert not result.drifted
    (strict,) = offline.compare(_reference(reference), current, min_effect=0.0).features
    assert strict.drifted


@pytest.mark.parametrize("rows", [1, offline.MIN_TEST_VALUES - 1])
def test_too_few_values_are_never_drift_and_say_why(rows: int) -> None:
    reference = np.arange(500.0).reshape(-1, 1)
    current = np.full((rows, 1), 1e9)  # far outside the reference: still no verdict
    comparison = offline.compare(_reference(reference), current)
    (result,) = comparison.features
    assert (False, None, 0) == (comparison.drift, result.test, comparison.tests)
    value_word = "value" if rows == 1 else "values"
    assert f"not tested: {rows} usable {value_word} in CURRENT, at least 10 needed" == result.note
    row_word = "row" if rows == 1 else "rows"
    assert (
        f"CURRENT has {rows} {row_word}, fewer than 100: only large shifts can be detected "
        "(docs/drift.md, 'Sample size')",
        "none of the 1 features could be tested: no verdict of drift",
    ) == comparison.warnings


def test_small_tables_warn_at_the_documented_size() -> None:
    rng = np.random.default_rng(4)
    small = offline.SMALL_SAMPLE - 1
    comparison = offline.compare(_reference(rng.normal(size=(500, 1))), rng.normal(size=(small, 1)))
    assert [
        f"CURRENT has {small} rows, fewer than {offline.SMALL_SAMPLE}: only large shifts can be "
        "detected (docs/drift.md, 'Sample size')"
    ] == list(comparison.warnings)


def test_categorical_features_take_the_chi_square_test_and_the_js_effect() -> None:
    rng = np.random.default_rng(5)
    reference = rng.choice([1.0, 2.0, 3.0], size=(600, 1), p=[0.5, 0.3, 0.2])
    current = rng.choice([1.0, 2.0, 3.0], size=(600, 1), p=[0.2, 0.3, 0.5])
    (result,) = offline.compare(_reference(reference, (True,)), current).features
    table = np.array([np.bincount(reference[:, 0].astype(int))[1:],
                      np.bincount(current[:, 0].astype(int))[1:]])  # fmt: skip
    chi2, p_value, _, _ = stats.chi2_contingency(table)
    assert ("chi_square", None) == (result.test, result.psi)
    assert chi2 == pytest.approx(result.statistic, rel=1e-9)
    assert p_value == pytest.approx(result.p_value, rel=1e-6, abs=1e-300)
    assert result.drifted
    assert result.effect == result.jensen_shannon


def test_a_constant_reference_moved_is_drift_without_a_wasserstein_distance() -> None:
    reference, current = np.zeros((100, 1)), np.ones((100, 1))
    (result,) = offline.compare(_reference(reference), current).features
    assert (None, True) == (result.wasserstein, result.drifted)
    assert "constant reference: no Wasserstein distance" == result.note
