"""Feature tables to float64 matrices: the encoding the processor and ``otel-mlmon drift`` share.

A table (numpy 2-D array, pandas DataFrame, sequence of mappings or of sequences) becomes one
float64 matrix: numeric features as numbers, categorical features as integer codes from a
:class:`CategoryEncoder`, a missing or unusable value as NaN. :class:`Schema` holds the feature
names, their types and encoders; :func:`infer_categorical` decides the types.

pandas is never imported: a DataFrame is recognised by its ``columns`` and ``to_numpy``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from otel_mlmon.exceptions import ConfigurationError

FloatArray = npt.NDArray[np.float64]

#: Code of the categories past an encoder's bound (``max_categories``): they share one bucket.
OVERFLOW_CODE: Final = 0


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, np.floating):
        return not bool(np.isfinite(value))
    return False


def category_key(value: object) -> str | None:
    """The text a category is compared by, or ``None`` for a missing value.

    Integral numbers compare as integers (``1``, ``1.0``, ``np.int64(1)`` and ``"1"`` are one
    category), other values by ``str``; ``None``, NaN, infinities and blank strings are missing.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value.strip()
    return str(value)


class CategoryEncoder:
    """Maps category values to stable float codes ``1, 2, ...``; bounded.

    The first ``max_categories`` distinct keys get their own code, in the order they are first
    seen (reference or live traffic); later ones share :data:`OVERFLOW_CODE`, so memory and the
    statistics' cost stay bounded whatever arrives. Codes are never reassigned, so a window
    encoded before a new reference still compares correctly against it.
    """

    __slots__ = ("_codes", "_lock", "max_categories")

    def __init__(self, max_categories: int) -> None:
        self.max_categories = max_categories
        self._codes: dict[str, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Codes in use, the overflow bucket included."""
        return len(self._codes) + 1

    def code(self, value: object) -> float:
        """The code of ``value``, NaN when it is missing."""
        key = category_key(value)
        if key is None:
            return math.nan
        code = self._codes.get(key)
        if code is not None:
            return float(code)
        with self._lock:
            code = self._codes.get(key)
            if code is None:
                if len(self._codes) >= self.max_categories:
                    return float(OVERFLOW_CODE)
                code = self._codes[key] = len(self._codes) + 1
        return float(code)

    def categories(self) -> list[str]:
        """Category keys by code (index 0 is the overflow bucket, shown as ``_OTHER``)."""
        names = ["_OTHER"] * (len(self._codes) + 1)
        for key, code in list(self._codes.items()):
            names[code] = key
        return names

    def reset_after_fork(self) -> None:
        """Give a forked child a fresh lock."""
        self._lock = threading.Lock()


# --- tables -----------------------------------------------------------------------------------


def is_dataframe(data: object) -> bool:
    """Whether ``data`` looks like a pandas DataFrame (without importing pandas)."""
    return (
        not isinstance(data, np.ndarray)
        and hasattr(data, "columns")
        and hasattr(data, "to_numpy")
        and hasattr(data, "iloc")
    )


def default_names(width: int) -> tuple[str, ...]:
    """Feature names used when none are given: ``feature_0``, ``feature_1``, ..."""
    return tuple(f"feature_{i}" for i in range(width))


def table_columns(
    data: object, names: Sequence[str] | None, *, what: str = "reference"
) -> tuple[tuple[str, ...], list[npt.NDArray[np.generic]]]:
    """Split a table into its feature names and one 1-D array per feature.

    Raises:
        ConfigurationError: an empty table, rows of unequal width, names that do not match.
    """
    if is_dataframe(data):
        columns = [str(c) for c in data.columns]  # type: ignore[attr-defined]
        wanted = tuple(columns) if names is None else tuple(names)
        missing = [n for n in wanted if n not in columns]
        if missing:
            raise ConfigurationError(f"{what} has no column {missing[0]!r}")
        if len(data.index) == 0:  # type: ignore[attr-defined]
            raise ConfigurationError(f"{what} is empty")
        by_name = {str(c): c for c in data.columns}  # type: ignore[attr-defined]
        return wanted, [
            np.asarray(data[by_name[n]].to_numpy())  # type: ignore[index]
            for n in wanted
        ]
    if isinstance(data, np.ndarray):
        matrix = data
    elif isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise ConfigurationError(f"{what} must be a 2-D array, a DataFrame or a sequence of rows")
    else:
        rows = list(data)
        if not rows:
            raise ConfigurationError(f"{what} is empty")
        if all(isinstance(row, Mapping) for row in rows):
            wanted = tuple(str(k) for k in rows[0]) if names is None else tuple(names)
            if not wanted:
                raise ConfigurationError(f"{what} has no columns")
            return wanted, [np.array([row.get(n) for row in rows], dtype=object) for n in wanted]
        widths = {len(row) if isinstance(row, (Sequence, np.ndarray)) else -1 for row in rows}
        if len(widths) != 1 or -1 in widths or isinstance(rows[0], (str, bytes)):
            raise ConfigurationError(f"{what} rows must all be sequences of the same width")
        matrix = np.empty((len(rows), widths.pop()), dtype=object)
        matrix[:] = rows
    if matrix.ndim != 2:
        raise ConfigurationError(f"{what} must be 2-D (rows x features), not {matrix.ndim}-D")
    if matrix.shape[0] == 0:
        raise ConfigurationError(f"{what} is empty")
    wanted = default_names(matrix.shape[1]) if names is None else tuple(names)
    if len(wanted) != matrix.shape[1]:
        raise ConfigurationError(
            f"{what} has {matrix.shape[1]} columns but {len(wanted)} feature names were given"
        )
    return wanted, [matrix[:, i] for i in range(matrix.shape[1])]


def _number(value: object) -> float | None:
    """``value`` as a float, NaN when missing, ``None`` when it is not a number."""
    if isinstance(value, np.generic):
        value = value.item()
    if _is_missing(value):
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else math.nan
    return None


def is_numeric_column(column: npt.NDArray[np.generic]) -> bool:
    """Whether a column holds numbers (or missing values) only; booleans are categorical."""
    kind = column.dtype.kind
    if kind in "iuf":
        return True
    if kind != "O" and kind not in "US":
        return False
    if kind in "US" and _parsed(column) is not None:
        return True
    return all(_number(v) is not None for v in column.tolist())


def _parsed(column: npt.NDArray[np.generic]) -> FloatArray | None:
    """A text column whose every value is a number, parsed at once; ``None`` otherwise (a
    blank, a word: the value-by-value path decides)."""
    try:
        return column.astype(np.float64)
    except (TypeError, ValueError):
        return None


def numeric_column(column: npt.NDArray[np.generic]) -> tuple[FloatArray, int]:
    """A column as float64 (missing and infinite values as NaN) and how many values were not
    numbers (also NaN)."""
    kind = column.dtype.kind
    parsed = (
        column.astype(np.float64) if kind in "iuf" else _parsed(column) if kind in "US" else None
    )
    if parsed is not None:
        parsed[~np.isfinite(parsed)] = np.nan
        return parsed, 0
    converted = [_number(v) for v in column.tolist()]
    bad = sum(1 for v in converted if v is None)
    return np.array([math.nan if v is None else v for v in converted], np.float64), bad


# --- schema -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """Feature names, which of them are categorical, and their encoders."""

    names: tuple[str, ...]
    categorical: tuple[bool, ...]
    encoders: tuple[CategoryEncoder | None, ...]

    @classmethod
    def build(
        cls, names: Sequence[str], categorical: Iterable[bool], max_categories: int
    ) -> Schema:
        """A schema of ``names`` with fresh encoders for the categorical ones."""
        flags = tuple(categorical)
        return cls(
            tuple(names),
            flags,
            tuple(CategoryEncoder(max_categories) if c else None for c in flags),
        )

    @property
    def width(self) -> int:
        """Number of features."""
        return len(self.names)

    def encode(self, columns: Sequence[npt.NDArray[np.generic]]) -> tuple[FloatArray, int]:
        """The ``rows x width`` float64 matrix of a table's columns, and how many values of
        numeric columns were not numbers (stored as NaN)."""
        rows = len(columns[0]) if columns else 0
        matrix = np.empty((rows, self.width), dtype=np.float64)
        bad = 0
        for i, (column, encoder) in enumerate(zip(columns, self.encoders, strict=True)):
            if encoder is None:
                matrix[:, i], not_numbers = numeric_column(column)
                bad += not_numbers
            else:
                matrix[:, i] = [encoder.code(v) for v in column.tolist()]
        return matrix, bad


def checked_names(names: Sequence[str] | None) -> tuple[str, ...] | None:
    """Feature names as a tuple of strings (``None`` stays ``None``).

    Raises:
        ConfigurationError: a single string, an empty sequence or repeated names.
    """
    if names is None:
        return None
    if isinstance(names, str):
        raise ConfigurationError("feature_names must be a sequence of names")
    checked = tuple(str(n) for n in names)
    if not checked or len(set(checked)) != len(checked):
        raise ConfigurationError("feature_names must be non-empty and distinct")
    return checked


def infer_categorical(
    names: Sequence[str],
    columns: Sequence[npt.NDArray[np.generic]],
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
) -> tuple[bool, ...]:
    """Per feature, whether it is categorical: forced by name, else inferred from its column.

    Raises:
        ConfigurationError: a forced name that is not a feature, or one forced both ways.
    """
    forced_categorical, forced_numeric = set(categorical), set(numeric)
    for name in sorted(forced_categorical | forced_numeric):
        if name not in names:
            raise ConfigurationError(f"{name!r} is not a feature (features: {list(names)})")
    both = forced_categorical & forced_numeric
    if both:
        raise ConfigurationError(f"{sorted(both)[0]!r} is forced both categorical and numeric")
    return tuple(
        name in forced_categorical or (name not in forced_numeric and not is_numeric_column(column))
        for name, column in zip(names, columns, strict=True)
    )
