"""Import direction and weight: the package's layering, held by a test."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "otel_mlmon"

# Modules allowed to import the OpenTelemetry SDK and exporters: the bootstrap package (sdk/),
# the in-memory wiring for tests, and _compat (inside the functions only sdk/ calls, for the
# exporter's private names).
SDK_IMPORTERS = {"testing.py", "_compat.py"}
SDK_PACKAGE = PACKAGE / "sdk"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_only_the_bootstrap_imports_the_sdk(path: Path) -> None:
    if path.name in SDK_IMPORTERS or SDK_PACKAGE in path.parents:
        return
    offending = {
        name
        for name in _imports(path)
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))
    }
    assert set() == offending


def test_semconv_imports_nothing_of_ours() -> None:
    assert set() == {n for n in _imports(PACKAGE / "semconv.py") if n.startswith("otel_mlmon")}


def test_importing_the_package_leaves_heavy_libraries_unloaded() -> None:
    code = (
        "import sys, json, otel_mlmon; "
        "print(json.dumps(sorted(m for m in ('scipy', 'sklearn', 'pandas', 'fastapi', 'flask',"
        " 'pynvml', 'opentelemetry.sdk', 'structlog', 'otel_mlmon.drift') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert [] == json.loads(result.stdout)
