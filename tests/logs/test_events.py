"""otel_mlmon.logs.events and the catalogue in otel_mlmon.semconv: every catalogued event is
emitted by the code its entry names, at its level, with its documented fields only."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry._logs import SeverityNumber

import otel_mlmon
from logs._apps import call, fastapi_app, flask_app, uninstrument
from logs._lines import lines
from otel_mlmon import ModelMonitor, semconv
from otel_mlmon.logs import configure_logging, emit_event, log_event, log_prediction
from otel_mlmon.testing import InMemoryTelemetry

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Fields every line may carry on top of an event's own: bookkeeping and correlation.
CORRELATION = {"event", "logger", "level", "timestamp", "trace_id", "span_id", "request_id",
               "service.name"}  # fmt: skip
SEVERITY = {"info": SeverityNumber.INFO, "warning": SeverityNumber.WARN,
            "error": SeverityNumber.ERROR}  # fmt: skip


def _requests(path: str, method: str, status: int) -> Callable[[InMemoryTelemetry], int]:
    def run(telemetry: InMemoryTelemetry) -> int:
        for factory in (fastapi_app, flask_app):
            app = factory(telemetry)
            try:
                assert status == call(app, method, path, body=b"{}")
            finally:
                uninstrument(app)
        return 2

    return run


def _prediction(telemetry: InMemoryTelemetry) -> int:
    monitor = ModelMonitor("iris", version="1", **telemetry.providers)
    with monitor.predict(features=[1.0]) as p:
        p.record(1, 0.9)
        log_prediction(1, confidence=0.9, prediction_id=p.id, batch_size=1, duration_s=0.001)
    return 1


def _loaded(telemetry: InMemoryTelemetry) -> int:
    ModelMonitor("iris", version="1", **telemetry.providers).model_loaded(
        framework="sklearn", metrics={"accuracy": 0.9}
    )
    return 1


def _updated(telemetry: InMemoryTelemetry) -> int:
    monitor = ModelMonitor("iris", version="1", **telemetry.providers)
    monitor.update_model("2", reason="retrained", metrics={"accuracy": 0.95})
    return 1


def _drift(telemetry: InMemoryTelemetry) -> int:
    monitor = ModelMonitor(
        "iris",
        version="1",
        drift=otel_mlmon.Drift(
            feature_names=["x"],
            reference=np.random.default_rng(7).normal(size=(500, 1)),
            config=otel_mlmon.DriftConfig(window=200, min_samples=200, methods=("ks",)),
        ),
        **telemetry.providers,
    )
    with monitor.predict(features=np.full((200, 1), 5.0)) as p:
        p.record([1] * 200)
    telemetry.metric_points(semconv.ML_DRIFT_SCORE)  # a reader collects: the scores run
    return 1


#: The code path each catalogue entry names, run as a user runs it; returns how many events
#: of that name it makes.
EMITTERS: dict[str, Callable[[InMemoryTelemetry], int]] = {
    semconv.EVENT_REQUEST_COMPLETED: _requests("/items/7", "GET", 200),
    semconv.EVENT_REQUEST_FAILED: _requests("/fail", "POST", 500),
    semconv.EVENT_PREDICTION_MADE: _prediction,
    semconv.EVENT_MODEL_LOADED: _loaded,
    semconv.EVENT_MODEL_UPDATED: _updated,
    semconv.EVENT_DRIFT_DETECTED: _drift,
}


def test_every_catalogued_event_has_its_emitter_run_here() -> None:
    assert [spec.name for spec in semconv.EVENTS] == list(EMITTERS)


def _documented(spec: semconv.EventSpec, key: str, value: Any) -> bool:
    if "metrics.<name>" in dict(spec.fields) and key == "metrics":
        return isinstance(value, dict)
    return key in dict(spec.fields)


@pytest.mark.parametrize("spec", semconv.EVENTS, ids=lambda spec: spec.name)
def test_each_event_is_emitted_by_its_documented_code_at_its_level_with_its_fields(
    telemetry: InMemoryTelemetry, stream: io.StringIO, spec: semconv.EventSpec
) -> None:
    expected = EMITTERS[spec.name](telemetry)
    emitted = [line for line in lines(stream) if line["event"] == spec.name]
    assert [spec.level] * expected == [line["level"] for line in emitted]
    undocumented = {
        key
        for line in emitted
        for key, value in line.items()
        if key not in CORRELATION and not _documented(spec, key, value)
    }
    assert set() == undocumented
    records = [r.log_record for r in telemetry.logs() if r.log_record.body == spec.name]
    assert [SEVERITY[spec.level]] * expected == [r.severity_number for r in records]
    assert {"otel_mlmon.events"} == {line["logger"] for line in emitted}


def test_logging_md_names_every_catalogued_event_and_only_those() -> None:
    text = (DOCS / "logging.md").read_text()
    section = text[text.index("## Events") :]
    named = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert {spec.name for spec in semconv.EVENTS} == named


def test_emit_event_uses_the_catalogue_level_and_logs_fields_as_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_mlmon.events")
    emit_event(semconv.EVENT_DRIFT_DETECTED, score=0.3)
    emit_event(semconv.EVENT_DRIFT_DETECTED, level=logging.INFO, score=0.1)
    first, second = caplog.records
    assert (logging.WARNING, 0.3, logging.INFO) == (first.levelno, first.score, second.levelno)  # type: ignore[attr-defined]


def test_a_field_named_like_a_record_attribute_is_kept_under_another_name(
    stream: io.StringIO,
) -> None:
    emit_event(semconv.EVENT_MODEL_LOADED, name="iris", message="hello")
    line = lines(stream)[0]
    assert ("iris", "hello", "model_loaded") == (line["name_"], line["message_"], line["event"])


def test_an_event_outside_the_catalogue_is_logged_at_info_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    emit_event("made_up_event_for_the_test", value=1)
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert logging.INFO == levels["made_up_event_for_the_test"]
    assert (
        logging.WARNING
        == levels["otel-mlmon: 'made_up_event_for_the_test' is not a catalogued event"]
    )


def test_log_event_is_deprecated_and_emits_the_same_event(stream: io.StringIO) -> None:
    with pytest.warns(DeprecationWarning, match="emit_event"):
        log_event(semconv.EVENT_MODEL_LOADED, framework="x")
    assert [("model_loaded", "otel_mlmon.events", "info")] == [
        (line["event"], line["logger"], line["level"]) for line in lines(stream)
    ]


def test_events_need_no_logging_configuration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="otel_mlmon.events")
    emit_event(semconv.EVENT_MODEL_LOADED, **{semconv.ML_MODEL_NAME: "iris"})
    (record,) = caplog.records
    assert ("model_loaded", "iris") == (record.getMessage(), getattr(record, "ml.model.name"))


# --- prediction events ------------------------------------------------------------------------


def test_log_prediction_leaves_features_out_unless_opted_in(stream: io.StringIO) -> None:
    log_prediction(1, confidence=0.9, features=[5.1, 3.5])
    log_prediction(2, features=[5.1, 3.5], include_features=True)
    first, second = lines(stream)
    assert ("prediction_made", 1, 0.9) == (
        first["event"],
        first["prediction"],
        first["ml.prediction.confidence"],
    )
    assert "features" not in first
    assert [5.1, 3.5] == second["features"]


def test_log_prediction_sampling_keeps_the_configured_fraction(
    telemetry: InMemoryTelemetry,
) -> None:
    out = io.StringIO()
    configure_logging(
        logger_provider=telemetry.logger_provider, stream=out, sample_predictions=0.25
    )
    tracer = telemetry.tracer_provider.get_tracer("t")
    kept = 0
    for _ in range(2000):
        with tracer.start_as_current_span("request"):
            kept += log_prediction(1)
    assert kept == len(lines(out))
    # Binomial(2000, 0.25): 500 +- 19.4; outside +- 6 sigma is a bug, not bad luck.
    assert 384 <= kept <= 616
    assert (0, 5) == (
        sum(log_prediction(1, sample_rate=0.0) for _ in range(5)),
        sum(log_prediction(1, sample_rate=1.0) for _ in range(5)),
    )


def test_prediction_sampling_keeps_or_drops_a_whole_trace(telemetry: InMemoryTelemetry) -> None:
    configure_logging(logger_provider=telemetry.logger_provider, stream=io.StringIO())
    tracer = telemetry.tracer_provider.get_tracer("t")
    decisions = []
    for _ in range(50):
        with tracer.start_as_current_span("request"):
            decisions.append({log_prediction(1, sample_rate=0.5) for _ in range(10)})
    assert [1] * 50 == [len(d) for d in decisions]
