"""The one environment parser: OpenTelemetry's rules, one message shape, fail-fast on request."""

from __future__ import annotations

import logging

import pytest

from otel_mlmon import _env
from otel_mlmon._guard import strict
from otel_mlmon.exceptions import ConfigurationError

NAME = "OTEL_MLMON_TEST_VARIABLE"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NAME, raising=False)
    _env.forget_warnings()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), (" True ", True), ("false", False), ("False", False)],
)
def test_booleans_are_true_or_false_case_insensitive(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv(NAME, value)
    assert expected is _env.env_bool(NAME, not expected)


@pytest.mark.parametrize("value", ["1", "yes", "on", "0", "ture"])
def test_a_value_that_is_not_a_boolean_warns_once_and_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv(NAME, value)
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        assert _env.env_bool(NAME, True) is True
        assert _env.env_bool(NAME, True) is True
    assert [f"otel-mlmon: {NAME}={value!r} is not 'true' or 'false'; using True"] == [
        r.getMessage() for r in caplog.records
    ]


def test_unset_and_empty_mean_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 7 == _env.env_int(NAME, 7)
    monkeypatch.setenv(NAME, "   ")
    assert 7 == _env.env_int(NAME, 7)
    assert _env.env_bool(NAME, True) is True


def test_integers_within_bounds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(NAME, "42")
    assert 42 == _env.env_int(NAME, 1, minimum=1)
    monkeypatch.setenv(NAME, "0")
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        assert 5 == _env.env_int(NAME, 5, minimum=1)
    assert [f"otel-mlmon: {NAME}='0' is not an integer >= 1; using 5"] == [
        r.getMessage() for r in caplog.records
    ]


def test_strict_integers_fail_fast_with_the_same_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, "94x64")
    expected = rf"^{NAME}='94x64' is not an integer in 0..65535$"
    with pytest.raises(ConfigurationError, match=expected):
        _env.env_int(NAME, 9464, minimum=0, maximum=65535, strict=True)


@pytest.mark.parametrize(("value", "expected"), [("1500", 1500), ("0", 60_000), ("1.5s", 60_000)])
def test_durations_are_positive_milliseconds(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv(NAME, value)
    assert expected == _env.env_millis(NAME, 60_000)


def test_lists_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NAME, " OTLP, ,console ")
    assert ["otlp", "console"] == _env.env_list(NAME)
    monkeypatch.setenv(NAME, "Grpc")
    assert "grpc" == _env.env_choice(NAME, ("grpc", "http/protobuf"), "http/protobuf")


def test_strict_mode_written_as_1_is_off_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_MLMON_STRICT", "1")
    with caplog.at_level(logging.WARNING, logger="otel_mlmon"):
        assert strict() is False
    assert ["otel-mlmon: OTEL_MLMON_STRICT='1' is not 'true' or 'false'; using False"] == [
        r.getMessage() for r in caplog.records
    ]


def test_no_other_module_reads_the_environment() -> None:
    import ast
    from pathlib import Path

    package = Path(_env.__file__).parent
    readers = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "_env.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            # os.environ / os.getenv, or the same names imported from os; a WSGI request's
            # environ (flask.request.environ) is no process environment.
            through_os = (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            )
            imported = (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(alias.name in ("environ", "getenv") for alias in node.names)
            )
            if through_os or imported:
                readers.append(f"{path.relative_to(package)}:{node.lineno}")
    assert [] == readers
