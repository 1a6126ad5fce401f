"""The drift processor's settings, validated when built.

Every default is measured (docs/drift.md, ``bench/drift.py``); an invalid value raises
:class:`~otel_mlmon.exceptions.ConfigurationError` at construction, never later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from otel_mlmon import semconv
from otel_mlmon._guard import warn_once
from otel_mlmon.drift import statistics
from otel_mlmon.exceptions import ConfigurationError

#: Live rows the statistics are computed on.
DEFAULT_WINDOW: Final = 1000
#: Usable values a feature needs in the window before any of its scores is reported.
DEFAULT_MIN_SAMPLES: Final = 500
#: Bins of PSI and Jensen-Shannon on numeric features (reference deciles).
DEFAULT_BINS: Final = 10
#: Seconds between two transition events of one feature and method.
DEFAULT_COOLDOWN: Final = 300.0
#: Distinct categories kept per categorical feature; later ones share one bucket.
DEFAULT_MAX_CATEGORIES: Final = 1000
#: Features counted per bin for fleet drift when ``fleet_features`` names none: the first ones.
DEFAULT_MAX_FLEET_FEATURES: Final = 32
#: Windows of live rows held for fleet-drift counting at collection (the window included).
DEFAULT_FLEET_BUFFER: Final = 4


@dataclass(frozen=True)
class DriftConfig:
    """Settings of the drift processor; every field has a measured default (docs/drift.md).

    Attributes:
        window: live rows kept (and scored).
        min_samples: usable values a feature needs in the window before it is scored.
        methods: ``ml.drift.method`` names to compute (default: all registered); each applies
            to the feature types it supports.
        thresholds: per-method overrides of the registered default thresholds.
        bins: quantile bins of the reference for PSI and Jensen-Shannon on numeric features.
        learn_reference_from: with no reference given, learn it from the first N rows (and the
            first N predictions).
        cooldown: seconds between two transition events of one feature and method.
        categorical / numeric: feature names whose type is forced (otherwise inferred from the
            reference; learned references treat unforced features as numeric).
        max_categories: distinct categories kept per categorical feature.
        fleet_features: the features (and ``"_prediction"``) whose live values are counted per
            reference bin for fleet drift (``ml.drift.live.values``, docs/drift.md); ``None``:
            the first :data:`DEFAULT_MAX_FLEET_FEATURES` features and the predictions; ``()``:
            none.
        fleet_buffer: windows of rows held (the live window included) so that the per-bin
            counting of fleet drift runs at collection: up to ``fleet_buffer * window`` rows
            may arrive between two collections before rows are counted as they arrive
            (memory: ``fleet_buffer * window * features * 8`` bytes). 1: no extra memory.

    Raises:
        ConfigurationError: for an invalid value, at construction.

    .. versionadded:: 0.1.0
    """

    window: int = DEFAULT_WINDOW
    min_samples: int = DEFAULT_MIN_SAMPLES
    methods: tuple[str, ...] | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    bins: int = DEFAULT_BINS
    learn_reference_from: int | None = None
    cooldown: float = DEFAULT_COOLDOWN
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    max_categories: int = DEFAULT_MAX_CATEGORIES
    fleet_features: tuple[str, ...] | None = None
    fleet_buffer: int = DEFAULT_FLEET_BUFFER

    def __post_init__(self) -> None:
        for label, value in (
            ("window", self.window),
            ("min_samples", self.min_samples),
            ("max_categories", self.max_categories),
            ("fleet_buffer", self.fleet_buffer),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"drift {label} must be a positive integer, not {value!r}")
        if self.min_samples > self.window:
            raise ConfigurationError(
                f"drift min_samples ({self.min_samples}) cannot exceed the window ({self.window})"
            )
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise ConfigurationError(f"drift bins must be an integer >= 2, not {self.bins!r}")
        learn = self.learn_reference_from
        if learn is not None and (
            isinstance(learn, bool) or not isinstance(learn, int) or learn < 1
        ):
            raise ConfigurationError(
                f"learn_reference_from must be a positive integer, not {learn!r}"
            )
        if not (isinstance(self.cooldown, (int, float)) and self.cooldown >= 0):
            raise ConfigurationError(f"drift cooldown must be >= 0 seconds, not {self.cooldown!r}")
        fleet = self.fleet_features
        if fleet is not None and (
            isinstance(fleet, str) or not all(isinstance(n, str) for n in fleet)
        ):
            raise ConfigurationError("drift fleet_features must be a tuple of feature names")
        if self.methods is not None:
            if isinstance(self.methods, str) or not self.methods:
                raise ConfigurationError("drift methods must be a non-empty tuple of names")
            for method in self.methods:
                if method not in statistics.METHODS:
                    raise ConfigurationError(
                        f"unknown drift method {method!r}; known: {sorted(statistics.METHODS)}"
                    )
        for method, threshold in self.thresholds.items():
            if method not in statistics.METHODS:
                raise ConfigurationError(
                    f"threshold for unknown drift method {method!r}; "
                    f"known: {sorted(statistics.METHODS)}"
                )
            if (
                isinstance(threshold, bool)
                or not isinstance(threshold, (int, float))
                or not (math.isfinite(threshold) and threshold >= 0)
            ):
                raise ConfigurationError(
                    f"threshold of {method!r} must be a finite number >= 0, not {threshold!r}"
                )

    @property
    def active_methods(self) -> tuple[str, ...]:
        """The methods to compute, in registry order."""
        chosen = statistics.METHODS if self.methods is None else self.methods
        return tuple(name for name in statistics.METHODS if name in chosen)

    def threshold(self, method: str) -> float:
        """The threshold of ``method``: the override, else the registered default."""
        if method in self.thresholds:
            return float(self.thresholds[method])
        return statistics.METHODS[method].default_threshold


def fleet_selection(config: DriftConfig, feature_names: Sequence[str]) -> frozenset[str]:
    """The names counted per bin: ``config.fleet_features``, or by default the first
    :data:`DEFAULT_MAX_FLEET_FEATURES` features and the predictions.

    Raises:
        ConfigurationError: a named feature that is neither a feature nor ``_prediction``.
    """
    if config.fleet_features is None:
        if len(feature_names) > DEFAULT_MAX_FLEET_FEATURES:
            warn_once(
                "drift-fleet-features",
                "otel-mlmon drift: fleet-drift counters cover the first %d of %d features; "
                "name the ones to count with DriftConfig(fleet_features=...)",
                DEFAULT_MAX_FLEET_FEATURES,
                len(feature_names),
            )
        return frozenset((*feature_names[:DEFAULT_MAX_FLEET_FEATURES], semconv.PREDICTION_FEATURE))
    known = {*feature_names, semconv.PREDICTION_FEATURE}
    for name in config.fleet_features:
        if name not in known:
            raise ConfigurationError(
                f"fleet_features: {name!r} is not a feature (features: {list(feature_names)})"
            )
    return frozenset(config.fleet_features)
