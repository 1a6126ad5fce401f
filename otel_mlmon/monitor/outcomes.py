"""Business outcomes (revenue, a click, a rating) joined to the prediction that earned them.

``record_outcome(prediction_id, kind, value)`` verifies the id like a label (any process that
holds the key, any delay up to ``Labels.max_age``) and counts the outcome for the version that
made the prediction, which the id names: the served one, one served before, a version of the
fleet (``Labels(fleet_versions=...)``) or a shadow.

Additive across processes, like the quality counters (``quality``): each process counts and a
reader reports the sums, so the backend adds them up.

- ``ml.model.outcomes`` counts every outcome by ``ml.outcome.kind`` and ``ml.outcome.status``:
  ``matched``; ``invalid`` (the id does not verify); ``expired`` (older than max age);
  ``bad_value`` (not a finite number in [0, ``Outcomes.max_value``]); ``unknown_kind`` (a kind
  not declared, reported as ``_OTHER``: a caller never adds series);
- ``ml.model.outcome.value`` sums the values of matched outcomes of a declared kind, in the
  unit ``Outcomes(unit=...)`` declares;
- ``ml.model.outcome.score`` (a histogram) takes the value of a score kind (a rating).

Replays are not de-duplicated: one prediction may earn several outcomes (two purchases), so
each call counts. Sums are floats: whole cents, or values like 12.5, add up exactly.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import Histogram, Meter, Observation

from otel_mlmon import _fork, _observables, semconv
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor._attributes import ModelAttributes, scalar
from otel_mlmon.monitor._config import Outcomes

if TYPE_CHECKING:
    from otel_mlmon.monitor._versions import Versions

_time: Final = time.time
_NUMBERS: Final = frozenset({int, float})
_MATCHED: Final = semconv.OUTCOME_MATCHED


class OutcomeCounts:
    """The outcomes one version earned: counts by (kind, status), value sums by kind."""

    __slots__ = ("_base", "_counts", "_lock", "_scores", "_values")

    def __init__(self, attributes: ModelAttributes) -> None:
        self._lock = threading.Lock()
        self._base = attributes.base
        self._counts: dict[tuple[str, str], int] = {}
        self._values: dict[str, float] = {}
        self._scores: dict[str, Mapping[str, str]] = {}

    def count(self, kind: str, status: str) -> None:
        """One outcome of ``kind`` (a declared kind or ``_OTHER``) that ended in ``status``."""
        key = (kind, status)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def add(self, kind: str, value: float | None) -> None:
        """One matched outcome of a declared kind, and its value when it has one."""
        key = (kind, _MATCHED)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if value is not None:
                self._values[kind] = self._values.get(kind, 0.0) + value

    def score_attributes(self, kind: str) -> Mapping[str, str]:
        """Attributes of ``ml.model.outcome.score`` for a declared score ``kind`` (made once)."""
        found = self._scores.get(kind)
        if found is None:
            found = self._scores[kind] = {**self._base, semconv.ML_OUTCOME_KIND: kind}
        return found

    def observe_counts(self) -> Iterator[Observation]:
        with self._lock:
            counts = list(self._counts.items())
        for (kind, status), count in counts:
            yield Observation(
                count,
                {**self._base, semconv.ML_OUTCOME_KIND: kind, semconv.ML_OUTCOME_STATUS: status},
            )

    def observe_values(self) -> Iterator[Observation]:
        with self._lock:
            values = list(self._values.items())
        for kind, total in values:
            yield Observation(total, {**self._base, semconv.ML_OUTCOME_KIND: kind})

    def reset_after_fork(self) -> None:
        """A fresh lock for the child: the parent's may have been held at fork."""
        self._lock = threading.Lock()


def amount(value: object, limit: float) -> float | None:
    """``value`` as a float when it is a finite number in [0, ``limit``], else ``None``."""
    if type(value) not in _NUMBERS:
        value = scalar(value)
        if type(value) not in _NUMBERS and not isinstance(value, (Decimal, Fraction)):
            return None  # bool, str, None, containers: never a value
    try:
        number = float(value)  # type: ignore[arg-type]
    except (ArithmeticError, ValueError):  # an int past float's range, a signalling Decimal
        return None
    return number if 0.0 <= number <= limit else None  # NaN fails both comparisons


class OutcomeJoin:
    """``record_outcome``: verify the id, check kind and value, count for the id's version."""

    __slots__ = ("_kinds", "_limit", "_max_age", "_scores", "_versions")

    def __init__(
        self, versions: Versions, outcomes: Outcomes, max_age: float, scores: Histogram
    ) -> None:
        self._versions = versions
        # Each declared kind: whether it is a score (a histogram) rather than summed.
        self._kinds: dict[str, bool] = {
            **dict.fromkeys(outcomes.kinds, False),
            **dict.fromkeys(outcomes.scores, True),
        }
        self._limit = outcomes.max_value
        self._max_age = max_age
        self._scores = scores

    def join(self, prediction_id: object, kind: object, value: object) -> None:
        """Count one outcome (see the module docstring for its status)."""
        versions = self._versions
        score = self._kinds.get(kind) if type(kind) is str else None
        if score is None:
            versions.served.outcomes.count(semconv.OTHER_OUTCOME_KIND, semconv.OUTCOME_UNKNOWN_KIND)
            return
        assert isinstance(kind, str)
        found = versions.made_at(prediction_id)
        if found is None:
            versions.served.outcomes.count(kind, semconv.OUTCOME_INVALID)
            return
        version, when = found
        counts = version.outcomes
        if _time() - when > self._max_age:
            counts.count(kind, semconv.OUTCOME_EXPIRED)
            return
        number = None
        if value is not None or score:
            number = amount(value, self._limit)
            if number is None:
                counts.count(kind, semconv.OUTCOME_BAD_VALUE)
                return
        if score:
            self._scores.record(number, counts.score_attributes(kind))  # type: ignore[arg-type]
            counts.count(kind, _MATCHED)
        else:
            counts.add(kind, number)


# One unit per instrument: the unit of ml.model.outcome.value on each meter.
_units_lock = threading.Lock()
_units: weakref.WeakKeyDictionary[Meter, str] = weakref.WeakKeyDictionary()


def observe_outcomes(meter: Meter, versions: Versions, outcomes: Outcomes) -> None:
    """Report the outcome counters of ``versions`` on ``meter`` (the value sums only when
    ``outcomes`` declares kinds to sum).

    Raises:
        ConfigurationError: another monitor on this meter provider declared another unit.
    """
    _observables.observe(meter, semconv.ML_MODEL_OUTCOMES, semconv.create_ml_model_outcomes,
                         versions, lambda owner, options: owner.observe_outcomes())  # fmt: skip
    if not outcomes.kinds:
        return
    unit = outcomes.unit
    with _units_lock:
        existing = _units.setdefault(meter, unit)
    if existing != unit:
        raise ConfigurationError(
            f"outcome unit {unit!r} differs from {existing!r}, declared by another monitor on "
            "this meter provider: one instrument has one unit (use the same unit, or another "
            "meter_provider)"
        )
    _observables.observe(
        meter,
        semconv.ML_MODEL_OUTCOME_VALUE,
        lambda m, callbacks: semconv.create_ml_model_outcome_value(m, callbacks, unit),
        versions,
        lambda owner, options: owner.observe_outcome_values(),
    )


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    global _units_lock
    _units_lock = threading.Lock()
