"""``ModelMonitor`` as it was at another git revision, importable beside today's.

``OTEL_MLMON_BENCH_BASELINE=<rev>`` (``python -m bench hot_path`` reads it): the package of
that revision is extracted with ``git archive`` into a temporary directory and renamed
``otel_mlmon_baseline`` (every ``otel_mlmon`` name in it rewritten), so both versions run in
one process, interleaved round by round, and their ratio is measured side by side.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BASELINE_ENV = "OTEL_MLMON_BENCH_BASELINE"


def baseline_revision() -> str | None:
    """The git revision to compare with, or ``None`` when none was asked for."""
    return os.environ.get(BASELINE_ENV) or None


def load_baseline(revision: str) -> Any:
    """The ``otel_mlmon`` package of ``revision`` as module ``otel_mlmon_baseline``."""
    archive = subprocess.run(
        ["git", "archive", revision, "otel_mlmon"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    target = Path(tempfile.mkdtemp(prefix="otel-mlmon-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    package = target / "otel_mlmon_baseline"
    (target / "otel_mlmon").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\botel_mlmon\b", "otel_mlmon_baseline", text), encoding="utf-8")
    sys.path.insert(0, str(target))
    return importlib.import_module("otel_mlmon_baseline")
