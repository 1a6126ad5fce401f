"""Helpers of the example tests: the examples as the package ships them
(``otel_mlmon.examples``), and their documented commands run from the repository root."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
#: The virtual environment's scripts (uvicorn, gunicorn), as ``.venv/bin/`` in the docs.
BIN = Path(sys.executable).parent


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` as the package ships it: ``otel_mlmon.examples.<name>``."""
    return importlib.import_module(f"otel_mlmon.examples.{name}")


def _environment(env: dict[str, str]) -> dict[str, str]:
    """The test's environment for a user's command: no strict mode, no collector."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment.pop("OTEL_MLMON_STRICT", None)
    environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return {**environment, **env}


def start_command(
    command: list[str], output: IO[str] | int = subprocess.PIPE, **env: str
) -> subprocess.Popen[str]:
    """Start a documented command from the repository root; its output goes to ``output``
    (a file for a long-lived server: a pipe nobody reads fills up and blocks its writes)."""
    return subprocess.Popen(
        command, cwd=ROOT, env=_environment(env), stdout=output, stderr=output, text=True
    )
