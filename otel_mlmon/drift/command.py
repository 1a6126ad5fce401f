"""``otel-mlmon drift REFERENCE.csv CURRENT.csv``: two tables, one verdict, an exit status.

Each column of CURRENT is compared with the same column of REFERENCE (feature types, bins and
encoders as the in-process processor builds them) by :func:`otel_mlmon.drift.offline.compare`;
the command prints a table, or ``--json``, and exits 0 (no drift), 1 (drift) or 2 (unusable
input: one line on stderr naming the table, line or column, never a traceback). Warnings go to
stderr. A reader that closes the pipe early (``| head -1``) ends the output quietly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Final, TextIO

import numpy as np

from otel_mlmon.drift.config import DEFAULT_BINS, DEFAULT_MAX_CATEGORIES
from otel_mlmon.drift.csv_input import (
    STDIN,
    InputError,
    Table,
    index_column_hint,
    read_table,
)
from otel_mlmon.drift.encoding import Schema, infer_categorical
from otel_mlmon.drift.offline import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    Comparison,
    FeatureComparison,
    compare,
)
from otel_mlmon.drift.reference import Reference
from otel_mlmon.exceptions import ConfigurationError

EXIT_OK: Final = 0
EXIT_DRIFT: Final = 1
EXIT_BAD_INPUT: Final = 2

#: A column whose values are numbers but for this share is taken for a numeric column with a
#: typo, not for a categorical one: the command stops and names the value.
_NEARLY_NUMERIC: Final = 0.9


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_types(reference: Table, current: Table, names: Sequence[str], flags: Sequence[bool],
                 forced: set[str]) -> None:  # fmt: skip
    """Stop at a value that is not a number in a numeric column, or in a column of REFERENCE
    that is nearly all numbers (likely a typo, unless forced categorical)."""
    for name, categorical in zip(names, flags, strict=True):
        if not categorical:
            found = current.first_line(name, lambda v: v != "" and not _is_number(v))
            if found is not None:
                raise InputError(
                    f"column {name!r}: {current.label} line {found[0]} holds {found[1]!r}, not a "
                    f"number, but the column is numeric in REFERENCE; pass --categorical "
                    f"{name!r} to compare it as categories"
                )
        elif name not in forced:
            values = [v for v in reference.columns([name])[0].tolist() if v != ""]
            numbers = sum(1 for v in values if _is_number(v))
            if values and numbers < len(values) and numbers >= _NEARLY_NUMERIC * len(values):
                found = reference.first_line(name, lambda v: v != "" and not _is_number(v))
                assert found is not None
                raise InputError(
                    f"column {name!r}: {reference.label} line {found[0]} holds {found[1]!r}, not "
                    f"a number, in a column of numbers; fix it, or pass --categorical {name!r}"
                )


def _matched_names(reference: Table, current: Table, exclude: Sequence[str]) -> list[str]:
    """The columns to compare, in REFERENCE's order.

    Raises:
        InputError: an unknown excluded column, a pandas index column, columns that differ.
    """
    for name in exclude:
        if name not in reference.names and name not in current.names:
            raise InputError(f"--exclude {name!r}: no such column in either table")
    hint = index_column_hint((reference, current), exclude)
    if hint is not None:
        raise InputError(hint)
    names = [n for n in reference.names if n not in exclude]
    current_names = [n for n in current.names if n not in exclude]
    if set(names) != set(current_names):
        missing = [n for n in names if n not in current_names]
        extra = [n for n in current_names if n not in names]
        detail = "; ".join(
            part
            for part in (
                f"missing from CURRENT: {', '.join(missing)}" if missing else "",
                f"not in REFERENCE: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise InputError(f"columns do not match ({detail})")
    if not names:
        raise InputError("no column left to compare")
    return names


def compare_files(
    reference_path: str,
    current_path: str,
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    exclude: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Comparison:
    """Compare the CSV table at ``current_path`` with the one at ``reference_path``.

    Raises:
        InputError: a table is missing, unreadable or empty, the columns do not match, or a
            column cannot be compared (the message names it).
    """
    if reference_path == STDIN and current_path == STDIN:
        raise InputError("only one of REFERENCE and CURRENT can be read from standard input")
    reference = read_table(reference_path, "REFERENCE")
    current = read_table(current_path, "CURRENT")
    names = _matched_names(reference, current, exclude)
    reference_columns = reference.columns(names)
    try:
        flags = infer_categorical(names, reference_columns, categorical, numeric)
    except ConfigurationError as exc:
        raise InputError(str(exc)) from exc
    _check_types(reference, current, names, flags, set(categorical))
    schema = Schema.build(names, flags, DEFAULT_MAX_CATEGORIES)
    reference_matrix, _ = schema.encode(reference_columns)
    finite = np.count_nonzero(np.isfinite(reference_matrix), axis=0)
    for name, count in zip(names, finite.tolist(), strict=True):
        if not count:
            raise InputError(f"column {name!r}: no usable value in {reference.label}")
    prepared = Reference.from_matrix(schema, reference_matrix, DEFAULT_BINS)
    current_matrix, _ = schema.encode(current.columns(names))
    comparison = compare(prepared, current_matrix, alpha=alpha, min_effect=min_effect)
    for result in comparison.features:
        if result.current_values == 0:
            raise InputError(f"column {result.feature!r}: no usable value in {current.label}")
    return comparison


def _number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}g}"


def _row(r: FeatureComparison) -> tuple[str, ...]:
    return (
        r.feature,
        "categorical" if r.categorical else "numeric",
        f"{r.reference_values}/{r.current_values}",
        r.test or "-",
        _number(r.statistic),
        _number(r.p_value),
        _number(r.adjusted_p_value),
        _number(r.effect),
        _number(r.psi),
        _number(r.jensen_shannon),
        "yes" if r.drifted else "no",
    )


def verdict_line(comparison: Comparison) -> str:
    """The dataset-level verdict with its family-wise error rate, in one line."""
    guarantee = (
        f"family-wise error rate <= {comparison.alpha:g} (Holm over {comparison.tests} tests), "
        f"effect >= {comparison.min_effect:g}"
    )
    drifted = comparison.drifted
    if not comparison.tests:
        return f"no feature could be tested, no drift reported; {guarantee}"
    if drifted:
        return (
            f"drift detected in {len(drifted)} of {comparison.tests} tested features "
            f"({', '.join(drifted)}); {guarantee}"
        )
    return f"no drift detected in {comparison.tests} tested features; {guarantee}"


def write_table(comparison: Comparison, out: TextIO) -> None:
    """The human-readable report: one row per feature (every feature, tested or not)."""
    header = ("feature", "type", "values", "test", "statistic", "p-value", "p (Holm)",
              "effect", "psi", "js", "drift")  # fmt: skip
    lines = [header, *(_row(r) for r in comparison.features)]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    for row in lines:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    for r in comparison.features:
        if r.note:
            out.write(f"{r.feature}: {r.note}\n")
    out.write(verdict_line(comparison) + "\n")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def to_json(comparison: Comparison) -> dict[str, object]:
    """The machine-readable report (docs/drift.md describes each key)."""
    return {
        "drift": comparison.drift,
        "verdict": verdict_line(comparison),
        "alpha": comparison.alpha,
        "correction": "holm",
        "tests": comparison.tests,
        "min_effect": comparison.min_effect,
        "drifted_features": list(comparison.drifted),
        "share_drifted": len(comparison.drifted) / comparison.tests if comparison.tests else 0.0,
        "reference_rows": comparison.reference_rows,
        "current_rows": comparison.current_rows,
        "warnings": list(comparison.warnings),
        "features": [
            {
                "feature": r.feature,
                "type": "categorical" if r.categorical else "numeric",
                "reference_values": r.reference_values,
                "current_values": r.current_values,
                "test": r.test,
                "statistic": r.statistic,
                "p_value": r.p_value,
                "p_value_method": r.p_value_method,
                "p_value_holm": r.adjusted_p_value,
                "effect": _finite(r.effect),
                "psi": r.psi,
                "jensen_shannon": r.jensen_shannon,
                "wasserstein": r.wasserstein,
                "drift": r.drifted,
                "note": r.note,
            }
            for r in comparison.features
        ],
    }


def _quiet_stdout() -> None:
    # The reader went away: send what is left (and the interpreter's final flush) nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(args: argparse.Namespace) -> int:
    """The ``drift`` subcommand: the exit status."""
    try:
        comparison = compare_files(
            args.reference, args.current, categorical=args.categorical, numeric=args.numeric,
            exclude=args.exclude, alpha=args.alpha, min_effect=args.min_effect,
        )  # fmt: skip
    except InputError as exc:
        print(f"otel-mlmon drift: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    status = EXIT_DRIFT if comparison.drift else EXIT_OK
    for warning in comparison.warnings:
        print(f"otel-mlmon drift: warning: {warning}", file=sys.stderr)
    try:
        if args.json:
            json.dump(to_json(comparison), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            write_table(comparison, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
    return status


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``drift`` subcommand's arguments."""
    parser.add_argument(
        "reference", metavar="REFERENCE.csv", help="the reference table ('-': standard input)"
    )
    parser.add_argument(
        "current", metavar="CURRENT.csv", help="the table to compare ('-': standard input)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for flag, purpose in (
        ("--categorical", "treat these columns as categorical (default: inferred)"),
        ("--numeric", "treat these columns as numeric (default: inferred)"),
        ("--exclude", "leave these columns out (ids, timestamps, an index)"),
    ):
        parser.add_argument(
            flag, nargs="+", action="extend", default=[], metavar="COL", help=purpose
        )
    parser.add_argument(
        "--alpha",
        type=_probability,
        default=DEFAULT_ALPHA,
        help="family-wise error rate of the verdict (default: %(default)s)",
    )
    parser.add_argument(
        "--min-effect",
        type=_non_negative,
        default=DEFAULT_MIN_EFFECT,
        help="smallest effect called drift: Wasserstein distance in reference standard "
        "deviations, or Jensen-Shannon distance for categorical columns (default: %(default)s)",
    )
