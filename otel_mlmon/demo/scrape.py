"""What the demo's live view shows, read back from the service's Prometheus endpoint.

One scrape (the text a Prometheus server would read) folds into a :class:`Summary`: the HTTP
requests and their latency, one :class:`ModelStats` per model version, and the drift scores.
Each metric the view reads has one small fold function in :data:`FOLDS` (or
:data:`PREFIX_FOLDS`, for names whose unit suffix differs between paths): reading a new metric
is one function and one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

Sample = tuple[str, Mapping[str, str], float]

_HTTP_DURATION: Final = "http_server_request_duration_seconds"
_MODEL_DURATION: Final = "ml_model_prediction_duration_seconds"
_VERSION: Final = "ml_model_version"
_ROLE: Final = "ml_model_role"
_FEATURE: Final = "ml_feature_name"
_METHOD: Final = "ml_drift_method"


def parse_samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition: ``(name, labels, value)``."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram ``{upper bound: count}``, interpolated
    linearly inside the bucket as PromQL's ``histogram_quantile`` does; ``None`` when empty."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound is all we know
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


@dataclass
class DriftRow:
    """One feature's drift by one method, as the gauges report it."""

    feature: str
    method: str
    score: float
    threshold: float | None
    drifting: bool


@dataclass
class ModelStats:
    """One model version's numbers: its ``ml_model_*`` series with that ``ml_model_version``."""

    predictions: int = 0
    errors: int = 0
    labels: int = 0
    #: Matched labels of a classifier, and those whose class was predicted: the diagonal of
    #: the confusion matrix in ``ml_model_labels_total``, summed over the workers.
    classified: int = 0
    correct: int = 0
    p50: float | None = None
    p95: float | None = None
    #: The prediction-duration histogram (successful predictions), ``{le: count}``.
    buckets: dict[float, float] = field(default_factory=dict)
    #: Outcome value earned by this version's predictions (every kind summed), and the
    #: scores given to them (``ml_model_outcome_score``): their sum and number.
    outcome_value: float = 0.0
    score_sum: float = 0.0
    scores: int = 0
    #: Whether the version runs in the shadow (``ml_model_role="shadow"``): its rows compared
    #: with the served ones, and those that agreed.
    shadow: bool = False
    compared: int = 0
    agreed: int = 0

    @property
    def accuracy(self) -> float | None:
        """Share of matched labels whose class was predicted (None before the first)."""
        return self.correct / self.classified if self.classified else None

    @property
    def value_per_prediction(self) -> float | None:
        """Outcome value earned per prediction (None before the first prediction, and for a
        shadow, whose predictions earn nothing: they are not served)."""
        if self.shadow or not self.predictions:
            return None
        return self.outcome_value / self.predictions

    @property
    def agreement(self) -> float | None:
        """A shadow's share of rows that agreed with the served ones (None before the first)."""
        return self.agreed / self.compared if self.compared else None

    @property
    def mean_score(self) -> float | None:
        """Mean score given to this version's predictions (None before the first)."""
        return self.score_sum / self.scores if self.scores else None


@dataclass
class Summary:
    """What the live view shows, computed from one scrape."""

    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    http_p50: float | None = None
    http_p95: float | None = None
    #: ``/predict``'s request-duration histogram, ``{le: count}``.
    http_buckets: dict[float, float] = field(default_factory=dict)
    #: Per model version, in the order the scrape lists them.
    models: dict[str, ModelStats] = field(default_factory=dict)
    drift: list[DriftRow] = field(default_factory=list)
    drift_available: bool = False
    #: Rows in the live drift window (``ml.drift.window.samples``); None before the first.
    drift_window: int | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    scores: dict[tuple[str, str], float] = field(default_factory=dict)
    detected: dict[tuple[str, str], bool] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a 5xx."""
        return self.server_errors / self.requests if self.requests else 0.0

    def model(self, labels: Mapping[str, str]) -> ModelStats:
        """The stats of the version ``labels`` names (created on first sight)."""
        stats = self.models.setdefault(labels.get(_VERSION, "?"), ModelStats())
        stats.shadow = stats.shadow or labels.get(_ROLE) == "shadow"
        return stats

    def share(self, version: str) -> float | None:
        """Share of the served predictions made by ``version`` (None before the first, and
        for a shadow, which serves none)."""
        total = sum(s.predictions for s in self.models.values() if not s.shadow)
        stats = self.models[version]
        return stats.predictions / total if total and not stats.shadow else None


Fold = Callable[[Summary, Mapping[str, str], float], None]


def _requests(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.requests += int(value)
    status = labels.get("http_response_status_code", "")
    if status.startswith("4"):
        summary.client_errors += int(value)
    elif status.startswith("5"):
        summary.server_errors += int(value)


def _request_bucket(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    if labels.get("http_route") == "/predict":
        _add_bucket(summary.http_buckets, labels, value)


def _prediction_bucket(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    if not labels.get("error_type"):
        _add_bucket(summary.model(labels).buckets, labels, value)


def _add_bucket(buckets: dict[float, float], labels: Mapping[str, str], value: float) -> None:
    bound = float(labels["le"])
    buckets[bound] = buckets.get(bound, 0.0) + value


def _predictions(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.model(labels).predictions += int(value)


def _errors(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.model(labels).errors += int(value)


def _labels(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    if labels.get("ml_label_outcome") == "matched":
        stats = summary.model(labels)
        stats.labels += int(value)
        if "ml_label_class" in labels:
            stats.classified += int(value)
            if labels["ml_label_class"] == labels.get("ml_prediction_class"):
                stats.correct += int(value)


def _outcome_value(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.model(labels).outcome_value += value


def _score_sum(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.model(labels).score_sum += value


def _score_count(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.model(labels).scores += int(value)


def _comparisons(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    stats = summary.model(labels)
    stats.compared += int(value)
    if labels.get("ml_shadow_agreement") == "agree":
        stats.agreed += int(value)


def _drift_key(labels: Mapping[str, str]) -> tuple[str, str]:
    return labels.get(_FEATURE, "?"), labels.get(_METHOD, "?")


def _drift_score(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.scores[_drift_key(labels)] = value


def _drift_detected(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.detected[_drift_key(labels)] = value >= 1


def _drift_threshold(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.thresholds[labels.get(_METHOD, "?")] = value


def _drift_window(summary: Summary, labels: Mapping[str, str], value: float) -> None:
    summary.drift_window = int(value)


#: The fold of each sample name the view reads.
FOLDS: Final[Mapping[str, Fold]] = {
    f"{_HTTP_DURATION}_count": _requests,
    f"{_HTTP_DURATION}_bucket": _request_bucket,
    f"{_MODEL_DURATION}_bucket": _prediction_bucket,
    "ml_model_predictions_total": _predictions,
    "ml_model_errors_total": _errors,
    "ml_model_labels_total": _labels,
    "ml_model_outcome_value_total": _outcome_value,
    "ml_model_outcome_score_sum": _score_sum,
    "ml_model_outcome_score_count": _score_count,
    "ml_model_shadow_comparisons_total": _comparisons,
}
#: Folds by name prefix, for gauges whose unit suffix depends on the export path.
PREFIX_FOLDS: Final[tuple[tuple[str, Fold], ...]] = (
    ("ml_drift_score", _drift_score),
    ("ml_drift_detected", _drift_detected),
    ("ml_drift_threshold", _drift_threshold),
    ("ml_drift_window_samples", _drift_window),
)


def _fold_of(name: str) -> Fold | None:
    return FOLDS.get(name) or next((f for p, f in PREFIX_FOLDS if name.startswith(p)), None)


def summarize(samples: Iterable[Sample]) -> Summary:
    """Fold the samples of one scrape into a :class:`Summary`."""
    summary = Summary()
    for name, labels, value in samples:
        fold = _fold_of(name)
        if fold is not None:
            fold(summary, labels, value)
    summary.http_p50 = histogram_quantile(0.5, summary.http_buckets)
    summary.http_p95 = histogram_quantile(0.95, summary.http_buckets)
    for stats in summary.models.values():
        stats.p50 = histogram_quantile(0.5, stats.buckets)
        stats.p95 = histogram_quantile(0.95, stats.buckets)
    summary.drift_available = bool(summary.scores)
    rows = [
        DriftRow(f, m, score, summary.thresholds.get(m), summary.detected.get((f, m), False))
        for (f, m), score in summary.scores.items()
    ]
    # Drifting first, then by how far past (or close to) its threshold each score is.
    rows.sort(key=lambda r: (not r.drifting, -_severity(r)))
    summary.drift = rows
    return summary


def _severity(row: DriftRow) -> float:
    """How far past its threshold a drifting score is, or how close a quiet one comes, as a
    ratio >= 1 or <= 1; p-values (drift below the threshold) and distances (above) alike."""
    if row.threshold is None or row.threshold <= 0 or row.score <= 0:
        return row.score
    ratio = row.score / row.threshold
    return max(ratio, 1 / ratio) if row.drifting else min(ratio, 1 / ratio)


def scrape(url: str) -> Summary:
    """GET the Prometheus endpoint at ``url`` and summarize it."""
    import httpx

    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    return summarize(parse_samples(response.text))
