"""One set of Prometheus names on both paths, as far as the repo's files decide it: the collector
job's relabelling drops exactly the ``_ratio`` the collector's exporter appends to unit-1 gauges,
and the process gauges' names are those configure()'s default Views give. The end-to-end tests
compare the two paths' real series."""

from __future__ import annotations

import re

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from stack_files import (
    PROCESS_METRICS,
    PROMETHEUS_CONFIG,
    known_series_names,
    load_yaml,
    ratio_gauges,
)

from otel_mlmon import default_views, resources


def _relabel(name: str) -> str:
    """``name`` after the collector job's metric_relabel_configs (a ``replace`` on __name__)."""
    job = next(job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
               if job["job_name"] == "otel-collector")  # fmt: skip
    for rule in job["metric_relabel_configs"]:
        assert (rule["source_labels"], rule["target_label"]) == (["__name__"], "__name__")
        match = re.fullmatch(rule["regex"], name)
        if match:
            name = match.expand(rule["replacement"].replace("$", "\\"))
    return name


def test_prometheus_drops_the_ratio_suffix_the_collector_adds_to_exactly_the_ratio_gauges() -> None:
    renamed = {name: _relabel(f"{name}_ratio") for name in ratio_gauges()}
    assert {name: name for name in ratio_gauges()} == renamed
    # Every other series keeps its name, including a user's gauge that ends in _ratio.
    others = [*known_series_names(), "cache_hit_ratio", "ml_model_accuracy_ratio_total"]
    assert [] == [name for name in others if _relabel(name) != name]


def test_the_process_gauges_get_the_names_of_the_table_from_the_default_views() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=default_views())
    stop = resources.observe_process(provider)
    try:
        data = reader.get_metrics_data()
        assert data is not None
        names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics}  # fmt: skip
    finally:
        stop()
        provider.shutdown()
    assert set(PROCESS_METRICS.values()) == names
