"""One process's metrics as prometheus_client families, with the SDK's exemplars on them.

:class:`ScrapeReader` is the OpenTelemetry ``PrometheusMetricReader`` (the SDK's translation of
names, units, scope labels and ``target_info``), registered in a private registry so that
collection happens only when asked. The exporter drops the exemplars the SDK attaches to
histogram and counter points; this module puts them back on the samples they belong to (the
smallest addition the embedded endpoint needs, docs/stack.md): the latest exemplar of each
histogram bucket and of each counter, as OpenMetrics allows, with the labels ``trace_id`` and
``span_id`` (the names the Collector's Prometheus exporter uses).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, MetricsData, Sum
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

from otel_mlmon import _compat

#: Labels of an exemplar: the ids of the sampled span the measurement was made in.
TRACE_ID_LABEL: Final = "trace_id"
SPAN_ID_LABEL: Final = "span_id"
_SCOPE_LABEL_PREFIX: Final = "otel_scope_"
#: Longest a fork waits for a collection in progress (a scrape) to end.
FORK_WAIT_S: Final = 2.0

#: Identifies the sample an exemplar goes on: (family base name, scope name, scope version,
#: the sample's own labels without scope labels, ``le`` and empty values, bucket bound or
#: ``None`` for a counter).
SampleKey = tuple[str, str, str, frozenset[tuple[str, str]], float | None]


def _label_value(value: object) -> str:
    # As the OTel exporter writes a label value: strings as they are, anything else as JSON.
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _bucket_bound(value: float, bounds: Iterable[float]) -> float:
    """The ``le`` of the bucket ``value`` falls in (OTel buckets are upper-inclusive, as
    Prometheus's)."""
    for bound in bounds:
        if value <= bound:
            return float(bound)
    return math.inf


def _own_labels(labels: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(
        (k, v)
        for k, v in labels.items()
        if v and k != "le" and not k.startswith(_SCOPE_LABEL_PREFIX)
    )


def exemplars_of(data: MetricsData) -> dict[SampleKey, Exemplar]:
    """The exemplars of histogram and monotonic-sum points in ``data``, keyed by the sample they
    go on; where several fall on one sample, the latest wins."""
    found: dict[SampleKey, tuple[float, Exemplar]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            scope = (scope_metrics.scope.name or "", scope_metrics.scope.version or "")
            for metric in scope_metrics.metrics:
                points = metric.data
                if isinstance(points, Sum) and not points.is_monotonic:
                    continue
                if not isinstance(points, Histogram | Sum):
                    continue
                base = _compat.prometheus_metric_name(metric.name)
                for point in points.data_points:
                    for key, seconds, exemplar in _point_exemplars(base, scope, point):
                        if key not in found or found[key][0] <= seconds:
                            found[key] = (seconds, exemplar)
    return {key: exemplar for key, (_, exemplar) in found.items()}


def _point_exemplars(
    base: str, scope: tuple[str, str], point: Any
) -> Iterable[tuple[SampleKey, float, Exemplar]]:
    """Each exemplar of one data point that has a trace, with the key of its sample."""
    if not point.exemplars:
        return
    labels = frozenset(
        (_compat.prometheus_label_name(k), _label_value(v))
        for k, v in (point.attributes or {}).items()
        if _label_value(v)
    )
    histogram = isinstance(point, HistogramDataPoint)
    for exemplar in point.exemplars:
        if exemplar.trace_id is None or exemplar.span_id is None:
            continue
        bound = _bucket_bound(exemplar.value, point.explicit_bounds) if histogram else None
        seconds = exemplar.time_unix_nano / 1e9
        ids = {
            TRACE_ID_LABEL: f"{exemplar.trace_id:032x}",
            SPAN_ID_LABEL: f"{exemplar.span_id:016x}",
        }
        yield (base, *scope, labels, bound), seconds, Exemplar(ids, float(exemplar.value), seconds)


def _family_bases(family: Metric) -> tuple[str, ...]:
    # prometheus_client appends the unit to the name the exporter gave the family.
    suffix = f"_{family.unit}" if family.unit else ""
    if suffix and family.name.endswith(suffix):
        return (family.name, family.name[: -len(suffix)])
    return (family.name,)


def attach_exemplars(families: Iterable[Metric], exemplars: Mapping[SampleKey, Exemplar]) -> None:
    """Put each exemplar on its sample: a histogram's ``_bucket`` sample of the bucket the
    value fell in, or a counter's ``_total`` sample. Families are changed in place."""
    if not exemplars:
        return
    for family in families:
        if family.type not in ("histogram", "counter"):
            continue
        bases = _family_bases(family)
        for index, sample in enumerate(family.samples):
            labels = sample.labels
            if family.type == "histogram":
                if not sample.name.endswith("_bucket"):
                    continue
                bound: float | None = float(labels["le"])
            elif sample.name.endswith("_total"):
                bound = None
            else:
                continue
            own = _own_labels(labels)
            scope = (
                labels.get(f"{_SCOPE_LABEL_PREFIX}name", ""),
                labels.get(f"{_SCOPE_LABEL_PREFIX}version", ""),
            )
            for base in bases:
                exemplar = exemplars.get((base, *scope, own, bound))
                if exemplar is not None:
                    family.samples[index] = sample._replace(exemplar=exemplar)
                    break


class ScrapeReader(PrometheusMetricReader):
    """A pull reader whose :meth:`families` collects the process's metrics on demand, as
    prometheus_client families carrying exemplars.

    Exemplars are the SDK's (``OTEL_METRICS_EXEMPLAR_FILTER``, ``trace_based`` by default: only
    measurements made inside a sampled span). The SDK hands each exemplar over once; the reader
    keeps the latest per sample, so every scrape, and every scraper, sees one.
    """

    def __init__(self) -> None:
        self._registry_of_reader = CollectorRegistry(auto_describe=False)
        super().__init__(registry=self._registry_of_reader)
        self._received: MetricsData | None = None
        self._exemplars: dict[SampleKey, Exemplar] = {}
        self._families_lock = threading.Lock()
        self._held_for_fork = False

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received = metrics_data
        super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    def families(self) -> list[Metric]:
        """Collect now; the families with their exemplars (empty once shut down)."""
        with self._families_lock:
            families = list(self._registry_of_reader.collect())
            received, self._received = self._received, None
            if received is not None:
                self._exemplars.update(exemplars_of(received))
            attach_exemplars(families, self._exemplars)
            return families

    def hold_for_fork(self) -> None:
        """Before a fork: wait (bounded) for a collection in progress to end and keep the next
        from starting, so the child never inherits the SDK's locks held mid-collection."""
        self._held_for_fork = self._families_lock.acquire(timeout=FORK_WAIT_S)

    def release_after_fork(self) -> None:
        if getattr(self, "_held_for_fork", False):
            self._held_for_fork = False
            self._families_lock.release()

    def after_fork_in_child(self) -> None:
        """Renew the lock, forget the parent's exemplars and its cached ``target_info`` (which
        carries the parent's ``service.instance.id``)."""
        self._families_lock = threading.Lock()
        self._held_for_fork = False
        self._exemplars = {}
        self._received = None
        _compat.forget_prometheus_target_info(self)
