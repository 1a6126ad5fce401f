"""The fleet quality recording rules: their unit tests' hand-computed confusion matrix and
regression sums agree with scikit-learn (tests/collector/test_rules.py runs promtool check and
test on every rules file, this one included)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parents[2] / "collector" / "prometheus" / "rules"
QUALITY_TEST = RULES_DIR / "otel-mlmon-quality.test.yml"


def _expected(record: str) -> float:
    for test in yaml.safe_load(QUALITY_TEST.read_text())["tests"][:1]:  # the hand-computed one
        for case in test["promql_expr_test"]:
            if case["expr"] == record:
                (sample,) = case["exp_samples"]
                return float(sample["value"])
    raise KeyError(record)


def _per_minute(test: dict[str, object], model: str) -> dict[tuple[str, str], int]:
    """(predicted, true) -> matched labels a minute, summed over workers, from the input."""
    cells: dict[tuple[str, str], int] = {}
    for series in test["input_series"]:  # type: ignore[attr-defined]
        labels = dict(re.findall(r'(\w+)="([^"]*)"', series["series"]))
        if labels.get("ml_model_name") == model and "ml_label_class" in labels:
            step = int(re.fullmatch(r"0\+(\d+)x60", series["values"]).group(1))  # type: ignore[union-attr]
            key = (labels["ml_prediction_class"], labels["ml_label_class"])
            cells[key] = cells.get(key, 0) + step
    return cells


def test_the_hand_computed_scores_are_scikit_learns() -> None:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    test = yaml.safe_load(QUALITY_TEST.read_text())["tests"][0]  # the hand-computed matrix
    predicted: list[str] = []
    actual: list[str] = []
    for (p, t), count in _per_minute(test, "iris").items():
        predicted += [p] * count
        actual += [t] * count
    precision, recall, f1, _ = precision_recall_fscore_support(
        actual, predicted, average="macro", zero_division=0
    )
    assert accuracy_score(actual, predicted) == _expected("ml:model_accuracy:1h")
    assert math.isclose(precision, _expected("ml:model_precision:1h"), rel_tol=1e-15)
    assert math.isclose(recall, _expected("ml:model_recall:1h"), rel_tol=1e-15)
    assert math.isclose(f1, _expected("ml:model_f1_score:1h"), rel_tol=1e-15)
    assert 6 / 4 == _expected("ml:model_mae:1h")
    assert math.isclose(math.sqrt(20 / 4), _expected("ml:model_rmse:1h"), rel_tol=1e-15)
