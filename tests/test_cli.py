"""``otel-mlmon drift`` as users run it: the installed command in a subprocess, its table and
JSON, its exit status (0 no drift, 1 drift, 2 unusable input) and its one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from otel_mlmon.version import __version__

COMMAND = str(Path(sys.executable).with_name("otel-mlmon"))


def otel_mlmon(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def _write(path: Path, header: list[str], rows: list[list[object]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture
def tables(tmp_path: Path) -> dict[str, str]:
    rng = np.random.default_rng(3)

    def table(name: str, shift: float, colours: list[str]) -> str:
        frame = pd.DataFrame({
            "age": rng.normal(size=600).round(6),
            "income": (rng.normal(size=600) + shift).round(6),
            "colour": rng.choice(colours, size=600),
        })  # fmt: skip
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        return str(path)

    return {
        "reference": table("reference", 0.0, ["red", "blue"]),
        "same": table("same", 0.0, ["red", "blue"]),
        "shifted": table("shifted", 1.0, ["red", "blue"]),
    }


def test_same_distribution_exits_0_with_a_row_per_feature_and_one_verdict(
    tables: dict[str, str],
) -> None:
    result = otel_mlmon("drift", tables["reference"], tables["same"])
    lines = result.stdout.splitlines()
    assert 0 == result.returncode, result.stderr
    assert ["feature", "type", "values", "test", "statistic", "p-value", "p", "(Holm)",
            "effect", "psi", "js", "drift"] == lines[0].split()  # fmt: skip
    assert ["age", "income", "colour"] == [line.split()[0] for line in lines[1:4]]
    assert [
        "no drift detected in 3 tested features; family-wise error rate <= 0.05 (Holm over 3 "
        "tests), effect >= 0.1"
    ] == lines[4:]
    assert "" == result.stderr


def test_drift_exits_1_and_names_the_feature(tables: dict[str, str]) -> None:
    result = otel_mlmon("drift", tables["reference"], tables["shifted"])
    assert 1 == result.returncode
    assert result.stdout.splitlines()[-1].startswith(
        "drift detected in 1 of 3 tested features (income); family-wise error rate <= 0.05"
    )


def test_json_lists_every_feature_with_its_test_distances_and_verdict(
    tables: dict[str, str],
) -> None:
    result = otel_mlmon("drift", "--json", tables["reference"], tables["shifted"])
    document = json.loads(result.stdout)
    assert 1 == result.returncode
    assert (True, ["income"], 3, "holm", 0.05) == (
        document["drift"], document["drifted_features"], document["tests"],
        document["correction"], document["alpha"],
    )  # fmt: skip
    by_name = {f["feature"]: f for f in document["features"]}
    assert {"age": "ks", "income": "ks", "colour": "chi_square"} == {
        name: f["test"] for name, f in by_name.items()
    }
    assert {"numeric", "categorical"} == {f["type"] for f in document["features"]}
    assert by_name["colour"]["psi"] is None
    assert all(f["jensen_shannon"] is not None for f in document["features"])


def test_ks_reports_d_and_the_p_value_of_scipys_default_method(tables: dict[str, str]) -> None:
    document = json.loads(otel_mlmon("drift", "--json", tables["reference"], tables["same"]).stdout)
    reference, current = pd.read_csv(tables["reference"]), pd.read_csv(tables["same"])
    for feature in ("age", "income"):
        entry = next(f for f in document["features"] if f["feature"] == feature)
        expected = stats.ks_2samp(reference[feature], current[feature])
        assert "exact" == entry["p_value_method"]
        assert float(expected.statistic) == entry["statistic"]
        assert float(expected.pvalue) == pytest.approx(entry["p_value"], rel=1e-9)


def test_a_median_split_of_a_real_table_exits_1(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).data
    low = frame["bmi"] <= frame["bmi"].median()
    frame[low].to_csv(tmp_path / "low.csv", index=False)
    frame[~low].to_csv(tmp_path / "high.csv", index=False)
    result = otel_mlmon("drift", "--json", str(tmp_path / "low.csv"), str(tmp_path / "high.csv"))
    assert 1 == result.returncode
    assert "bmi" in json.loads(result.stdout)["drifted_features"]


def test_a_one_row_current_is_never_drift_and_says_why(
    tables: dict[str, str], tmp_path: Path
) -> None:
    one = _write(tmp_path / "one.csv", ["age", "income", "colour"], [[1e9, -1e9, "green"]])
    result = otel_mlmon("drift", tables["reference"], one)
    assert 0 == result.returncode
    assert "age: not tested: 1 usable value in CURRENT, at least 10 needed" in result.stdout
    assert "otel-mlmon drift: warning: CURRENT has 1 row, fewer than 100" in result.stderr


def test_table_mode_shows_every_feature_even_untested(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = [
        [float(a), float(b) if i < 5 else ""] for i, (a, b) in enumerate(rng.normal(size=(200, 2)))
    ]
    reference = _write(
        tmp_path / "r.csv", ["a", "b"], [[float(a), float(b)] for a, b in rng.normal(size=(200, 2))]
    )
    current = _write(tmp_path / "c.csv", ["a", "b"], rows)
    result = otel_mlmon("drift", reference, current)
    assert ["a", "b"] == [line.split()[0] for line in result.stdout.splitlines()[1:3]]
    assert "b: not tested: 5 usable values in CURRENT, at least 10 needed" in result.stdout
    assert "no drift detected in 1 tested features" in result.stdout


def test_pandas_missing_markers_keep_a_numeric_column_numeric(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = [
        [str(round(float(v), 4)) if i % 7 else "NA"] for i, v in enumerate(rng.normal(size=300))
    ]
    reference = _write(tmp_path / "r.csv", ["x"], values[:150])
    current = _write(
        tmp_path / "c.csv", ["x"], [[v[0] if v[0] != "NA" else "null"] for v in values[150:]]
    )
    document = json.loads(otel_mlmon("drift", "--json", reference, current).stdout)
    assert ("numeric", "ks") == (document["features"][0]["type"], document["features"][0]["test"])


@pytest.mark.parametrize("index_header", ["", "Unnamed: 0"])
def test_a_pandas_index_column_gets_a_hint_and_can_be_excluded(
    tables: dict[str, str], tmp_path: Path, index_header: str
) -> None:
    frame = pd.read_csv(tables["same"])
    indexed = tmp_path / "indexed.csv"
    frame.to_csv(indexed, index_label=index_header or None)
    result = otel_mlmon("drift", tables["reference"], str(indexed))
    assert 2 == result.returncode
    assert "looks like a pandas index (DataFrame.to_csv without index=False)" in result.stderr
    assert f"pass --exclude {index_header!r}" in result.stderr
    assert (
        0
        == otel_mlmon(
            "drift", tables["reference"], str(indexed), "--exclude", index_header
        ).returncode
    )


def test_a_closed_pipe_ends_quietly_with_the_verdicts_status(tables: dict[str, str]) -> None:
    process = subprocess.Popen(
        [COMMAND, "drift", tables["reference"], tables["shifted"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line is written
    stderr = process.stderr.read().decode()
    assert 1 == process.wait(timeout=120)
    assert "" == stderr
    shell = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {COMMAND} drift {tables['reference']} "
                       f"{tables['same']} | head -1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (0, "") == (shell.returncode, shell.stderr)
    assert shell.stdout.startswith("feature")


def test_version_prints_the_package_version() -> None:
    result = otel_mlmon("--version")
    assert (0, f"otel-mlmon {__version__}\n") == (result.returncode, result.stdout)


def test_a_dash_reads_standard_input(tables: dict[str, str]) -> None:
    from_file = otel_mlmon("drift", "--json", tables["reference"], tables["shifted"])
    piped = otel_mlmon("drift", "--json", tables["reference"], "-",
                       stdin=Path(tables["shifted"]).read_text())  # fmt: skip
    assert (1, json.loads(from_file.stdout)) == (piped.returncode, json.loads(piped.stdout))
    as_reference = otel_mlmon("drift", "-", tables["shifted"],
                              stdin=Path(tables["reference"]).read_text())  # fmt: skip
    assert 1 == as_reference.returncode


def test_column_types_can_be_forced(tables: dict[str, str]) -> None:
    result = otel_mlmon(
        "drift", "--json", tables["reference"], tables["same"], "--categorical", "age"
    )
    types = {f["feature"]: f["type"] for f in json.loads(result.stdout)["features"]}
    assert {"age": "categorical", "income": "numeric", "colour": "categorical"} == types


def test_columns_in_another_order_are_matched_by_name(tmp_path: Path) -> None:
    rows = [[i, i + 1] for i in range(50)]
    reference = _write(tmp_path / "r.csv", ["a", "b"], rows)
    current = _write(tmp_path / "c.csv", ["b", "a"], [[b, a] for a, b in rows])
    assert 0 == otel_mlmon("drift", reference, current).returncode


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "CURRENT (other.csv): No such file or directory"),
        ("directory", "Is a directory"),
        ("columns", "columns do not match (missing from CURRENT: b; not in REFERENCE: c)"),
        ("empty", "CURRENT (other.csv): empty (no header row)"),
        ("header_only", "CURRENT (other.csv): no data rows"),
        ("ragged", "CURRENT (other.csv): line 3 has 1 fields, the header 2"),
        ("binary", "not a readable CSV file"),
        ("unusable_reference", "column 'a': no usable value in REFERENCE (other.csv)"),
        ("unusable_current", "column 'a': no usable value in CURRENT (other.csv)"),
        ("text_in_numeric", "column 'b': CURRENT (other.csv) line 3 holds 'n/d', not a number, "
                            "but the column is numeric in REFERENCE; pass --categorical 'b'"),
        ("typo_in_reference", "column 'b': REFERENCE (other.csv) line 4 holds '1.2.3', not a "
                              "number, in a column of numbers; fix it, or pass --categorical 'b'"),
        ("unknown_forced", "'nope' is not a feature"),
        ("both_stdin", "only one of REFERENCE and CURRENT can be read from standard input"),
        ("duplicate_column", "CURRENT (other.csv): column 'a' appears twice in the header"),
    ],
)  # fmt: skip
def test_unusable_input_exits_2_with_one_line_naming_it(
    tmp_path: Path, setup: str, message: str
) -> None:
    good_rows = [[i, i * 2] for i in range(30)]
    good = _write(tmp_path / "good.csv", ["a", "b"], good_rows)
    other, extra, first, second = tmp_path / "other.csv", [], good, "other.csv"
    if setup == "directory":
        second = str(tmp_path)
    elif setup == "columns":
        _write(other, ["a", "c"], good_rows)
    elif setup == "empty":
        other.write_text("")
    elif setup == "header_only":
        _write(other, ["a", "b"], [])
    elif setup == "ragged":
        other.write_text("a,b\n1,2\n3\n")
    elif setup == "binary":
        other.write_bytes(b"\xff\xfe\x00\x81\x82")
    elif setup in ("unusable_reference", "unusable_current"):
        _write(other, ["a", "b"], [["", i] for i in range(30)])
        if setup == "unusable_reference":
            first, second = "other.csv", good
    elif setup == "text_in_numeric":
        _write(other, ["a", "b"], [[1, 2], [3, "n/d"], *good_rows])
    elif setup == "typo_in_reference":
        _write(other, ["a", "b"], [[1, 2], [2, 3], [3, "1.2.3"], *good_rows])
        first, second = "other.csv", good
    elif setup == "unknown_forced":
        _write(other, ["a", "b"], good_rows)
        extra = ["--numeric", "nope"]
    elif setup == "both_stdin":
        first, second = "-", "-"
    elif setup == "duplicate_column":
        _write(other, ["a", "a"], good_rows)
    result = subprocess.run(
        [COMMAND, "drift", first, second, *extra], capture_output=True, text=True,
        timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    lines = result.stderr.splitlines()
    assert (2, "", 1) == (result.returncode, result.stdout, len(lines)), result.stderr
    assert lines[0].startswith("otel-mlmon drift: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_option_values_exit_2_through_argparse(tables: dict[str, str]) -> None:
    for option, value in (("--alpha", "1.5"), ("--min-effect", "-1")):
        result = otel_mlmon("drift", tables["reference"], tables["same"], option, value)
        assert 2 == result.returncode
        assert f"argument {option}: must be" in result.stderr


def test_demo_parser_still_answers_help() -> None:
    result = otel_mlmon("demo", "--help")
    assert 0 == result.returncode
    assert result.stdout.startswith("usage: otel-mlmon demo")
    assert os.path.basename(COMMAND) == "otel-mlmon"
