"""Calibration of ``otel-mlmon drift`` on real tables (the table in docs/drift.md).

Random halves of one table come from one distribution: the command must call them drifted in at
most 5 % of 100 splits (its family-wise error rate is 5 %). A split on a feature's median is a
real shift of that feature: the command must say so. Both run through the command's own path
(CSV files written by pandas, read back by the command); ``bench/drift.py --calibration`` prints
the same numbers for the docs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets

from otel_mlmon.drift.command import compare_files

SPLITS = 100
SEED = 20261128
LOADERS: dict[str, Callable[..., object]] = {
    "diabetes": datasets.load_diabetes,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}


def _features(name: str) -> pd.DataFrame:
    frame: pd.DataFrame = LOADERS[name](as_frame=True).data  # type: ignore[attr-defined]
    return frame


def _verdict(first: pd.DataFrame, second: pd.DataFrame, workdir: Path) -> tuple[str, ...]:
    first.to_csv(workdir / "reference.csv", index=False)
    second.to_csv(workdir / "current.csv", index=False)
    return compare_files(str(workdir / "reference.csv"), str(workdir / "current.csv")).drifted


def false_verdicts(name: str, workdir: Path, splits: int = SPLITS) -> int:
    """Random halves of the table called drifted, out of ``splits``."""
    frame = _features(name)
    rng = np.random.default_rng(SEED)
    false = 0
    for _ in range(splits):
        order = rng.permutation(len(frame))
        half = len(frame) // 2
        false += bool(_verdict(frame.iloc[order[:half]], frame.iloc[order[half:]], workdir))
    return false


def median_split_power(name: str, workdir: Path) -> tuple[int, int]:
    """Features whose median split the command calls drifted (that feature among the drifted
    ones), and the number of features."""
    frame = _features(name)
    found = 0
    for feature in frame.columns:
        low = frame[feature] <= frame[feature].median()
        found += feature in _verdict(frame[low], frame[~low], workdir)
    return found, len(frame.columns)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_random_halves_of_one_table_are_drift_in_at_most_5_percent_of_splits(
    name: str, tmp_path: Path
) -> None:
    assert false_verdicts(name, tmp_path) <= 0.05 * SPLITS


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_a_split_on_any_features_median_is_drift_of_that_feature(name: str, tmp_path: Path) -> None:
    found, features = median_split_power(name, tmp_path)
    assert features == found
