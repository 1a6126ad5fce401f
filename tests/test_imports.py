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


#: The package's floors, bottom up: a room imports only rooms on lower floors (and itself).
#: docs/architecture.md draws the same table; the test below holds the code to it.
FLOORS: dict[str, int] = {
    # Foundations: names, errors, context variables and the cross-cutting owners.
    "version": 0, "exceptions": 0, "environment_variables": 0, "semconv": 0, "context": 0,
    "_compat": 0, "_query": 0, "_runtime_dir": 0, "_fork": 0,
    "_env": 1, "_random": 1,
    "_guard": 2, "request_id": 2,
    # Shared instruments, process/GPU gauges, the logging bridge.
    "_observables": 3, "resources": 3, "logs": 3,
    "drift": 4,
    # The facade users build: predictions, labels, quality, drift wiring.
    "monitor": 5,
    # The integrations: web frameworks, and the SDK bootstrap (never imported by the above).
    "instrumentation": 6, "sdk": 6,
    # What users run or import at the top.
    "testing": 7, "demo": 7, "__init__": 7,
    "cli": 8,
}  # fmt: skip


def _room(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _rooms_imported(path: Path) -> set[str]:
    rooms: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "otel_mlmon":
                names = [f"otel_mlmon.{alias.name}" for alias in node.names]
        else:
            continue
        rooms.update(name.split(".")[1] for name in names if name.startswith("otel_mlmon."))
    return rooms


def test_every_room_has_a_floor() -> None:
    rooms = {_room(path) for path in PACKAGE.rglob("*.py")} - {"py"}
    assert set() == rooms - set(FLOORS)


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_point_down_the_floors_never_up(path: Path) -> None:
    room = _room(path)
    upward = {
        other for other in _rooms_imported(path) - {room} if FLOORS.get(other, 99) >= FLOORS[room]
    }
    assert set() == upward


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
