"""Quality scores from delayed labels: equal to scikit-learn, bounded and cached."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)

from otel_mlmon import semconv
from otel_mlmon.quality import QualityWindow, classification_scores, regression_scores


@pytest.mark.parametrize("seed", range(5))
def test_classification_scores_equal_scikit_learn_macro(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = np.array(["cat", "dog", "emu", "yak", "owl"])
    labels = list(classes[rng.integers(0, 4, 200)])  # "owl" is never a true label
    predictions = list(classes[rng.integers(0, 5, 200)])
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predictions, average="macro", zero_division=0
    )
    expected = {
        semconv.ML_MODEL_ACCURACY: accuracy_score(labels, predictions),
        semconv.ML_MODEL_PRECISION: precision,
        semconv.ML_MODEL_RECALL: recall,
        semconv.ML_MODEL_F1_SCORE: f1,
    }
    actual = classification_scores(predictions, labels)
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        assert value == pytest.approx(actual[name], abs=1e-12)


def test_regression_scores_equal_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    labels = rng.normal(size=100).tolist()
    predictions = rng.normal(size=100).tolist()
    actual = regression_scores(predictions, labels)
    assert mean_absolute_error(labels, predictions) == pytest.approx(actual[semconv.ML_MODEL_MAE])
    assert mean_squared_error(labels, predictions) ** 0.5 == pytest.approx(
        actual[semconv.ML_MODEL_RMSE]
    )


def test_empty_input_has_no_scores() -> None:
    assert {} == classification_scores([], [])
    assert {} == regression_scores([], [])


def test_the_window_keeps_only_the_latest_pairs() -> None:
    window = QualityWindow(4, regression=False)
    for _ in range(10):
        window.add(1, 0)  # ten wrong answers, all pushed out below
    for _ in range(4):
        window.add(1, 1)
    scores = window.scores()
    assert (4, 1.0) == (scores.samples, scores.values[semconv.ML_MODEL_ACCURACY])
    assert 4 == len(window)


def test_scores_are_computed_once_per_change() -> None:
    window = QualityWindow(10, regression=True)
    window.add(1.0, 2.0)
    first = window.scores()
    assert first is window.scores()
    window.add(2.0, 2.0)
    assert first is not window.scores()
    window.clear()
    assert (0, {}) == (window.scores().samples, window.scores().values)
