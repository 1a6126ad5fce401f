"""The demo's job: the example service in this process, traffic at it, the live view.

The FastAPI example as the package ships it (``otel_mlmon.examples.fastapi_app``, the file
``examples/fastapi_app.py`` of the repository) runs under uvicorn in a thread on a loopback
port, and a canary of the next model version on another (``--canary-share``), as two replicas
of a rollout would: each verifies the other's prediction ids, so a label or an outcome posted
to either counts for the version that made the prediction. Unless ``--no-shadow``, a
challenger runs in the shadow of the stable version. Telemetry runs on the embedded
default (:func:`otel_mlmon.configure`: metrics on the Prometheus endpoint) or, with
``--otlp-endpoint``, exporting every signal to that collector. The live view is read from the
Prometheus endpoint, so that endpoint stays up with OTLP too. The terminal shows only the view:
the services' log lines go to ``--log-file`` and the traffic client's own HTTP chatter (httpx's
INFO lines) is not logged at all.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, TextIO

from otel_mlmon.demo.options import build_parser
from otel_mlmon.demo.scrape import Summary, scrape
from otel_mlmon.demo.traffic import Driver
from otel_mlmon.demo.view import LiveView, Setting, render

_logger: Final = logging.getLogger("otel_mlmon.demo")

#: The service the demo runs, and the model code it shares with the traffic.
SERVICE_MODULE: Final = "otel_mlmon.examples.fastapi_app"
MODEL_MODULE: Final = "otel_mlmon.examples.iris"
#: Fraction of the run after which the drift starts.
DRIFT_AT: Final = 0.4
#: Loggers of the demo's own HTTP client: their per-request INFO lines are not the service's.
QUIET_LOGGERS: Final = ("httpx", "httpcore")
#: Seconds the service may take to start listening.
START_TIMEOUT: Final = 15.0


def load_service() -> tuple[ModuleType, ModuleType]:
    """The example service and its model module, as installed with the package.

    Raises:
        ImportError: the ``examples`` extra (scikit-learn, FastAPI, uvicorn) is missing.
    """
    return importlib.import_module(SERVICE_MODULE), importlib.import_module(MODEL_MODULE)


def _fail(message: str) -> int:
    print(f"otel-mlmon demo: {message}", file=sys.stderr)
    return 2


@dataclass
class _Service:
    """The example app under uvicorn, in a thread of this process."""

    server: Any
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _start_service(app: Any, port: int) -> _Service | None:
    """Serve ``app`` on 127.0.0.1:``port`` (0: any free); None if it does not start."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            return None
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return _Service(server, thread, f"http://127.0.0.1:{bound}")


def _start_telemetry(args: argparse.Namespace, log_stream: TextIO) -> Any:
    """``configure()`` for the demo: the Prometheus endpoint always (the view reads it), OTLP
    with ``--otlp-endpoint``, and the logging bridge writing to the log file.

    Raises:
        ConfigurationError: an unusable endpoint or port.
    """
    import otel_mlmon
    from otel_mlmon.logs import configure_logging

    telemetry = otel_mlmon.configure(
        service_name="iris-demo",
        otlp_endpoint=args.otlp_endpoint,
        prometheus=True,
        prometheus_port=args.prometheus_port,
        logs=False,  # set up below, writing to the log file rather than the terminal
    )
    configure_logging(logger_provider=telemetry.logger_provider, stream=log_stream)
    for name in QUIET_LOGGERS:
        # One INFO line per request of the demo's own client: neither the service's logs nor
        # telemetry of it, so kept out of the log file and of the exported records.
        logging.getLogger(name).setLevel(logging.WARNING)
    return telemetry


def _start_services(
    service_module: ModuleType, iris: ModuleType, args: argparse.Namespace
) -> tuple[_Service | None, _Service | None, Any]:
    """The stable service (on ``--port``) and, with a canary share, the canary (any free
    port); and the stable model, whose rows the traffic sends."""
    import otel_mlmon

    canary = args.canary_share > 0
    versions = [iris.MODEL_VERSION, *([iris.CANARY_VERSION] if canary else [])]
    labels = otel_mlmon.Labels(fleet_versions=versions)
    started: list[_Service | None] = []
    model = None
    for version, port in zip(versions, (args.port, 0), strict=False):
        served = iris.model_for(version)
        model = model or served
        monitor = iris.build_monitor(served, version, labels)
        shadow = None if model is not served or args.no_shadow else iris.SHADOW_VERSION
        app = service_module.create_app(
            model=served, monitor=monitor, configure=False, shadow=shadow
        )
        started.append(_start_service(app, port))
    return started[0], started[1] if canary else None, model


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run the demo; returns the process exit status (0, or 2 when it cannot start)."""
    out = stream or sys.stdout
    if args.rate <= 0:
        return _fail("--rate must be positive")
    if not 0 <= args.canary_share < 1:
        return _fail("--canary-share must be in [0, 1)")
    try:
        service_module, iris = load_service()
    except ImportError as exc:
        return _fail(f"{exc} (pip install 'otel-mlmon[examples]')")
    from otel_mlmon.exceptions import ConfigurationError

    try:
        log_stream = args.log_file.open("a", encoding="utf-8", buffering=1)
    except OSError as exc:
        return _fail(f"cannot write the log file: {exc}")
    with log_stream:
        try:
            telemetry = _start_telemetry(args, log_stream)
        except ConfigurationError as exc:
            return _fail(str(exc))
        service, canary, model = _start_services(service_module, iris, args)
        if service is None or (args.canary_share > 0 and canary is None):
            telemetry.shutdown()
            return _fail("the service did not start")
        metrics_url = None
        if telemetry.prometheus_address:
            host, port = telemetry.prometheus_address
            metrics_url = f"http://{host}:{port}/metrics"
        setting = Setting(
            duration=args.duration,
            service_url=service.url,
            metrics_url=metrics_url,
            otlp_endpoint=args.otlp_endpoint,
            min_samples=iris.DRIFT.min_samples,
            log_file=args.log_file,
            canary_url=canary.url if canary else None,
            canary_share=args.canary_share,
        )
        _announce(setting, out, iris.CANARY_VERSION)
        driver = Driver(
            service.url, model.reference, model.targets, args.rate, _drift_after(args), args.seed,
            canary=(canary.url, args.canary_share) if canary else None,
        )  # fmt: skip
        _drive(driver, setting, args.refresh, LiveView(out))
        service.stop()
        if canary is not None:
            canary.stop()
        flushed = telemetry.force_flush(timeout_millis=10_000)
        telemetry.shutdown()
    print(
        f"\nstopped after {driver.traffic.sent} predict requests; telemetry "
        + ("flushed" if flushed else "flush timed out"),
        file=out,
        flush=True,
    )
    return 0


def _drift_after(args: argparse.Namespace) -> float | None:
    """Seconds into the run at which the drift starts; None with --no-drift."""
    if args.no_drift:
        return None
    return (args.duration if args.duration > 0 else 150.0) * DRIFT_AT


def _announce(setting: Setting, out: TextIO, canary_version: str) -> None:
    """The lines printed once, above the live view."""
    print(
        f"service     {setting.service_url}  (POST /predict, POST /feedback, POST /outcome, "
        "GET /health)",
        file=out,
    )
    if setting.canary_url:
        print(
            f"canary      {setting.canary_url}  (version {canary_version}, "
            f"{setting.canary_share:.0%} of the predictions)",
            file=out,
        )
    if setting.metrics_url:
        print(f"prometheus  {setting.metrics_url}", file=out)
    if setting.otlp_endpoint:
        print(f"exporting   traces, metrics and logs to {setting.otlp_endpoint}", file=out)
    print(f"logs        {setting.log_file}  (tail -f it)", file=out)
    print("Ctrl-C to stop\n", file=out, flush=True)


def _drive(driver: Driver, setting: Setting, refresh_every: float, view: LiveView) -> None:
    """Send the traffic and redraw the view until the duration ends, Ctrl-C or SIGTERM; then
    stop the traffic and draw the final frame."""
    interrupted = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if in_main:
        signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    started = time.monotonic()
    summary = Summary()

    def refresh() -> None:
        """Scrape the service's metrics (keeping the last summary if that fails) and redraw."""
        nonlocal summary
        if setting.metrics_url:
            try:
                summary = scrape(setting.metrics_url)
            except Exception as exc:
                _logger.debug("demo: scrape failed: %r", exc)
        elapsed = time.monotonic() - started
        view.show(render(summary, driver.traffic, elapsed=elapsed, setting=setting))

    driver.start()
    try:
        while not interrupted.is_set():
            if setting.duration > 0 and time.monotonic() - started >= setting.duration:
                break
            refresh()
            interrupted.wait(refresh_every)
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        driver.join(timeout=5)
        refresh()


def main(argv: list[str] | None = None) -> int:
    """``python -m otel_mlmon.demo``: the same job as ``otel-mlmon demo``."""
    return run(build_parser().parse_args(argv))
