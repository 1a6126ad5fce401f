"""Shutdown flushes pending spans, metrics and logs, and is bounded in time even when the
backend never answers: in process, at normal interpreter exit, on SIGTERM, and under uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _otlp import BlackHole, OtlpHttpServer, sum_points
from _wait import eventually, free_port, wait_listening

import otel_mlmon
from otel_mlmon import ModelMonitor, sdk

ROOT = Path(__file__).resolve().parents[2]
#: What an exporter alone would wait for a black hole: far beyond the shutdown bound and its
#: slack, so an exit held by the exporter cannot pass for one held by the bound.
LONG_EXPORT_TIMEOUT_S = "60"
#: Slack over the bound for interpreter start-up and exit, and for processes that wait their
#: turn on a loaded 2-core machine. The bounds below are the contract under test (exit does not
#: wait for the backend); this slack keeps them well under LONG_EXPORT_TIMEOUT_S.
SLACK_S = 10.0
#: The shutdown bound the subprocesses configure (the default, 5 s, would make a slow suite).
BOUND_MS = 1_000
BOUND_S = BOUND_MS / 1000


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    yield hole
    hole.close()


def _child_env(endpoint: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT=LONG_EXPORT_TIMEOUT_S,
        OTEL_MLMON_GPU_METRICS="false",
        OTEL_MLMON_STRICT="true",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


SERVICE = textwrap.dedent(
    """
    import signal, sys
    import otel_mlmon
    from otel_mlmon import ModelMonitor

    telemetry = otel_mlmon.configure(
        service_name="shutdown-test", logs=False, shutdown_timeout_millis=int(sys.argv[2])
    )
    monitor = ModelMonitor("m")
    logger = telemetry.logger_provider.get_logger("service")
    for i in range(5):
        with monitor.predict() as p:
            p.record(i % 2, 0.75)
        logger.emit(body=f"prediction {i}")
    print("ready", flush=True)
    if sys.argv[1] == "wait":
        signal.pause()  # until the test's SIGTERM
    """
)


def _run(tmp_path: Path, env: dict[str, str], mode: str) -> tuple[int, float, str]:
    """Start the service, exit it (``exit``) or SIGTERM it (``wait``); return the exit code,
    the seconds from "ready" to exit, and stderr."""
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    process = subprocess.Popen(
        [sys.executable, str(script), mode, str(BOUND_MS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "ready" == process.stdout.readline().strip()
    ready = time.monotonic()
    if mode == "wait":
        process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=BOUND_S + 3 * SLACK_S)
    finally:
        process.kill()
    return process.returncode, time.monotonic() - ready, stderr


@pytest.mark.parametrize("mode", ["exit", "wait"], ids=["normal-exit", "sigterm"])
def test_exit_and_sigterm_flush_pending_spans_metrics_and_logs(
    tmp_path: Path, otlp_http: OtlpHttpServer, mode: str
) -> None:
    # Default schedules (spans every 5 s, metrics every 60 s): nothing was exported before exit.
    code, _, stderr = _run(tmp_path, _child_env(otlp_http.endpoint), mode)
    assert (0 if mode == "exit" else -signal.SIGTERM) == code, stderr
    receiver = otlp_http.receiver
    assert 5 == len(receiver.spans())
    predictions = sum_points(receiver.requests["/v1/metrics"], "ml.model.predictions")
    assert 5 == sum(value for _, value in predictions)
    assert [f"prediction {i}" for i in range(5)] == [
        r.body.string_value for r in receiver.log_records()
    ]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("mode", ["exit", "wait"], ids=["normal-exit", "sigterm"])
def test_a_backend_that_never_answers_cannot_hold_exit_past_the_bound(
    tmp_path: Path, black_hole: BlackHole, mode: str, protocol: str
) -> None:
    env = _child_env(black_hole.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    code, elapsed, stderr = _run(tmp_path, env, mode)
    assert (0 if mode == "exit" else -signal.SIGTERM) == code, stderr
    assert elapsed < BOUND_S + SLACK_S
    assert f"did not finish within {BOUND_MS} ms" in stderr


def test_shutdown_and_flush_return_at_their_bound_when_the_backend_never_answers(
    black_hole: BlackHole, otel_env: pytest.MonkeyPatch
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", LONG_EXPORT_TIMEOUT_S)
    telemetry = otel_mlmon.configure(
        otlp_endpoint=black_hole.endpoint,
        set_global=False,
        logs=False,
        prometheus=False,
        gpu_metrics=False,
        process_metrics=False,
        handle_sigterm=False,
    )
    monitor = ModelMonitor("m", tracer_provider=telemetry.tracer_provider)
    with monitor.predict() as p:
        p.record(1)

    start = time.monotonic()
    assert not telemetry.force_flush(timeout_millis=500)
    assert not telemetry.shutdown(timeout_millis=500)
    assert time.monotonic() - start < 2 * 0.5 + SLACK_S  # the exporters alone: 60 s
    assert telemetry.shutdown()  # idempotent: already done


def test_sigterm_is_handled_only_where_nobody_else_handles_it(
    otel_env: pytest.MonkeyPatch,
) -> None:
    kwargs = {"set_global": False, "logs": False, "prometheus": False, "gpu_metrics": False}
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        telemetry = otel_mlmon.configure(**kwargs)  # type: ignore[arg-type]
        assert sdk._on_sigterm is signal.getsignal(signal.SIGTERM)
        assert telemetry.sigterm_handled
        telemetry.shutdown()
        assert signal.SIG_DFL is signal.getsignal(signal.SIGTERM)

        def servers_own(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGTERM, servers_own)
        telemetry = otel_mlmon.configure(**kwargs)  # type: ignore[arg-type]
        assert servers_own is signal.getsignal(signal.SIGTERM)
        assert not telemetry.sigterm_handled
        telemetry.shutdown()
        assert servers_own is signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


ASGI_APP = textwrap.dedent(
    """
    import otel_mlmon
    from otel_mlmon import ModelMonitor

    telemetry = otel_mlmon.configure(service_name="uvicorn-test", logs=False)
    monitor = ModelMonitor("m")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    # uvicorn re-raises SIGTERM with its default action once it has shut
                    # down, so atexit never runs: the app's lifespan is where to flush.
                    telemetry.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        with monitor.predict() as p:
            p.record(1, 0.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    """
)


def test_uvicorn_flushes_on_sigterm_through_the_lifespan_shutdown(
    tmp_path: Path, otlp_http: OtlpHttpServer
) -> None:
    import httpx

    (tmp_path / "asgi_service.py").write_text(ASGI_APP)
    env = _child_env(otlp_http.endpoint)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi_service:app", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port)
        for _ in range(3):
            assert 200 == httpx.get(f"http://127.0.0.1:{port}/").status_code
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=sdk.SHUTDOWN_TIMEOUT_MILLIS / 1000 + SLACK_S)
    finally:
        process.kill()
    assert 3 == len(otlp_http.receiver.spans())


def test_shutdown_still_flushes_where_no_thread_can_start(
    otlp_http: OtlpHttpServer, otel_env: pytest.MonkeyPatch
) -> None:
    import threading

    telemetry = otel_mlmon.configure(
        otlp_endpoint=otlp_http.endpoint,
        set_global=False,
        logs=False,
        prometheus=False,
        gpu_metrics=False,
        process_metrics=False,
        handle_sigterm=False,
    )
    monitor = ModelMonitor("m", tracer_provider=telemetry.tracer_provider)
    with monitor.predict() as p:
        p.record(1)

    start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name.startswith("otel-mlmon-"):  # ours only: the receiver needs its threads
            raise RuntimeError("can't create new thread at interpreter shutdown")
        start(self)

    # As in an atexit handler on Python 3.12+: shutdown runs its steps inline instead.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "start", refuse)
        assert telemetry.shutdown()
    assert 1 == len(otlp_http.receiver.spans())


# --- the examples' apps under uvicorn and gunicorn ------------------------------------------

EXAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]
EXAMPLE_REQUESTS = 3


def _example_command(server: str, port: int) -> list[str]:
    """The documented command of each example service (docs/instrumentation.md)."""
    if server == "uvicorn":
        return [sys.executable, str(ROOT / "examples" / "fastapi_app.py"), "--port", str(port)]
    return [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
            "--chdir", str(ROOT / "examples"), "flask_app:create_app()"]  # fmt: skip


def _serve_and_sigterm(server: str, endpoint: str, output: Path) -> tuple[int, float, str]:
    """Start an example service exporting to ``endpoint`` (its stdout to ``output``), make
    EXAMPLE_REQUESTS predictions once every worker has loaded the model, SIGTERM it; return
    its exit code, the seconds SIGTERM took, and stderr."""
    import httpx

    port = free_port()
    with output.open("w") as stdout:
        process = subprocess.Popen(
            _example_command(server, port),
            env=_child_env(endpoint),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        # A gunicorn worker still loading the app when SIGTERM comes exits only once loaded
        # (gunicorn acts on the signal in its loop): seconds on a loaded machine that are no
        # part of the shutdown bound. So SIGTERM comes once each worker has logged its load.
        workers = 1 if server == "uvicorn" else 2
        eventually(
            lambda: output.read_text().count('"event": "model_loaded"') >= workers,
            f"{workers} {server} worker(s) to load the model",
        )
        wait_listening(port)  # uvicorn listens once the app is loaded
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(EXAMPLE_REQUESTS):
                response = client.post("/predict", json={"features": EXAMPLE_ROW})
                assert 200 == response.status_code, response.text
        start = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=sdk.SHUTDOWN_TIMEOUT_MILLIS / 1000 + 3 * SLACK_S)
        return process.returncode, time.monotonic() - start, stderr
    finally:
        process.kill()


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_the_example_services_flush_on_sigterm(
    server: str, otlp_http: OtlpHttpServer, tmp_path: Path
) -> None:
    code, elapsed, stderr = _serve_and_sigterm(server, otlp_http.endpoint, tmp_path / "out")
    # uvicorn re-raises SIGTERM once it has shut down (configure()'s handler flushes first);
    # gunicorn's master exits normally once its workers have.
    assert (-signal.SIGTERM if server == "uvicorn" else 0) == code, stderr
    assert elapsed < sdk.SHUTDOWN_TIMEOUT_MILLIS / 1000 + SLACK_S
    receiver = otlp_http.receiver
    names = [span.name for span in receiver.spans()]
    assert EXAMPLE_REQUESTS == names.count("predict iris"), names
    assert EXAMPLE_REQUESTS == names.count("POST /predict"), names
    predictions = sum_points(receiver.requests["/v1/metrics"], "ml.model.predictions")
    assert EXAMPLE_REQUESTS == sum(value for _, value in predictions)
    bodies = [record.body.string_value for record in receiver.log_records()]
    assert "model_loaded" in bodies  # the example's start-up event, a log record


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_the_example_services_exit_at_the_bound_when_the_backend_never_answers(
    server: str, black_hole: BlackHole, tmp_path: Path
) -> None:
    code, elapsed, stderr = _serve_and_sigterm(server, black_hole.endpoint, tmp_path / "out")
    assert (-signal.SIGTERM if server == "uvicorn" else 0) == code, stderr
    assert elapsed < sdk.SHUTDOWN_TIMEOUT_MILLIS / 1000 + SLACK_S
