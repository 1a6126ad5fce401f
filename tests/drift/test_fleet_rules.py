"""The fleet-drift rules as shipped: every alert is unit-tested, and they read only series the
SDK emits (tests/collector/test_rules.py runs promtool check and test on every rules file)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from otel_mlmon import semconv

RULES_DIR = Path(__file__).resolve().parents[2] / "collector" / "prometheus" / "rules"
RULES = RULES_DIR / "otel-mlmon-drift.rules.yml"
RULES_TEST = RULES_DIR / "otel-mlmon-drift.test.yml"


def _rules() -> list[dict[str, str]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def test_the_rules_file_is_matched_by_the_rule_glob_and_its_test_file_is_not() -> None:
    assert (True, False) == (RULES.match("*.rules.yml"), RULES_TEST.match("*.rules.yml"))


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in _rules() if "alert" in rule} == firing


def test_the_three_scores_are_recorded_per_service_model_version_feature_and_reference() -> None:
    # job is the service, as in every bundled rule (docs/stack.md).
    recorded = {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}
    by = "by (job, ml_model_name, ml_model_version, ml_feature_name, ml_drift_reference_id)"
    for name in ("ml:drift_psi:1h", "ml:drift_jensen_shannon:1h", "ml:drift_ks:1h"):
        assert by in " ".join(recorded[name].split()), name


def test_the_rules_read_only_the_series_the_sdk_emits() -> None:
    emitted = {
        semconv.ML_DRIFT_LIVE_VALUES.replace(".", "_") + "_total",
        semconv.ML_DRIFT_LIVE_VALUES_AT_OR_BELOW.replace(".", "_") + "_total",
        semconv.ML_DRIFT_REFERENCE_VALUES.replace(".", "_"),
        semconv.ML_DRIFT_REFERENCE_VALUES_AT_OR_BELOW.replace(".", "_"),
    }
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    read = set()
    for rule in _rules():
        # Leave out label lists (by, on, group_left), matchers and strings: metric names remain.
        expr = re.sub(r"\b(by|on|group_left)\s*\([^)]*\)|\{[^}]*\}|\"[^\"]*\"", "", rule["expr"])
        read |= set(re.findall(r"\bml[a-z_:0-9]*", expr))
    assert set() == read - emitted - recorded
