"""CSV tables for ``otel-mlmon drift``: read, checked, turned into columns of text.

A table is a file with a header row (``-`` reads standard input), UTF-8 with or without a BOM.
The missing-value markers pandas reads as NaN by default (``NA``, ``N/A``, ``null``, ...) are
read as missing, so a numeric column that uses them stays numeric. Anything the command cannot
use raises :class:`InputError` with the one line to print: the table, the line, the column.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

import numpy as np
import numpy.typing as npt

#: Read as missing values: pandas' default ``na_values`` (``pandas.read_csv``).
MISSING_MARKERS: Final = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})  # fmt: skip

#: A header pandas writes for its index (``DataFrame.to_csv`` without ``index=False``).
_INDEX_HEADER: Final = re.compile(r"(Unnamed: \d+)?")

STDIN: Final = "-"


class InputError(Exception):
    """Input the command cannot use; its message is the one line printed."""


@dataclass(frozen=True)
class Table:
    """A CSV table: where it came from, its column names and its rows of text."""

    label: str
    names: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def columns(self, order: Sequence[str]) -> list[npt.NDArray[np.str_]]:
        """The columns named ``order`` as text, missing-value markers as empty strings."""
        table = np.array(self.rows, dtype=str).reshape(len(self.rows), len(self.names))
        index = {name: i for i, name in enumerate(self.names)}
        return [table[:, index[name]] for name in order]

    def first_line(self, column: str, predicate: object) -> tuple[int, str] | None:
        """The first data line (1 is the header) whose value in ``column`` satisfies
        ``predicate``, and that value."""
        i = self.names.index(column)
        for number, row in enumerate(self.rows, start=2):
            if predicate(row[i]):  # type: ignore[operator]
                return number, row[i]
        return None


def _open(path: str) -> TextIO:
    if path == STDIN:
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    return open(path, newline="", encoding="utf-8-sig")


def read_table(path: str, role: str) -> Table:
    """Read the CSV table at ``path`` (``-``: standard input); ``role`` names it in messages
    (``REFERENCE`` or ``CURRENT``).

    Raises:
        InputError: unreadable, empty, malformed, or with unusable column names.
    """
    label = f"{role} ({'standard input' if path == STDIN else path})"
    try:
        with _open(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or not any(name.strip() for name in header):
                raise InputError(f"{label}: empty (no header row)")
            names = tuple(name.strip() for name in header)
            _check_names(label, names)
            rows = []
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != len(names):
                    raise InputError(
                        f"{label}: line {reader.line_num} has {len(row)} fields, "
                        f"the header {len(names)}"
                    )
                rows.append(tuple("" if v.strip() in MISSING_MARKERS else v for v in row))
    except OSError as exc:
        raise InputError(f"{label}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{label}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise InputError(f"{label}: no data rows")
    return Table(label, names, tuple(rows))


def _check_names(label: str, names: tuple[str, ...]) -> None:
    seen: set[str] = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise InputError(f"{label}: column {name!r} appears twice in the header")
        seen.add(name)
        if not name and number > 1:
            raise InputError(f"{label}: column {number} has no name in the header")


def index_column_hint(tables: Iterable[Table], excluded: Iterable[str]) -> str | None:
    """A hint when a table's first column looks like a pandas index and is not excluded."""
    skip = set(excluded)
    for table in tables:
        first = table.names[0]
        if first not in skip and _INDEX_HEADER.fullmatch(first):
            shown = f"{first!r}" if first else "'' (no name)"
            return (
                f"{table.label}: the first column {shown} looks like a pandas index "
                "(DataFrame.to_csv without index=False); comparing row numbers would report "
                f"drift. Write the file with index=False, or pass --exclude {first!r}"
            )
    return None
