"""Observable instruments shared by every owner that reports under one name on one provider.

The SDK keeps the first observable instrument registered under a name on a meter and drops the
callbacks of later registrations (with a warning), so a second ``ModelMonitor`` on the same
MeterProvider would report none of its gauges. Each observable metric is therefore created once
per provider, with one callback that asks every live owner in turn. Owners are held weakly: a
monitor that is garbage-collected stops reporting.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, CallbackT, Meter, MeterProvider, Observation

from otel_mlmon import _fork
from otel_mlmon._guard import internal_error
from otel_mlmon.version import __version__

OwnerCallback = Callable[[Any, CallbackOptions], Iterable[Observation]]
Factory = Callable[[Meter, Sequence[CallbackT]], object]


class _Fanout:
    """The single callback of one observable instrument: every owner's observations.

    Each owner's callback runs on its own: one that raises is reported through the guard
    (counted, logged once per instrument) and the other owners' points are still reported.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._owners: list[tuple[weakref.ref[Any], OwnerCallback]] = []
        self._lock = threading.Lock()

    def add(self, owner: object, callback: OwnerCallback) -> None:
        with self._lock:
            self._owners.append((weakref.ref(owner), callback))

    def __call__(self, options: CallbackOptions) -> Iterator[Observation]:
        with self._lock:
            owners = list(self._owners)
        dead = False
        failures: list[Exception] = []
        for ref, callback in owners:
            owner = ref()
            if owner is None:
                dead = True
                continue
            try:
                observations = list(callback(owner, options))
            except Exception as exc:
                failures.append(exc)
                continue
            yield from observations
        if dead:
            with self._lock:
                self._owners = [(r, c) for r, c in self._owners if r() is not None]
        # After every healthy owner reported: under strict mode the first failure is re-raised
        # here, when it can no longer hide the others' points.
        for failure in failures:
            internal_error(f"observable {self._name}", failure)


_lock = threading.Lock()
_meters: weakref.WeakKeyDictionary[MeterProvider, Meter] = weakref.WeakKeyDictionary()
_fanouts: weakref.WeakKeyDictionary[Meter, dict[str, _Fanout]] = weakref.WeakKeyDictionary()


def meter_for(meter_provider: MeterProvider | None) -> Meter:
    """otel-mlmon's meter on ``meter_provider`` (default: the global one), one per provider.

    The API's global proxy provider hands out a new meter on every call; caching it here gives
    every monitor on one provider the same meter, so :func:`observe` can share instruments.
    """
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _lock:
        meter = _meters.get(provider)
        if meter is None:
            meter = _meters[provider] = metrics.get_meter("otel_mlmon", __version__, provider)
        return meter


def observe(
    meter: Meter,
    name: str,
    create: Factory,
    owner: object,
    callback: OwnerCallback,
) -> None:
    """Report ``callback(owner, options)``'s observations under metric ``name`` on ``meter``.

    ``create(meter, callbacks)`` (a ``semconv`` factory) makes the instrument the first time
    ``name`` is observed on this meter; later owners join its callback.
    """
    with _lock:
        by_name = _fanouts.setdefault(meter, {})
        fanout = by_name.get(name)
        if fanout is None:
            fanout = by_name[name] = _Fanout(name)
            create(meter, [fanout])
    fanout.add(owner, callback)


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for by_name in list(_fanouts.values()):
        for fanout in by_name.values():
            fanout._lock = threading.Lock()
