"""``otel-mlmon demo``: the iris example service under synthetic traffic, with a live summary.

    otel-mlmon demo [--duration 120] [--rate 20] [--otlp-endpoint URL] [--no-drift]
                    [--port N] [--prometheus-port N] [--log-file PATH]

One concern per module: :mod:`~otel_mlmon.demo.options` (the command's options and its
``--help`` text), :mod:`~otel_mlmon.demo.job` (the service in this process, telemetry, the run),
:mod:`~otel_mlmon.demo.traffic` (the requests sent), :mod:`~otel_mlmon.demo.scrape` (the
summary read back from the Prometheus endpoint) and :mod:`~otel_mlmon.demo.view` (the live
view). The service is the FastAPI example, installed with the package as
``otel_mlmon.examples.fastapi_app``, so the demo runs from a wheel as from a checkout; it needs
the ``examples`` extra (scikit-learn, FastAPI, uvicorn, httpx).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from otel_mlmon.demo.job import main, run
from otel_mlmon.demo.options import DESCRIPTION, add_arguments
from otel_mlmon.demo.scrape import parse_samples  # read a scrape, as tests of the package do

__all__ = ["DESCRIPTION", "add_arguments", "main", "parse_samples", "run"]
