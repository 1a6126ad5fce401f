"""Import weight: ``import otel_mlmon`` and ``configure()``, each in a fresh interpreter.

Each case runs in its own new Python process, several times, the cases interleaved; a result is
the median. Time is wall-clock, what a service waits for at start-up; the process's CPU time is
in the note (it can exceed the wall time: numpy starts its BLAS threads while importing, and on
a busy machine the wall time includes waiting for a CPU). Memory is the growth of the resident
set over the bare interpreter's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from bench import MIB, Row, median, quick

# Each snippet runs after the measuring prologue; what it imports is what is measured.
CASES: dict[str, str] = {
    "import numpy": "import numpy",
    "import opentelemetry.sdk (trace, metrics, logs)": (
        "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, opentelemetry.sdk._logs"
    ),
    "import otel_mlmon": "import otel_mlmon",
    "import otel_mlmon; configure()": (
        "import otel_mlmon\n"
        "telemetry = otel_mlmon.configure(service_name='bench', prometheus_port=0)"
    ),
    "import otel_mlmon; configure(); ModelMonitor(...)": (
        "import otel_mlmon\n"
        "telemetry = otel_mlmon.configure(service_name='bench', prometheus_port=0)\n"
        "monitor = otel_mlmon.ModelMonitor('iris')\n"
        "with monitor.predict() as p:\n"
        "    p.record(1, 0.9)"
    ),
    "OTel SDK + numpy + scipy.stats + scikit-learn (for scale)": (
        "import opentelemetry.sdk.trace, opentelemetry.sdk.metrics, numpy, scipy.stats, sklearn"
    ),
}
HEAVY = ("scipy", "sklearn", "pandas", "fastapi", "flask", "pynvml", "opentelemetry.sdk")

_PROLOGUE = """
import json, os, sys, time
def _rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
_rss0, _cpu0, _wall0 = _rss(), time.process_time(), time.perf_counter()
"""
_EPILOGUE = """
_cpu, _wall, _rss1 = time.process_time() - _cpu0, time.perf_counter() - _wall0, _rss()
print(json.dumps({"cpu": _cpu, "wall": _wall, "rss_growth": _rss1 - _rss0, "rss": _rss1,
                  "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def _measure(snippet: str) -> dict[str, Any] | None:
    code = _PROLOGUE + snippet + f"\nHEAVY = {HEAVY!r}" + _EPILOGUE
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ)
        # configure() exports nowhere and binds an ephemeral port: nothing leaves the machine.
        for name in list(env):
            if name.startswith("OTEL_"):
                del env[name]
        env.update(OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=home,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        return None
    lines = result.stdout.strip().splitlines()
    return dict(json.loads(lines[-1])) if lines else None


def main() -> list[Row]:
    repeats = 1 if quick() else 7
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    for _ in range(repeats):
        for case, snippet in CASES.items():
            measured = _measure(snippet)
            if measured is not None:
                results[case].append(measured)
    rows = []
    for case, runs in results.items():
        if not runs:
            rows.append(Row("Import", case, "-", note="not installed here"))
            continue
        cpu = median([r["cpu"] for r in runs]) * 1000
        wall = median([r["wall"] for r in runs]) * 1000
        growth = median([r["rss_growth"] for r in runs]) / MIB
        rss = median([r["rss"] for r in runs]) / MIB
        heavy = ", ".join(runs[0]["heavy"]) or "none"
        is_ours = case == "import otel_mlmon"
        rows.append(
            Row(
                "Import",
                case,
                wall,
                "ms",
                target="<= 250 ms and <= 40 MiB" if is_ours else "",
                met=(wall <= 250 and growth <= 40) if is_ours else None,
                note=(
                    f"+{growth:.1f} MiB resident ({rss:.1f} MiB in all); CPU {cpu:.0f} ms; "
                    f"loaded: {heavy}"
                ),
            )
        )
    return rows


if __name__ == "__main__":
    from bench.__main__ import table

    print(table([row.as_dict() for row in main()]))
