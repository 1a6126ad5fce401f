"""Two tables compared once, with one dataset-level verdict: what ``otel-mlmon drift`` reports.

Every feature gets one test: the two-sample Kolmogorov-Smirnov test for a numeric feature (its
p-value by scipy's default method, exact up to 10,000 values per table), the chi-square test
of homogeneity for a categorical one. The p-values are adjusted for multiplicity by Holm's
step-down method, so the probability that the command calls a table drifted although no
feature changed (the family-wise error rate) is at most ``alpha`` whatever the dependence
between the features. A feature drifts when its adjusted p-value is at most ``alpha`` and its
effect reaches ``min_effect``: the Wasserstein distance in reference standard deviations for a
numeric feature, the Jensen-Shannon distance for a categorical one. The effect gate can only
remove verdicts, so the error bound holds; it is what makes the verdict size-aware: on small
tables the test decides (the effect of a detectable shift is far above the gate), on large ones
the gate does (a test then detects any shift, however irrelevant), as Evidently switches from
tests to distances past 1,000 rows, without the cliff.

PSI and Jensen-Shannon are reported on the reference's bins, the bins of the in-process
processor and of the fleet rules, so all three give one number for one set of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from otel_mlmon.drift import ks, statistics
from otel_mlmon.drift.reference import CategoricalReference, NumericReference, Reference

FloatArray = npt.NDArray[np.float64]

#: Family-wise error rate of the verdict.
DEFAULT_ALPHA: Final = 0.05
#: Smallest effect called drift (Wasserstein in reference standard deviations, or
#: Jensen-Shannon distance): Evidently's default threshold for large tables.
DEFAULT_MIN_EFFECT: Final = 0.1
#: Usable values a feature needs in each table to be tested: below, a verdict would rest on
#: a handful of values (a single outlier row is never drift).
MIN_TEST_VALUES: Final = 10
#: Rows below which the command warns that only large shifts can be detected (docs/drift.md).
SMALL_SAMPLE: Final = 100

KS_TEST: Final = "ks"
CHI_SQUARE_TEST: Final = "chi_square"


@dataclass(frozen=True)
class FeatureComparison:
    """One feature of the two tables: its test, its distances and its verdict.

    ``test``, ``statistic``, ``p_value`` and ``adjusted_p_value`` are ``None`` when the feature
    was not tested; ``note`` then says why. ``wasserstein`` is normalised by the reference's
    standard deviation (``None`` for a categorical feature or a constant reference).
    """

    feature: str
    categorical: bool
    reference_values: int
    current_values: int
    test: str | None
    statistic: float | None
    p_value: float | None
    p_value_method: str | None
    adjusted_p_value: float | None
    psi: float | None
    jensen_shannon: float | None
    wasserstein: float | None
    effect: float | None
    drifted: bool
    note: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The per-feature results and the dataset-level verdict.

    ``drift`` is true when at least one feature drifted; under the null hypothesis (no feature
    changed) that happens with probability at most ``alpha`` (Holm over ``tests`` tests).
    """

    features: tuple[FeatureComparison, ...]
    alpha: float
    min_effect: float
    tests: int
    reference_rows: int
    current_rows: int
    warnings: tuple[str, ...]

    @property
    def drifted(self) -> tuple[str, ...]:
        """Names of the features that drifted, in table order."""
        return tuple(f.feature for f in self.features if f.drifted)

    @property
    def drift(self) -> bool:
        """The dataset-level verdict."""
        return bool(self.drifted)


def holm(p_values: npt.ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values (each at most 1, monotone in the raw p-values)."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p, kind="stable")
    factors = p.size - np.arange(p.size)
    adjusted = np.minimum(np.maximum.accumulate(p[order] * factors), 1.0)
    result = np.empty_like(p)
    result[order] = adjusted
    return result


def _numeric(name: str, reference: NumericReference, values: FloatArray) -> FeatureComparison:
    current = np.sort(values)
    n_ref, n_cur = reference.sorted.size, current.size
    if min(n_ref, n_cur) < MIN_TEST_VALUES:
        return _untested(name, False, n_ref, n_cur)
    statistic, p_value, method = ks.ks_2samp(reference.sorted, current)
    counts = statistics.bin_counts_sorted(current, reference.edges)
    distance = statistics.wasserstein_sorted(reference.sorted, current)
    wasserstein = distance / reference.std if reference.std > 0 else None
    # A constant reference has no scale: any movement of the current values is an effect.
    effect = wasserstein if wasserstein is not None else (math.inf if distance > 0 else 0.0)
    return FeatureComparison(
        name, False, n_ref, n_cur, KS_TEST, statistic, p_value, method, None,
        statistics.psi(reference.counts, counts),
        statistics.jensen_shannon_distance(reference.counts, counts),
        wasserstein, effect, False,
        None if wasserstein is not None else "constant reference: no Wasserstein distance",
    )  # fmt: skip


def _categorical(
    name: str, reference: CategoricalReference, codes: FloatArray
) -> FeatureComparison:
    n_ref, n_cur = int(reference.counts.sum()), codes.size
    if min(n_ref, n_cur) < MIN_TEST_VALUES:
        return _untested(name, True, n_ref, n_cur)
    counts = np.bincount(codes.astype(np.intp)).astype(np.float64)
    size = max(counts.size, reference.counts.size)
    reference_counts = np.pad(reference.counts, (0, size - reference.counts.size))
    counts = np.pad(counts, (0, size - counts.size))
    statistic, p_value = statistics.chi_square(reference_counts, counts)
    distance = statistics.jensen_shannon_distance(
        reference.pooled(reference_counts), reference.pooled(counts)
    )
    return FeatureComparison(
        name, True, n_ref, n_cur, CHI_SQUARE_TEST, statistic, p_value, "asymptotic", None,
        None, distance, None, distance, False,
    )  # fmt: skip


def _untested(name: str, categorical: bool, n_ref: int, n_cur: int) -> FeatureComparison:
    table = "REFERENCE" if n_ref < MIN_TEST_VALUES else "CURRENT"
    values = min(n_ref, n_cur)
    note = (
        f"not tested: {values} usable value{'s' if values != 1 else ''} in {table}, "
        f"at least {MIN_TEST_VALUES} needed"
    )
    return FeatureComparison(
        name, categorical, n_ref, n_cur, None, None, None, None, None,
        None, None, None, None, False, note,
    )  # fmt: skip


def compare(
    reference: Reference,
    current: FloatArray,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Comparison:
    """Compare an encoded ``rows x width`` ``current`` matrix with ``reference``.

    Missing values (NaN) are left out per feature; a feature with fewer than
    :data:`MIN_TEST_VALUES` usable values in either table is reported, not tested.
    """
    results = []
    for i, (name, feature) in enumerate(
        zip(reference.schema.names, reference.features, strict=True)
    ):
        column = current[:, i]
        values = column[np.isfinite(column)]
        if isinstance(feature, NumericReference):
            results.append(_numeric(name, feature, values))
        else:
            results.append(_categorical(name, feature, values))
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    adjusted = holm([float(results[i].p_value or 0.0) for i in tested])
    for i, p in zip(tested, adjusted, strict=True):
        result = results[i]
        effect = result.effect if result.effect is not None else 0.0
        drifted = bool(p <= alpha) and effect >= min_effect
        results[i] = replace(result, adjusted_p_value=float(p), drifted=drifted)
    rows = current.shape[0]
    return Comparison(
        tuple(results), alpha, min_effect, len(tested), reference.rows, rows,
        tuple(_warnings(reference.rows, rows, len(tested), len(results))),
    )  # fmt: skip


def _warnings(reference_rows: int, current_rows: int, tested: int, features: int) -> list[str]:
    found = []
    for table, rows in (("REFERENCE", reference_rows), ("CURRENT", current_rows)):
        if rows < SMALL_SAMPLE:
            found.append(
                f"{table} has {rows} row{'s' if rows != 1 else ''}, fewer than {SMALL_SAMPLE}: "
                "only large shifts can be detected (docs/drift.md, 'Sample size')"
            )
    if tested == 0:
        found.append(f"none of the {features} features could be tested: no verdict of drift")
    return found
