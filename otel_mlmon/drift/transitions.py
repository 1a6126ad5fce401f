"""Transitions into and out of drift: counted and logged once each, with a cooldown.

Each (feature, method) has a state (drifting or not) and the time it last changed. A new score
whose verdict differs from the state changes it, unless the last change is less than
``cooldown`` seconds old; each change adds one to ``ml.drift.transitions`` and logs one
``drift_detected`` event on the ``otel_mlmon.events`` logger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import Counter

from otel_mlmon import semconv
from otel_mlmon.drift.reference import Score
from otel_mlmon.logs.events import emit_event


class Transitions:
    """The drift state of every (feature, method), and its transitions.

    Not thread-safe on its own: the processor calls it under its compute lock.
    """

    def __init__(self, counter: Counter, cooldown: float, clock: Callable[[], float]) -> None:
        self._counter = counter
        self._cooldown = cooldown
        self._clock = clock
        self._states: dict[tuple[str, str], tuple[bool, float]] = {}

    def clear(self) -> None:
        """Forget every state: the next scores start afresh (a new model version)."""
        self._states.clear()

    def update(self, scores: Iterable[Score], base: Mapping[str, str]) -> None:
        """Record the transitions ``scores`` make, under the model attributes ``base``."""
        now = self._clock()
        for score in scores:
            key = (score.feature, score.method)
            state, changed_at = self._states.get(key, (False, -math.inf))
            if score.drifted == state or now - changed_at < self._cooldown:
                continue
            self._states[key] = (score.drifted, now)
            name = semconv.DRIFT_STATE_DRIFT if score.drifted else semconv.DRIFT_STATE_NO_DRIFT
            attributes = {
                **base,
                semconv.ML_FEATURE_NAME: score.feature,
                semconv.ML_DRIFT_METHOD: score.method,
                semconv.ML_DRIFT_STATE: name,
            }
            self._counter.add(1, attributes)
            fields: dict[str, Any] = {
                **attributes,
                "score": score.score,
                "threshold": score.threshold,
                "samples": score.samples,
            }
            level = logging.WARNING if score.drifted else logging.INFO
            emit_event(semconv.EVENT_DRIFT_DETECTED, level=level, **fields)
