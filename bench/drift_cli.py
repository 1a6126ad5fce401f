"""Calibration of ``otel-mlmon drift``: the tables of docs/drift.md ("Calibration", "Sample
size").

- Real tables: false verdicts on random halves of scikit-learn's diabetes, wine and
  breast-cancer tables, and power on median splits, by the procedure of
  ``tests/drift/test_calibration.py`` (imported from there: one procedure, its numbers here).
- Sample size: the verdict's false-alarm rate and power against a location shift of one of five
  independent normal features, by rows per table.

Run: ``.venv/bin/python -m bench.drift_cli`` (``--quick``: fewer trials). Not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import quick
from otel_mlmon.drift.encoding import Schema
from otel_mlmon.drift.offline import compare
from otel_mlmon.drift.reference import Reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from drift.test_calibration import (
    LOADERS,
    SPLITS,
    _features,
    false_verdicts,
    median_split_power,
)


def _interval(successes: int, trials: int) -> str:
    """A 95 % Wilson interval, in percent."""
    z = 1.959964
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return f"{100 * max(0.0, centre - half):.1f}-{100 * min(1.0, centre + half):.1f} %"


def real_tables(splits: int) -> None:
    print(f"## Real tables: {splits} random halves, and every feature's median split\n")
    print("| table | rows x features | rows per half | false verdicts | 95 % interval "
          "| median splits found |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for name in sorted(LOADERS):
            frame = _features(name)
            false = false_verdicts(name, workdir, splits)
            found, features = median_split_power(name, workdir)
            print(
                f"| {name} | {len(frame)} x {features} | {len(frame) // 2} "
                f"| {false} / {splits} ({100 * false / splits:.0f} %) | "
                f"{_interval(false, splits)} | {found} / {features} |"
            )


def _verdicts(rows: int, shift: float, trials: int, rng: np.random.Generator) -> float:
    features = 5
    schema = Schema.build(tuple(f"x{i}" for i in range(features)), (False,) * features, 100)
    drifted = 0
    for _ in range(trials):
        reference = Reference.from_matrix(schema, rng.normal(size=(rows, features)), 10)
        current = rng.normal(size=(rows, features))
        current[:, 0] += shift
        drifted += compare(reference, current).drift
    return drifted / trials


def sample_size(trials: int) -> None:
    print(f"\n## Sample size: five normal features, one shifted, {trials} trials per cell\n")
    shifts = (0.0, 0.25, 0.5, 1.0)
    print("| rows per table | " + " | ".join(
        "false verdicts (no shift)" if s == 0 else f"power, {s:g} sd shift" for s in shifts
    ) + " |")  # fmt: skip
    print("|---:|" + "---:|" * len(shifts))
    rng = np.random.default_rng(7)
    for rows in (20, 50, 100, 200, 500, 1000):
        cells = [f"{_verdicts(rows, s, trials, rng):.0%}" for s in shifts]
        print(f"| {rows:,} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer splits and trials")
    args, _ = parser.parse_known_args()
    short = args.quick or quick()
    print("# Calibration of otel-mlmon drift\n")
    real_tables(10 if short else SPLITS)
    sample_size(20 if short else 400)


if __name__ == "__main__":
    main()
