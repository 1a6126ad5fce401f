"""Business outcomes across the servers of a rollout (issue 16), with real servers.

Two FastAPI example servers run by their documented ``uvicorn --factory --workers`` command,
one serving the stable version and one the canary (``EXAMPLE_MODEL_VERSION``), sharing only the
key and the list of the fleet's versions (``OTEL_MLMON_FLEET_VERSIONS``), as the example's
docstring says. Outcomes of either server's predictions are posted to the other: summed over
every process, the value of each version equals what was sent for its predictions, exactly, and
so do its labels; hostile kinds, values and ids are counted, never added.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from _otlp import OtlpHttpServer, sum_points
from _wait import free_port, wait_healthy
from test_labels_across_workers import GUNICORN, UVICORN, Start, _label, _predict, _serve

from otel_mlmon import semconv

pytestmark = pytest.mark.skipif(
    not (GUNICORN.exists() and UVICORN.exists()), reason="gunicorn or uvicorn not installed"
)

STABLE, CANARY = "1.0.0", "1.1.0"
SHARED = {
    "OTEL_MLMON_LABEL_KEY": "replicas-share-this-secret-0123456789",
    "OTEL_MLMON_FLEET_VERSIONS": f"{STABLE},{CANARY}",
}


def _outcome(base: str, prediction_id: str, kind: str, value: float | None) -> None:
    body = {"prediction_id": prediction_id, "kind": kind, "value": value}
    response = httpx.post(f"{base}/outcome", json=body, timeout=120)
    assert 202 == response.status_code, response.text


def _by_version(otlp: OtlpHttpServer, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    totals: dict[tuple[str, ...], float] = {}
    for attributes, value in sum_points(otlp.receiver.requests["/v1/metrics"], name):
        key = (attributes[semconv.ML_MODEL_VERSION], *(attributes[k] for k in keys))
        totals[key] = totals.get(key, 0.0) + value
    return totals


def test_outcomes_posted_to_the_other_versions_server_sum_exactly_per_version(
    run_command: Start,
    otlp_http: OtlpHttpServer,
    tmp_path: Path,
) -> None:
    stable_port, canary_port = free_port(), free_port()
    stable = _serve(run_command, stable_port, 2, otlp_http, "uvicorn",
                    XDG_CACHE_HOME=str(tmp_path / "a"), **SHARED)  # fmt: skip
    canary = _serve(run_command, canary_port, 2, otlp_http, "uvicorn",
                    XDG_CACHE_HOME=str(tmp_path / "b"), EXAMPLE_MODEL_VERSION=CANARY,
                    **SHARED)  # fmt: skip
    stable_base, canary_base = (f"http://127.0.0.1:{p}" for p in (stable_port, canary_port))
    wait_healthy(stable_base, stable.process)
    wait_healthy(canary_base, canary.process)

    made = {STABLE: _predict(stable_base, 30, stable), CANARY: _predict(canary_base, 20, canary)}
    other = {STABLE: canary_base, CANARY: stable_base}
    revenue: Counter[str] = Counter()
    ratings: Counter[str] = Counter()
    for version, predictions in made.items():
        for i, (prediction_id, predicted) in enumerate(predictions):
            value = (i % 8) * 1.25 + 0.5  # whole quarters: float sums are exact
            _outcome(other[version], prediction_id, "revenue", value)
            revenue[version] += value
            if i % 3 == 0:
                _outcome(other[version], prediction_id, "rating", 1 + i % 5)
                ratings[version] += 1
            _label(other[version], prediction_id, predicted)
    hostile = made[STABLE][0][0]
    _outcome(canary_base, hostile, "k" * 64, 1.0)  # never declared
    _outcome(canary_base, hostile, "revenue", -5.0)  # negative
    _outcome(canary_base, hostile, "revenue", 1e12)  # over max_value
    _outcome(canary_base, hostile, "rating", None)  # a score without one
    _outcome(canary_base, hostile[:12] + ("A" if hostile[12] != "A" else "B") + hostile[13:],
             "revenue", 1.0)  # forged  # fmt: skip
    stable.stop()
    canary.stop()

    assert {(STABLE, "revenue"): revenue[STABLE], (CANARY, "revenue"): revenue[CANARY]} == (
        _by_version(otlp_http, semconv.ML_MODEL_OUTCOME_VALUE, semconv.ML_OUTCOME_KIND)
    )
    statuses = _by_version(
        otlp_http, semconv.ML_MODEL_OUTCOMES, semconv.ML_OUTCOME_KIND, semconv.ML_OUTCOME_STATUS
    )
    assert {
        (STABLE, "revenue", "matched"): 30, (STABLE, "rating", "matched"): ratings[STABLE],
        (CANARY, "revenue", "matched"): 20, (CANARY, "rating", "matched"): ratings[CANARY],
        # Counted by the canary's server, which received them: for a genuine id, the version
        # that made the prediction; for one that does not verify, the server's own.
        (STABLE, "revenue", "bad_value"): 2, (STABLE, "rating", "bad_value"): 1,
        (CANARY, "_OTHER", "unknown_kind"): 1, (CANARY, "revenue", "invalid"): 1,
    } == statuses  # fmt: skip
    # Labels cross over too: each version's accuracy is its own.
    assert {(STABLE, "matched"): 30, (CANARY, "matched"): 20} == _by_version(
        otlp_http, semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )
