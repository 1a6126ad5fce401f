"""otel-mlmon's own random generator: the application's ``random`` stream is left alone, and a
forked worker never repeats its parent's bits."""

from __future__ import annotations

import ast
import os
import random
from pathlib import Path

import pytest

import otel_mlmon
from otel_mlmon import ModelMonitor, _random
from otel_mlmon.logs import events
from otel_mlmon.request_id import new_request_id
from otel_mlmon.testing import InMemoryTelemetry

PACKAGE = Path(otel_mlmon.__file__).parent


def test_no_other_module_draws_from_the_random_module() -> None:
    # random.Random(seed) is a generator of one's own (the demo's reproducible traffic); the
    # module's functions draw from the application's shared stream.
    drawers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_random.py":
            continue
        tree = ast.parse(path.read_text())
        names = {  # what the module is called here: random, or an alias
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "random"
        }
        for node in ast.walk(tree):
            through_module = (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in names
                and node.attr != "Random"
            )
            imported = (
                isinstance(node, ast.ImportFrom)
                and node.module == "random"
                and any(alias.name != "Random" for alias in node.names)
            )
            if through_module or imported:
                drawers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert [] == drawers


def test_ids_request_ids_and_sampling_leave_the_applications_stream_alone(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("iris", trace=False, **telemetry.providers)
    random.seed(20261202)
    expected = [random.random() for _ in range(5)]

    random.seed(20261202)
    for value in range(20):
        with monitor.predict() as p:
            p.record(value % 3, 0.9)
        assert p.id
        new_request_id()
        events._sampled(0.5)  # no span here: decided by a random draw
    assert expected == [random.random() for _ in range(5)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_bits_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the fork hooks already ran; leave without pytest's teardown
        os.write(write, _random.getrandbits(64).to_bytes(8, "big"))
        os._exit(0)
    os.close(write)
    child = int.from_bytes(os.read(read, 8), "big")
    os.waitpid(pid, 0)
    os.close(read)
    # Without the reseed the child's generator is a copy of the parent's: the same next bits.
    assert _random.getrandbits(64) != child
