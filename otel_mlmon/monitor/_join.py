"""``record_label``: verify a prediction id, then count the label against what it carries.

The label counts for the version that made the prediction (see ``_versions``); one that does
not join counts for the served version. Outcomes (``ml.label.outcome``): ``matched``;
``invalid`` (not a string, malformed, a bad signature, another model, a version this monitor
does not verify, no recorded output, or a label that does not fit it); ``expired`` (the
prediction is older than ``Labels.max_age``); ``duplicate`` (this process matched the same id
recently, see :mod:`otel_mlmon.monitor.quality`). Nothing is kept for an id that does not
verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from otel_mlmon import semconv
from otel_mlmon.monitor._attributes import ModelAttributes, invalid_class, scalar
from otel_mlmon.monitor._versions import Versions
from otel_mlmon.monitor.labels import BATCH, Decoded, label_rows, regression_value
from otel_mlmon.monitor.quality import QualityCounts

_time: Final = time.time
_FAST: Final = frozenset({int, str})
_CLASS: Final = semconv.ML_PREDICTION_CLASS


class LabelJoin:
    """Joins labels to the predictions of every version in ``versions``."""

    __slots__ = ("_cut", "_max_age", "_versions")

    def __init__(self, versions: Versions, max_age: float, cut: Callable[[int], None]) -> None:
        self._versions = versions
        self._max_age = max_age
        self._cut = cut

    def join(self, prediction_id: object, label: object) -> None:
        """Count ``label`` under the outcome of joining it to ``prediction_id``."""
        found = self._versions.find(prediction_id)
        if found is None or not found[1][1]:
            self._versions.served.quality.outcome(semconv.LABEL_INVALID)
            return
        version, decoded = found
        attributes = version.attributes
        quality = version.quality
        kind, outputs, when, mac = decoded
        if _time() - when > self._max_age:
            quality.outcome(semconv.LABEL_EXPIRED)
            return
        if not kind & BATCH and attributes.classification:
            # The common case: both classes already in the table, one lookup each.
            classes = attributes.classes
            predicted = classes.get(outputs[0]) if type(outputs[0]) in _FAST else None
            actual = classes.get(label) if type(label) in _FAST else None
            if predicted is not None and actual is not None:
                quality.pair(mac, predicted[_CLASS], actual[_CLASS])
                return
        # A batch's id takes one label per row.
        labels = label_rows(label, len(outputs)) if kind & BATCH else [label]
        if labels is None or not self._count(attributes, quality, decoded, labels):
            quality.outcome(semconv.LABEL_INVALID)

    def _single_class(
        self, attributes: ModelAttributes, quality: QualityCounts, decoded: Decoded, label: object
    ) -> bool:
        """The common case, one prediction of a classifier, without the batch machinery."""
        actual = _class_text(attributes, label)
        if actual is None:
            return False
        if actual[1]:
            self._cut(1)
        predicted = _class_text(attributes, decoded[1][0])
        pair = (predicted[0] if predicted else semconv.OVERFLOW_CLASS, actual[0])
        quality.pair(decoded[3], *pair)
        return True

    def _count(
        self,
        attributes: ModelAttributes,
        quality: QualityCounts,
        decoded: Decoded,
        labels: list[object],
    ) -> bool:
        """Count the matched rows; ``False`` (nothing counted) when a label is unusable."""
        if attributes.classification and len(labels) == 1:
            return self._single_class(attributes, quality, decoded, labels[0])
        if attributes.regression:
            errors = []
            for output, raw in zip(decoded[1], labels, strict=True):
                value = regression_value(raw)
                if value is None:
                    return False
                errors.append(output - value)  # type: ignore[operator]
            quality.errors(decoded[3], errors)
            return True
        if not attributes.classification:
            quality.matched(decoded[3], len(labels))
            return True
        pairs = []
        cut = 0
        for output, raw in zip(decoded[1], labels, strict=True):
            actual = _class_text(attributes, raw)
            if actual is None:
                return False
            cut += actual[1]
            predicted = _class_text(attributes, output)
            pairs.append((predicted[0] if predicted else semconv.OVERFLOW_CLASS, actual[0]))
        if cut:
            self._cut(cut)
        quality.classes(decoded[3], pairs)
        return True


def _class_text(attributes: ModelAttributes, value: object) -> tuple[str, bool] | None:
    """``ml.prediction.class`` / ``ml.label.class`` text of ``value`` through the version's
    bounded class table, and whether it was cut; ``None`` for no class (None, NaN, a value
    that is not hashable)."""
    if type(value) in _FAST:  # a class already in the table: one lookup
        found = attributes.classes.get(value)
        if found is not None:
            return found[semconv.ML_PREDICTION_CLASS], False
    value = scalar(value)
    if invalid_class(value):
        return None
    try:
        hash(value)
    except TypeError:
        return None
    key, cut = attributes.bounded(value)
    class_attributes, _ = attributes.for_class(key)
    return class_attributes[semconv.ML_PREDICTION_CLASS], cut
