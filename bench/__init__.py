"""Benchmarks of otel-mlmon, side by side with the alternatives: ``python -m bench``.

Not part of the test run. Every module ``bench/<name>.py`` whose name does not start with an
underscore and that defines ``main()`` is a benchmark; ``python -m bench`` runs each one in its
own fresh interpreter (so imports, caches and memory of one never colour another) and prints one
table.

The contract of a benchmark module, kept small so modules written separately fit together:

- ``main()`` takes no argument (it may read :func:`quick`, or a ``--quick`` option of its own
  command line, for a short smoke run) and either returns a list of rows or prints its own
  Markdown report and returns ``None``.
- A row is a :class:`Row`, or any mapping with some of the keys of :data:`COLUMNS`; unknown keys
  are appended to the note.

Measurements here follow one method, because the machines are shared and noisy: variants run in
one process, interleaved round by round, each timing is a loop read with the CPU-time clock of
the calling thread (``time.thread_time_ns``: what the request thread pays; time spent waiting for
a busy CPU, and the SDK's background export threads, do not count), and a result is the median
over rounds. Comparisons are ratios of runs in the same round (the median of the per-round
ratios), never absolute numbers carried between runs; an absolute cost is the best round (the
least disturbed by other load, as ``timeit`` advises), so it is a lower bound.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Columns of the combined table, in order.
COLUMNS = ("section", "case", "value", "unit", "ratio", "target", "met", "note")

#: ``OTEL_MLMON_BENCH_QUICK=1`` (``python -m bench --quick``): fewer rounds and iterations, to
#: check that every benchmark runs, not to measure.
QUICK_ENV = "OTEL_MLMON_BENCH_QUICK"


def quick() -> bool:
    """Whether this is a smoke run (``python -m bench --quick``)."""
    return os.environ.get(QUICK_ENV, "") == "1"


@dataclass
class Row:
    """One line of the table.

    ``ratio`` is ours over the baseline named in ``note`` (measured in the same rounds);
    ``met`` is ``True``/``False`` against ``target`` (a readable bound such as ``"<= 20 us"``)
    or ``None`` where there is no target.
    """

    section: str
    case: str
    value: float | str
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def interleaved(
    variants: Mapping[str, Callable[[int], object]],
    iterations: Mapping[str, int] | int,
    rounds: int,
    *,
    setup: Callable[[str], object] | None = None,
    clock: Callable[[], int] = time.thread_time_ns,
) -> dict[str, list[float]]:
    """Time each variant ``rounds`` times, in a shuffled order every round.

    ``variants[name](n)`` runs ``n`` operations; the result maps each name to its per-operation
    times in nanoseconds, one per round, so ``result[a][i] / result[b][i]`` is a same-round
    ratio. ``setup(name)``, when given, runs untimed before each timing. ``clock`` is the
    calling thread's CPU time unless told otherwise.
    """
    names = list(variants)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    order = random.Random(20261128)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            n = iterations if isinstance(iterations, int) else iterations[name]
            if setup is not None:
                setup(name)
            gc.collect()
            start = clock()
            variants[name](n)
            per_op[name].append((clock() - start) / n)
    return per_op


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def best(values: Sequence[float]) -> float:
    """The fastest round: the cost with the least interference from the rest of the machine."""
    return min(values)


def median_ratio(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of the same-round ratios ``ours[i] / baseline[i]``."""
    return statistics.median(a / b for a, b in zip(ours, baseline, strict=True))


def ratio_interval(
    ours: Sequence[float], baseline: Sequence[float], confidence: float = 0.95
) -> tuple[float, float]:
    """A bootstrap ``confidence`` interval of :func:`median_ratio` (rounds resampled, a fixed
    seed): "no slower" holds while its low end is at most 1, that is while the run cannot tell
    the two apart or finds ours faster."""
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    draw = random.Random(20261202)
    medians = sorted(statistics.median(draw.choices(ratios, k=len(ratios))) for _ in range(2000))
    tail = int(len(medians) * (1 - confidence) / 2)
    return medians[tail], medians[-1 - tail]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``, else ``psutil``)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


MIB = 1024 * 1024
