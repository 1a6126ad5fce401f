"""The two-sample Kolmogorov-Smirnov test: pure numpy, no scipy.

- :func:`ks_statistic_sorted`: the statistic D, bit-for-bit that of ``scipy.stats.ks_2samp``.
- :func:`ks_pvalue`: Smirnov's asymptotic p-value, ``scipy.special.kolmogorov(sqrt(en) * D)``
  with ``en = n1 n2 / (n1 + n2)``: what the in-process processor reports (its windows are large
  and it scores at every collection).
- :func:`ks_exact_pvalue`: the exact null distribution of D for continuous data, by counting
  lattice paths (below); equal to scipy's ``method="exact"``.
- :func:`ks_2samp`: D and the p-value by scipy's default ``method="auto"``: exact when both
  samples hold at most :data:`EXACT_MAX_N` values, else asymptotic. Above that size scipy's
  asymptotic p-value comes from ``kstwo.sf(D, round(en))``; ours from the limiting Kolmogorov
  distribution, which differs from it by less than the Monte-Carlo error of any calibration
  (``tests/drift/test_ks.py`` bounds the difference).
"""

from __future__ import annotations

import functools
import math
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Largest sample size for which :func:`ks_2samp` computes the exact p-value (scipy's rule).
EXACT_MAX_N: Final = 10_000

KsMethod = Literal["exact", "asymptotic"]


# --- the statistic ----------------------------------------------------------------------------


def ks_statistic_sorted(a: FloatArray, b: FloatArray) -> float:
    """Two-sample KS statistic of two sorted, finite, non-empty arrays.

    Bit-for-bit the statistic of ``scipy.stats.ks_2samp``: the largest ``|F_a(x) - F_b(x)|``
    over the data points, both CDFs right-continuous. Only the points of ``b`` are searched in
    ``a``: between two consecutive distinct values of ``b`` the difference is largest either at
    the first of them or at the last point of ``a`` before the second, whose CDF value is the
    count of ``a`` strictly below it. One search when the samples share no value.
    """
    n1, n2 = a.size, b.size
    runs = bool(np.any(b[1:] == b[:-1]))
    if not runs and n2 >= 8 * _KS_BLOCK:
        statistic = _ks_without_ties(a, b)
        if statistic is not None:
            return statistic
    right = np.searchsorted(a, b, side="right")
    ranks = _ranks(n2)
    # right - 1 is -1 only where b is below every a, so a[-1] cannot equal it there.
    shared = bool(np.any(a[right - 1] == b))
    if not shared and not runs:
        difference = right / n1 - ranks
        return max(float(difference.max()) + 1.0 / n2, float(-difference.min()), 0.0)
    left = np.searchsorted(a, b, side="left") if shared else right
    at_b = right / n1 - ranks
    between = left[1:] / n1 - ranks[:-1]
    if runs:
        # Only the last element of a run of equal values in b carries F_b's value there.
        last = np.empty(n2, dtype=bool)
        np.not_equal(b[1:], b[:-1], out=last[:-1])
        last[-1] = True
        at_b = at_b[last]
        between = between[last[:-1]]
    largest = max(float(np.max(np.abs(at_b))), float(left[0]) / n1)
    if between.size:
        largest = max(largest, float(np.max(np.abs(between))))
    return largest


_KS_BLOCK: Final = 16


def _ks_without_ties(a: FloatArray, b: FloatArray) -> float | None:
    """The KS statistic when b has no repeated value and shares none with a; ``None`` when it
    does share one (the caller then takes the general path).

    With no ties, F_a - F_b is d_j = right_j/n1 - (j+1)/n2 at b_j (right_j: the count of a up
    to b_j) and d_j + 1/n2 at the last point before b_j (an a, or b_(j-1) where it has the
    same value), so D = max(max d + 1/n2, -min d). Searching every b_j in a is most of the
    cost: the search is done at the ends of blocks of b first, and inside a block only when
    the bounds the ends give (right is monotone) could beat the extremes found so far. Every
    d evaluated is the same float the full computation gives, so the result is identical.
    """
    n1, n2 = a.size, b.size
    starts = np.arange(0, n2, _KS_BLOCK)
    ends = np.minimum(starts + _KS_BLOCK, n2) - 1
    right_start = np.searchsorted(a, b[starts], side="right")
    right_end = np.searchsorted(a, b[ends], side="right")
    if np.any(a[right_start - 1] == b[starts]) or np.any(a[right_end - 1] == b[ends]):
        return None
    d_start = right_start / n1 - (starts + 1) / n2
    d_end = right_end / n1 - (ends + 1) / n2
    highest = max(float(d_start.max()), float(d_end.max()))
    lowest = min(float(d_start.min()), float(d_end.min()))
    upper = right_end / n1 - (starts + 1) / n2
    lower = right_start / n1 - (ends + 1) / n2
    refine = (upper > highest) | (lower < lowest)
    if refine.any():
        inside = np.flatnonzero(np.repeat(refine, _KS_BLOCK)[:n2])
        right = np.searchsorted(a, b[inside], side="right")
        if np.any(a[right - 1] == b[inside]):
            return None
        d = right / n1 - (inside + 1) / n2
        highest = max(highest, float(d.max()))
        lowest = min(lowest, float(d.min()))
    return max(highest + 1.0 / n2, -lowest, 0.0)


@functools.lru_cache(maxsize=16)
def _ranks(n: int) -> FloatArray:
    # The empirical CDF values 1/n ... n/n of a sample of n, cached: windows keep their size.
    ranks = np.arange(1, n + 1) / n
    ranks.flags.writeable = False
    return ranks


# --- p-values ---------------------------------------------------------------------------------


def kolmogorov_sf(z: float) -> float:
    """Survival function of the Kolmogorov distribution, ``P(K > z)``.

    Equal to ``scipy.special.kolmogorov(z)``. Uses the alternating series
    ``2 sum (-1)^(k-1) exp(-2 k^2 z^2)`` for ``z >= 1`` and one minus the Jacobi-theta form of
    the CDF, ``sqrt(2 pi)/z sum exp(-(2k-1)^2 pi^2 / (8 z^2))``, below, where each converges in
    a few terms.
    """
    if not z > 0.0:
        return 1.0
    if z >= 1.0:
        total = 0.0
        for k in range(1, 101):
            term = math.exp(-2.0 * k * k * z * z)
            total += term if k % 2 else -term
            if term < 1e-300:
                break
        return min(1.0, max(0.0, 2.0 * total))
    cdf = 0.0
    for k in range(1, 101):
        term = math.exp(-((2 * k - 1) ** 2) * math.pi * math.pi / (8.0 * z * z))
        cdf += term
        if term < 1e-300 or term < cdf * 1e-17:
            break
    cdf *= math.sqrt(2.0 * math.pi) / z
    return min(1.0, max(0.0, 1.0 - cdf))


def ks_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Smirnov's asymptotic two-sided p-value of a two-sample KS ``statistic``."""
    m, n = float(max(n1, n2)), float(min(n1, n2))
    return kolmogorov_sf(math.sqrt(m * n / (m + n)) * statistic)


def ks_sorted(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value of two sorted, finite, non-empty arrays."""
    statistic = ks_statistic_sorted(a, b)
    return statistic, ks_pvalue(statistic, a.size, b.size)


def ks_exact_pvalue(statistic: float, n1: int, n2: int) -> float:
    """Exact two-sided p-value ``P(D >= statistic)`` of the two-sample KS test, for continuous
    data (with ties it is conservative), samples of sizes ``n1`` and ``n2``.

    Under the null hypothesis every interleaving of the two sorted samples is equally likely:
    a monotone lattice path from (0, 0) to (n1, n2), a step right per value of the first
    sample and a step up per value of the second. D is at least ``h / lcm(n1, n2)`` exactly
    when the path touches a point with ``|x n2 - y n1| / gcd >= h``. The share ``Q`` of paths
    to a point that touched that band's edge obeys ``Q(x, y) = (x Q(x-1, y) + y Q(x, y-1)) /
    (x + y)`` inside the band and 1 outside: the share of paths entering a point from the left
    is ``x / (x + y)``. Computing the exceedance share directly keeps tiny p-values accurate
    (a convex combination, no ``1 - p`` cancellation). Points on one anti-diagonal depend only
    on the previous one, so each diagonal is one vectorised step over the band: O((n1 + n2)
    * band) work, band ~ ``D n1 n2 / (n1 + n2)``.
    """
    g = math.gcd(n1, n2)
    step_x, step_y = n2 // g, n1 // g  # |x step_x - y step_y| < h: strictly inside
    h = round(statistic * (n1 // g) * n2)
    if h <= 0:
        return 1.0
    width = step_x + step_y
    x = np.arange(n1 + 1, dtype=np.float64)
    # Two diagonals, alternating: Q(x, s - x) at index x + 1, 1 wherever x is outside the band
    # (index 0 and n1 + 1 are guards whose weight is zero).
    previous, current = np.ones(n1 + 2), np.ones(n1 + 2)
    previous[1] = 0.0  # the origin: no path has left the band yet
    low_previous = low_before = 0  # where the band began on the last two diagonals
    for diagonal in range(1, n1 + n2 + 1):
        # On x + y = s the band is |x (step_x + step_y) - s step_y| < h; both ends only grow.
        low = max((diagonal * step_y - h) // width + 1, diagonal - n2, 0)
        high = min(-((-(diagonal * step_y + h)) // width) - 1, diagonal, n1)
        if high < low:
            return 1.0  # no point of this diagonal is inside: every path leaves the band
        current[low_before + 1 : low + 1] = 1.0  # left the band since this buffer was written
        at = x[low : high + 1]
        values = at * previous[low : high + 1]
        values += (diagonal - at) * previous[low + 1 : high + 2]
        values /= diagonal
        current[low + 1 : high + 2] = values
        previous, current = current, previous
        low_before, low_previous = low_previous, low
    return float(min(1.0, max(0.0, previous[n1 + 1])))


def ks_2samp(
    a: npt.ArrayLike, b: npt.ArrayLike, method: Literal["auto", "asymptotic"] = "auto"
) -> tuple[float, float, KsMethod]:
    """Two-sample Kolmogorov-Smirnov test of two non-empty finite samples (any order).

    Returns ``(D, p_value, method)``, each equal to ``scipy.stats.ks_2samp``'s; with ``"auto"`` the
    p-value is exact when neither sample holds more than :data:`EXACT_MAX_N` values (equal to
    scipy's default there), asymptotic otherwise.
    """
    first = np.sort(np.asarray(a, np.float64))
    second = np.sort(np.asarray(b, np.float64))
    statistic = ks_statistic_sorted(first, second)
    n1, n2 = first.size, second.size
    if method == "auto" and max(n1, n2) <= EXACT_MAX_N:
        # D is a multiple of 1 / lcm(n1, n2); as scipy, report that multiple exactly.
        lcm = n1 // math.gcd(n1, n2) * n2
        statistic = round(statistic * lcm) / lcm
        return statistic, ks_exact_pvalue(statistic, n1, n2), "exact"
    return statistic, ks_pvalue(statistic, n1, n2), "asymptotic"
