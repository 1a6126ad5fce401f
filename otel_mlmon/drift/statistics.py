"""Drift statistics: pure numpy, no OpenTelemetry, no scipy.

Each statistic is registered explicitly in :data:`METHODS` with its kind: a **p-value** means
"drift when below the threshold", a **distance** means "drift when above". Scores of different
kinds are never combined into one number.

Where scipy has the statistic, ours is computed the same way and equals scipy's on the same
arrays to 1e-9 (``tests/drift/test_statistics.py`` proves it):

- Kolmogorov-Smirnov: :mod:`otel_mlmon.drift.ks`.
- :func:`wasserstein_distance`: ``scipy.stats.wasserstein_distance``.
- :func:`jensen_shannon_distance`: ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.
- :func:`chi_square`: ``scipy.stats.chi2_contingency`` on the 2 x k table of counts (with
  scipy's default Yates correction when the table has one degree of freedom).
- :func:`psi`: no scipy counterpart; empty bins are smoothed additively (see its docstring).

The functions on sorted arrays (``*_sorted``) exist so that the processor sorts the reference
once and the live window once per collection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Kind = Literal["p_value", "distance"]

P_VALUE: Final = "p_value"
DISTANCE: Final = "distance"

# ``ml.drift.method`` values: short and stable, dashboards filter on them.
KS: Final = "ks"
PSI: Final = "psi"
JENSEN_SHANNON: Final = "jensen_shannon"
WASSERSTEIN: Final = "wasserstein"
CHI_SQUARE: Final = "chi_square"

#: Additive smoothing of PSI bin counts: each bin gets this many pseudo-observations.
PSI_SMOOTHING: Final = 0.5


@dataclass(frozen=True)
class DriftMethod:
    """One registered drift statistic.

    Attributes:
        name: the ``ml.drift.method`` value.
        kind: ``"p_value"`` (drift when the score is below the threshold) or ``"distance"``
            (drift when the score is above it).
        default_threshold: the threshold used unless the configuration overrides it; its
            false-alarm rate and power are measured by ``bench/drift.py`` (docs/drift.md).
        numeric: applies to numeric features.
        categorical: applies to categorical features.
    """

    name: str
    kind: Kind
    default_threshold: float
    numeric: bool
    categorical: bool

    def drifted(self, score: float, threshold: float) -> bool:
        """Whether ``score`` means drift at ``threshold``, in this method's direction."""
        if self.kind == P_VALUE:
            return score < threshold
        return score > threshold


#: The registry: every method the processor and the CLI know, by ``ml.drift.method`` value.
METHODS: Final[Mapping[str, DriftMethod]] = MappingProxyType(
    {
        method.name: method
        for method in (
            DriftMethod(KS, P_VALUE, 0.01, numeric=True, categorical=False),
            DriftMethod(PSI, DISTANCE, 0.1, numeric=True, categorical=False),
            DriftMethod(JENSEN_SHANNON, DISTANCE, 0.12, numeric=True, categorical=True),
            DriftMethod(WASSERSTEIN, DISTANCE, 0.15, numeric=True, categorical=False),
            DriftMethod(CHI_SQUARE, P_VALUE, 0.01, numeric=False, categorical=True),
        )
    }
)

NUMERIC_METHODS: Final = tuple(name for name, m in METHODS.items() if m.numeric)
CATEGORICAL_METHODS: Final = tuple(name for name, m in METHODS.items() if m.categorical)


# --- distributions ----------------------------------------------------------------------------


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution, equal to ``scipy.stats.chi2.sf``.

    The regularised upper incomplete gamma function ``Q(dof/2, x/2)``: its power series below
    ``a + 1`` and Lentz's continued fraction above (Numerical Recipes, section 6.2).
    """
    if dof <= 0:
        return float("nan")
    if not x > 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a = dof / 2.0
    y = x / 2.0
    log_prefactor = -y + a * math.log(y) - math.lgamma(a)
    if y < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(100_000):
            denominator += 1.0
            term *= y / denominator
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return min(1.0, max(0.0, 1.0 - total * math.exp(log_prefactor)))
    tiny = 1e-300
    b = y + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, max(0.0, math.exp(log_prefactor) * fraction))


# --- numeric features: sorted samples ---------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _quantile_grid(
    n1: int, n2: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    # The quantile functions of samples of sizes n1 and n2 are step functions of u in (0, 1]
    # with steps at i/n1 and j/n2. On the union of those steps, scaled by n1*n2 to stay in
    # integers, each interval (p[k-1], p[k]] reads a[ceil(p/n2) - 1] and b[ceil(p/n1) - 1].
    # The grid depends only on the sizes, so it is cached.
    steps = np.union1d(
        np.arange(1, n1 + 1, dtype=np.int64) * n2, np.arange(1, n2 + 1, dtype=np.int64) * n1
    )
    index_a = (-(-steps // n2) - 1).astype(np.intp)
    index_b = (-(-steps // n1) - 1).astype(np.intp)
    widths = np.diff(steps, prepend=0) / (n1 * n2)
    return index_a, index_b, widths


def wasserstein_sorted(a: FloatArray, b: FloatArray) -> float:
    """Wasserstein-1 distance of two sorted, finite, non-empty arrays.

    Computed as the integral of ``|Q_a(u) - Q_b(u)|`` over the quantile functions (equal to
    scipy's integral of ``|F_a - F_b|`` over the CDFs, to rounding) on a grid that depends
    only on the sample sizes: a gather and a weighted sum, no merge of the values.
    """
    if a.size == b.size:
        # Equal sizes: the quantile steps coincide, every interval has width 1/n.
        return float(np.mean(np.abs(a - b)))
    index_a, index_b, widths = _quantile_grid(a.size, b.size)
    return float(np.sum(np.abs(a[index_a] - b[index_b]) * widths))


def wasserstein_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Wasserstein-1 distance between two non-empty finite samples, as
    ``scipy.stats.wasserstein_distance``."""
    return wasserstein_sorted(
        np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    )


def quantile_edges(sorted_reference: FloatArray, bins: int) -> FloatArray:
    """Inner bin edges at the reference's quantiles ``1/bins ... (bins-1)/bins``, duplicates
    removed. The bins are ``(-inf, e1], (e1, e2], ..., (ek, inf)``."""
    quantiles = np.quantile(sorted_reference, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(quantiles)


def bin_counts_sorted(sorted_values: FloatArray, edges: FloatArray) -> FloatArray:
    """Counts of a sorted sample in the bins ``(-inf, e1], ..., (ek, inf)`` of ``edges``."""
    at_or_below = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(at_or_below, prepend=0, append=sorted_values.size).astype(np.float64)


# --- binned and categorical ---------------------------------------------------------------------


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index of two count vectors over the same bins.

    ``sum((q - p) * ln(q / p))`` with ``p`` and ``q`` the smoothed proportions
    ``(count + 0.5) / (n + 0.5 * bins)``. The additive smoothing keeps an empty bin finite (its
    term is bounded by the sample sizes) instead of infinite, as the unsmoothed formula gives.
    """
    reference = np.asarray(reference_counts, np.float64)
    current = np.asarray(current_counts, np.float64)
    bins = reference.size
    p = (reference + PSI_SMOOTHING) / (reference.sum() + PSI_SMOOTHING * bins)
    q = (current + PSI_SMOOTHING) / (current.sum() + PSI_SMOOTHING * bins)
    return float(np.sum((q - p) * np.log(q / p)))


def _relative_entropy(x: FloatArray, y: FloatArray) -> FloatArray:
    # x * ln(x / y), with 0 * ln(0 / y) = 0 as scipy.special.rel_entr.
    out = np.zeros_like(x)
    positive = x > 0
    out[positive] = x[positive] * np.log(x[positive] / y[positive])
    return out


def jensen_shannon_distance(p_counts: npt.ArrayLike, q_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count or frequency vectors.

    Equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``. Finite without smoothing:
    the mixture is positive wherever either vector is.
    """
    p = np.asarray(p_counts, np.float64)
    q = np.asarray(q_counts, np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2.0
    divergence = float(np.sum(_relative_entropy(p, m)) + np.sum(_relative_entropy(q, m)))
    divergence /= math.log(2.0)
    return math.sqrt(max(divergence / 2.0, 0.0))


def chi_square(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors over the same categories.

    Returns ``(statistic, p_value)`` equal to ``scipy.stats.chi2_contingency`` on the 2 x k
    table with the categories empty on both sides removed (Yates' correction when k = 2, as
    scipy's default). With fewer than two categories left it returns ``(0.0, 1.0)``.
    """
    table = np.vstack(
        [np.asarray(reference_counts, np.float64), np.asarray(current_counts, np.float64)]
    )
    table = table[:, table.sum(axis=0) > 0]
    categories = table.shape[1]
    if categories < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = categories - 1
    if dof == 1:
        difference = expected - table
        table = table + np.minimum(0.5, np.abs(difference)) * np.sign(difference)
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, dof)
