"""Drift collection against a large reference: ours, the per-feature scipy loop and Evidently.

20 numeric features, a reference of 100,000 rows, live windows of 1,000 and 10,000 rows, as in
issue 8 item 3. All variants score the same arrays in one process, interleaved, best of several
runs. Evidently is optional (never a dependency of otel-mlmon); where it is not installed its
rows say so. To include it, in a separate environment (its dependencies are many)::

    python3 -m venv .venv-evidently
    .venv-evidently/bin/pip install -e . 'evidently==0.7.23' 'pandas<3' scipy
    .venv-evidently/bin/python -m bench.drift_reference

Evidently runs its DataDriftPreset on pandas DataFrames (its own choice of test per column: for
numeric columns with more than 1,000 rows, Wasserstein distance normalised by the reference's
standard deviation); building the DataFrames is outside the timing.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

import numpy as np

from bench.drift import FEATURES, _processor, scipy_loop
from otel_mlmon.drift import DriftConfig

REFERENCE_ROWS = 100_000


def _best(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: min(found) for name, found in times.items()}


def _evidently(reference: np.ndarray, current: np.ndarray) -> Callable[[], object] | None:
    try:
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        return None
    columns = [f"f{i}" for i in range(reference.shape[1])]
    reference_frame = pd.DataFrame(reference, columns=columns)
    current_frame = pd.DataFrame(current, columns=columns)
    report = Report([DataDriftPreset()])
    return lambda: report.run(current_data=current_frame, reference_data=reference_frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    # Drift events would print once per feature and window: not what is measured here.
    logging.getLogger("otel_mlmon.events").setLevel(logging.ERROR)
    repeats = 2 if args.quick else 5
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(REFERENCE_ROWS, FEATURES))
    print(
        f"20 numeric features, reference {REFERENCE_ROWS:,} rows; best of {repeats}, "
        "interleaved; ms per collection\n"
    )
    print("| window | ours | scipy loop | Evidently | scipy / ours | Evidently / ours |")
    print("|---:|---:|---:|---:|---:|---:|")
    for window in (1_000, 10_000):
        current = rng.normal(0.1, size=(window, FEATURES))
        drift = _processor(reference, DriftConfig(window=window, min_samples=window))
        drift.append(current)
        nudge = current[0]

        def ours(drift: object = drift, nudge: np.ndarray = nudge) -> None:
            drift.append(nudge)  # type: ignore[attr-defined]  # a new row: recompute
            drift.scores()  # type: ignore[attr-defined]

        functions: dict[str, Callable[[], object]] = {
            "ours": ours,
            "scipy": lambda current=current: scipy_loop(reference, current, 10),
        }
        evidently = _evidently(reference, current)
        if evidently is not None:
            functions["evidently"] = evidently
        best = _best(functions, repeats)
        ours_ms = best["ours"] * 1e3
        scipy_ms = best["scipy"] * 1e3
        if "evidently" in best:
            evidently_ms = best["evidently"] * 1e3
            evidently_cells = f"{evidently_ms:.0f} | {evidently_ms / ours_ms:.0f}x"
        else:
            evidently_cells = "not installed | -"
        print(
            f"| {window:,} | {ours_ms:.1f} | {scipy_ms:.0f} | "
            f"{evidently_cells.split(' | ')[0]} | {scipy_ms / ours_ms:.1f}x | "
            f"{evidently_cells.split(' | ')[1]} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
