"""The versions of one model whose prediction ids a monitor verifies, each with its counts.

A label or an outcome counts for the version that made the prediction, which its id names (a
3-byte fingerprint of model name and version, and a MAC with that version's key). A monitor
verifies the ids of:

- the version it serves (``version=``, then each ``update_model()``);
- the last :data:`MAX_PREVIOUS` versions it served before, so that what arrives after an update
  still counts for the version that earned it (an older one's series stop);
- the fleet's other versions (``Labels(fleet_versions=...)``): a rollout's stable version and
  its canary, served by other replicas;
- its shadows (``ModelMonitor.shadow()``), whose series carry ``ml.model.role=shadow``.

The index from fingerprint to versions is replaced whole on a change, so the recording path
reads it without a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from opentelemetry.metrics import CallbackOptions, Observation

from otel_mlmon import semconv
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor._attributes import ModelAttributes
from otel_mlmon.monitor.labels import Decoded, decode_text
from otel_mlmon.monitor.outcomes import OutcomeCounts
from otel_mlmon.monitor.quality import QualityCounts
from otel_mlmon.monitor.shadow import AgreementCounts

#: Versions served before the current one whose ids still verify.
MAX_PREVIOUS: Final = 8
#: Shadows of one monitor at most.
MAX_SHADOWS: Final = 8

MakeAttributes = Callable[[str, "str | None"], ModelAttributes]


class Version:
    """One version: its attributes (with its id codec), labels and outcomes, and for a shadow
    its agreement with the served predictions."""

    __slots__ = ("agreements", "attributes", "outcomes", "quality")

    def __init__(self, attributes: ModelAttributes) -> None:
        self.attributes = attributes
        self.quality = QualityCounts(attributes)
        self.outcomes = OutcomeCounts(attributes)
        self.agreements = AgreementCounts(attributes) if attributes.role else None

    @property
    def name(self) -> str:
        return self.attributes.model.version


class Versions:
    """The versions a monitor verifies ids of; :attr:`served` is the one it serves now."""

    def __init__(self, make: MakeAttributes, served: str, fleet: Sequence[str]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._fleet = frozenset(fleet)
        self.served = Version(make(served, None))
        #: Every version that is not a shadow, by name: served, fleet, previous.
        self._entries = {served: self.served}
        for name in fleet:
            if name != served:
                self._entries[name] = Version(make(name, None))
        self._previous: list[str] = []
        self._shadows: dict[str, Version] = {}
        self._all: tuple[Version, ...] = ()
        self._index: dict[bytes, tuple[Version, ...]] = {}
        self._reindex()

    def all(self) -> tuple[Version, ...]:
        """Every version verified: served first, then the fleet, previous ones, shadows."""
        return self._all

    def _reindex(self) -> None:
        """Replace the snapshot and the index whole (readers take no lock)."""
        every = (self.served, *(v for v in self._entries.values() if v is not self.served),
                 *self._shadows.values())  # fmt: skip
        index: dict[bytes, tuple[Version, ...]] = {}
        for version in every:
            codec = version.attributes.ids
            assert codec is not None  # made with the attributes
            index[codec.fingerprint] = (*index.get(codec.fingerprint, ()), version)
        self._all, self._index = every, index

    def serve(self, name: str) -> Version:
        """Serve version ``name`` from now on; the one served until now stays verified (among
        the last :data:`MAX_PREVIOUS`, or as a fleet version)."""
        entry = self._entries.get(name) or Version(self._make(name, None))
        with self._lock:
            old = self.served.name
            if name in self._previous:
                self._previous.remove(name)
            if old != name and old not in self._fleet:
                self._previous.append(old)
            while len(self._previous) > MAX_PREVIOUS:
                del self._entries[self._previous.pop(0)]
            self._shadows.pop(name, None)  # a promoted shadow: its series stop
            self._entries[name] = self.served = entry
            self._reindex()
        return entry

    def shadow(self, name: str) -> Version:
        """The shadow version ``name`` (made on first use).

        Raises:
            ConfigurationError: ``name`` is served here or in the fleet, or
                :data:`MAX_SHADOWS` shadows exist.
        """
        with self._lock:
            found = self._shadows.get(name)
            if found is not None:
                return found
            if name == self.served.name or name in self._fleet:
                raise ConfigurationError(
                    f"version {name!r} is served (here or in the fleet); a shadow is a version "
                    "that answers no request"
                )
            if len(self._shadows) >= MAX_SHADOWS:
                raise ConfigurationError(f"at most {MAX_SHADOWS} shadows per monitor")
            if name in self._previous:  # a version served before, now run in the shadow
                self._previous.remove(name)
                del self._entries[name]
            version = self._shadows[name] = Version(self._make(name, semconv.ROLE_SHADOW))
            self._reindex()
            return version

    def find(self, prediction_id: object) -> tuple[Version, Decoded] | None:
        """The version that made ``prediction_id`` and the id's content; ``None`` for an id
        that no version here signed. Never raises."""
        raw = decode_text(prediction_id)
        if raw is None:
            return None
        for version in self._index.get(raw[1:4], ()):
            decoded = version.attributes.ids.decode_raw(raw)  # type: ignore[union-attr]
            if decoded is not None:
                return version, decoded
        return None

    def made_at(self, prediction_id: object) -> tuple[Version, int] | None:
        """The version that made ``prediction_id`` and when (Unix seconds), without reading
        what the id carries; ``None`` for an id that no version here signed."""
        raw = decode_text(prediction_id)
        if raw is None:
            return None
        for version in self._index.get(raw[1:4], ()):
            when = version.attributes.ids.made_at(raw)  # type: ignore[union-attr]
            if when is not None:
                return version, when
        return None

    # --- collection: every version's counts ---------------------------------------------

    def observe_labels(self, options: CallbackOptions) -> Iterator[Observation]:
        for version in self.all():
            yield from version.quality.observe_labels(options)

    def observe_absolute_error(self, options: CallbackOptions) -> Iterator[Observation]:
        for version in self.all():
            yield from version.quality.observe_absolute_error(options)

    def observe_squared_error(self, options: CallbackOptions) -> Iterator[Observation]:
        for version in self.all():
            yield from version.quality.observe_squared_error(options)

    def observe_outcomes(self) -> Iterator[Observation]:
        for version in self.all():
            yield from version.outcomes.observe_counts()

    def observe_outcome_values(self) -> Iterator[Observation]:
        for version in self.all():
            yield from version.outcomes.observe_values()

    def observe_agreements(self) -> Iterator[Observation]:
        for version in self.all():
            if version.agreements is not None:
                yield from version.agreements.observe()

    def reset_after_fork(self) -> None:
        """Fresh locks for the child: the parent's may have been held at fork."""
        self._lock = threading.Lock()
        for version in self.all():
            version.attributes.reset_after_fork()
            version.quality.reset_after_fork()
            version.outcomes.reset_after_fork()
            if version.agreements is not None:
                version.agreements.reset_after_fork()
