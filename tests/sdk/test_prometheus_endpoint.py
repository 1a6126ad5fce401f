"""The embedded endpoint in one process: content negotiation and the SDK's exemplars, the
files workers share and how they merge (prometheus_client's multi-process semantics), dead
members retired without a counter going backwards, a silent member not holding a scrape past
its bound, and a fallback where the shared directory is unusable."""

from __future__ import annotations

import logging
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _wait import eventually
from opentelemetry import trace
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

import otel_mlmon
from otel_mlmon import ModelMonitor, Telemetry, sdk
from otel_mlmon.sdk.prometheus import ScrapeReader, _files, _group

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture(autouse=True)
def _isolated(otel_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    otel_env.setenv("OTEL_MLMON_PROMETHEUS_DIR", str(tmp_path / "shared"))
    yield
    if sdk._current is not None:
        sdk._current.shutdown()


def _configure(**kwargs: object) -> Telemetry:
    kwargs.setdefault("prometheus_port", 0)
    return otel_mlmon.configure(  # type: ignore[arg-type]
        set_global=False, logs=False, gpu_metrics=False, process_metrics=False,
        prometheus_host="127.0.0.1", handle_sigterm=False, **kwargs,
    )  # fmt: skip


def _get(telemetry: Telemetry, accept: str | None = None) -> tuple[str, str]:
    assert telemetry.prometheus_address is not None
    host, port = telemetry.prometheus_address
    request = urllib.request.Request(f"http://{host}:{port}/metrics")
    if accept:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def _predict(telemetry: Telemetry, n: int) -> list[tuple[str, str]]:
    """``n`` predictions; the (trace id, span id) of each predict span."""
    monitor = ModelMonitor(
        "iris", tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    ids = []
    for i in range(n):
        with monitor.predict() as p:
            context = trace.get_current_span().get_span_context()
            ids.append((f"{context.trace_id:032x}", f"{context.span_id:016x}"))
            p.record(i % 2, 0.9)
    return ids


def _exemplar_ids(openmetrics: str) -> set[tuple[str, str]]:
    """(trace id, span id) of every exemplar, parsed by prometheus_client's OpenMetrics parser
    (which also checks the exposition is valid OpenMetrics)."""
    return {
        (sample.exemplar.labels["trace_id"], sample.exemplar.labels["span_id"])
        for family in parse_openmetrics(openmetrics)
        for sample in family.samples
        if sample.exemplar is not None
    }


def test_plain_text_by_default_and_openmetrics_with_exemplars_when_asked() -> None:
    telemetry = _configure()
    assert telemetry.prometheus is not None
    assert (True, True, None) == (
        telemetry.prometheus.shared, telemetry.prometheus.serving, telemetry.prometheus.error
    )  # fmt: skip
    spans = _predict(telemetry, 4)

    content_type, text = _get(telemetry)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert " # {" not in text  # the text format has no exemplars
    assert 4.0 == sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ml_model_predictions_total"
    )

    content_type, openmetrics = _get(telemetry, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    exemplars = _exemplar_ids(openmetrics)
    assert exemplars and exemplars <= set(spans)
    assert openmetrics.endswith("# EOF\n")


def test_exemplars_where_a_panel_follows_them_to_a_trace_latency_and_errors() -> None:
    telemetry = _configure()
    _predict(telemetry, 3)
    monitor = ModelMonitor("iris", meter_provider=telemetry.meter_provider,
                           tracer_provider=telemetry.tracer_provider)  # fmt: skip
    with pytest.raises(ValueError), monitor.predict():
        raise ValueError("a failed prediction")
    carrying = {
        family.name
        for family in parse_openmetrics(_get(telemetry, OPENMETRICS)[1])
        for sample in family.samples
        if sample.exemplar is not None
    }
    assert {"ml_model_prediction_duration_seconds", "ml_model_errors"} == carrying


def test_the_exemplar_filter_variable_is_honoured(
    otel_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otel_env.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "always_off")
    telemetry = _configure()
    _predict(telemetry, 3)
    assert set() == _exemplar_ids(_get(telemetry, OPENMETRICS)[1])
    telemetry.shutdown()

    otel_env.setenv("OTEL_METRICS_EXEMPLAR_FILTER", "sometimes")
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        telemetry = _configure()  # the SDK alone would refuse to start
    assert "OTEL_METRICS_EXEMPLAR_FILTER='sometimes'" in caplog.text
    spans = _predict(telemetry, 3)
    assert _exemplar_ids(_get(telemetry, OPENMETRICS)[1]) <= set(spans)


def test_exemplars_come_only_from_sampled_spans(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry = _configure()
    _predict(telemetry, 3)
    _, openmetrics = _get(telemetry, OPENMETRICS)
    assert "ml_model_predictions_total" in openmetrics
    assert set() == _exemplar_ids(openmetrics)


def _reader() -> tuple[MeterProvider, ScrapeReader]:
    reader = ScrapeReader()
    return MeterProvider(metric_readers=[reader]), reader


def _merged(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in _files.merged(directory)
        for s in family.samples
    }


def test_counters_and_histograms_sum_over_workers_dead_or_alive_and_gauges_say_which(
    tmp_path: Path,
) -> None:
    workers = [_reader(), _reader()]
    for count, (provider, _) in enumerate(workers, start=1):
        meter = provider.get_meter("test")
        meter.create_counter("requests").add(count, {"route": "/predict"})
        latency = meter.create_histogram("latency", unit="s")
        for _ in range(count):
            latency.record(0.2)
        meter.create_observable_gauge("queue", callbacks=[lambda _, n=count: [Observation(n)]])
    for pid, (_, reader) in enumerate(workers, start=1):
        _files.write_snapshot(tmp_path, f"{pid}-x", pid, reader.families())

    merged = _merged(tmp_path)
    requests = [v for (name, _), v in merged.items() if name == "requests_total"]
    assert [3.0] == requests
    assert 3.0 == next(v for (name, _), v in merged.items() if name == "latency_seconds_count")
    assert 0.6 == pytest.approx(
        next(v for (name, _), v in merged.items() if name == "latency_seconds_sum")
    )
    queues = sorted(
        (dict(labels)["pid"], v) for (name, labels), v in merged.items() if name == "queue"
    )
    assert [("1", 1.0), ("2", 2.0)] == queues

    # Worker 1 dies: its gauge goes, its counts stay (folded into the archive).
    _files.retire(tmp_path, "1-x", 1, pid_in_use=False)
    assert not (tmp_path / "counter_1-x.db").exists()
    merged = _merged(tmp_path)
    assert [3.0] == [v for (name, _), v in merged.items() if name == "requests_total"]
    assert [("2", 2.0)] == [
        (dict(labels)["pid"], v) for (name, labels), v in merged.items() if name == "queue"
    ]
    # Worker 2 counts on; then dies too: nothing is lost.
    workers[1][0].get_meter("test").create_counter("requests").add(5, {"route": "/predict"})
    _files.write_snapshot(tmp_path, "2-x", 2, workers[1][1].families())
    _files.retire(tmp_path, "2-x", 2, pid_in_use=False)
    merged = _merged(tmp_path)
    assert [8.0] == [v for (name, _), v in merged.items() if name == "requests_total"]
    assert 3.0 == next(v for (name, _), v in merged.items() if name == "latency_seconds_count")


def test_a_silent_member_cannot_hold_a_scrape_past_its_bound_and_a_gone_one_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_group, "SNAPSHOT_TIMEOUT_S", 0.3)
    telemetry = _configure()
    assert telemetry.prometheus is not None
    member = telemetry.prometheus._member
    assert member is not None
    directory = member.directory
    (directory / "999998-silent.member").touch()
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(_group.socket_address(directory, "999998-silent"))
    silent.listen()  # accepts connections, never answers
    (directory / "999999-gone.member").touch()
    try:
        _predict(telemetry, 2)
        start = time.monotonic()
        _, text = _get(telemetry)
        # The bound is the contract: the silent member alone would hold the scrape until the
        # client gives up (10 s). The slack is for a loaded 2-core machine.
        assert time.monotonic() - start < _group.SNAPSHOT_TIMEOUT_S + 5.0
        assert "ml_model_predictions_total" in text
        assert (directory / "999998-silent.member").exists()
        assert not (directory / "999999-gone.member").exists()
    finally:
        silent.close()


def test_an_unusable_shared_directory_falls_back_to_this_process_alone(
    otel_env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    otel_env.setenv("OTEL_MLMON_PROMETHEUS_DIR", str(not_a_directory))
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        telemetry = _configure()
    assert "will serve this process only" in caplog.text
    assert telemetry.prometheus is not None
    assert (False, True) == (telemetry.prometheus.shared, telemetry.prometheus.serving)
    _predict(telemetry, 2)
    openmetrics = _get(telemetry, OPENMETRICS)[1]
    assert "ml_model_predictions_total" in openmetrics
    assert _exemplar_ids(openmetrics)


def test_the_shared_directory_is_private_and_removed_by_its_last_member(tmp_path: Path) -> None:
    telemetry = _configure()
    assert telemetry.prometheus is not None and telemetry.prometheus._member is not None
    directory = telemetry.prometheus._member.directory
    assert 0o700 == directory.stat().st_mode & 0o777
    assert 0o700 == directory.parent.stat().st_mode & 0o777
    telemetry.shutdown()
    assert not directory.exists()


def test_alone_too_a_taken_port_is_retried_until_it_is_free(
    otel_env: pytest.MonkeyPatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk.prometheus, "BIND_RETRY_S", 0.05)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    otel_env.setenv("OTEL_MLMON_PROMETHEUS_DIR", str(not_a_directory))
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    telemetry = _configure(prometheus_port=port)
    assert telemetry.prometheus is not None
    assert (False, False) == (telemetry.prometheus.shared, telemetry.prometheus.serving)
    taken.close()
    eventually(lambda: telemetry.prometheus is not None and telemetry.prometheus.serving,
               "the endpoint serving on the freed port")  # fmt: skip
    assert "ml_monitor_endpoint_errors_total" in _get(telemetry)[1]
