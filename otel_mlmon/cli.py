"""The ``otel-mlmon`` command.

``otel-mlmon demo`` runs the FastAPI example service in-process on the embedded default, drives
traffic at it (with an injected drift, bad requests, model errors and delayed labels) and shows a
live summary; see :mod:`otel_mlmon.demo`.

``otel-mlmon drift REFERENCE.csv CURRENT.csv`` tests every column of CURRENT against REFERENCE
and gives one verdict for the table with its family-wise error rate, prints a table (or
``--json``), and exits 1 when drift is detected, so it can gate a CI pipeline or a retraining
job; bad input prints one line on stderr and exits 2, never a traceback. See
:mod:`otel_mlmon.drift.command`.

Each subcommand is one ``add_parser`` call in :func:`build_parser` whose parser sets
``handler``: a function from the parsed arguments to the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otel_mlmon.drift import command as drift_command
from otel_mlmon.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``otel-mlmon`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="otel-mlmon", description="OpenTelemetry-native telemetry for ML model services."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    drift = commands.add_parser(
        "drift",
        help="compare a current CSV table with a reference one; exit 1 on drift",
        description=(
            "Test every column of CURRENT against REFERENCE (CSV files with a header row, '-' "
            "for standard input) and give one verdict for the table, with its family-wise "
            "error rate (docs/drift.md). Exit status: 0 no drift, 1 drift detected, 2 unusable "
            "input."
        ),
    )
    drift_command.add_arguments(drift)
    drift.set_defaults(handler=drift_command.run)

    from otel_mlmon import demo as _demo

    demo = commands.add_parser(
        "demo",
        help="the iris example service under traffic, with a live telemetry summary",
        description=_demo.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _demo.add_arguments(demo)
    demo.set_defaults(handler=_demo.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``otel-mlmon`` with ``argv`` (default: the process arguments); the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
