"""The fleet-drift instruments of one drift processor: per-bin counters and reference gauges.

Which features are counted is chosen once (``config.fleet_selection``); each stream whose
reference is known gets a :class:`~otel_mlmon.drift.bins.LiveBins` that its ring window feeds
with blocks of rows. At collection the four instruments report, per counted feature and bin:

- ``ml.drift.live.values`` (counter): live values per bin, the ``missing`` bin included;
- ``ml.drift.live.values_at_or_below`` (counter, numeric features): usable values in bins
  ``0 .. ml.drift.bin``, the cumulative counts the binned KS needs (PromQL cannot add up bins
  in order);
- ``ml.drift.reference.values`` and ``ml.drift.reference.values_at_or_below`` (gauges): the
  same for the reference, whose share per bin the rules and dashboards divide out.

Every bin is reported from the moment the reference is known, at zero if nothing fell in it, so
``increase()`` is right from the first scrape. A new model version starts the counts at zero
(its series are new); a forked child starts at zero too (its parent reports what it counted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from otel_mlmon import _observables, semconv
from otel_mlmon.drift.bins import LiveBins
from otel_mlmon.drift.intake import Stream


class FleetCounters:
    """Per-bin counters of the chosen features of some streams, as OpenTelemetry instruments.

    Args:
        meter: the meter the four instruments are created on (shared by every processor).
        attributes: the model's current base attributes, read at collection.
        chosen: the feature names to count (:func:`~otel_mlmon.drift.config.fleet_selection`).
        streams: returns the processor's streams (features, predictions).
    """

    def __init__(
        self,
        meter: Meter,
        attributes: Callable[[], Mapping[str, str]],
        chosen: frozenset[str],
        streams: Callable[[], Iterable[Stream]],
    ) -> None:
        self._attributes = attributes
        self._chosen = chosen
        self._streams = streams
        for name, create, callback in (
            (semconv.ML_DRIFT_LIVE_VALUES, semconv.create_ml_drift_live_values,
             FleetCounters._observe_live),
            (semconv.ML_DRIFT_LIVE_VALUES_AT_OR_BELOW,
             semconv.create_ml_drift_live_values_at_or_below,
             FleetCounters._observe_live_at_or_below),
            (semconv.ML_DRIFT_REFERENCE_VALUES, semconv.create_ml_drift_reference_values,
             FleetCounters._observe_reference),
            (semconv.ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW,
             semconv.create_ml_drift_reference_values_at_or_below,
             FleetCounters._observe_reference_at_or_below),
        ):  # fmt: skip
            _observables.observe(meter, name, create, self, callback)

    def attach(self, stream: Stream) -> None:
        """Count ``stream``'s live values on the bins of its current reference from now on
        (rows not yet counted go to the previous bins first)."""
        reference = stream.reference
        columns = [i for i, name in enumerate(stream.schema.names) if name in self._chosen]
        bins = LiveBins(reference, columns) if reference is not None and columns else None
        stream.window.observe(bins.count if bins is not None else None)
        stream.bins = bins

    def model_updated(self) -> None:
        """A new model version: its series start at zero."""
        for stream in self._streams():
            if stream.bins is not None:
                stream.window.flush()
                stream.bins.reset()

    def reset_after_fork(self) -> None:
        """In a forked child, after the windows got fresh locks: counts start at zero, rows
        the parent wrote are the parent's to count."""
        for stream in self._streams():
            if stream.bins is not None:
                stream.bins.reset_after_fork()
                stream.window.flush()
                stream.bins.reset()

    def _observations(self, *, live: bool, cumulative: bool) -> Iterable[Observation]:
        base = self._attributes()
        for stream in self._streams():
            bins = stream.bins
            if bins is None:
                continue
            if live:
                stream.window.flush()
            counts = bins.snapshot() if live else bins.reference_counts
            for value, attributes in bins.observations(counts, base, cumulative=cumulative):
                yield Observation(value, attributes)

    def _observe_live(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observations(live=True, cumulative=False)

    def _observe_live_at_or_below(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observations(live=True, cumulative=True)

    def _observe_reference(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observations(live=False, cumulative=False)

    def _observe_reference_at_or_below(self, options: CallbackOptions) -> Iterable[Observation]:
        return self._observations(live=False, cumulative=True)
