"""``python -m bench``: run every benchmark module in a fresh interpreter, print one table.

Usage::

    python -m bench                  # everything (a few minutes on 2 cores)
    python -m bench hot_path memory  # only these modules
    python -m bench --list           # the modules found
    python -m bench --quick          # short smoke run of every module; numbers meaningless

The table is Markdown, so it can be pasted next to the one in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import COLUMNS, QUICK_ENV, Row

_HERE = Path(__file__).resolve().parent
# Run first: the cheap, headline numbers. Anything else follows in name order.
_ORDER = ("hot_path", "labels", "imports", "drift", "fastapi_asgi", "memory")


def discover() -> list[str]:
    """Benchmark modules present in ``bench/``: public names with a ``main()``."""
    found = []
    for path in sorted(_HERE.glob("*.py")):
        name = path.stem
        if name.startswith("_"):
            continue
        if "def main(" not in path.read_text(encoding="utf-8"):
            continue
        found.append(name)
    rank = {name: i for i, name in enumerate(_ORDER)}
    return sorted(found, key=lambda n: (rank.get(n, len(rank)), n))


def machine() -> list[str]:
    """Lines describing this machine and the versions measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for dist in ("otel-mlmon", "opentelemetry-sdk", "numpy", "prometheus-client"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return [
        f"Machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(versions),
        f"Command: python -m bench {' '.join(sys.argv[1:])}".rstrip(),
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]


def _child(module: str, result_path: str) -> None:
    """Run ``bench.<module>.main()`` in this (fresh) interpreter; write its rows as JSON."""
    printed = io.StringIO()
    envelope: dict[str, Any] = {"rows": None, "printed": "", "error": None}
    # A module that parses its own command line sees a clean one (plus --quick if it has one).
    sys.argv = [f"bench.{module}"]
    if os.environ.get(QUICK_ENV) == "1" and '"--quick"' in (_HERE / f"{module}.py").read_text():
        sys.argv.append("--quick")
    try:
        mod = importlib.import_module(f"bench.{module}")
        with contextlib.redirect_stdout(printed):
            rows = mod.main()
        # A module's own command-line main may return its exit status instead of rows.
        if rows is not None and not isinstance(rows, int):
            envelope["rows"] = [_plain(row) for row in rows]
    except BaseException:
        envelope["error"] = traceback.format_exc()
    envelope["printed"] = printed.getvalue()
    Path(result_path).write_text(json.dumps(envelope, default=str), encoding="utf-8")


def _plain(row: object) -> dict[str, Any]:
    if isinstance(row, Row):
        return row.as_dict()
    if isinstance(row, Mapping):
        return dict(row)
    if isinstance(row, Sequence) and not isinstance(row, str):
        return {"case": " ".join(str(v) for v in row)}
    return {"case": str(row)}


def _run(module: str, env: Mapping[str, str], timeout: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        code = f"from bench.__main__ import _child; _child({module!r}, {str(result)!r})"
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code], env=dict(env), timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return {"rows": None, "printed": "", "error": f"timed out after {timeout:.0f} s"}
        envelope: dict[str, Any]
        if result.exists():
            envelope = json.loads(result.read_text(encoding="utf-8"))
        else:
            envelope = {"rows": None, "printed": "", "error": f"exit status {proc.returncode}"}
        envelope["seconds"] = time.monotonic() - started
        return envelope


def _cell(key: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if key == "met":
        return "yes" if value is True else "NO" if value is False else str(value)
    if isinstance(value, float):
        if key == "ratio":
            return f"{value:.2f}x"
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value).replace("|", "/")


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as a Markdown table over :data:`COLUMNS` (extra keys go into the note)."""
    lines = [
        "| Benchmark | Case | Result | Unit | vs baseline | Target | Met | Note |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for row in rows:
        extra = "; ".join(f"{k}={v}" for k, v in row.items() if k not in COLUMNS)
        note = "; ".join(n for n in (_cell("note", row.get("note")), extra) if n)
        cells = [_cell(key, row.get(key)) for key in COLUMNS[:-1]] + [note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and exit")
    parser.add_argument("--quick", action="store_true", help="smoke run; numbers meaningless")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per module")
    args = parser.parse_args(argv)

    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [m for m in args.modules if m not in available]
    if unknown:
        parser.error(f"no benchmark module {unknown}; found {available}")
    selected = args.modules or available

    env = dict(os.environ)
    root = str(_HERE.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("OTEL_MLMON_STRICT", None)  # measure what users run
    if args.quick:
        env[QUICK_ENV] = "1"

    header = machine()
    print("\n".join(header), flush=True)
    rows: list[Mapping[str, Any]] = []
    reports: list[str] = []
    failed = []
    for module in selected:
        print(f"running bench.{module} ...", file=sys.stderr, flush=True)
        envelope = _run(module, env, args.timeout)
        seconds = envelope.get("seconds")
        took = f" ({seconds:.0f} s)" if seconds is not None else ""
        print(f"  bench.{module} done{took}", file=sys.stderr, flush=True)
        if envelope.get("error"):
            failed.append(module)
            reports.append(f"## bench.{module}: FAILED\n\n```\n{envelope['error']}\n```")
        if envelope.get("rows") is not None:
            rows.extend(envelope["rows"])
            if envelope.get("printed", "").strip():
                reports.append(f"## bench.{module} (notes)\n\n{envelope['printed'].rstrip()}")
        elif envelope.get("printed", "").strip():
            # A module that prints its own report (Markdown) is shown as it printed it.
            reports.append(f"## bench.{module}\n\n{envelope['printed'].rstrip()}")
    print()
    if rows:
        print(table(rows))
    for report in reports:
        print()
        print(report)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
