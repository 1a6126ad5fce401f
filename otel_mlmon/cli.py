"""The ``otel-mlmon`` command.

``otel-mlmon demo`` runs the FastAPI example service in-process on the embedded default, drives
traffic at it (with an injected drift, bad requests, model errors and delayed labels) and shows a
live summary; see :mod:`otel_mlmon.demo`.

``otel-mlmon drift REFERENCE.csv CURRENT.csv`` scores every column of CURRENT against
REFERENCE with the same statistics, thresholds and feature typing as the in-process drift
processor, prints a table (or ``--json``), and exits 1 when drift is detected, so it can gate a
CI pipeline or a retraining job. Bad input (a missing or unreadable file, columns that do not
match, an empty table) prints one line on stderr and exits 2, never a traceback.

Each subcommand is one ``add_parser`` call in :func:`build_parser` whose parser sets
``handler``: a function from the parsed arguments to the exit status.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

from otel_mlmon.drift import statistics
from otel_mlmon.drift.config import DEFAULT_BINS, DEFAULT_MAX_CATEGORIES
from otel_mlmon.drift.encoding import Schema, infer_categorical
from otel_mlmon.drift.reference import Reference, Score, evaluate
from otel_mlmon.exceptions import ConfigurationError

EXIT_OK: Final = 0
EXIT_DRIFT: Final = 1
EXIT_BAD_INPUT: Final = 2


class InputError(Exception):
    """Input the command cannot use; its message is the one line printed."""


def _read_csv(path: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or not any(name.strip() for name in header):
                raise InputError(f"{path}: empty file (no header row)")
            names = [name.strip() for name in header]
            if len(set(names)) != len(names) or "" in names:
                raise InputError(f"{path}: column names must be distinct and non-empty")
            rows = []
            for row in reader:
                if not row:
                    continue  # blank line
                if len(row) != len(names):
                    raise InputError(
                        f"{path}: line {reader.line_num} has {len(row)} fields, "
                        f"expected {len(names)}"
                    )
                rows.append(row)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InputError(f"{path}: no data rows")
    return names, rows


def _columns(
    names: Sequence[str], rows: list[list[str]], order: Sequence[str]
) -> list[npt.NDArray[np.generic]]:
    table = np.array(rows, dtype=object)
    index = {name: i for i, name in enumerate(names)}
    return [table[:, index[name]] for name in order]


def compare_files(
    reference_path: str,
    current_path: str,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
) -> tuple[list[Score], dict[str, object]]:
    """Score ``current_path`` against ``reference_path`` (CSV files with a header row).

    Returns the scores and a summary (row counts, feature types, skipped features).

    Raises:
        InputError: a file is missing, unreadable or empty, or the columns do not match.
    """
    reference_names, reference_rows = _read_csv(reference_path)
    current_names, current_rows = _read_csv(current_path)
    if set(reference_names) != set(current_names):
        missing = [n for n in reference_names if n not in current_names]
        extra = [n for n in current_names if n not in reference_names]
        detail = "; ".join(
            part
            for part in (
                f"missing from {current_path}: {', '.join(missing)}" if missing else "",
                f"not in {reference_path}: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise InputError(f"columns do not match ({detail})")
    names = reference_names
    reference_columns = _columns(reference_names, reference_rows, names)
    try:
        flags = infer_categorical(names, reference_columns, categorical, numeric)
        schema = Schema.build(names, flags, DEFAULT_MAX_CATEGORIES)
        reference_matrix, reference_bad = schema.encode(reference_columns)
        reference = Reference.from_matrix(schema, reference_matrix, DEFAULT_BINS)
    except ConfigurationError as exc:
        raise InputError(f"{reference_path}: {exc}") from exc
    current_matrix, current_bad = schema.encode(_columns(current_names, current_rows, names))
    thresholds = {name: m.default_threshold for name, m in statistics.METHODS.items()}
    scores = evaluate(reference, current_matrix, tuple(statistics.METHODS), thresholds)
    scored = {s.feature for s in scores}
    summary: dict[str, object] = {
        "reference_rows": len(reference_rows),
        "current_rows": len(current_rows),
        "categorical": [n for n, c in zip(names, flags, strict=True) if c],
        "skipped": [n for n in names if n not in scored],
        "not_numeric_values": {"reference": reference_bad, "current": current_bad},
    }
    return scores, summary


def _format_table(scores: list[Score], summary: dict[str, object], out: TextIO) -> None:
    header = ("feature", "method", "kind", "score", "threshold", "drift")
    lines = [
        (
            s.feature,
            s.method,
            statistics.METHODS[s.method].kind,
            f"{s.score:.4g}",
            f"{s.threshold:g}",
            "yes" if s.drifted else "no",
        )
        for s in scores
    ]
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    for row in [header, *lines]:
        out.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    for name in summary["skipped"]:  # type: ignore[attr-defined]
        out.write(f"{name}: no usable value in the current table, not scored\n")
    drifted = sorted({s.feature for s in scores if s.drifted})
    features = len({s.feature for s in scores})
    if drifted:
        out.write(
            f"drift detected in {len(drifted)} of {features} features: {', '.join(drifted)}\n"
        )
    else:
        out.write(f"no drift detected in {features} features\n")


def _run_drift(args: argparse.Namespace) -> int:
    try:
        scores, summary = compare_files(
            args.reference, args.current, categorical=args.categorical, numeric=args.numeric
        )
    except InputError as exc:
        print(f"otel-mlmon drift: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    drift = any(s.drifted for s in scores)
    if args.json:
        document = {
            "drift": drift,
            "drifted_features": sorted({s.feature for s in scores if s.drifted}),
            **summary,
            "results": [
                {
                    "feature": s.feature,
                    "method": s.method,
                    "kind": statistics.METHODS[s.method].kind,
                    "score": s.score,
                    "threshold": s.threshold,
                    "drift": s.drifted,
                    "samples": s.samples,
                }
                for s in scores
            ],
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _format_table(scores, summary, sys.stdout)
    return EXIT_DRIFT if drift else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``otel-mlmon`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="otel-mlmon", description="OpenTelemetry-native telemetry for ML model services."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    drift = commands.add_parser(
        "drift",
        help="compare a current CSV table with a reference one; exit 1 on drift",
        description=(
            "Score every column of CURRENT against REFERENCE (CSV files with a header row) "
            "with the drift processor's statistics and default thresholds. Exit status: 0 no "
            "drift, 1 drift detected, 2 unusable input."
        ),
    )
    drift.add_argument("reference", metavar="REFERENCE.csv")
    drift.add_argument("current", metavar="CURRENT.csv")
    drift.add_argument("--json", action="store_true", help="print JSON instead of a table")
    drift.add_argument(
        "--categorical",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="treat these columns as categorical (default: inferred)",
    )
    drift.add_argument(
        "--numeric",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="treat these columns as numeric (default: inferred)",
    )
    drift.set_defaults(handler=_run_drift)

    from otel_mlmon import demo as _demo

    demo = commands.add_parser(
        "demo",
        help="the iris example service under traffic, with a live telemetry summary",
        description=_demo.__doc__.splitlines()[0] if _demo.__doc__ else None,
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
