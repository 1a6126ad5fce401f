"""``opentelemetry-instrument`` picks our instrumentors up through their entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"

# An app that never mentions otel-mlmon: only the entry points can instrument it.
FASTAPI_SCRIPT = """
import json, logging
import fastapi
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
app = fastapi.FastAPI(telemetry={"operation_spans": False})

@app.get("/")
def root():
    return {}

response = TestClient(app).get("/", headers={"X-Request-ID": "zero-1"})
servers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
print(json.dumps({
    "request_ids": response.headers.get_list("x-request-id"),
    "servers": [[s.instrumentation_scope.name, dict(s.attributes).get("ml.request.id")]
                for s in servers],
}))
"""

FLASK_SCRIPT = """
import json
import flask
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
app = flask.Flask("zero")

@app.get("/")
def root():
    return {}

response = app.test_client().get("/", headers={"X-Request-ID": "zero-2"})
servers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
print(json.dumps({
    "request_ids": response.headers.getlist("X-Request-ID"),
    "servers": [[s.instrumentation_scope.name, dict(s.attributes).get("ml.request.id")]
                for s in servers],
}))
"""


def run_instrumented(
    tmp_path: Path, script: str, **env: str
) -> tuple[dict[str, list[object]], str]:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(script))
    environment = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_MLMON_PROCESS_METRICS": "false",
        "OTEL_PYTHON_CONFIGURATOR": "otel_mlmon",
        **env,
    }
    environment.pop("OTEL_MLMON_STRICT", None)
    done = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # configure() under opentelemetry-instrument routes logging to stdout as JSON lines.
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


pytestmark = pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument absent")


def test_fastapi_app_gets_our_layer_on_its_native_server_span(tmp_path: Path) -> None:
    # The contrib FastAPI instrumentation is installed in the test environment; a user who
    # follows our docs disables it so that FastAPI's native telemetry stays on.
    result, _ = run_instrumented(
        tmp_path, FASTAPI_SCRIPT, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi"
    )

    assert result == {"request_ids": ["zero-1"], "servers": [["fastapi", "zero-1"]]}


def test_fastapi_with_contrib_instrumentation_too_gives_one_server_span_and_a_warning(
    tmp_path: Path,
) -> None:
    result, output = run_instrumented(tmp_path, FASTAPI_SCRIPT)

    assert result == {
        "request_ids": ["zero-1"],
        "servers": [["opentelemetry.instrumentation.fastapi", "zero-1"]],
    }
    assert "opentelemetry-instrumentation-fastapi is active" in output


def test_flask_app_gets_the_contrib_server_span_and_our_layer(tmp_path: Path) -> None:
    result, _ = run_instrumented(tmp_path, FLASK_SCRIPT)

    assert result == {
        "request_ids": ["zero-2"],
        "servers": [["opentelemetry.instrumentation.flask", "zero-2"]],
    }


def test_disabling_our_entry_point_leaves_the_app_alone(tmp_path: Path) -> None:
    result, _ = run_instrumented(
        tmp_path,
        FASTAPI_SCRIPT,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi,otel_mlmon_fastapi",
    )

    assert result == {"request_ids": [], "servers": [["fastapi", None]]}
