"""Observable instruments shared by several owners on one provider."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pytest
from opentelemetry.metrics import CallbackOptions, CallbackT, Meter, Observation

from otel_mlmon import _guard, _observables
from otel_mlmon.testing import InMemoryTelemetry

NAME = "ml.test.shared_gauge"


def _create(meter: Meter, callbacks: Sequence[CallbackT]) -> object:
    return meter.create_observable_gauge(NAME, callbacks)


class _Owner:
    def __init__(self, value: float, broken: bool = False) -> None:
        self.value = value
        self.broken = broken


def _observe(owner: _Owner, options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(owner.value, {"owner": str(owner.value)})
    if owner.broken:
        raise RuntimeError("this owner's callback fails after its first point")


@pytest.mark.parametrize("strict", ["true", "false"])
def test_a_raising_owner_is_reported_once_and_the_others_still_report(
    telemetry: InMemoryTelemetry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    strict: str,
) -> None:
    monkeypatch.setenv("OTEL_MLMON_STRICT", strict)
    meter = _observables.meter_for(telemetry.meter_provider)
    first, broken, last = _Owner(1.0), _Owner(2.0, broken=True), _Owner(3.0)
    for owner in (first, broken, last):
        _observables.observe(meter, NAME, _create, owner, _observe)
    site = f"observable {NAME}"
    before = _guard.internal_error_count(site)
    with caplog.at_level(logging.WARNING):
        reported = telemetry.values_by(NAME, "owner")
    # The broken owner's points are dropped whole: a half-reported owner would be misread.
    assert {"1.0": 1.0, "3.0": 3.0} == reported
    if strict == "false":
        assert before + 1 == _guard.internal_error_count(site)
    else:  # re-raised after the others reported; the SDK logs the failed callback, once
        failed = [
            (r.getMessage(), repr(r.exc_info[1] if r.exc_info else None))
            for r in caplog.records
            if r.getMessage().startswith("Callback failed")
        ]
        assert [(f"Callback failed for instrument {NAME}.",
                 repr(RuntimeError("this owner's callback fails after its first point")))
                ] == failed  # fmt: skip
