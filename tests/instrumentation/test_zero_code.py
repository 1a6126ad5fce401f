"""The zero-code path: ``opentelemetry-instrument`` with otel-mlmon's entry points, run as
docs/instrumentation.md says (the command is read from the page), on apps that never mention
otel-mlmon, in a clean environment.

It gives our layer on Flask and FastAPI whatever order the entry points load in, the stable
HTTP conventions, quiet output (no warning from the set-up), the one promised warning when the
contrib FastAPI instrumentation takes an app over, and the Prometheus port of
``opentelemetry-instrument``'s own option. Every doc that shows the command shows this one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _otlp import OtlpHttpServer
from _served import (
    BIN,
    PLAIN_FASTAPI_APP,
    PLAIN_FLASK_APP,
    ROOT,
    Served,
    clean_environment,
    documented_zero_code,
    request_count,
    split_command,
    zero_code,
)
from _wait import free_port

from otel_mlmon.demo import parse_samples

INSTRUMENT = BIN / "opentelemetry-instrument"

pytestmark = pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument absent")

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
    environment = clean_environment(
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_MLMON_PROCESS_METRICS="false",
        OTEL_PYTHON_CONFIGURATOR="otel_mlmon",
        **env,
    )
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


def test_fastapi_app_gets_our_layer_on_its_native_server_span(tmp_path: Path) -> None:
    # The contrib FastAPI instrumentation is installed in the test environment; a user who
    # follows our docs disables it so that FastAPI's native telemetry stays on.
    result, _ = run_instrumented(
        tmp_path, FASTAPI_SCRIPT, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi"
    )

    assert result == {"request_ids": ["zero-1"], "servers": [["fastapi", "zero-1"]]}


def test_flask_app_gets_the_contrib_server_span_and_our_layer(tmp_path: Path) -> None:
    result, _ = run_instrumented(tmp_path, FLASK_SCRIPT)

    assert result == {
        "request_ids": ["zero-2"],
        "servers": [["opentelemetry.instrumentation.flask", "zero-2"]],
    }


def test_fastapi_with_contrib_instrumentation_too_gives_one_server_span_and_a_warning(
    tmp_path: Path,
) -> None:
    result, output = run_instrumented(tmp_path, FASTAPI_SCRIPT)

    assert result == {
        "request_ids": ["zero-1"],
        "servers": [["opentelemetry.instrumentation.fastapi", "zero-1"]],
    }
    assert "opentelemetry-instrumentation-fastapi is active" in output


def test_disabling_our_entry_point_leaves_the_app_alone(tmp_path: Path) -> None:
    result, _ = run_instrumented(
        tmp_path,
        FASTAPI_SCRIPT,
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="fastapi,otel_mlmon_fastapi",
    )

    assert result == {"request_ids": [], "servers": [["fastapi", None]]}


# --- the documented command, over real sockets ------------------------------------------------

#: Where the command runs: the repository root puts the working tree's otel_mlmon.egg-info first
#: on the path (opentelemetry-instrument adds the working directory), so our entry points load
#: before the contrib ones; from the app's own directory, in site-packages order, after them.
WHERE = ("repository-root", "app-directory")


def _warnings(output: str) -> list[str]:
    """The lines of ``output`` at WARNING or above, from the logging bridge (JSON) or from
    logging before it was set up (plain text)."""
    return [
        line
        for line in output.splitlines()
        if re.search(r'"level": "(warning|error|critical)"', line)
        or line.startswith(("WARNING", "ERROR", "CRITICAL"))
    ]


@pytest.fixture
def otlp() -> Iterator[OtlpHttpServer]:
    server = OtlpHttpServer()
    yield server
    server.close()


def _serve(
    tmp_path: Path, where: str, app: str, otlp: OtlpHttpServer, *options: str, **variables: str
) -> Served:
    app_file = tmp_path / "app.py"
    app_file.write_text(app)
    command = zero_code("zero-code", app_file, ROOT if where == WHERE[0] else tmp_path, *options)
    command.variables.update(variables)
    service = Served(command, otlp)
    service.wait_healthy()
    return service


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("app", [PLAIN_FLASK_APP, PLAIN_FASTAPI_APP], ids=["flask", "fastapi"])
def test_the_documented_command_serves_with_our_layer_and_no_warning(
    tmp_path: Path, where: str, app: str, otlp: OtlpHttpServer
) -> None:
    service = _serve(tmp_path, where, app, otlp)
    try:
        response = httpx.get(f"{service.base}/health", headers={"X-Request-ID": "zc-1"})
        scraped = service.scrape_when(lambda text: request_count(text) >= 1)
    finally:
        output = service.stop()

    assert (200, "zc-1") == (response.status_code, response.headers.get("x-request-id"))
    assert "/health" in {
        labels.get("http_route")
        for name, labels, _ in parse_samples(scraped)
        if name == "http_server_request_duration_seconds_count"
    }
    assert [] == _warnings(output)


@pytest.mark.parametrize("where", WHERE)
def test_a_fastapi_app_taken_over_by_the_contrib_instrumentation_gives_the_one_warning(
    tmp_path: Path, where: str, otlp: OtlpHttpServer
) -> None:
    # The documented command without OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fastapi.
    service = _serve(tmp_path, where, PLAIN_FASTAPI_APP, otlp,
                     OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="")  # fmt: skip
    try:
        response = httpx.get(f"{service.base}/health", headers={"X-Request-ID": "zc-2"})
        scraped = service.scrape_when(lambda text: request_count(text) >= 1)
    finally:
        output = service.stop()

    assert "zc-2" == response.headers.get("x-request-id")
    (warning,) = _warnings(output)
    assert "opentelemetry-instrumentation-fastapi is active" in warning
    names = {name for name, _, _ in parse_samples(scraped)}
    assert {n for n in names if n.startswith("http_server_duration")} == set()


def test_the_prometheus_port_option_of_opentelemetry_instrument_is_honoured(
    tmp_path: Path, otlp: OtlpHttpServer
) -> None:
    # The option overrides the variable, which names another port here.
    variable_port = free_port()
    service = _serve(tmp_path, WHERE[1], PLAIN_FLASK_APP, otlp,
                     "--exporter_prometheus_port", "{metrics_port}",
                     OTEL_EXPORTER_PROMETHEUS_PORT=str(variable_port))  # fmt: skip
    try:
        httpx.get(f"{service.base}/health")
        scraped = service.scrape_when(lambda text: request_count(text) >= 1)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{variable_port}/metrics")
    finally:
        service.stop()

    assert "http_server_request_duration_seconds_count" in scraped


ORDER_SCRIPT = """
import json, sys
import flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from otel_mlmon.instrumentation.flask import FlaskMLInstrumentor
from otel_mlmon.instrumentation import _zero_code
from otel_mlmon.testing import InMemoryTelemetry

# What opentelemetry-instrument does: its pre-instrument hooks, then the entry points in the
# order it finds them.
telemetry = InMemoryTelemetry()
_zero_code.before_instrumentors()
instrumentors = [FlaskMLInstrumentor(), FlaskInstrumentor()]
if sys.argv[1] == "contrib-first":
    instrumentors.reverse()
for instrumentor in instrumentors:
    instrumentor.instrument(**telemetry.providers)
_zero_code.after_instrumentors()
app = flask.Flask("ordered")

@app.get("/")
def root():
    return {}

response = app.test_client().get("/", headers={"X-Request-ID": "order-1"})
print(json.dumps({
    "request_ids": response.headers.getlist("X-Request-ID"),
    "servers": [dict(s.attributes).get("ml.request.id") for s in telemetry.spans()],
    "metrics": sorted(telemetry.metrics()),
}))
"""


@pytest.mark.parametrize("order", ["ours-first", "contrib-first"])
def test_our_flask_layer_and_stable_conventions_whichever_instrumentor_comes_first(
    order: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ORDER_SCRIPT, order],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(),
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert {
        "request_ids": ["order-1"],
        "servers": ["order-1"],
        "metrics": ["http.server.active_requests", "http.server.request.duration"],
    } == result


def _zero_code_blocks() -> list[tuple[str, str]]:
    """Every shell block of the README and docs/ that runs ``opentelemetry-instrument``."""
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```sh\n(.*?)```", path.read_text(), flags=re.S):
            if "opentelemetry-instrument " in block:
                blocks.append((path.name, block))
    return blocks


def test_every_doc_gives_the_one_zero_code_command() -> None:
    variables, words = documented_zero_code()
    shown = []
    for name, block in _zero_code_blocks():
        given, given_words = split_command(block)
        shown.append((name, {key: given.get(key) for key in variables}, given_words))

    assert len(shown) >= 2  # docs/instrumentation.md and docs/configuration.md
    assert [(name, variables, words) for name, _, _ in shown] == shown
