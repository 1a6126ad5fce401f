"""Signed prediction ids and their keys: what verifies, what never does, where the key lives."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from otel_mlmon import ConfigurationError, ModelMonitor, semconv
from otel_mlmon.monitor import Labels
from otel_mlmon.monitor import _keys as keys
from otel_mlmon.monitor._attributes import ModelAttributes
from otel_mlmon.monitor.labels import IdCodec, decode_text
from otel_mlmon.testing import InMemoryTelemetry

KEY = "k" * 32


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of this test's own, and no key in the environment."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("OTEL_MLMON_LABEL_KEY", raising=False)
    monkeypatch.delenv("OTEL_MLMON_LABEL_KEY_PREVIOUS", raising=False)
    return cache


def _predict(monitor: ModelMonitor, value: object) -> str:
    with monitor.predict() as p:
        p.record(value)
    return p.id


def test_another_process_with_the_key_joins_the_label(telemetry: InMemoryTelemetry) -> None:
    code = (
        "from otel_mlmon import ModelMonitor; from otel_mlmon.monitor import Labels\n"
        f"m = ModelMonitor('iris', version='1', trace=False, labels=Labels(key={KEY!r}))\n"
        "with m.predict() as p:\n    p.record(2)\nprint(p.id)"
    )
    made = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    monitor = ModelMonitor(
        "iris", version="1", labels=Labels(key=KEY), trace=False, **telemetry.providers
    )
    monitor.record_label(made, 1)
    (point,) = telemetry.metric_points(semconv.ML_MODEL_LABELS)
    assert ("matched", "2", "1") == (
        point.attributes[semconv.ML_LABEL_OUTCOME],
        point.attributes[semconv.ML_PREDICTION_CLASS],
        point.attributes[semconv.ML_LABEL_CLASS],
    )


def test_every_changed_character_makes_the_id_invalid(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor("iris", trace=False, **telemetry.providers)
    genuine = _predict(monitor, "setosa")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tampered = {
        genuine[:i] + other + genuine[i + 1 :]
        for i in range(len(genuine))
        for other in alphabet[::7]
        if other != genuine[i]
    }
    for prediction_id in tampered:
        monitor.record_label(prediction_id, "setosa")
    assert {"invalid": len(tampered)} == telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


HOSTILE: list[Any] = [
    "A" * (1 << 20),  # 1 MB
    "ÄÖÜ" * 10,  # non-ASCII
    "€" * 30,
    b"bytes-are-not-ids",
    12345,
    None,
    ["list"],
    "",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "a",
]


def test_hostile_ids_count_invalid_never_raise_and_keep_nothing(
    telemetry: InMemoryTelemetry,
) -> None:
    monitor = ModelMonitor("iris", trace=False, **telemetry.providers)
    genuine = _predict(monitor, 1)
    ids = [*HOSTILE, genuine[:-1], genuine[:10], genuine + "A"]
    for prediction_id in ids:  # once first, so that lazily built caches exist
        monitor.record_label(prediction_id, 1)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            for prediction_id in ids:
                monitor.record_label(prediction_id, 1)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 16 * 1024, grown
    assert {"invalid": 201 * len(ids)} == telemetry.values_by(
        semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME
    )


def test_an_id_signed_with_another_key_is_invalid(telemetry: InMemoryTelemetry) -> None:
    theirs = ModelMonitor("iris", version="1", labels=Labels(key="x" * 32), trace=False)
    ours = ModelMonitor(
        "iris", version="1", labels=Labels(key=KEY), trace=False, **telemetry.providers
    )
    ours.record_label(_predict(theirs, 1), 1)
    ours.record_label(_predict(ModelMonitor("wine", labels=Labels(key=KEY)), 1), 1)
    assert {"invalid": 2} == telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)


def test_after_a_rotation_the_previous_key_still_verifies(telemetry: InMemoryTelemetry) -> None:
    before = ModelMonitor("iris", labels=Labels(key=KEY), trace=False)
    old_id = _predict(before, 1)
    after = ModelMonitor(
        "iris",
        labels=Labels(key="n" * 32, previous_keys=[KEY]),
        trace=False,
        **telemetry.providers,
    )
    after.record_label(old_id, 1)
    after.record_label(_predict(after, 0), 0)
    assert {"matched": 2} == telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)


def test_the_previous_key_comes_from_the_environment(
    telemetry: InMemoryTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_id = _predict(ModelMonitor("iris", labels=Labels(key=KEY), trace=False), 1)
    monkeypatch.setenv("OTEL_MLMON_LABEL_KEY", "n" * 32)
    monkeypatch.setenv("OTEL_MLMON_LABEL_KEY_PREVIOUS", KEY)
    # Kept in a name: a monitor that is garbage-collected stops reporting (weakly held owners).
    monitor = ModelMonitor("iris", trace=False, **telemetry.providers)
    monitor.record_label(old_id, 1)
    assert {"matched": 1} == telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)


@pytest.mark.parametrize("where", ["keyword", "environment"])
def test_a_short_key_fails_fast_without_showing_it(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "short-secret"
    kwargs: dict[str, Any] = {}
    if where == "keyword":
        kwargs["labels"] = Labels(key=secret)
    else:
        monkeypatch.setenv("OTEL_MLMON_LABEL_KEY", secret)
    with pytest.raises(ConfigurationError, match="12 characters") as caught:
        ModelMonitor("iris", **kwargs)
    assert secret not in str(caught.value)


def test_the_key_never_appears_in_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture, telemetry: InMemoryTelemetry
) -> None:
    caplog.set_level(logging.DEBUG)
    labels = Labels(key=KEY, previous_keys=["p" * 32])
    monitor = ModelMonitor("iris", labels=labels, **telemetry.providers)
    with monitor.predict() as p:
        p.record(1)
    monitor.record_label(p.id, 1)
    monitor.record_label("forged", 1)
    seen = repr(labels) + caplog.text + repr(telemetry.spans()) + repr(telemetry.metrics())
    assert KEY not in seen and "p" * 32 not in seen


def test_without_configuration_one_private_key_file_is_made_and_reused(
    _private_cache: Path, telemetry: InMemoryTelemetry
) -> None:
    first = ModelMonitor("iris", trace=False)
    prediction_id = _predict(first, 1)
    key_file = _private_cache / "otel-mlmon" / keys.KEY_FILE
    mode = stat.S_IMODE(os.stat(key_file).st_mode)
    directory_mode = stat.S_IMODE(os.stat(key_file.parent).st_mode)
    code = (
        "import sys; from otel_mlmon import ModelMonitor; from otel_mlmon.testing import "
        "InMemoryTelemetry\nwith InMemoryTelemetry() as t:\n"
        "    m = ModelMonitor('iris', trace=False, **t.providers)\n"
        f"    m.record_label({prediction_id!r}, 1)\n"
        "    print([p.attributes['ml.label.outcome'] for p in t.metric_points('ml.model.labels')])"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(_private_cache)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert (0o600, 0o700) == (mode, directory_mode)
    assert "['matched']" == result.stdout.strip(), result.stderr


def test_processes_racing_to_make_the_key_file_all_get_the_same_key(_private_cache: Path) -> None:
    code = "from otel_mlmon.monitor import _keys; print(_keys.derive(_keys.host_secret()).hex())"
    env = {**os.environ, "XDG_CACHE_HOME": str(_private_cache)}
    racers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(8)
    ]
    derived = {racer.communicate(timeout=60)[0].strip() for racer in racers}
    assert 1 == len(derived)
    assert [keys.KEY_FILE] == os.listdir(_private_cache / "otel-mlmon")  # no temporary left


def test_a_key_file_others_can_read_is_not_used(_private_cache: Path, tmp_path: Path) -> None:
    directory = _private_cache / "otel-mlmon"
    directory.mkdir(parents=True)
    exposed = directory / keys.KEY_FILE
    exposed.write_text("e" * 43 + "\n")
    exposed.chmod(0o644)
    assert "e" * 43 != keys.host_secret()


def test_a_label_for_a_batch_id_needs_one_label_per_row(telemetry: InMemoryTelemetry) -> None:
    monitor = ModelMonitor("iris", classes=[0, 1, 2], trace=False, **telemetry.providers)
    with monitor.predict() as p:
        p.record(np.array([0, 1, 2, 7]))  # 7: not a known class, reported as _OTHER
    monitor.record_label(p.id, [0, 1])
    monitor.record_label(p.id, "not rows")
    monitor.record_label(p.id, np.array([0, 2, 2, 1]))
    matched = {
        (x.attributes[semconv.ML_PREDICTION_CLASS], x.attributes[semconv.ML_LABEL_CLASS]): x.value
        for x in telemetry.metric_points(semconv.ML_MODEL_LABELS)
        if x.attributes[semconv.ML_LABEL_OUTCOME] == "matched"
    }
    assert {("0", "0"): 1, ("1", "2"): 1, ("2", "2"): 1, ("_OTHER", "1"): 1} == matched
    assert 2 == telemetry.values_by(semconv.ML_MODEL_LABELS, semconv.ML_LABEL_OUTCOME)["invalid"]


@pytest.mark.parametrize(
    ("task", "known", "output"),
    [
        ("classification", None, 7),  # an integer class
        ("classification", ("cat", "dog"), "dog"),  # a declared class
        ("classification", None, "a class text"),
        ("regression", None, 2.5),
    ],
)
def test_the_codec_reads_its_own_ids_and_nothing_from_damaged_bytes(
    task: str, known: tuple[str, ...] | None, output: object
) -> None:
    attributes = ModelAttributes("iris", "1", task, 10, known)
    codec = IdCodec(attributes, [KEY.encode()])
    made = codec.single(output, 1_700_000_000.5)
    raw = decode_text(made)
    assert raw is not None
    assert (
        codec.decode(made)
        == (
            codec.decode_raw(raw)[0],  # type: ignore[index]
            [output],
            1_700_000_000,
            raw[-8:],
        )
    )
    assert codec.made_at(raw) == 1_700_000_000
    damaged = [raw[:cut] for cut in range(len(raw))]  # every truncation, the empty one too
    damaged += [raw[:i] + bytes((raw[i] ^ 1,)) + raw[i + 1 :] for i in range(len(raw))]
    for bad in damaged:
        assert codec.decode_raw(bad) is None, bad
        assert codec.made_at(bad) is None, bad
