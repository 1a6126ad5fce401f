"""``record_label``: verify a prediction id, then count the label against what it carries.

Outcomes (``ml.label.outcome``): ``matched``; ``invalid`` (not a string, malformed, a bad
signature, another model or version, no recorded output, or a label that does not fit it);
``expired`` (the prediction is older than ``Labels.max_age``); ``duplicate`` (this process
matched the same id recently, see :mod:`otel_mlmon.monitor.quality`). Nothing is kept for an
id that does not verify.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from otel_mlmon import semconv
from otel_mlmon.monitor._attributes import ModelAttributes, invalid_class, scalar
from otel_mlmon.monitor.labels import BATCH, Decoded, label_rows, regression_value
from otel_mlmon.monitor.quality import QualityCounts

_time: Final = time.time


class LabelJoin:
    """Joins labels for the version being served (read from ``current()`` on every label)."""

    __slots__ = ("_current", "_cut", "_max_age", "quality")

    def __init__(
        self,
        current: Callable[[], ModelAttributes],
        quality: QualityCounts,
        max_age: float,
        cut: Callable[[int], None],
    ) -> None:
        self._current = current
        self.quality = quality
        self._max_age = max_age
        self._cut = cut

    def join(self, prediction_id: object, label: object) -> None:
        """Count ``label`` under the outcome of joining it to ``prediction_id``."""
        attributes = self._current()
        codec = attributes.ids
        decoded = codec.decode(prediction_id) if codec is not None else None
        quality = self.quality
        if decoded is None or not decoded.outputs:
            quality.outcome(semconv.LABEL_INVALID)
            return
        if _time() - decoded.time > self._max_age:
            quality.outcome(semconv.LABEL_EXPIRED)
            return
        # A batch's id takes one label per row.
        labels = label_rows(label, len(decoded.outputs)) if decoded.kind & BATCH else [label]
        if labels is None or not self._count(attributes, decoded, labels):
            quality.outcome(semconv.LABEL_INVALID)

    def _count(self, attributes: ModelAttributes, decoded: Decoded, labels: list[object]) -> bool:
        """Count the matched rows; ``False`` (nothing counted) when a label is unusable."""
        if attributes.regression:
            errors = []
            for output, raw in zip(decoded.outputs, labels, strict=True):
                value = regression_value(raw)
                if value is None:
                    return False
                errors.append(output - value)  # type: ignore[operator]
            self.quality.errors(decoded.mac, errors)
            return True
        if not attributes.classification:
            self.quality.matched(decoded.mac, len(labels))
            return True
        pairs = []
        cut = 0
        for output, raw in zip(decoded.outputs, labels, strict=True):
            actual = _class_text(attributes, raw)
            if actual is None:
                return False
            cut += actual[1]
            predicted = _class_text(attributes, output)
            pairs.append((predicted[0] if predicted else semconv.OVERFLOW_CLASS, actual[0]))
        if cut:
            self._cut(cut)
        self.quality.classes(decoded.mac, pairs)
        return True


def _class_text(attributes: ModelAttributes, value: object) -> tuple[str, bool] | None:
    """``ml.prediction.class`` / ``ml.label.class`` text of ``value`` through the version's
    bounded class table, and whether it was cut; ``None`` for no class (None, NaN, a value
    that is not hashable)."""
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
