"""Tables to encoded matrices: category keys, the bounded encoder, table columns, typing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from otel_mlmon.drift.encoding import (
    OVERFLOW_CODE,
    CategoryEncoder,
    Schema,
    category_key,
    infer_categorical,
    table_columns,
)
from otel_mlmon.exceptions import ConfigurationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (1.0, "1"),
        (np.int64(1), "1"),
        ("1", "1"),
        (" a ", "a"),
        (1.5, "1.5"),
        (True, "True"),
        (None, None),
        (math.nan, None),
        ("", None),
        (math.inf, None),
    ],
)
def test_category_key_unifies_integral_numbers_and_marks_missing(
    value: object, expected: str | None
) -> None:
    assert expected == category_key(value)


def test_encoder_is_bounded_and_pools_the_overflow() -> None:
    encoder = CategoryEncoder(2)
    codes = [encoder.code(v) for v in ("a", "b", "c", "a", "d")]
    assert [1.0, 2.0, float(OVERFLOW_CODE), 1.0, float(OVERFLOW_CODE)] == codes
    assert math.isnan(encoder.code(None))
    assert encoder.categories() == ["_OTHER", "a", "b"]


def test_table_columns_accepts_arrays_frames_mappings_and_rows() -> None:
    names = ("a", "b")
    array = np.array([[1.0, 2.0], [3.0, 4.0]])
    frame = pd.DataFrame({"b": [2.0, 4.0], "a": [1.0, 3.0]})
    mappings = [{"a": 1.0, "b": 2.0}, {"b": 4.0, "a": 3.0}]
    rows = [[1.0, 2.0], (3.0, 4.0)]
    for table in (array, frame, mappings, rows):
        found, columns = table_columns(table, names)
        assert names == found
        assert [np.asarray(c, float).tolist() for c in columns] == [[1.0, 3.0], [2.0, 4.0]]


@pytest.mark.parametrize(
    "table",
    [
        np.empty((0, 2)),
        [],
        pd.DataFrame({"a": [], "b": []}),
        np.zeros(3),
        "ab",
        [[1.0, 2.0], [1.0]],
        pd.DataFrame({"a": [1.0]}),
    ],
)
def test_unusable_tables_raise_configuration_error(table: object) -> None:
    with pytest.raises(ConfigurationError):
        table_columns(table, ("a", "b"))


def test_feature_types_are_inferred_and_can_be_forced() -> None:
    names = ("num", "text", "flag", "code", "numeric_text")
    columns = [
        np.array([1.0, 2.0]),
        np.array(["x", "y"], dtype=object),
        np.array([True, False]),
        np.array([1, 2]),
        np.array(["1.5", None], dtype=object),
    ]
    assert infer_categorical(names, columns) == (False, True, True, False, False)
    assert infer_categorical(names, columns, categorical=["code"]) == (
        False,
        True,
        True,
        True,
        False,
    )
    with pytest.raises(ConfigurationError):
        infer_categorical(names, columns, categorical=["nope"])
    with pytest.raises(ConfigurationError):
        infer_categorical(names, columns, categorical=["num"], numeric=["num"])


def test_encoding_counts_words_in_numeric_columns_and_stores_them_missing() -> None:
    schema = Schema.build(("x",), (False,), 10)
    matrix, bad = schema.encode([np.array([1.0, "two", None, "3"], dtype=object)])
    assert bad == 1
    assert matrix[np.isfinite(matrix)].tolist() == [1.0, 3.0]
