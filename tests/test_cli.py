"""``otel-mlmon drift``: table and JSON output, exit status, one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from otel_mlmon.cli import main


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
        rows = [
            [round(float(a), 6), round(float(b + shift), 6), str(c)]
            for a, b, c in zip(
                rng.normal(size=600),
                rng.normal(size=600),
                rng.choice(colours, size=600),
                strict=True,
            )
        ]
        return _write(tmp_path / f"{name}.csv", ["age", "income", "colour"], rows)

    return {
        "reference": table("reference", 0.0, ["red", "blue"]),
        "same": table("same", 0.0, ["red", "blue"]),
        "shifted": table("shifted", 1.0, ["red", "blue"]),
    }


def test_same_distribution_exits_0_with_a_table(
    tables: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", tables["reference"], tables["same"]]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "feature",
        "method",
        "kind",
        "score",
        "threshold",
        "drift",
    ]
    assert "no drift detected in 3 features" in out


def test_drift_exits_1_and_names_the_feature(
    tables: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", tables["reference"], tables["shifted"]]) == 1
    assert "drift detected in 1 of 3 features: income" in capsys.readouterr().out


def test_json_output_lists_every_score_with_its_direction(
    tables: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "--json", tables["reference"], tables["shifted"]]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["drifted_features"] == ["income"]
    assert document["categorical"] == ["colour"]
    methods = {(r["feature"], r["method"], r["kind"]) for r in document["results"]}
    assert methods == {
        *(
            (f, m, k)
            for f in ("age", "income")
            for m, k in (
                ("ks", "p_value"),
                ("psi", "distance"),
                ("jensen_shannon", "distance"),
                ("wasserstein", "distance"),
            )
        ),
        ("colour", "jensen_shannon", "distance"),
        ("colour", "chi_square", "p_value"),
    }


def test_column_types_can_be_forced(
    tables: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["drift", "--json", tables["reference"], tables["same"], "--categorical", "age"])
    document = json.loads(capsys.readouterr().out)
    assert document["categorical"] == ["age", "colour"]


def test_columns_in_another_order_are_matched_by_name(tmp_path: Path) -> None:
    reference = _write(tmp_path / "r.csv", ["a", "b"], [[1, 2], [2, 3], [3, 4]])
    current = _write(tmp_path / "c.csv", ["b", "a"], [[2, 1], [3, 2], [4, 3]])
    assert main(["drift", reference, current]) == 0


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "No such file"),
        ("directory", "Is a directory"),
        ("columns", "columns do not match (missing from"),
        ("empty", "empty file"),
        ("header_only", "no data rows"),
        ("ragged", "line 3 has 1 fields, expected 2"),
        ("binary", "not a readable CSV file"),
        ("unusable_reference", "has no usable value"),
        ("unknown_forced", "'nope' is not a feature"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    good = _write(tmp_path / "good.csv", ["a", "b"], [[1, 2], [3, 4]])
    other = tmp_path / "other.csv"
    extra: list[str] = []
    if setup == "missing":
        other = tmp_path / "absent.csv"
    elif setup == "directory":
        other = tmp_path
    elif setup == "columns":
        _write(other, ["a", "c"], [[1, 2]])
    elif setup == "empty":
        other.write_text("")
    elif setup == "header_only":
        _write(other, ["a", "b"], [])
    elif setup == "ragged":
        other.write_text("a,b\n1,2\n3\n")
    elif setup == "binary":
        other.write_bytes(b"\xff\xfe\x00\x81\x82")
    elif setup == "unusable_reference":
        _write(other, ["a", "b"], [["", 1], ["", 2]])
        good, other = str(other), Path(good)
    elif setup == "unknown_forced":
        _write(other, ["a", "b"], [[1, 2]])
        extra = ["--numeric", "nope"]
    status = main(["drift", str(good), str(other), *extra])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("otel-mlmon drift: error: ")
    assert message in lines[0]


def test_installed_command_exits_with_the_status_and_no_traceback(
    tables: dict[str, str], tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "otel_mlmon.cli", "drift"]
    drifted = subprocess.run(
        [*command, tables["reference"], tables["shifted"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert drifted.returncode == 1
    missing = subprocess.run(
        [*command, tables["reference"], str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
