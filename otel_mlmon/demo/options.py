"""The options of ``otel-mlmon demo``, with the plain-text description its ``--help`` shows."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Final

#: What ``otel-mlmon demo --help`` says above the options: plain text, wrapped for a terminal
#: (the parsers show it as written, so the install command is never cut).
DESCRIPTION: Final = """\
Run the iris example service (examples/fastapi_app.py, installed as
otel_mlmon.examples.fastapi_app) on 127.0.0.1 and drive traffic at it: single
and batch predictions, malformed requests (422), model errors (500), delayed
labels, business outcomes (revenue, ratings) and, part-way through, a drift.
A canary of the next model version serves --canary-share of the predictions,
and a challenger runs in the shadow of the stable one (--no-shadow: none);
labels and outcomes go to either service. The terminal shows a live summary
read from the Prometheus endpoint, comparing the versions; the services' JSON
log lines go to --log-file. Ctrl-C, or the end of --duration, stops the
traffic, flushes every signal and exits 0.

Needs the examples extra:  pip install 'otel-mlmon[examples]'"""
DEFAULT_DURATION: Final = 120.0
DEFAULT_RATE: Final = 20.0
DEFAULT_CANARY_SHARE: Final = 0.2
#: Where the service's log lines go unless --log-file says otherwise.
DEFAULT_LOG_FILE: Final = Path(tempfile.gettempdir()) / "otel-mlmon-demo.log"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (the ``otel-mlmon demo`` subcommand)."""
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        help=f"seconds to run; 0 runs until Ctrl-C (default {DEFAULT_DURATION:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"requests per second sent to the service (default {DEFAULT_RATE:g})",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=None,
        help="export traces, metrics and logs over OTLP to this collector, e.g. "
        "http://localhost:4318 (default: the embedded Prometheus endpoint only)",
    )
    parser.add_argument("--no-drift", action="store_true", help="do not inject a drift")
    parser.add_argument(
        "--no-shadow", action="store_true", help="run no challenger in the shadow of the stable one"
    )
    parser.add_argument(
        "--canary-share",
        type=float,
        default=DEFAULT_CANARY_SHARE,
        help="share of the predictions the canary version serves, in [0, 1); 0: no canary "
        f"(default {DEFAULT_CANARY_SHARE:g})",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port of the service on 127.0.0.1 (default: any free)"
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        help="port of the Prometheus endpoint (default 9464 or OTEL_EXPORTER_PROMETHEUS_PORT)",
    )
    parser.add_argument(
        "--refresh", type=float, default=1.0, help="seconds between summary refreshes"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the traffic generator")
    parser.add_argument(
        "--log-file",
        type=Path,
        default=DEFAULT_LOG_FILE,
        help=f"file the service's JSON log lines are appended to (default {DEFAULT_LOG_FILE})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m otel_mlmon.demo``: the options of ``otel-mlmon demo``."""
    parser = argparse.ArgumentParser(
        prog="otel-mlmon demo",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser
