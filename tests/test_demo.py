"""``otel-mlmon demo``: a real run in a subprocess, Ctrl-C, ``--help``, and the summary
arithmetic. The run from an installed wheel is in tests/test_packaging.py."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _wait import eventually

from otel_mlmon.demo import add_arguments
from otel_mlmon.demo.scrape import (
    DriftRow,
    ModelStats,
    Summary,
    histogram_quantile,
    parse_samples,
    summarize,
)
from otel_mlmon.demo.traffic import Traffic
from otel_mlmon.demo.view import LiveView, Setting, render

HTTP_COUNT = "http_server_request_duration_seconds_count"
SETTING = Setting(duration=10.0, service_url="http://s", metrics_url=None, otlp_endpoint=None)


def start_demo(*args: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "otel_mlmon.demo", "--prometheus-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=Path(__file__).resolve().parent.parent,
    )


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> re.Match[str]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not printed; got {''.join(seen)}")


def wait_for_metrics(url: str, names: set[str]) -> None:
    """Scrape ``url`` until every one of ``names`` is there."""
    eventually(
        lambda: names <= {name for name, _, _ in parse_samples(httpx.get(url, timeout=5).text)},
        f"{sorted(names)} all served at {url}",
    )


def test_demo_serves_metrics_while_it_runs_and_ends_flushed(tmp_path: Path) -> None:
    log_file = tmp_path / "demo.log"
    process = start_demo(
        "--duration", "6", "--rate", "40", "--refresh", "1", "--seed", "3",
        "--log-file", str(log_file),
    )  # fmt: skip
    try:
        read_until(process, r"canary\s+http://127\.0\.0\.1:\d+\s+\(version 1\.1\.0, 20% of")
        url = read_until(process, r"prometheus\s+(http://\S+/metrics)").group(1)
        read_until(process, r"Ctrl-C to stop")
        wait_for_metrics(url, {"ml_model_predictions_total", HTTP_COUNT})
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, stderr
    final = stdout.split("otel-mlmon demo")[-1]
    requests = int(re.search(r"requests\s+(\d+)", final).group(1))  # type: ignore[union-attr]
    assert requests > 0
    assert re.search(r"accuracy\s+\d\.\d{3}", final)
    # The canary takes its share, and the summary compares it with the stable version.
    assert re.search(r"model 1\.1\.0\s+predictions\s+[1-9]", final)
    assert re.search(r"rollout\s+1\.1\.0 vs 1\.0\.0:\s+accuracy", final)
    assert re.search(r"shadow\s+2\.0\.0 vs 1\.0\.0:\s+agreement\s+\d+\.\d%", final)
    assert re.search(r"last trace\s+[0-9a-f]{32}", final)
    assert "DRIFT INJECTED" in final  # 40 % of 6 s: the drift started
    assert "telemetry flushed" in stdout
    assert f"logs         {log_file}" in final


def test_terminal_shows_the_summary_and_the_log_file_the_service_logs(tmp_path: Path) -> None:
    log_file = tmp_path / "demo.log"
    process = start_demo("--duration", "3", "--rate", "40", "--seed", "5", "--log-file",
                         str(log_file))  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, stderr
    terminal = (stdout + stderr).splitlines()
    assert [] == [line for line in terminal if line.lstrip().startswith("{")]
    assert [] == [line for line in terminal if "HTTP Request" in line]
    logged = [json.loads(line) for line in log_file.read_text().splitlines()]
    predictions = [r for r in logged if r["event"] == "prediction_made"]
    assert predictions and all(len(r["trace_id"]) == 32 for r in predictions)
    assert [] == [r for r in logged if "HTTP Request" in r["event"]]


def test_ctrl_c_stops_the_demo_cleanly_with_a_flush() -> None:
    process = start_demo(
        "--duration", "0", "--rate", "20", "--no-drift", "--canary-share", "0", "--no-shadow"
    )  # fmt: skip
    try:
        read_until(process, r"Ctrl-C to stop")
        read_until(process, r"model \S+\s+predictions\s+[1-9]")  # the traffic is flowing
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, stderr
    assert "telemetry flushed" in stdout
    assert "DRIFT INJECTED" not in stdout
    assert "Traceback" not in stderr
    absent = ("rollout", "model 1.1.0", "canary ", "shadow ", "model 2.0.0")
    assert absent == tuple(text for text in absent if text not in stdout)


def test_arguments_of_the_subcommand() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    args = parser.parse_args(
        ["--duration", "5", "--rate", "7", "--otlp-endpoint", "http://c:4318", "--no-drift",
         "--canary-share", "0.5"]
    )  # fmt: skip

    assert (args.duration, args.rate, args.otlp_endpoint, args.no_drift, args.canary_share) == (
        5.0,
        7.0,
        "http://c:4318",
        True,
        0.5,
    )
    assert 0.2 == parser.parse_args([]).canary_share


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    # 10 observations in (0, 1], 10 in (1, 2]: the median is the top of the first bucket,
    # the 75th percentile half-way through the second.
    buckets = {1.0: 10.0, 2.0: 20.0, float("inf"): 20.0}

    assert (histogram_quantile(0.5, buckets), histogram_quantile(0.75, buckets)) == (1.0, 1.5)
    assert histogram_quantile(0.5, {float("inf"): 0.0}) is None


def test_summarize_counts_statuses_and_orders_drifting_features_first() -> None:
    text = "\n".join(
        [
            "# TYPE http_server_request_duration_seconds histogram",
            'http_server_request_duration_seconds_bucket{http_route="/predict",'
            'http_response_status_code="200",le="0.01"} 8',
            'http_server_request_duration_seconds_bucket{http_route="/predict",'
            'http_response_status_code="200",le="+Inf"} 8',
            'http_server_request_duration_seconds_count{http_route="/predict",'
            'http_response_status_code="200"} 8',
            'http_server_request_duration_seconds_sum{http_route="/predict",'
            'http_response_status_code="200"} 0.04',
            'http_server_request_duration_seconds_count{http_route="/predict",'
            'http_response_status_code="500"} 2',
            'http_server_request_duration_seconds_sum{http_route="/predict",'
            'http_response_status_code="500"} 0.01',
            "# TYPE ml_drift_score gauge",
            'ml_drift_score{ml_feature_name="a",ml_drift_method="psi"} 0.05',
            'ml_drift_score{ml_feature_name="b",ml_drift_method="psi"} 0.4',
            "# TYPE ml_drift_detected gauge",
            'ml_drift_detected{ml_feature_name="a",ml_drift_method="psi"} 0',
            'ml_drift_detected{ml_feature_name="b",ml_drift_method="psi"} 1',
            "# TYPE ml_drift_threshold gauge",
            'ml_drift_threshold{ml_drift_method="psi"} 0.2',
        ]
    )

    summary = summarize(parse_samples(text + "\n"))

    assert (summary.requests, summary.server_errors, summary.error_rate) == (10, 2, 0.2)
    assert [(r.feature, r.drifting) for r in summary.drift] == [("b", True), ("a", False)]
    assert summary.http_p50 == pytest.approx(0.005)


def test_live_view_rewrites_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    view = LiveView(stream)
    summary = Summary(drift=[DriftRow("petal_length", "psi", 0.9, 0.2, True)], drift_available=True)
    lines = render(summary, Traffic(last_trace_id="ab" * 16), elapsed=1.0, setting=SETTING)
    view.show(lines)
    view.show(lines)

    assert stream.getvalue().count(f"\x1b[{len(lines)}F\x1b[J") == 1
    assert any("petal_length" in line and "DRIFT" in line for line in lines)


def test_summarize_reads_the_drift_window_fill_level() -> None:
    text = '# TYPE ml_drift_window_samples gauge\nml_drift_window_samples{ml_model_name="m"} 350\n'

    assert 350 == summarize(parse_samples(text)).drift_window


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (350, "filling the window: 350/500 rows before the first scores"),
        (None, "no drift window reported (this ModelMonitor has no drift reference)"),
    ],
)
def test_drift_line_before_the_first_scores_says_why(window: int | None, expected: str) -> None:
    setting = dataclasses.replace(SETTING, min_samples=500)

    lines = render(Summary(drift_window=window), Traffic(), elapsed=1.0, setting=setting)

    assert [f"  drift        {expected}"] == [line for line in lines if "drift  " in line]


def test_live_view_cuts_lines_to_the_terminal_width_so_none_wraps() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    LiveView(stream, width=20).show(["x" * 50, "short"])

    assert ["x" * 19, "short"] == stream.getvalue().splitlines()


def test_summary_has_one_line_of_numbers_per_model_version() -> None:
    text = "\n".join(
        [
            "# TYPE ml_model_predictions_total counter",
            'ml_model_predictions_total{ml_model_name="iris",ml_model_version="1.0.0"} 7',
            'ml_model_predictions_total{ml_model_name="iris",ml_model_version="2.0.0"} 3',
            "# TYPE ml_model_labels_total counter",
            'ml_model_labels_total{ml_model_name="iris",ml_model_version="2.0.0",'
            'ml_label_outcome="matched",ml_prediction_class="1",ml_label_class="1"} 1',
            'ml_model_labels_total{ml_model_name="iris",ml_model_version="2.0.0",'
            'ml_label_outcome="matched",ml_prediction_class="1",ml_label_class="2"} 1',
        ]
    )

    summary = summarize(parse_samples(text + "\n"))
    lines = render(summary, Traffic(), elapsed=1.0, setting=SETTING)

    assert {
        "1.0.0": ModelStats(predictions=7),
        "2.0.0": ModelStats(predictions=3, labels=2, classified=2, correct=1),
    } == summary.models
    assert 0.5 == summary.models["2.0.0"].accuracy
    assert 2 == len([line for line in lines if line.startswith("  model ")])


@pytest.mark.parametrize(
    "command",
    [["otel-mlmon", "demo", "--help"], ["python", "-m", "otel_mlmon.demo", "--help"]],
    ids=" ".join,
)
def test_help_is_plain_text_without_markup(command: list[str]) -> None:
    scripts = Path(sys.executable).parent
    program = sys.executable if command[0] == "python" else str(scripts / command[0])

    result = subprocess.run(
        [program, *command[1:]], capture_output=True, text=True, timeout=60, check=True
    )

    markup = re.findall(
        r"``|:(?:func|mod|class|data|meth):|^\.\. |versionadded", result.stdout, re.M
    )
    assert [] == markup, result.stdout
    assert "pip install 'otel-mlmon[examples]'" in result.stdout


def test_summary_compares_each_version_with_the_stable_one() -> None:
    text = "\n".join(
        [
            # The canary listed first: the stable version is the one with the most predictions.
            "# TYPE ml_model_predictions_total counter",
            'ml_model_predictions_total{ml_model_name="iris",ml_model_version="1.1.0"} 20',
            'ml_model_predictions_total{ml_model_name="iris",ml_model_version="1.0.0"} 80',
            "# TYPE ml_model_outcome_value_total counter",
            'ml_model_outcome_value_total{ml_model_name="iris",ml_model_version="1.0.0",'
            'ml_outcome_kind="revenue"} 200',
            'ml_model_outcome_value_total{ml_model_name="iris",ml_model_version="1.1.0",'
            'ml_outcome_kind="revenue"} 45',
            "# TYPE ml_model_outcome_score histogram",
            'ml_model_outcome_score_count{ml_model_name="iris",ml_model_version="1.0.0",'
            'ml_outcome_kind="rating"} 4',
            'ml_model_outcome_score_sum{ml_model_name="iris",ml_model_version="1.0.0",'
            'ml_outcome_kind="rating"} 18',
            'ml_model_outcome_score_count{ml_model_name="iris",ml_model_version="1.1.0",'
            'ml_outcome_kind="rating"} 2',
            'ml_model_outcome_score_sum{ml_model_name="iris",ml_model_version="1.1.0",'
            'ml_outcome_kind="rating"} 7',
        ]
    )

    summary = summarize(parse_samples(text + "\n"))
    lines = render(summary, Traffic(), elapsed=1.0, setting=SETTING)

    stable, canary = summary.models["1.0.0"], summary.models["1.1.0"]
    assert (2.5, 4.5, 0.8) == (stable.value_per_prediction, stable.mean_score,
                               summary.share("1.0.0"))  # fmt: skip
    assert (2.25, 3.5, 0.2) == (canary.value_per_prediction, canary.mean_score,
                                summary.share("1.1.0"))  # fmt: skip
    (rollout,) = [line for line in lines if line.startswith("  rollout")]
    assert "1.1.0 vs 1.0.0:  accuracy -   p95 ms -   $/prediction -0.25   rating -1.00" in rollout
    assert 2 == len([line for line in lines if " share " in line])


def test_a_shadow_shows_its_agreement_and_takes_no_share() -> None:
    text = "\n".join(
        [
            "# TYPE ml_model_predictions_total counter",
            'ml_model_predictions_total{ml_model_name="iris",ml_model_version="1.0.0"} 10',
            'ml_model_predictions_total{ml_model_name="iris",ml_model_role="shadow",'
            'ml_model_version="2.0.0"} 10',
            "# TYPE ml_model_shadow_comparisons_total counter",
            'ml_model_shadow_comparisons_total{ml_model_name="iris",ml_model_role="shadow",'
            'ml_model_version="2.0.0",ml_shadow_agreement="agree",'
            'ml_shadow_champion_version="1.0.0"} 9',
            'ml_model_shadow_comparisons_total{ml_model_name="iris",ml_model_role="shadow",'
            'ml_model_version="2.0.0",ml_shadow_agreement="disagree",'
            'ml_shadow_champion_version="1.0.0"} 1',
        ]
    )

    summary = summarize(parse_samples(text + "\n"))
    lines = render(summary, Traffic(), elapsed=1.0, setting=SETTING)

    shadow = summary.models["2.0.0"]
    assert (True, 0.9, None, None) == (
        shadow.shadow,
        shadow.agreement,
        summary.share("2.0.0"),
        shadow.value_per_prediction,
    )
    assert 1.0 == summary.share("1.0.0")
    (line,) = [line for line in lines if line.startswith("  shadow")]
    assert "2.0.0 vs 1.0.0:  agreement 90.0%   p95 ms -" == line.split("shadow", 1)[1].strip()
