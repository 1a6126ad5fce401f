"""The Grafana dashboard and data sources: well-formed, linked, and written against the names
the collector really produces (the end-to-end test also evaluates every expression)."""

from __future__ import annotations

import json
import re

from stack_files import (
    DASHBOARD,
    DASHBOARD_PROVIDER,
    DATASOURCES,
    PROCESS_METRIC_NAMES,
    PROCESS_METRICS,
    dashboard_expressions,
    gauge_series,
    known_label_names,
    known_series_names,
    label_names,
    load_yaml,
    metric_names,
    recorded_names,
    series_read,
    substitute_grafana_variables,
)

from otel_mlmon import semconv


def _dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text())


def _datasources() -> dict[str, dict]:  # type: ignore[type-arg]
    return {source["uid"]: source for source in load_yaml(DATASOURCES)["datasources"]}


def test_dashboard_reads_only_metrics_and_labels_the_sdk_emits() -> None:
    # Directly or through the bundled recording rules; an unknown recorded name is unknown.
    series, labels = set(known_series_names()), known_label_names()
    unknown = {
        where: sorted((series_read(expr) - series) | (label_names(expr) - labels))
        for where, expr in dashboard_expressions()
        if (series_read(expr) - series) or (label_names(expr) - labels) or not series_read(expr)
    }
    assert unknown == {}


def test_quality_panels_read_the_fleet_recording_rules_not_per_process_series() -> None:
    # Quality is scored over every worker and replica by otel-mlmon-quality.rules.yml; a panel
    # reading ml_model_labels_total directly shows outcomes, never a score.
    # The version comparison reads the rollout rules (otel-mlmon-rollouts.rules.yml) too.
    recorded = {name for _, expr in dashboard_expressions() for name in recorded_names(expr)
                if name.startswith("ml:model_")}  # fmt: skip
    assert {
        "ml:model_accuracy:1h", "ml:model_precision:1h", "ml:model_recall:1h",
        "ml:model_f1_score:1h", "ml:model_mae:1h", "ml:model_rmse:1h",
        "ml:model_labels_matched:increase1h", "ml:model_confusion:increase1h",
        "ml:model_traffic_share:rate5m", "ml:model_latency_seconds:p50_rate5m",
        "ml:model_latency_seconds:p95_rate5m", "ml:model_error_ratio:rate5m",
        "ml:model_accuracy:predict_linear24h", "ml:model_outcome_value_per_prediction:1h",
        "ml:model_shadow_agreement:1h",
    } == recorded  # fmt: skip
    direct = {where for where, expr in dashboard_expressions()
              if "ml_model_labels_total" in metric_names(expr)}  # fmt: skip
    assert {"panel 'Delayed labels by outcome' A"} == direct


def test_dashboard_covers_every_section_the_issue_asks_for() -> None:
    rows = [panel["title"] for panel in _dashboard()["panels"] if panel["type"] == "row"]
    expected = ["Traffic", "Latency", "Errors", "Confidence and quality", "Drift",
                "GPU and process", "Model", "Fleet drift", "Version comparison"]  # fmt: skip
    assert expected == rows


#: Gauges of one process's own resources: their sum over a server's workers is the server's.
SUMMABLE_GAUGES = PROCESS_METRIC_NAMES | {"ml_process_gpu_memory_usage_bytes"}


def test_panels_aggregate_per_worker_gauges_and_add_up_only_a_process_own_resources() -> None:
    # A gauge is one series per worker (pid on the default path, instance through the
    # collector). Read raw it draws a line per worker; summed, a drift flag or a GPU seen by
    # every worker counts once per worker. Each gauge's innermost aggregation must be max or
    # min, or a sum for the gauges of a process's own resources.
    wrong = {}
    for where, expr in dashboard_expressions():
        for gauge in metric_names(expr) & gauge_series():
            wrappers = re.findall(rf"\b(\w+) by \([^()]*\) \({gauge}\b", expr)
            allowed = {"max", "min", "sum"} if gauge in SUMMABLE_GAUGES else {"max", "min"}
            if not wrappers or set(wrappers) - allowed:
                wrong[f"{where} {gauge}"] = wrappers
    assert {} == wrong


def test_every_sdk_metric_but_two_self_checks_is_on_the_dashboard() -> None:
    shown = {known_series_names()[name] for _, expr in dashboard_expressions()
             for name in series_read(expr)}  # fmt: skip
    # Not shown: the class bound's overflows, and ml.monitor.endpoint.errors, which counts
    # failures of the embedded Prometheus endpoint and exists on the default path only
    # (docs/stack.md): a panel on it would be empty through the collector.
    sdk_metrics = {spec.name for spec in semconv.METRICS} | set(PROCESS_METRICS.values())
    not_shown = sdk_metrics - shown
    assert {"ml.model.class.overflows", "ml.monitor.endpoint.errors"} == not_shown


def test_every_panel_query_uses_the_provisioned_prometheus_and_unique_ids() -> None:
    dashboard = _dashboard()
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    sources = {target["datasource"]["uid"] for panel in panels for target in panel["targets"]}
    assert {"prometheus"} == sources
    assert {"prometheus"} <= set(_datasources())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_grafana_variable_in_a_query_is_defined() -> None:
    variables = {v["name"]: ".*" for v in _dashboard()["templating"]["list"]}
    for _, expr in dashboard_expressions():
        substitute_grafana_variables(expr, variables)  # raises KeyError on an unknown one


def test_traces_link_to_logs_and_logs_link_back_to_traces() -> None:
    sources = _datasources()
    to_logs = sources["jaeger"]["jsonData"]["tracesToLogsV2"]
    derived = sources["loki"]["jsonData"]["derivedFields"][0]
    assert to_logs["datasourceUid"] == "loki"
    # `$$` is Grafana's escape for a literal `$` in provisioning files.
    assert 'trace_id="$${__span.traceId}"' in to_logs["query"]
    assert (
        derived["datasourceUid"],
        derived["matcherRegex"],
        derived["matcherType"],
    ) == ("jaeger", "trace_id", "label")


def test_dashboard_provider_loads_the_folder_compose_mounts() -> None:
    provider = load_yaml(DASHBOARD_PROVIDER)["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_latency_and_error_panels_show_exemplars_linked_to_jaeger() -> None:
    # Exemplars ride on histogram buckets and counters: every latency percentile and every
    # error count of the dashboard asks Prometheus for them.
    reads = re.compile(r"_duration_seconds_bucket|ml_model_errors_total")
    asking = {
        panel["title"]: all(target.get("exemplar") is True for target in panel["targets"])
        for panel in _dashboard()["panels"]
        if any(reads.search(target["expr"]) for target in panel.get("targets", []))
    }
    assert {
        "Prediction latency percentiles": True,
        "HTTP request latency p50 / p99 by route": True,
        "Errors by type": True,
        "Error rate": True,
    } == asking
    destinations = _datasources()["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    # The collector's exporter (and OpenMetrics) names the exemplar label trace_id.
    assert [("trace_id", "jaeger")] == [(d["name"], d["datasourceUid"]) for d in destinations]
