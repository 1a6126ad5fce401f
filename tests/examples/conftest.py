"""Fixtures of the example tests: the example modules and their documented commands."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from _services import load_example, start_command


@pytest.fixture(scope="session")
def iris_example() -> ModuleType:
    """``examples/iris.py``: the model and its telemetry, shared by both services."""
    return load_example("iris")


@pytest.fixture(scope="session")
def fastapi_example() -> ModuleType:
    """``examples/fastapi_app.py`` as a module."""
    return load_example("fastapi_app")


@pytest.fixture(scope="session")
def flask_example() -> ModuleType:
    """``examples/flask_app.py`` as a module."""
    return load_example("flask_app")


@pytest.fixture
def run_command() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a documented command from the repository root; stopped after the test."""
    started: list[subprocess.Popen[str]] = []

    def start(command: list[str], **env: str) -> subprocess.Popen[str]:
        process = start_command(command, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
