"""The semantic conventions module, its naming rules, and the docs table kept in step with it.

Regenerate the tables in docs/semantic-conventions.md with ``python tests/test_semconv.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
)

from otel_mlmon import semconv

DOC = Path(__file__).resolve().parent.parent / "docs" / "semantic-conventions.md"
_KINDS = {
    "Counter": Counter,
    "Histogram": Histogram,
    "ObservableCounter": ObservableCounter,
    "ObservableGauge": ObservableGauge,
    "ObservableUpDownCounter": ObservableUpDownCounter,
}
# UCUM units, or curly-brace annotations for counts.
_UNIT = re.compile(r"^(1|s|By|W|Cel|\{[a-z_]+\})$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def render_metrics() -> str:
    rows = ["| Name | Instrument | Unit | Attributes | Description |", "|---|---|---|---|---|"]
    for spec in semconv.METRICS:
        attributes = ", ".join(f"`{a}`" for a in spec.attributes)
        rows.append(
            f"| `{spec.name}` | {spec.instrument} | `{spec.unit}` | {attributes} | "
            f"{spec.description} |"
        )
    return "\n".join(rows)


def render_attributes() -> str:
    rows = ["| Key | Values | Description |", "|---|---|---|"]
    rows += [f"| `{a.key}` | {a.values} | {a.description} |" for a in semconv.ATTRIBUTES]
    return "\n".join(rows)


def render_rejections() -> str:
    rows = ["| `ml.rejection.reason` | Meaning |", "|---|---|"]
    rows += [f"| `{k}` | {v} |" for k, v in semconv.REJECTION_REASONS.items()]
    return "\n".join(rows)


def render_events() -> str:
    rows = ["| Event | Level | Fields | Emitted by | When |", "|---|---|---|---|---|"]
    for spec in semconv.EVENTS:
        fields = "<br>".join(f"`{key}`: {text}" for key, text in spec.fields)
        rows.append(
            f"| `{spec.name}` | {spec.level.upper()} | {fields} | {spec.emitted_by} | "
            f"{spec.description} |"
        )
    return "\n".join(rows)


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", text, re.S)
    assert match, f"docs/semantic-conventions.md lacks the {name} markers"
    return match.group(1)


def _replace(text: str, name: str, table: str) -> str:
    return re.sub(
        rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)",
        lambda m: m.group(1) + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )


def test_docs_metric_table_matches_the_code() -> None:
    assert render_metrics() == _section(DOC.read_text(), "metrics"), (
        "docs/semantic-conventions.md is out of date: run python tests/test_semconv.py"
    )


def test_docs_attribute_table_matches_the_code() -> None:
    assert render_attributes() == _section(DOC.read_text(), "attributes"), (
        "docs/semantic-conventions.md is out of date: run python tests/test_semconv.py"
    )


@pytest.mark.parametrize("spec", semconv.METRICS, ids=lambda s: s.name)
def test_metric_names_follow_the_otel_naming_rules(spec: semconv.MetricSpec) -> None:
    assert _NAME.match(spec.name), spec.name
    assert not spec.name.endswith(("_total", ".total", "_seconds", "_bytes")), spec.name
    assert _UNIT.match(spec.unit), spec.unit
    assert spec.name.startswith(("ml.", "hw.")), "own names live under ml."


@pytest.mark.parametrize("spec", semconv.METRICS, ids=lambda s: s.name)
def test_every_ml_metric_carries_the_model_attributes(spec: semconv.MetricSpec) -> None:
    if spec.name.startswith("ml.model.") or spec.name.startswith("ml.drift."):
        assert spec.attributes[:2] == semconv.MODEL_ATTRIBUTES


def test_docs_rejection_reasons_match_the_code() -> None:
    assert render_rejections() == _section(DOC.read_text(), "rejections"), (
        "docs/semantic-conventions.md is out of date: run python tests/test_semconv.py"
    )


def test_docs_event_table_matches_the_catalogue() -> None:
    assert render_events() == _section(DOC.read_text(), "events"), (
        "docs/semantic-conventions.md is out of date: run python tests/test_semconv.py"
    )


def test_event_names_are_the_event_constants_and_unique() -> None:
    constants = {v for k, v in vars(semconv).items() if k.startswith("EVENT_")}
    names = [spec.name for spec in semconv.EVENTS]
    assert (constants, len(names)) == (set(names), len(set(names)))
    assert {"info", "warning", "error"} >= {spec.level for spec in semconv.EVENTS}


def test_attribute_keys_are_documented_once() -> None:
    keys = [a.key for a in semconv.ATTRIBUTES]
    assert len(keys) == len(set(keys))
    used = {key for spec in semconv.METRICS for key in spec.attributes}
    assert used <= set(keys), used - set(keys)


@pytest.mark.parametrize("spec", semconv.METRICS, ids=lambda s: s.name)
def test_each_factory_creates_the_declared_instrument(spec: semconv.MetricSpec) -> None:
    meter = MeterProvider().get_meter("test")
    factory = semconv.FACTORIES[spec.name]
    observable = spec.instrument.startswith("Observable")
    instrument = factory(meter, []) if observable else factory(meter)
    assert isinstance(instrument, _KINDS[spec.instrument])
    assert (spec.name, spec.unit) == (instrument.name, instrument.unit)


def test_the_fixed_names_dashboards_use_are_stable() -> None:
    fixed = {
        "ml.model.predictions": ("Counter", "{prediction}"),
        "ml.model.prediction.duration": ("Histogram", "s"),
        "ml.model.prediction.confidence": ("Histogram", "1"),
        "ml.model.errors": ("Counter", "{error}"),
        "ml.drift.score": ("ObservableGauge", "{score}"),
        "ml.drift.threshold": ("ObservableGauge", "{score}"),
        "ml.drift.detected": ("ObservableGauge", "{feature}"),
        "ml.model.load.timestamp": ("ObservableGauge", "s"),
    }
    actual = {n: (semconv.metric_spec(n).instrument, semconv.metric_spec(n).unit) for n in fixed}
    assert fixed == actual
    assert semconv.ERROR_TYPE in semconv.metric_spec("ml.model.errors").attributes


def test_unit_one_is_only_for_true_ratios() -> None:
    # Fractions of a whole, in [0, 1]. A drift score (PSI 4.3), a 0/1 flag or an info gauge is
    # dimensionless but no ratio: backends name unit-1 gauges "..._ratio".
    ratios = {
        semconv.ML_MODEL_PREDICTION_CONFIDENCE,
        semconv.HW_GPU_UTILIZATION,
    }
    assert ratios == {spec.name for spec in semconv.METRICS if spec.unit == "1"}


if __name__ == "__main__":
    text = DOC.read_text()
    text = _replace(text, "metrics", render_metrics())
    text = _replace(text, "attributes", render_attributes())
    text = _replace(text, "rejections", render_rejections())
    text = _replace(text, "events", render_events())
    DOC.write_text(text)
    sys.stdout.write(f"wrote {DOC}\n")
