"""Load the example services by path (examples/ is not a package) and run their commands."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {process.communicate()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("service did not become healthy")


@pytest.fixture(scope="session")
def fastapi_example() -> ModuleType:
    """``examples/fastapi_app.py`` as a module."""
    return _load("fastapi_app")


@pytest.fixture(scope="session")
def flask_example() -> ModuleType:
    """``examples/flask_app.py`` as a module."""
    return _load("flask_app")


@pytest.fixture
def free_port() -> int:
    """A loopback port that was free a moment ago."""
    return _free_port()


@pytest.fixture
def wait_healthy() -> Callable[[str, subprocess.Popen[str]], None]:
    """Wait until ``GET /health`` answers 200 (or the process exits)."""
    return _wait_healthy


@pytest.fixture
def run_command() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a documented command from the repository root; stopped after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(command: list[str], **env: str) -> subprocess.Popen[str]:
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        environment.pop("OTEL_MLMON_STRICT", None)
        environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
