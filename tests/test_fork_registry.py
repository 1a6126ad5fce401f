"""The one fork-hook registry: every owner's hook runs in the child, each isolated."""

from __future__ import annotations

import ast
import logging
import os
from pathlib import Path

import pytest

from otel_mlmon import _fork

PACKAGE = Path(_fork.__file__).parent


def test_a_raising_hook_is_logged_and_the_later_hooks_still_run(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_fork, "_hooks", [])
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    _fork.after_fork_in_child(broken)
    _fork.after_fork_in_child(lambda: ran.append("second"))
    _fork.after_fork_in_child(broken)  # registered once only
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        _fork.run_child_hooks()
    assert ["second"] == ran
    assert [
        f"otel-mlmon: fork hook {broken.__qualname__} failed in process {os.getpid()}; "
        "the other hooks ran"
    ] == [r.getMessage() for r in caplog.records]
    assert "boom" in str(caplog.records[0].exc_info[1])


def test_the_package_registers_its_hooks_here_and_nowhere_else() -> None:
    callers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_fork.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "register_at_fork":
                callers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert [] == callers


def test_owners_of_fork_sensitive_state_are_registered() -> None:
    import otel_mlmon.monitor
    import otel_mlmon.resources
    import otel_mlmon.sdk  # noqa: F401

    modules = {hook.__module__ for hook in _fork.registered()}
    assert {
        "otel_mlmon._guard",
        "otel_mlmon._observables",
        "otel_mlmon._random",
        "otel_mlmon.monitor",
        "otel_mlmon.resources",
        "otel_mlmon.sdk._lifecycle",
        "otel_mlmon.sdk.prometheus",
    } <= modules


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_hooks_run_in_a_real_forked_child(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    def write_marker() -> None:
        if os.getpid() != parent:
            marker.write_text(str(os.getpid()))

    parent = os.getpid()
    _fork.after_fork_in_child(write_marker)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the hook already ran; leave without pytest's teardown
            os._exit(0)
        os.waitpid(pid, 0)
    finally:
        _fork._hooks.remove(write_marker)
    assert str(pid) == marker.read_text()
