"""Which measurements carry exemplars, and what keeping one costs a prediction.

Exemplars are the SDK's: its filter (``OTEL_METRICS_EXEMPLAR_FILTER``) decides which
measurements may be kept, its reservoirs (an extension point, ``ExemplarReservoir``) which are.
otel-mlmon chooses the reservoirs per instrument through :func:`~otel_mlmon.default_views`:

- :class:`LatestPerBucket` on the prediction latency histogram: the contract of the SDK's
  ``AlignedHistogramBucketExemplarReservoir`` (the last measurement of each bucket) with the
  work moved off the hot path: an offer is a ``bisect`` and a store; the span's ids are read
  from the kept context at collection;
- the SDK's default on ``ml.model.errors`` (failures are rare) and on the HTTP metrics;
- :class:`NoExemplars` on every other instrument of ours: no panel follows a traffic counter or
  a confidence histogram to a trace, so their measurements skip the reservoir altogether.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_METRICS_EXEMPLAR_FILTER
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Exemplar,
    ExemplarFilter,
    ExemplarReservoir,
    TraceBasedExemplarFilter,
)
from opentelemetry.util.types import Attributes

from otel_mlmon import _env, semconv

#: ``OTEL_METRICS_EXEMPLAR_FILTER`` values, as the SDK names them.
EXEMPLAR_FILTERS: Final[dict[str, Callable[[], ExemplarFilter]]] = {
    "trace_based": TraceBasedExemplarFilter,
    "always_on": AlwaysOnExemplarFilter,
    "always_off": AlwaysOffExemplarFilter,
}

#: The metrics of ours whose exemplars lead somewhere: latency (a slow prediction) and errors
#: (a failed one).
EXEMPLAR_METRICS: Final = (semconv.ML_MODEL_PREDICTION_DURATION, semconv.ML_MODEL_ERRORS)


def exemplar_filter() -> ExemplarFilter:
    """The SDK's filter named by ``OTEL_METRICS_EXEMPLAR_FILTER`` (``trace_based``: exemplars
    only from measurements inside a sampled span). A malformed value warns and falls back,
    where the SDK alone would fail start-up."""
    name = _env.env_choice(OTEL_METRICS_EXEMPLAR_FILTER, tuple(EXEMPLAR_FILTERS), "trace_based")
    return EXEMPLAR_FILTERS[name]()


class NoExemplars(ExemplarReservoir):
    """Keeps nothing: for instruments no panel follows to a trace."""

    def __init__(self, **_: Any) -> None:
        pass

    def offer(
        self, value: float, time_unix_nano: int, attributes: Attributes, context: Context
    ) -> None:
        pass

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        return []


class LatestPerBucket(ExemplarReservoir):
    """The last measurement offered in each bucket of an explicit-bucket histogram (buckets
    upper-inclusive, as the SDK's and Prometheus's), returned and forgotten at collection."""

    def __init__(self, boundaries: Sequence[float] = (), **_: Any) -> None:
        self._boundaries = list(boundaries)
        self._latest: dict[int, tuple[float, int, Attributes, Context]] = {}
        self._lock = threading.Lock()  # the swap at collection only; offers store one item

    def offer(
        self, value: float, time_unix_nano: int, attributes: Attributes, context: Context
    ) -> None:
        self._latest[bisect_left(self._boundaries, value)] = (
            value, time_unix_nano, attributes, context,
        )  # fmt: skip

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        with self._lock:
            latest, self._latest = self._latest, {}
        exemplars = []
        for value, time_unix_nano, attributes, context in latest.values():
            span_context = trace.get_current_span(context).get_span_context()
            filtered = (
                {k: v for k, v in attributes.items() if k not in (point_attributes or {})}
                if attributes
                else None
            )
            exemplars.append(
                Exemplar(
                    filtered,
                    value,
                    time_unix_nano,
                    span_context.span_id if span_context.is_valid else None,
                    span_context.trace_id if span_context.is_valid else None,
                )
            )
        return exemplars


def reservoir_for(name: str) -> Callable[[type], type[ExemplarReservoir]] | None:
    """The View's ``exemplar_reservoir_factory`` for our instrument ``name`` (``None``: the
    SDK's default)."""
    if name == semconv.ML_MODEL_PREDICTION_DURATION:
        return _latest_per_bucket
    if name in EXEMPLAR_METRICS:
        return None
    return _no_exemplars


def _latest_per_bucket(aggregation_type: type) -> type[ExemplarReservoir]:
    return LatestPerBucket


def _no_exemplars(aggregation_type: type) -> type[ExemplarReservoir]:
    return NoExemplars
