"""Services started the way the docs start them, for tests that drive them over real sockets.

:func:`start` runs one documented command as a subprocess in a clean environment: no
``OTEL_*`` or ``FASTAPI_OTEL*`` variable of the test run reaches it (so nothing the suite sets,
such as a semantic-conventions opt-in, can hide what a user sees), only the ones the test names.
The service exports its spans to a real OTLP receiver on loopback and serves the embedded
Prometheus endpoint beside it; :class:`Served` waits for it, scrapes it and stops it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from _otlp import OtlpHttpServer
from _wait import eventually, free_port, stop_process, wait_healthy

from otel_mlmon.demo import parse_samples

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: How long a service may take to answer its health check (start-up trains the iris model).
START_TIMEOUT_S = 90.0

#: A Flask app that never mentions otel-mlmon, run by ``python app.py PORT``.
PLAIN_FLASK_APP = textwrap.dedent(
    """
    import sys
    import flask

    app = flask.Flask("plain")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/fail")
    def fail():
        raise ValueError("bad input: " + flask.request.args.get("value", ""))

    if __name__ == "__main__":
        app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
    """
)

#: A FastAPI app that never mentions otel-mlmon, run by ``python app.py PORT``.
PLAIN_FASTAPI_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI(telemetry={"operation_spans": False})

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/fail")
    def fail(request: Request):
        raise ValueError("bad input: " + request.query_params.get("value", ""))

    if __name__ == "__main__":
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def clean_environment(**variables: str) -> dict[str, str]:
    """The test run's environment without any OpenTelemetry or otel-mlmon variable, plus
    ``variables``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "FASTAPI_OTEL"))
    }
    environment["PYTHONUNBUFFERED"] = "1"
    environment.update(variables)
    return environment


@dataclass
class Command:
    """One documented way to run a service: ``argv`` (``{port}`` stands for the HTTP port,
    ``{metrics_port}`` for the Prometheus one), run in ``cwd`` with these environment
    ``variables`` on top of a clean environment, and the signal that stops it as a user would
    (Ctrl-C for a development server), and how many worker processes serve."""

    name: str
    argv: list[str]
    variables: dict[str, str]
    cwd: Path = ROOT
    stop_signal: int = signal.SIGTERM
    workers: int = 1


def split_command(line: str) -> tuple[dict[str, str], list[str]]:
    """A shell command line (continued with backslashes) as its leading variable assignments
    and its words."""
    words = shlex.split(line.replace("\\\n", " "))
    variables = {}
    while words and "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        variables[name] = value
    return variables, words


def documented_zero_code() -> tuple[dict[str, str], list[str]]:
    """The zero-code command as docs/instrumentation.md gives it: its variables and its words
    (``opentelemetry-instrument python app.py``)."""
    text = (ROOT / "docs" / "instrumentation.md").read_text()
    return split_command(text.split("## Zero-code", 1)[1].split("```sh\n", 1)[1].split("```")[0])


def zero_code(name: str, app_file: Path, cwd: Path, *options: str) -> Command:
    """The zero-code command of docs/instrumentation.md, word for word, serving ``app_file``
    (with ``options`` for ``opentelemetry-instrument`` itself)."""
    variables, words = documented_zero_code()
    assert ["opentelemetry-instrument", "python", "app.py"] == words, words
    argv = [str(BIN / "opentelemetry-instrument"), *options, sys.executable, str(app_file)]
    return Command(name, [*argv, "{port}"], variables, cwd=cwd)


#: The options of the gunicorn line in examples/flask_app.py's docstring (port left open).
GUNICORN_WORKERS: Final = 2
GUNICORN_OPTIONS: Final = (
    "-w", str(GUNICORN_WORKERS), "-b", "127.0.0.1:{port}", "--chdir", "examples",
)  # fmt: skip
#: The names of :func:`documented_commands`, for parametrizing.
DOCUMENTED: Final = (
    "flask-dev-server",
    "flask-gunicorn",
    "fastapi",
    "flask-zero-code",
    "fastapi-zero-code",
)


def documented_command(name: str, apps: Path) -> Command:
    """The documented command ``name`` (one of :data:`DOCUMENTED`); the zero-code ones serve
    plain apps written into ``apps``."""
    (command,) = [command for command in documented_commands(apps) if command.name == name]
    return command


def documented_commands(apps: Path) -> list[Command]:
    """Every documented way to serve HTTP: the examples' own start-up lines and the zero-code
    command on plain apps written into ``apps``."""
    flask_app = apps / "flask_plain.py"
    fastapi_app = apps / "fastapi_plain.py"
    flask_app.write_text(PLAIN_FLASK_APP)
    fastapi_app.write_text(PLAIN_FASTAPI_APP)
    return [
        Command(
            "flask-dev-server",
            [sys.executable, "examples/flask_app.py", "--port", "{port}"],
            {},
            stop_signal=signal.SIGINT,
        ),
        Command(
            "flask-gunicorn",
            [str(BIN / "gunicorn"), *GUNICORN_OPTIONS, "flask_app:create_app()"],
            {},
            workers=GUNICORN_WORKERS,
        ),
        Command("fastapi", [sys.executable, "examples/fastapi_app.py", "--port", "{port}"], {}),
        zero_code("flask-zero-code", flask_app, apps),
        zero_code("fastapi-zero-code", fastapi_app, apps),
    ]


class Served:
    """A running service: its base URL, its metrics URL, its OTLP receiver."""

    def __init__(self, command: Command, receiver: OtlpHttpServer) -> None:
        self.command = command
        self.receiver = receiver.receiver
        self.port = free_port()
        self.metrics_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        environment = clean_environment(
            **{
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_MLMON_PROMETHEUS": "true",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(self.metrics_port),
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_BSP_MAX_QUEUE_SIZE": "8192",
                "OTEL_MLMON_GPU_METRICS": "false",
                **command.variables,
            }
        )
        argv = [
            part.replace("{port}", str(self.port)).replace("{metrics_port}", str(self.metrics_port))
            for part in command.argv
        ]
        # A file, not a pipe: a service logs a line per request, and a pipe nobody reads
        # while the test sends thousands of requests fills up and blocks the service.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after stop())
        self.process = subprocess.Popen(
            argv,
            cwd=command.cwd,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self) -> None:
        """Until ``GET /health`` answers 200 and every worker reports on the metrics port (one
        worker answering is not all of them started); fails if the process exits first."""
        try:
            wait_healthy(self.base, self.process, START_TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{self.command.name}: {exc}\n{self.stop()}") from None
        if self.command.workers > 1:
            self.scrape_when(lambda text: len(worker_pids(text)) == self.command.workers)

    def scrape(self) -> str:
        """The Prometheus exposition of the service, as text."""
        return httpx.get(self.metrics_url, timeout=10).text

    def scrape_when(self, ready: Callable[[str], bool]) -> str:
        """Scrape until ``ready(text)`` holds: a request is recorded just after its response
        is sent, so a scrape right after a response may not count it yet."""

        def ready_text() -> str | None:
            text = self.scrape()
            return text if ready(text) else None

        try:
            return eventually(ready_text, f"{self.command.name}: a scrape that is ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.scrape()}") from None

    def wait_for_span(self, matches: Callable[[Any], bool]) -> None:
        """Until the receiver holds a span (OTLP protobuf) that ``matches``."""
        eventually(
            lambda: any(matches(span) for span in self.receiver.spans()),
            f"{self.command.name}: the span",
        )

    def wait_for_log_record(self, matches: Callable[[Any], bool]) -> list[Any]:
        """Until the receiver holds a log record (OTLP protobuf) that ``matches``; then every
        record received so far."""
        eventually(
            lambda: any(matches(record) for record in self.receiver.log_records()),
            f"{self.command.name}: the log record",
        )
        return list(self.receiver.log_records())

    def stop(self) -> str:
        """Stop the service as a user would; its output (stdout and stderr)."""
        stop_process(self.process, self.command.stop_signal)
        return self.output()

    def output(self) -> str:
        """What the service wrote so far (stdout and stderr)."""
        self._log.seek(0)
        return self._log.read()


def request_count(text: str, metric: str = "http_server_request_duration_seconds_count") -> float:
    """Requests counted by ``metric`` in a Prometheus exposition, over every series."""
    return sum(value for name, _, value in parse_samples(text) if name == metric)


def worker_pids(text: str) -> set[str]:
    """The ``pid`` labels of an exposition: one per worker reporting on a shared port."""
    return {labels["pid"] for _, labels, _ in parse_samples(text) if "pid" in labels}


def series(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The time series of an exposition: metric name and labels, values left out."""
    return {(name, tuple(sorted(labels.items()))) for name, labels, _ in parse_samples(text)}


def attribute_values(spans: Iterable[object]) -> list[str]:
    """Every attribute value of every span (OTLP protobuf), events included, as text."""
    values: list[str] = []
    for span in spans:
        groups = [span.attributes] + [event.attributes for event in span.events]  # type: ignore[attr-defined]
        for group in groups:
            for item in group:
                values.append(f"{item.key}={getattr(item.value, item.value.WhichOneof('value'))}")
        values.append(f"status={span.status.message}")  # type: ignore[attr-defined]
    return values
