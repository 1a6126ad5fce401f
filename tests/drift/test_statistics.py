"""The drift statistics equal scipy's on the same arrays (random and adversarial data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from otel_mlmon.drift import statistics

from ._samples import CASES

TOLERANCE = 1e-9


@pytest.mark.parametrize(("a", "b"), CASES)
def test_wasserstein_equals_scipy(a: np.ndarray, b: np.ndarray) -> None:
    expected = stats.wasserstein_distance(a, b)
    assert expected == pytest.approx(
        statistics.wasserstein_distance(a, b), rel=TOLERANCE, abs=TOLERANCE
    )


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 50, 999])
def test_chi2_sf_equals_scipy_across_the_range(dof: int) -> None:
    xs = np.concatenate([np.linspace(0.0, 4 * dof + 60, 300), [1e-9, 1e4]])
    expected = stats.chi2.sf(xs, dof)
    actual = np.array([statistics.chi2_sf(float(x), dof) for x in xs])
    assert np.max(np.abs(expected - actual)) < TOLERANCE


def _count_pairs(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = [
        (rng.integers(0, 60, k).astype(float), rng.integers(0, 60, k).astype(float))
        for k in rng.integers(2, 12, 30)
    ]
    pairs += [
        (np.array([10.0, 0.0, 5.0]), np.array([0.0, 7.0, 5.0])),  # disjoint categories
        (np.array([100.0, 1.0]), np.array([1.0, 100.0])),  # one degree of freedom: Yates
        (np.array([3.0, 3.0, 0.0]), np.array([3.0, 3.0, 0.0])),  # an empty category
        (np.array([1.0, 0.0]), np.array([0.0, 1.0])),
    ]
    return pairs


@pytest.mark.parametrize(("p", "q"), _count_pairs(11))
def test_jensen_shannon_equals_scipy_base_2(p: np.ndarray, q: np.ndarray) -> None:
    if p.sum() == 0 or q.sum() == 0:
        pytest.skip("an empty side has no distribution")
    expected = jensenshannon(p, q, base=2)
    assert expected == pytest.approx(statistics.jensen_shannon_distance(p, q), abs=TOLERANCE)


@pytest.mark.parametrize(("p", "q"), _count_pairs(12))
def test_chi_square_equals_scipy_chi2_contingency(p: np.ndarray, q: np.ndarray) -> None:
    table = np.vstack([p, q])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        assert statistics.chi_square(p, q) == (0.0, 1.0)
        return
    expected = stats.chi2_contingency(table)
    statistic, p_value = statistics.chi_square(p, q)
    assert expected.statistic == pytest.approx(statistic, rel=TOLERANCE, abs=TOLERANCE)
    assert expected.pvalue == pytest.approx(p_value, abs=TOLERANCE)


def test_chi_square_of_one_category_is_no_evidence_of_drift() -> None:
    assert statistics.chi_square([5.0, 0.0], [9.0, 0.0]) == (0.0, 1.0)


def test_psi_of_identical_counts_is_zero() -> None:
    assert statistics.psi([10, 20, 30], [10, 20, 30]) == 0.0


def test_psi_smooths_an_empty_bin_to_a_finite_value() -> None:
    # Unsmoothed, the empty current bin would give ln(0): infinity.
    reference, current = np.array([50.0, 50.0]), np.array([100.0, 0.0])
    p = (reference + 0.5) / (100 + 1.0)
    q = (current + 0.5) / (100 + 1.0)
    expected = float(np.sum((q - p) * np.log(q / p)))
    actual = statistics.psi(reference, current)
    assert math.isfinite(actual)
    assert expected == pytest.approx(actual, abs=1e-12)


def test_quantile_edges_drop_duplicates_of_a_discrete_reference() -> None:
    reference = np.sort(np.array([0.0] * 50 + [1.0] * 50))
    edges = statistics.quantile_edges(reference, 10)
    assert edges.tolist() == [0.0, 0.5, 1.0]
    assert statistics.bin_counts_sorted(reference, edges).tolist() == [50.0, 0.0, 50.0, 0.0]


def test_registry_declares_each_direction() -> None:
    kinds = {name: method.kind for name, method in statistics.METHODS.items()}
    assert kinds == {
        "ks": "p_value",
        "psi": "distance",
        "jensen_shannon": "distance",
        "wasserstein": "distance",
        "chi_square": "p_value",
    }


@pytest.mark.parametrize(
    ("method", "score", "expected"),
    [("ks", 0.001, True), ("ks", 0.5, False), ("psi", 0.5, True), ("psi", 0.01, False)],
)
def test_p_values_drift_below_and_distances_above_the_threshold(
    method: str, score: float, expected: bool
) -> None:
    registered = statistics.METHODS[method]
    assert expected == registered.drifted(score, registered.default_threshold)
