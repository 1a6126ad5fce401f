"""Shadow predictions: a challenger version recorded on live traffic, never served.

``monitor.shadow("1.3.0")`` gives a :class:`ShadowMonitor`. For each request the served model
answers as usual through ``monitor.predict()``; the challenger's prediction on the same input
is recorded through ``shadow.predict(p)``, where ``p`` is the served prediction, recorded
first::

    with monitor.predict(features=x) as p:
        p.record(champion.predict(x))
    with challenger.predict(p) as s:
        s.record(candidate.predict(x))

A shadow records what a served version records (``ml.model.predictions``, the duration, the
confidence, errors), under its own ``ml.model.version`` and with ``ml.model.role=shadow`` on
every series, so that traffic panels and canary alerts leave it out. Each row is compared with
the served row: ``ml.model.shadow.comparisons`` by ``ml.shadow.agreement`` (``agree`` or
``disagree``; a regression agrees within ``tolerance``), from which PromQL takes the agreement
rate. The shadow's ids (``s.id``) join labels and outcomes through the monitor that made it,
counted for the shadow version. No span unless ``trace=True``: the served request's trace is
not made longer by a model that did not answer it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import Observation

from otel_mlmon import semconv
from otel_mlmon._guard import internal_error
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor._recorder import Prediction, Recorder

if TYPE_CHECKING:
    from otel_mlmon.monitor._attributes import ModelAttributes
    from otel_mlmon.monitor._versions import Version

#: Served versions a shadow keeps agreement counts against (a new one past it replaces the
#: oldest, whose series stop).
MAX_CHAMPIONS: Final = 8


class AgreementCounts:
    """Rows of one shadow compared with served rows: by served version, agreeing or not."""

    __slots__ = ("_base", "_counts", "_lock")

    def __init__(self, attributes: ModelAttributes) -> None:
        self._lock = threading.Lock()
        self._base = attributes.base
        # served version -> [agreeing rows, disagreeing rows]
        self._counts: dict[str, list[int]] = {}

    def add(self, champion: str, agree: int, disagree: int) -> None:
        """Count rows compared with the served ``champion`` version's."""
        with self._lock:
            counts = self._counts.get(champion)
            if counts is None:
                if len(self._counts) >= MAX_CHAMPIONS:
                    del self._counts[next(iter(self._counts))]
                counts = self._counts[champion] = [0, 0]
            counts[0] += agree
            counts[1] += disagree

    def observe(self) -> Iterator[Observation]:
        with self._lock:
            counts = [(champion, pair[0], pair[1]) for champion, pair in self._counts.items()]
        for champion, agree, disagree in counts:
            base = {**self._base, semconv.ML_SHADOW_CHAMPION_VERSION: champion}
            yield Observation(agree, {**base, semconv.ML_SHADOW_AGREEMENT: semconv.SHADOW_AGREE})
            yield Observation(
                disagree, {**base, semconv.ML_SHADOW_AGREEMENT: semconv.SHADOW_DISAGREE}
            )

    def reset_after_fork(self) -> None:
        self._lock = threading.Lock()


class ShadowPrediction(Prediction):
    """A challenger's prediction on a served request; yielded by :meth:`ShadowMonitor.predict`.

    Used like :class:`Prediction` (``record()``, ``id``); it never describes the request's
    server span and feeds no drift window. Its id is made only when read, never for its span:
    nobody is handed a shadow's id unless the code reads it.

    .. versionadded:: 0.3.0
    """

    __slots__ = ("_agreements", "_champion", "_tolerance")

    def __init__(
        self,
        recorder: Recorder,
        champion: Prediction,
        agreements: AgreementCounts,
        tolerance: float,
    ) -> None:
        super().__init__(recorder, None)
        self._champion = champion
        self._agreements = agreements
        self._tolerance = tolerance

    _DESCRIBES_REQUEST = False

    def _describe_id(self) -> None:
        """Nothing: a shadow's id is made when read, not for its span."""

    def record(self, prediction: object, confidence: object = None) -> None:
        """Record the challenger's output as :meth:`Prediction.record` does, then compare it
        with the served prediction's, row by row."""
        first = not self._recorded
        Prediction.record(self, prediction, confidence)
        if first:
            try:
                self._compare()
            except Exception as exc:
                internal_error("ShadowPrediction.record", exc)

    def _compare(self) -> None:
        attributes = self._attributes
        if not (attributes.classification or attributes.regression):
            return  # nothing comparable is kept for task "other"
        champion = self._champion
        mine, theirs = self._output, champion._output
        single = type(mine) is not list and type(theirs) is not list
        if single and mine is not None and theirs is not None:
            # One row each, the common case: no list, no generator.
            if attributes.classification:
                same = mine == theirs
            else:
                same = abs(mine - theirs) <= self._tolerance
            self._agreements.add(champion._attributes.model.version, same, not same)
            return
        if type(mine) is list:
            pairs = list(zip(mine, theirs, strict=True)) if _rows(theirs) == len(mine) else None
        else:
            pairs = None if type(theirs) is list else [(mine, theirs)]
        if pairs is None or any(a is None or b is None for a, b in pairs):
            self._recorder.reject(semconv.REJECT_SHADOW_UNPAIRED)
            return
        if attributes.regression:
            tolerance = self._tolerance
            agree = sum(1 for a, b in pairs if abs(a - b) <= tolerance)
        else:
            agree = sum(1 for a, b in pairs if a == b)
        self._agreements.add(champion._attributes.model.version, agree, len(pairs) - agree)


def _rows(output: object) -> int:
    return len(output) if type(output) is list else -1


class ShadowMonitor:
    """A challenger version recorded on the traffic of a :class:`ModelMonitor`, never served;
    made by :meth:`ModelMonitor.shadow`.

    .. versionadded:: 0.3.0
    """

    def __init__(self, recorder: Recorder, agreements: AgreementCounts, tolerance: float) -> None:
        self._recorder = recorder
        self._agreements = agreements
        self._tolerance = tolerance

    @property
    def name(self) -> str:
        """The model's name (``ml.model.name``), the monitor's."""
        return self._recorder.attributes.model.name

    @property
    def version(self) -> str:
        """The challenger's version (``ml.model.version`` of its series)."""
        return self._recorder.attributes.model.version

    def predict(self, champion: Prediction) -> ShadowPrediction:
        """Open the challenger's prediction on the request that ``champion`` (the served
        prediction, already recorded) answered: ``with shadow.predict(p) as s: s.record(y)``."""
        return ShadowPrediction(self._recorder, champion, self._agreements, self._tolerance)


def shadow_of(served: Recorder, version: Version, trace: bool, tolerance: float) -> ShadowMonitor:
    """A :class:`ShadowMonitor` recording ``version`` (a shadow of the monitor whose recorder
    is ``served``) into the same instruments and tracer.

    Raises:
        ConfigurationError: a tolerance that is not a finite number >= 0.
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not (math.isfinite(tolerance) and tolerance >= 0)
    ):
        raise ConfigurationError(f"shadow tolerance must be a number >= 0, not {tolerance!r}")
    assert version.agreements is not None  # a shadow's version counts agreements
    recorder = Recorder(
        None,
        version.attributes,
        served.instruments,
        served.tracer,
        traced=trace,
        exception_messages=served.exception_messages,
    )
    shadow = ShadowMonitor(recorder, version.agreements, float(tolerance))
    recorder.owner = shadow
    return shadow
