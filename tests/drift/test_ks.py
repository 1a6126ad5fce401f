"""The two-sample KS test equals scipy's: the statistic, the asymptotic p-value the processor
reports, and the exact p-value of scipy's default method that ``otel-mlmon drift`` reports."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special, stats

from otel_mlmon.drift import ks

from ._samples import CASES as SHARED

TOLERANCE = 1e-9


# The shared pairs, and two more: one row against many, a p-value near 1e-300.
_rng = np.random.default_rng(7)
CASES = [
    *SHARED,
    (_rng.normal(size=1), _rng.normal(size=2_000)),
    (_rng.normal(size=3_000), _rng.normal(3.0, size=2_000)),
]


def _scipy_default(a: np.ndarray, b: np.ndarray) -> stats._stats_py.KstestResult:
    with warnings.catch_warnings():
        # scipy falls back to its asymptotic formula (with a warning) where its exact
        # recursion loses precision; those cases are the ones compared at 1e-9 below too.
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ks_2samp(a, b)


@pytest.mark.parametrize(("a", "b"), CASES)
def test_statistic_equals_scipy_and_asymptotic_p_value_equals_kolmogorov(
    a: np.ndarray, b: np.ndarray
) -> None:
    statistic, p_value = ks.ks_sorted(np.sort(a), np.sort(b))
    expected = stats.ks_2samp(a, b)
    en = a.size * b.size / (a.size + b.size)
    assert expected.statistic == pytest.approx(statistic, abs=TOLERANCE)
    assert special.kolmogorov(math.sqrt(en) * expected.statistic) == pytest.approx(
        p_value, abs=TOLERANCE
    )


@pytest.mark.parametrize(("a", "b"), CASES)
def test_default_method_is_exact_and_equals_scipy_on_small_samples(
    a: np.ndarray, b: np.ndarray
) -> None:
    statistic, p_value, method = ks.ks_2samp(a, b)
    expected = _scipy_default(a, b)
    assert "exact" == method
    assert float(expected.statistic) == statistic
    assert float(expected.pvalue) == pytest.approx(p_value, rel=TOLERANCE, abs=1e-300)


@pytest.mark.parametrize(
    ("n1", "n2"), [(1, 1), (1, 9), (2, 2), (3, 7), (10, 10), (89, 89), (221, 221), (100, 1_000)]
)
def test_exact_distribution_equals_scipy_at_every_attainable_statistic(n1: int, n2: int) -> None:
    lcm = n1 // math.gcd(n1, n2) * n2
    steps = range(1, lcm + 1) if lcm <= 400 else range(1, lcm + 1, lcm // 50)
    for h in steps:
        statistic = h / lcm
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            success, _, expected = stats._stats_py._attempt_exact_2kssamp(
                n1, n2, math.gcd(n1, n2), statistic, "two-sided"
            )
        if success:
            assert expected == pytest.approx(
                ks.ks_exact_pvalue(statistic, n1, n2), rel=TOLERANCE, abs=1e-300
            ), (n1, n2, h)


def test_a_one_row_sample_has_the_smallest_p_value_the_reference_size_allows() -> None:
    # One value above every one of 99 reference values: D = 1, p = 2 / (99 + 1).
    _, p_value, _ = ks.ks_2samp(np.arange(99.0), [1000.0])
    assert 0.02 == pytest.approx(p_value, rel=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.03, 0.06])
def test_large_samples_use_the_asymptotic_p_value_close_to_scipys(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 1000))
    a, b = rng.normal(size=12_000), rng.normal(shift, size=15_000)
    statistic, p_value, method = ks.ks_2samp(a, b)
    expected = stats.ks_2samp(a, b)
    assert "asymptotic" == method
    assert float(expected.statistic) == pytest.approx(statistic, abs=TOLERANCE)
    # scipy's asymptotic branch uses kstwo.sf(D, round(en)); the limit law is within 0.005
    # absolute and 5 % relative of it at these sizes (docs/drift.md).
    assert float(expected.pvalue) == pytest.approx(p_value, rel=0.05, abs=0.005)


@pytest.mark.parametrize("z", [0.0, 0.03, 0.2, 0.5, 0.8, 0.999, 1.0, 1.3, 2.0, 4.0, 9.0, 30.0])
def test_kolmogorov_sf_equals_scipy(z: float) -> None:
    assert special.kolmogorov(z) == pytest.approx(ks.kolmogorov_sf(z), abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5, 3.0])
@pytest.mark.parametrize("shared_value", [False, True])
def test_block_search_equals_scipy_on_large_samples(shift: float, shared_value: bool) -> None:
    rng = np.random.default_rng(int(shift * 100) + shared_value)
    a = rng.normal(size=5_000)
    b = rng.normal(shift, size=3_000)
    if shared_value:
        b[1_234] = a[77]  # one value in both samples: the exact path must take over
    assert stats.ks_2samp(a, b).statistic == pytest.approx(
        ks.ks_statistic_sorted(np.sort(a), np.sort(b)), abs=TOLERANCE
    )
