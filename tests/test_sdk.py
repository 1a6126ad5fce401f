"""configure(): exporters chosen from arguments and OTEL_* variables, the embedded Prometheus
default, global providers, idempotence, OTEL_SDK_DISABLED and opentelemetry-instrument."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _otlp import OtlpGrpcServer, OtlpHttpServer, OtlpReceiver
from _wait import eventually, listening
from prometheus_client.parser import text_string_to_metric_families

import otel_mlmon
from otel_mlmon import ConfigurationError, ModelMonitor, Telemetry, sdk
from otel_mlmon.sdk import SignalSetup

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_leftover_configuration(otel_env: pytest.MonkeyPatch) -> Iterator[None]:
    yield
    if sdk._current is not None:
        sdk._current.shutdown()


def _configure(**kwargs: object) -> Telemetry:
    kwargs.setdefault("set_global", False)
    kwargs.setdefault("logs", False)
    kwargs.setdefault("gpu_metrics", False)
    return otel_mlmon.configure(**kwargs)  # type: ignore[arg-type]


def _scrape(address: tuple[str, int]) -> dict[str, list[tuple[dict[str, str], float]]]:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name: [
            (s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == sample.name
        ]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _record(telemetry: Telemetry) -> ModelMonitor:
    monitor = ModelMonitor(
        "iris",
        version="1.2.0",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    for y in (0, 1, 1):
        with monitor.predict() as p:
            p.record(y, 0.9)
    return monitor


def test_embedded_default_serves_prometheus_that_a_scraper_can_parse() -> None:
    telemetry = _configure(service_name="iris-api", prometheus_port=0)
    assert telemetry.prometheus_address is not None
    _record(telemetry)

    samples = _scrape(telemetry.prometheus_address)
    by_class = {
        labels["ml_prediction_class"]: value
        for labels, value in samples["ml_model_predictions_total"]
    }
    assert {"0": 1.0, "1": 2.0} == by_class
    assert {"ml_model_name": "iris", "ml_model_version": "1.2.0"}.items() <= samples[
        "ml_model_predictions_total"
    ][0][0].items()
    assert 3.0 == samples["ml_model_prediction_duration_seconds_count"][0][1]
    assert "iris-api" == samples["target_info"][0][0]["service_name"]
    assert "process_memory_usage_bytes" in samples
    assert "python_gc_objects_collected_total" not in samples  # our own registry only

    host, port = telemetry.prometheus_address
    telemetry.shutdown()
    assert not listening(port, host)


def test_views_replace_the_default_buckets() -> None:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    coarse = View(
        instrument_name="ml.model.prediction.duration",
        aggregation=ExplicitBucketHistogramAggregation(boundaries=[0.5]),
    )
    telemetry = _configure(prometheus_port=0, views=[coarse])
    _record(telemetry)
    assert telemetry.prometheus_address is not None
    buckets = _scrape(telemetry.prometheus_address)["ml_model_prediction_duration_seconds_bucket"]
    assert ["0.5", "+Inf"] == [labels["le"] for labels, _ in buckets]
    telemetry.shutdown()

    telemetry = _configure(prometheus_port=0)
    _record(telemetry)
    assert telemetry.prometheus_address is not None
    buckets = _scrape(telemetry.prometheus_address)["ml_model_prediction_duration_seconds_bucket"]
    # Without a view, the fine buckets of inference times: from 0.5 ms to 10 s.
    assert ["0.0005", "0.001", "0.0025", "0.005", "0.0075", "0.01", "0.025", "0.05", "0.075",
            "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "10.0", "+Inf"] == [
        labels["le"] for labels, _ in buckets
    ]  # fmt: skip
    telemetry.shutdown()


def test_no_endpoint_means_no_spans_exported_unless_console_is_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = _configure(prometheus=False)
    assert SignalSetup("traces", "TracerProvider") == telemetry.traces
    telemetry.shutdown()

    telemetry = _configure(prometheus=False, console_spans=True)
    _record(telemetry)
    telemetry.shutdown()
    assert '"name": "predict iris"' in capsys.readouterr().out


def test_otlp_endpoint_sends_all_three_signals_over_http(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_http.endpoint)
    otel_env.setenv("OTEL_SERVICE_NAME", "from-env")
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
    telemetry = _configure(service_version="2.0")
    assert telemetry.prometheus_address is None
    _record(telemetry)
    telemetry.logger_provider.get_logger("test").emit(body="hello")
    assert telemetry.force_flush()

    receiver = otlp_http.receiver
    (traces,) = receiver.wait_for("/v1/traces")
    resource = OtlpReceiver.resource_attributes(traces)
    assert "from-env" == resource["service.name"]
    assert "2.0" == resource["service.version"]
    assert "staging" == resource["deployment.environment.name"]
    assert "otel-mlmon" == resource["telemetry.distro.name"]
    assert {"predict iris"} == {s.name for s in receiver.spans()}
    receiver.wait_for("/v1/metrics")
    assert {"ml.model.predictions", "ml.model.prediction.duration"} <= receiver.metric_names()
    receiver.wait_for("/v1/logs")
    assert ["hello"] == [r.body.string_value for r in receiver.log_records()]
    telemetry.shutdown()


@pytest.mark.parametrize(("limit", "expected"), [(None, 4096), ("100", 100)])
def test_span_attribute_values_are_bounded_unless_the_environment_says_otherwise(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch, limit: str | None, expected: int
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_http.endpoint)
    if limit is not None:
        otel_env.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", limit)
    telemetry = _configure()
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        span.set_attribute("url.path", "/" + "x" * 1_000_000)
    assert telemetry.force_flush()
    (received,) = otlp_http.receiver.spans()
    (path,) = [a.value.string_value for a in received.attributes if a.key == "url.path"]
    assert expected == len(path)
    telemetry.shutdown()


def test_keyword_arguments_override_environment_variables(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_SERVICE_NAME", "from-env")
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    otel_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from=env")
    telemetry = _configure(
        service_name="from-arg", otlp_endpoint=otlp_http.endpoint, otlp_headers={"x-from": "arg"}
    )
    _record(telemetry)
    telemetry.force_flush()
    (traces,) = otlp_http.receiver.wait_for("/v1/traces")
    assert "from-arg" == OtlpReceiver.resource_attributes(traces)["service.name"]
    assert "arg" == otlp_http.receiver.headers[0]["x-from"]
    telemetry.shutdown()


def test_otlp_grpc_is_chosen_by_the_protocol_variable(
    otlp_grpc: OtlpGrpcServer, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_grpc.endpoint)
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    otel_env.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0ken")
    telemetry = _configure()
    assert SignalSetup("traces", "TracerProvider", exporters=("otlp",), protocol="grpc") == (
        telemetry.traces
    )
    _record(telemetry)
    telemetry.force_flush()
    otlp_grpc.receiver.wait_for("/v1/traces")
    otlp_grpc.receiver.wait_for("/v1/metrics")
    assert {"predict iris"} == {s.name for s in otlp_grpc.receiver.spans()}
    assert "Bearer t0ken" == otlp_grpc.receiver.headers[0]["authorization"]
    telemetry.shutdown()


def test_per_signal_endpoints_and_exporter_variables_choose_per_signal(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{otlp_http.endpoint}/v1/traces")
    otel_env.setenv("OTEL_LOGS_EXPORTER", "none")
    telemetry = _configure(prometheus_port=0)
    assert ("otlp",) == telemetry.traces.exporters
    assert "http/protobuf" == telemetry.traces.protocol
    assert ("prometheus",) == telemetry.metrics.exporters
    assert () == telemetry.logs.exporters
    assert telemetry.describe()["metrics"].startswith("set MeterProvider: prometheus on http://")
    _record(telemetry)
    telemetry.force_flush()
    otlp_http.receiver.wait_for("/v1/traces")
    telemetry.shutdown()


def test_sampler_and_export_interval_come_from_the_standard_variables(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_http.endpoint)
    otel_env.setenv("OTEL_TRACES_SAMPLER", "always_off")
    otel_env.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    telemetry = _configure()
    _record(telemetry)
    otlp_http.receiver.wait_for("/v1/metrics", timeout=5)  # without any flush
    telemetry.force_flush()
    assert [] == otlp_http.receiver.spans()
    telemetry.shutdown()


def test_shutdown_flushes_pending_spans_and_is_idempotent(otlp_http: OtlpHttpServer) -> None:
    telemetry = _configure(otlp_endpoint=otlp_http.endpoint)
    _record(telemetry)
    telemetry.shutdown()
    telemetry.shutdown()
    assert 3 == len(otlp_http.receiver.spans())


def test_a_second_configure_returns_the_first_handle(caplog: pytest.LogCaptureFixture) -> None:
    first = _configure(prometheus=False)
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        second = _configure(prometheus=True)
    assert first is second
    assert "already called" in caplog.text
    first.shutdown()
    third = _configure(prometheus=False)
    assert third is not first


def test_sdk_disabled_is_a_no_op_and_listens_on_nothing(
    otel_env: pytest.MonkeyPatch, free_port: int
) -> None:
    otel_env.setenv("OTEL_SDK_DISABLED", "true")
    port = free_port
    telemetry = _configure(prometheus_port=port)
    assert telemetry.disabled
    assert telemetry.prometheus_address is None
    assert not listening(port)
    _record(telemetry)  # records into no-op providers without error
    assert telemetry.force_flush()
    telemetry.shutdown()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"otlp_protocol": "thrift"},
        {"prometheus_port": 70_000},
        {"metric_export_interval_millis": 0},
    ],
)
def test_invalid_arguments_fail_fast(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        _configure(**kwargs)


def test_a_taken_port_is_one_clear_error_counted_and_retried_while_the_service_runs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sdk.prometheus, "BIND_RETRY_S", 0.05)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with caplog.at_level(logging.ERROR, logger="otel_mlmon"):
        telemetry = _configure(prometheus_host="127.0.0.1", prometheus_port=port)
        assert telemetry.prometheus is not None
        assert "Address already in use" == telemetry.prometheus.error
        assert not telemetry.prometheus.serving
        _record(telemetry)  # the service runs on
        eventually(
            lambda: telemetry.prometheus is not None and telemetry.prometheus._failed_binds >= 3,
            "three failed binds",
        )
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"127.0.0.1:{port}" in line
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in line

    taken.close()  # the other program goes: the endpoint takes the port at its next retry
    eventually(
        lambda: telemetry.prometheus is not None and telemetry.prometheus.serving,
        "the endpoint serving on the freed port",
    )
    samples = _scrape(("127.0.0.1", port))
    assert [({"error_type": "OSError", "server_port": str(port)}, 1.0)] == [
        ({k: v for k, v in labels.items() if not k.startswith("otel_scope")}, value)
        for labels, value in samples["ml_monitor_endpoint_errors_total"]
    ]
    assert 3.0 == sum(value for _, value in samples["ml_model_predictions_total"])


def test_a_malformed_prometheus_port_variable_fails_fast(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", "94x64")
    with pytest.raises(ConfigurationError, match="OTEL_EXPORTER_PROMETHEUS_PORT='94x64'"):
        _configure()


def test_actions_still_reads_as_before_with_a_deprecation_warning() -> None:
    telemetry = _configure(prometheus=False)
    with pytest.deprecated_call():
        actions = telemetry.actions
    assert {
        "traces": "set TracerProvider: none",
        "metrics": "set MeterProvider: none",
        "logs": "set LoggerProvider: none",
        "sigterm": "flush within the shutdown bound, then terminate",
    } == actions


def test_a_malformed_variable_warns_and_falls_back(
    otel_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    otel_env.setenv("OTEL_MLMON_PROMETHEUS", "maybe")
    otel_env.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        telemetry = _configure(prometheus_port=0)
    assert telemetry.prometheus_address is not None
    assert () == telemetry.traces.exporters
    assert "OTEL_MLMON_PROMETHEUS='maybe'" in caplog.text
    assert "OTEL_TRACES_EXPORTER='zipkin'" in caplog.text


def _run(code: str, env: dict[str, str], *argv: str) -> dict[str, object]:
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [*argv, sys.executable, "-c", textwrap.dedent(code)]
        if argv
        else [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_configure_sets_the_global_providers_and_keeps_ones_the_app_set() -> None:
    code = """
        import json
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.trace import TracerProvider
        app_provider = TracerProvider()
        trace.set_tracer_provider(app_provider)
        import otel_mlmon
        t = otel_mlmon.configure(prometheus=False, gpu_metrics=False, logs=False)
        print(json.dumps({
            "actions": t.describe(),
            "kept": trace.get_tracer_provider() is app_provider,
            "meter_is_ours": metrics.get_meter_provider() is t.meter_provider,
        }))
        t.shutdown()
    """
    result = _run(code, {})
    assert result["kept"] is True
    assert result["meter_is_ours"] is True
    actions = result["actions"]
    assert isinstance(actions, dict)
    assert "kept the existing TracerProvider" == actions["traces"]
    assert actions["metrics"].startswith("set MeterProvider")


def test_opentelemetry_instrument_runs_our_configurator(free_port: int) -> None:
    port = free_port
    code = f"""
        import json, urllib.request
        import otel_mlmon
        from otel_mlmon import sdk
        handle = sdk._current
        again = otel_mlmon.configure()
        monitor = otel_mlmon.ModelMonitor("iris")
        with monitor.predict() as p:
            p.record(1)
        body = urllib.request.urlopen("http://127.0.0.1:{port}/metrics").read().decode()
        print(json.dumps({{
            "configured": handle is not None,
            "same": again is handle,
            "scraped": "ml_model_predictions_total" in body,
        }}))
    """
    instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
    result = _run(
        code,
        {
            "OTEL_PYTHON_CONFIGURATOR": "otel_mlmon",
            "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
            "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
            "OTEL_MLMON_GPU_METRICS": "false",
        },
        instrument,
    )
    assert {"configured": True, "same": True, "scraped": True} == result


@pytest.mark.parametrize("opted_in", [False, True])
def test_exception_messages_reach_the_log_lines_only_when_configure_opts_in(
    capsys: pytest.CaptureFixture[str], opted_in: bool
) -> None:
    from otel_mlmon.logs import unconfigure_logging

    sentinel = "MESSAGE-" + "SENTINEL"  # built, so the traceback's source line never shows it
    telemetry = _configure(logs=True, record_exception_messages=opted_in, prometheus=False)
    try:
        try:
            raise ValueError(f"{sentinel} from the request")
        except ValueError:
            logging.getLogger("app").exception("scoring_failed")
    finally:
        unconfigure_logging()
        telemetry.shutdown()
    (line,) = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "scoring_failed" in x]
    assert "ValueError" in line["exception.stacktrace"]
    assert opted_in == (sentinel in json.dumps(line))
