"""The settings of a :class:`~otel_mlmon.ModelMonitor`, grouped by what they configure.

Identity (name, version, task, framework) and tracing are plain keywords of the monitor; the
three groups with more than one knob are small frozen records: :class:`Classes`, :class:`Drift`
and :class:`Labels`. Each validates itself at construction and raises
:class:`~otel_mlmon.exceptions.ConfigurationError` with a message naming the field.

The keywords of 0.1 that these groups replace (``max_classes``, ``feature_names``,
``reference``, ``reference_predictions``, ``label_ttl``) still work for one minor version:
:func:`settings_from_legacy` turns them into the groups and warns with a
:class:`DeprecationWarning` naming the replacement. ``pending_labels`` and ``quality_window``
are accepted with the warning and have no effect (labels no longer wait in memory).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict

from otel_mlmon import _env, semconv
from otel_mlmon.environment_variables import OTEL_MLMON_FLEET_VERSIONS, OTEL_MLMON_MAX_CLASSES
from otel_mlmon.exceptions import ConfigurationError

if TYPE_CHECKING:
    from otel_mlmon.drift.processor import DriftConfig

Task = Literal["classification", "regression", "other"]
TASKS: Final = ("classification", "regression", "other")

DEFAULT_MAX_CLASSES: Final = 100
#: Labels older than this count as ``expired``.
DEFAULT_LABEL_MAX_AGE: Final = timedelta(days=30)


@dataclass(frozen=True, kw_only=True)
class Classes:
    """Which predicted (and label) classes become ``ml.prediction.class`` values.

    Attributes:
        known: the model's classes; any other value is reported as ``_OTHER``. Without them
            the first ``limit`` distinct values are kept, later ones are ``_OTHER``.
        limit: bound on distinct class values (default ``OTEL_MLMON_MAX_CLASSES``, else 100);
            ignored when ``known`` is given.

    .. versionadded:: 0.2.0
    """

    known: Sequence[Hashable] | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.known is not None:
            object.__setattr__(self, "known", tuple(self.known))
        limit = self.limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError(f"classes limit must be a positive integer, not {limit!r}")

    def resolved_limit(self) -> int:
        """The bound in force: ``limit``, else ``OTEL_MLMON_MAX_CLASSES``, else 100."""
        if self.limit is not None:
            return self.limit
        return _env.env_int(OTEL_MLMON_MAX_CLASSES, DEFAULT_MAX_CLASSES, minimum=1)


@dataclass(frozen=True, kw_only=True)
class Drift:
    """What the live features (and predictions) are compared with, and how.

    Attributes:
        reference: reference rows of the features (array, table or sequence of rows).
        predictions: reference outputs of the model, for prediction drift.
        feature_names: names of the feature columns, in order.
        config: the drift processor's settings (:class:`otel_mlmon.DriftConfig`); without a
            reference, ``config.learn_reference_from`` learns one from the first rows.

    .. versionadded:: 0.2.0
    """

    reference: object = None
    predictions: object = None
    feature_names: Sequence[str] | None = None
    config: DriftConfig | None = None


@dataclass(frozen=True, kw_only=True)
class Labels:
    """How delayed ground-truth labels join their predictions (see "Delayed labels" in
    ``docs/instrumentation.md``).

    Attributes:
        key: the secret that signs prediction ids, shared by every replica (at least 16
            characters). Default: ``OTEL_MLMON_LABEL_KEY``, else a key file shared by the
            processes of this host and user.
        previous_keys: keys that still verify ids (a rotation); default
            ``OTEL_MLMON_LABEL_KEY_PREVIOUS``.
        max_age: labels (and outcomes) for predictions older than this (default 30 days)
            count as ``expired``; a ``timedelta`` or seconds.
        fleet_versions: other versions of this model served in the fleet (a rollout's stable
            version and its canary, on other replicas): their ids verify here too, and their
            labels and outcomes count for them. Default: ``OTEL_MLMON_FLEET_VERSIONS``
            (comma-separated). They share this monitor's name, task and classes.

    .. versionadded:: 0.2.0
    .. versionchanged:: 0.3.0 ``fleet_versions``.
    """

    key: str | bytes | None = field(default=None, repr=False)
    previous_keys: Sequence[str | bytes] = field(default=(), repr=False)
    max_age: timedelta | float = DEFAULT_LABEL_MAX_AGE
    fleet_versions: Sequence[str] | None = None
    _seconds: float = field(init=False, repr=False, default=0.0)

    def __post_init__(self) -> None:
        age = self.max_age
        seconds = age.total_seconds() if isinstance(age, timedelta) else age
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ConfigurationError(f"labels max_age must be a duration, not {age!r}")
        if not (math.isfinite(seconds) and seconds > 0):
            raise ConfigurationError(f"labels max_age must be positive, not {age!r}")
        if isinstance(self.previous_keys, (str, bytes)):
            object.__setattr__(self, "previous_keys", (self.previous_keys,))
        object.__setattr__(self, "previous_keys", tuple(self.previous_keys))
        object.__setattr__(self, "_seconds", float(seconds))
        if self.fleet_versions is not None:
            object.__setattr__(self, "fleet_versions", _versions(self.fleet_versions))

    @property
    def max_age_seconds(self) -> float:
        """``max_age`` in seconds."""
        return self._seconds

    def resolved_fleet_versions(self) -> tuple[str, ...]:
        """``fleet_versions``, else ``OTEL_MLMON_FLEET_VERSIONS``, else none.

        Raises:
            ConfigurationError: more than :data:`MAX_FLEET_VERSIONS`, or an empty name.
        """
        if self.fleet_versions is not None:
            return tuple(self.fleet_versions)
        listed = _env.raw(OTEL_MLMON_FLEET_VERSIONS)
        if listed is None:
            return ()
        return _versions([item.strip() for item in listed.split(",") if item.strip()])


#: Other versions one monitor verifies ids of, at most.
MAX_FLEET_VERSIONS: Final = 16


def _versions(versions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(versions, str) or not all(isinstance(v, str) and v.strip() for v in versions):
        raise ConfigurationError("fleet_versions must be a sequence of non-empty version strings")
    unique = tuple(dict.fromkeys(versions))
    if len(unique) > MAX_FLEET_VERSIONS:
        raise ConfigurationError(
            f"{len(unique)} fleet versions; at most {MAX_FLEET_VERSIONS} are verified"
        )
    return unique


#: Declared outcome kinds (counted and scored together) one monitor accepts, at most.
MAX_OUTCOME_KINDS: Final = 32
#: Largest outcome value accepted by default: a hostile 1e300 would swamp every sum.
DEFAULT_MAX_OUTCOME_VALUE: Final = 1e9
_KIND: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}")
# A unit as the OTel rules spell one: UCUM, or an annotation in braces ({USD}), no spaces.
_UNIT: Final = re.compile(r"[A-Za-z0-9%/.*^{}_-]{1,32}")


@dataclass(frozen=True, kw_only=True)
class Outcomes:
    """The business outcomes a monitor accepts through :meth:`ModelMonitor.record_outcome`.

    Attributes:
        kinds: outcomes counted, with their values summed when given (``"revenue"`` with an
            amount, ``"click"`` without): ``ml.model.outcomes`` and ``ml.model.outcome.value``.
        scores: outcomes whose value is a score with a distribution that matters (a rating):
            ``ml.model.outcome.score``, a histogram.
        unit: the unit of every summed value, as OTel spells units (a currency as an
            annotation: ``{USD}``, ``{EUR}``); one unit per meter provider.
        max_value: larger values (and negative or non-finite ones) count ``bad_value``.

    Any other kind counts ``unknown_kind`` under ``ml.outcome.kind=_OTHER``: a caller can
    never add series.

    .. versionadded:: 0.3.0
    """

    kinds: Sequence[str] = ()
    scores: Sequence[str] = ()
    unit: str = semconv.DEFAULT_OUTCOME_UNIT
    max_value: float = DEFAULT_MAX_OUTCOME_VALUE

    def __post_init__(self) -> None:
        for name in ("kinds", "scores"):
            declared = getattr(self, name)
            if isinstance(declared, str) or not all(isinstance(k, str) for k in declared):
                raise ConfigurationError(f"outcome {name} must be a sequence of strings")
            object.__setattr__(self, name, tuple(dict.fromkeys(declared)))
        every = (*self.kinds, *self.scores)
        bad = [k for k in every if not _KIND.fullmatch(k)]
        if bad:
            raise ConfigurationError(
                f"outcome kinds are 1-63 of A-Z a-z 0-9 _ . : - (from a letter or digit): {bad}"
            )
        if len(set(every)) < len(every):
            raise ConfigurationError("an outcome kind is declared both as a kind and a score")
        if len(every) > MAX_OUTCOME_KINDS:
            raise ConfigurationError(f"{len(every)} outcome kinds; at most {MAX_OUTCOME_KINDS}")
        if not isinstance(self.unit, str) or not _UNIT.fullmatch(self.unit):
            raise ConfigurationError(f"outcome unit must be a UCUM unit or {{annotation}}, "
                                     f"not {self.unit!r}")  # fmt: skip
        limit = self.max_value
        if (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or not (math.isfinite(limit) and limit > 0)
        ):
            raise ConfigurationError(f"outcome max_value must be positive, not {limit!r}")


class LegacyKeywords(TypedDict, total=False):
    """Keywords of 0.1 replaced by the groups; accepted with a DeprecationWarning."""

    max_classes: int | None
    feature_names: Sequence[str] | None
    reference: object
    reference_predictions: object
    label_ttl: float
    pending_labels: int
    quality_window: int


_REPLACEMENTS: Final[Mapping[str, str]] = {
    "max_classes": "classes=Classes(limit=...)",
    "feature_names": "drift=Drift(feature_names=...)",
    "reference": "drift=Drift(reference=...)",
    "reference_predictions": "drift=Drift(predictions=...)",
    "label_ttl": "labels=Labels(max_age=...)",
    "pending_labels": "nothing (labels no longer wait in memory)",
    "quality_window": "nothing (quality is counted, not windowed)",
}


def _warn(keyword: str) -> None:
    warnings.warn(
        f"ModelMonitor({keyword}=...) is deprecated since 0.2 and will be removed in 0.3; "
        f"use {_REPLACEMENTS[keyword]}",
        DeprecationWarning,
        stacklevel=4,
    )


def settings_from_legacy(
    classes: Iterable[Hashable] | Classes | None,
    drift: Drift | DriftConfig | None,
    labels: Labels | None,
    legacy: Mapping[str, Any],
) -> tuple[Classes, Drift | None, Labels]:
    """The three groups from the new keywords, with the deprecated ``legacy`` ones folded in.

    Raises:
        ConfigurationError: an unknown keyword, or a value of the wrong kind.
    """
    unknown = sorted(set(legacy) - set(_REPLACEMENTS))
    if unknown:
        raise TypeError(f"ModelMonitor() got unexpected keyword arguments {unknown}")
    for keyword in legacy:
        _warn(keyword)
    class_group = classes if isinstance(classes, Classes) else Classes(known=_known(classes))
    if "max_classes" in legacy and legacy["max_classes"] is not None:
        class_group = replace(class_group, limit=legacy["max_classes"])
    drift_group = _drift_group(drift, legacy)
    label_group = labels if labels is not None else Labels()
    if not isinstance(label_group, Labels):
        raise ConfigurationError(f"labels must be a Labels, not {type(label_group).__name__}")
    if "label_ttl" in legacy:
        label_group = replace(label_group, max_age=legacy["label_ttl"])
    return class_group, drift_group, label_group


def _known(classes: Iterable[Hashable] | None) -> tuple[Hashable, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise ConfigurationError("classes must be an iterable of class values or a Classes")
    return tuple(classes)


def _drift_group(drift: Drift | DriftConfig | None, legacy: Mapping[str, Any]) -> Drift | None:
    group = drift if isinstance(drift, Drift) or drift is None else Drift(config=drift)
    moved = {
        new: legacy[old]
        for old, new in (
            ("reference", "reference"),
            ("reference_predictions", "predictions"),
            ("feature_names", "feature_names"),
        )
        if legacy.get(old) is not None
    }
    if moved:
        group = replace(group or Drift(), **moved)
    if group is None or (
        group.reference is None and group.predictions is None and group.config is None
    ):
        return None
    return group
