"""The demo's live view: the summary as lines of text, redrawn in place on a terminal."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from otel_mlmon.demo.scrape import Summary
from otel_mlmon.demo.traffic import Traffic


def _ms(seconds: float | None) -> str:
    return "   -   " if seconds is None else f"{seconds * 1000:7.2f}"


@dataclass(frozen=True)
class Setting:
    """What the view states that stays the same during a run."""

    duration: float
    service_url: str
    metrics_url: str | None
    otlp_endpoint: str | None
    #: The drift window's fill level at which the first scores appear.
    min_samples: int | None = None
    #: Where the service's log lines go.
    log_file: Path | None = None
    #: The canary service, and its share of the predictions.
    canary_url: str | None = None
    canary_share: float = 0.0


def render(summary: Summary, traffic: Traffic, *, elapsed: float, setting: Setting) -> list[str]:
    """The lines of the live summary."""
    return [
        *_totals(summary, traffic, elapsed, setting),
        *_models(summary),
        *_comparison(summary),
        *_drift(summary, setting.min_samples),
        *_trace(traffic, setting.otlp_endpoint),
        *_where(traffic, setting),
    ]


def _totals(summary: Summary, traffic: Traffic, elapsed: float, setting: Setting) -> list[str]:
    total = "until Ctrl-C" if setting.duration <= 0 else f"of {setting.duration:.0f}s"
    phase = "DRIFT INJECTED" if traffic.drifting else "normal traffic"
    return [
        f"otel-mlmon demo  {elapsed:5.1f}s {total}  [{phase}]   service {setting.service_url}",
        f"  requests {summary.requests:7d} (all routes)   4xx {summary.client_errors:5d}   "
        f"5xx {summary.server_errors:4d}   error rate {summary.error_rate:6.2%}",
        f"  latency ms   http /predict p50 {_ms(summary.http_p50)}  p95 {_ms(summary.http_p95)}",
    ]


def _number(value: float | None, spec: str, width: int) -> str:
    return "-".center(width) if value is None else format(value, spec)


def _models(summary: Summary) -> list[str]:
    """Two lines per model version: its predictions, errors, labels and accuracy; its share
    of the predictions, latency, outcome value per prediction and mean rating."""
    if not summary.models:
        return ["  model        no prediction yet"]
    lines = []
    for version, stats in summary.models.items():
        accuracy = _number(stats.accuracy, "6.3f", 6)
        lines += [
            f"  model {version:<7.7}predictions {stats.predictions:6d}   errors "
            f"{stats.errors:4d}   labels {stats.labels:6d}   accuracy {accuracy}",
            f"        share {_number(summary.share(version), '6.1%', 6)}   latency ms  p50 "
            f"{_ms(stats.p50)}  p95 {_ms(stats.p95)}   $/prediction "
            f"{_number(stats.value_per_prediction, '5.2f', 5)}   rating "
            f"{_number(stats.mean_score, '4.2f', 4)}",
        ]
    return lines


def _comparison(summary: Summary) -> list[str]:
    """With two versions or more: each against the stable one, the served version with the
    most predictions (as the rollout rules take it); a shadow by its agreement and latency."""
    served = [v for v, stats in summary.models.items() if not stats.shadow]
    if len(summary.models) < 2 or not served:
        return []
    stable = max(served, key=lambda version: summary.models[version].predictions)
    base = summary.models[stable]
    lines = []
    for version, stats in summary.models.items():
        if version == stable:
            continue
        p95 = _delta(_scaled(stats.p95), _scaled(base.p95), "+.2f")
        if stats.shadow:
            lines.append(
                f"  shadow       {version} vs {stable}:  agreement "
                f"{_number(stats.agreement, '.1%', 1)}   p95 ms {p95}"
            )
            continue
        lines.append(
            f"  rollout      {version} vs {stable}:  accuracy "
            f"{_delta(stats.accuracy, base.accuracy, '+.3f')}   p95 ms {p95}   $/prediction "
            f"{_delta(stats.value_per_prediction, base.value_per_prediction, '+.2f')}   rating "
            f"{_delta(stats.mean_score, base.mean_score, '+.2f')}"
        )
    return lines


def _scaled(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _delta(value: float | None, base: float | None, spec: str) -> str:
    return "-" if value is None or base is None else format(value - base, spec)


def _drift(summary: Summary, min_samples: int | None) -> list[str]:
    if not summary.drift_available:
        return [f"  drift        {_drift_state(summary, min_samples)}"]
    lines = ["  drift        feature          method          score   threshold  state"]
    for row in summary.drift[:5]:
        threshold = "      -" if row.threshold is None else f"{row.threshold:8.3f}"
        state = "DRIFT" if row.drifting else "ok"
        lines.append(
            f"               {row.feature:<16.16} {row.method:<14.14} {row.score:7.3f}  "
            f"{threshold}  {state}"
        )
    return lines


def _trace(traffic: Traffic, otlp_endpoint: str | None) -> list[str]:
    if not traffic.last_trace_id:
        return []
    return [
        f"  last trace   {traffic.last_trace_id}  (X-Request-ID {traffic.last_request_id})",
        f"               sent to {otlp_endpoint}: open your trace UI, e.g. Jaeger "
        f"http://localhost:16686/trace/{traffic.last_trace_id}"
        if otlp_endpoint
        else "               spans are not exported on the embedded default: look it up "
        "with --otlp-endpoint",
    ]


def _where(traffic: Traffic, setting: Setting) -> list[str]:
    lines = []
    if setting.metrics_url:
        lines.append(f"  prometheus   {setting.metrics_url}   (curl it while the demo runs)")
    if setting.log_file is not None:
        lines.append(f"  logs         {setting.log_file}   (the service's JSON log lines)")
    if traffic.failed:
        lines.append(f"  client-side failures {traffic.failed}")
    return lines


def _drift_state(summary: Summary, min_samples: int | None) -> str:
    """What the drift line says before the first scores: the window's fill level."""
    if summary.drift_window is None:
        return "no drift window reported (this ModelMonitor has no drift reference)"
    if min_samples is not None and summary.drift_window < min_samples:
        return (
            f"filling the window: {summary.drift_window}/{min_samples} rows before the first scores"
        )
    needed = "enough" if min_samples is None else str(min_samples)
    return (
        f"{summary.drift_window} rows in the window, no scores yet "
        f"(each feature needs {needed} usable values)"
    )


class LiveView:
    """Rewrites the summary in place on a terminal; appends blocks otherwise."""

    def __init__(self, stream: TextIO, width: int | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._shown = 0
        self._fixed_width = width

    def _width(self) -> int:
        """Columns of the terminal (``width`` if given); 0 when unknown."""
        if self._fixed_width is not None:
            return self._fixed_width
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 0

    def show(self, lines: list[str]) -> None:
        width = self._width() if self.tty else 0
        if width > 1:
            # A line the terminal wraps takes two rows: the cursor-up count below would miss
            # it and the block would creep down the screen instead of refreshing in place.
            lines = [line[: width - 1] for line in lines]
        if self.tty and self._shown:
            # Cursor up to the first line of the previous block, clear to the end of screen.
            self.stream.write(f"\x1b[{self._shown}F\x1b[J")
        elif not self.tty and self._shown:
            self.stream.write("\n")
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._shown = len(lines)
