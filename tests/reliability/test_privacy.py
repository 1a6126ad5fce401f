"""Raw features and labels never leave the process: sentinel values planted in features and labels
are searched for in every exported signal (spans, metric attributes, log records), in memory
and in the bytes a real OTLP receiver gets.

When the structlog bridge lands (otel_mlmon.logs), run the same search with configure(logs=True)
and the request/prediction log events; when the instrumentation lands, plant sentinels in
request bodies, query strings and headers too.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import certifi
import numpy as np
import pytest
from _otlp import OtlpHttpServer

import otel_mlmon
from otel_mlmon import ModelMonitor
from otel_mlmon.testing import InMemoryTelemetry

FEATURE = f"SENTINEL-FEATURE-{uuid.uuid4().hex}"
LABEL = f"SENTINEL-LABEL-{uuid.uuid4().hex}"
NUMBER = 271828.182845  # a planted numeric feature value


def _features() -> list[object]:
    return [
        {"email": FEATURE, "age": NUMBER},
        np.array([[NUMBER, 1.0]]),
        np.array([FEATURE], dtype=object),
        [FEATURE, NUMBER],
        FEATURE,
    ]


def _use(monitor: ModelMonitor) -> None:
    """Every recording path, with sentinels in features and labels."""
    for features in _features():
        with monitor.predict(features=features) as p:
            p.record("approved", 0.75)
        monitor.record_label(p.id, LABEL)
    with monitor.predict(features=_features()[0]) as p:
        p.record(["approved", "denied"], [0.5, 0.25])
    monitor.record_label(p.id, [LABEL, LABEL])
    monitor.model_loaded(framework="sklearn")
    monitor.update_model("2.0", reason="retrained")


def _in_memory_text(telemetry: InMemoryTelemetry) -> str:
    spans = [span.to_json() for span in telemetry.spans()]
    logs = [record.to_json() for record in telemetry.logs()]
    data = telemetry.metric_reader.get_metrics_data()
    metrics = data.to_json() if data is not None else ""
    return "\n".join([*spans, *logs, metrics])


def _assert_no_sentinel(text: str) -> None:
    assert FEATURE not in text
    assert LABEL not in text
    assert str(NUMBER) not in text


def test_features_and_labels_appear_in_no_span_metric_or_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("privacy", **telemetry.providers)
        _use(monitor)
        text = _in_memory_text(telemetry)
    assert "approved" in text  # the search does see exported values
    _assert_no_sentinel(text)
    _assert_no_sentinel("\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records))


def test_features_and_labels_appear_in_nothing_sent_over_otlp(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    telemetry = otel_mlmon.configure(
        otlp_endpoint=otlp_http.endpoint,
        set_global=False,
        logs=False,
        prometheus=False,
        gpu_metrics=False,
        handle_sigterm=False,
    )
    monitor = ModelMonitor(
        "privacy",
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    _use(monitor)
    telemetry.logger_provider.get_logger("app").emit(body="served")
    assert telemetry.shutdown()
    received = b"".join(
        message.SerializeToString()
        for messages in otlp_http.receiver.requests.values()
        for message in messages
    )
    assert b"approved" in received and b"served" in received
    assert FEATURE.encode() not in received
    assert LABEL.encode() not in received


def test_an_exception_message_carrying_features_is_not_exported() -> None:
    with InMemoryTelemetry() as telemetry:
        monitor = ModelMonitor("privacy", **telemetry.providers)
        with pytest.raises(ValueError), monitor.predict(features=[FEATURE]):
            raise ValueError(f"Expected 2D array, got 1D array instead: array=[{FEATURE!r}]")
        text = _in_memory_text(telemetry)
    assert "ValueError" in text
    _assert_no_sentinel(text)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_otlp_over_tls_trusts_the_ca_from_the_environment(
    tmp_path: Path, otel_env: pytest.MonkeyPatch
) -> None:
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = OtlpHttpServer(tls=(str(certificate), str(key)))
    try:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.endpoint)
        # A container-wide CA bundle must not override the one OpenTelemetry's variable names.
        otel_env.setenv("REQUESTS_CA_BUNDLE", certifi.where())
        otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")
        for trusted in (False, True):
            if trusted:
                otel_env.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(certificate))
            telemetry = otel_mlmon.configure(
                set_global=False, logs=False, gpu_metrics=False, handle_sigterm=False
            )
            monitor = ModelMonitor("tls", tracer_provider=telemetry.tracer_provider)
            with monitor.predict() as p:
                p.record(1)
            telemetry.shutdown()
            # An unknown CA is refused; the CA named by the environment is trusted.
            assert (1 if trusted else 0) == len(server.receiver.spans())
    finally:
        server.close()
