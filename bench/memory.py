"""Memory after 1,000,000 predictions with delayed labels (and drift, when present): flat.

One ModelMonitor (metrics only: spans are bounded by the SDK's batch processor queue, not by
us) records a million predictions with a confidence, feeding the drift window on every one;
the ids of nine in ten are read and labelled at once, the tenth is read and never labelled
(signed ids: nothing waits in memory for a label, and the last 4,096 matched ids are kept to
count a replay once). Classes cycle through more values than the class limit so the class bound and
``_OTHER`` are exercised, and a metric reader collects every 50,000 predictions, as a scrape
would. The resident set size is sampled every 100,000 up to 800,000; tracemalloc then traces the
last 200,000 predictions (its own bookkeeping would swell the resident set, so RSS growth is read
before it starts) and reports what the last 100,000 left allocated.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import numpy as np

from bench import MIB, Row, quick, rss_bytes
from bench._otel import DRIFT_MISSING, Providers, drift_available
from otel_mlmon import Classes, Drift, ModelMonitor

FEATURES = 20
FLAT_RSS_MIB = 2.0  # growth from 10 % to 80 % of the run that still counts as flat
FLAT_TRACED_KIB = 256.0


def main() -> list[Row]:
    total = 20_000 if quick() else 1_000_000
    step = total // 10
    providers = Providers()
    drift = drift_available()
    kwargs: dict[str, Any] = {}
    if drift:
        rng = np.random.default_rng(1)
        kwargs["drift"] = Drift(
            feature_names=[f"f{i}" for i in range(FEATURES)],
            reference=rng.normal(size=(10_000, FEATURES)),
        )
    monitor = ModelMonitor(
        "iris", version="1.2.0", trace=False, classes=Classes(limit=50), **providers.kwargs,
        **kwargs,
    )  # fmt: skip
    rows_of = np.random.default_rng(2).normal(size=(1024, FEATURES))

    samples: list[tuple[int, float]] = []
    traced: list[tuple[int, int]] = []
    for i in range(total):
        with monitor.predict(features=rows_of[i & 1023] if drift else None) as p:
            p.record(i % 120, 0.5 + (i % 50) / 100)
        if i % 10 != 9:
            monitor.record_label(p.id, i % 7)
        else:
            p.id  # noqa: B018  (read, never labelled)
        done = i + 1
        if done % 50_000 == 0 or done == total:
            providers.collect()
        if done % step == 0:
            gc.collect()
            samples.append((done, rss_bytes() / MIB))
            if done == total - 2 * step:
                tracemalloc.start()
            if tracemalloc.is_tracing():
                traced.append((done, tracemalloc.get_traced_memory()[0]))
    tracemalloc.stop()
    providers.shutdown()

    untraced = [(n, mib) for n, mib in samples if n <= total - 2 * step]
    start, end = untraced[0], untraced[-1]
    growth = end[1] - start[1]
    retained = (traced[-1][1] - traced[-2][1]) / 1024 if len(traced) >= 2 else 0.0
    curve = ", ".join(f"{n // 1000}k: {mib:.1f}" for n, mib in samples)
    flat = growth <= FLAT_RSS_MIB and retained <= FLAT_TRACED_KIB
    return [
        Row(
            "Memory",
            f"RSS growth, {start[0]:,} -> {end[0]:,} predictions with labels",
            growth,
            "MiB",
            target=f"flat (<= {FLAT_RSS_MIB:g} MiB)",
            met=growth <= FLAT_RSS_MIB,
            note=f"RSS MiB at {curve} (tracemalloc on from {total - 2 * step:,})",
        ),
        Row(
            "Memory",
            f"tracemalloc: left allocated by the last {step:,} predictions",
            retained,
            "KiB",
            target=f"flat (<= {FLAT_TRACED_KIB:g} KiB)",
            met=retained <= FLAT_TRACED_KIB,
            note="replay guard full (4,096 ids), class bound hit, drift window full",
        ),
        Row(
            "Memory",
            "drift window fed on every prediction",
            "yes" if drift else "-",
            note="" if drift else DRIFT_MISSING,
            met=flat if drift else None,
        ),
    ]


if __name__ == "__main__":
    from bench.__main__ import table

    print(table([row.as_dict() for row in main()]))
