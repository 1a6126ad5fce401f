"""Fleet drift with real parts: three processes, one reference, a real Prometheus with the
shipped rules, compared with ``otel-mlmon drift`` on the union of the processes' rows.

Each process (``fleet_worker.py``) runs ``configure()`` with its own Prometheus port and a
``ModelMonitor`` holding the same reference, and scores a third of one data set in which one of
four features is shifted by 0.5 standard deviations. Debian's Prometheus scrapes the three every
second and evaluates ``collector/prometheus/rules/otel-mlmon-drift.rules.yml`` as shipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from _wait import eventually, free_port
from e2e.e2e_stack import Program, _start, _wait_ready, http_get

from otel_mlmon.drift import DriftConfig, DriftProcessor

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RULES = REPO / "collector" / "prometheus" / "rules" / "otel-mlmon-drift.rules.yml"
WORKER = HERE / "fleet_worker.py"
FEATURES = [f"x{i}" for i in range(4)]
SHIFTED = "x2"
ROWS_PER_PROCESS = (700, 650, 750)  # unequal: the rules must weigh processes by their rows


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("fleet")
    rng = np.random.default_rng(20261128)
    reference = rng.normal(size=(3_000, 4))
    live = rng.normal(size=(sum(ROWS_PER_PROCESS), 4))
    live[:, FEATURES.index(SHIFTED)] += 0.5
    live[::37, 0] = np.nan  # missing values: their own bin, outside PSI and JS everywhere
    np.save(workdir / "reference.npy", reference)
    bounds = np.cumsum((0, *ROWS_PER_PROCESS))
    parts = []
    for i in range(3):
        path = workdir / f"rows{i}.npy"
        np.save(path, live[bounds[i] : bounds[i + 1]])
        parts.append(path)
    for name, table in (("reference.csv", reference), ("union.csv", live)):
        lines = [",".join(FEATURES)]
        lines += [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in table]
        (workdir / name).write_text("\n".join(lines) + "\n")
    return {"dir": workdir, "reference": reference, "live": live, "parts": parts}


@pytest.fixture(scope="module")
def fleet(data: dict[str, Any]) -> Iterator[str]:
    """Three worker processes and a Prometheus scraping them; yields Prometheus' URL."""
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus (see .ci/run)")
    workdir: Path = data["dir"]
    programs: list[Program] = []
    try:
        targets = []
        for i, part in enumerate(data["parts"]):
            port = free_port()
            targets.append(f"127.0.0.1:{port}")
            env = {
                "PATH": str(Path(sys.executable).parent), "OTEL_MLMON_STRICT": "true",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(port),
            }  # fmt: skip
            command = [sys.executable, str(WORKER), str(workdir / "reference.npy"), str(part)]
            programs.append(_start(f"worker{i}", command, workdir, env))
        for program, target in zip(programs, targets, strict=True):
            _wait_ready(program, f"http://{target}/metrics")
        listen = f"127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "fleet", "static_configs": [{"targets": targets}]}],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = _start("prometheus", [
            prometheus_binary, f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}", f"--web.listen-address={listen}",
        ], workdir, {})  # fmt: skip
        programs.append(prometheus)
        _wait_ready(prometheus, f"http://{listen}/-/ready")
        yield f"http://{listen}"
    finally:
        for program in reversed(programs):
            program.stop()


def _query(url: str, expr: str) -> dict[str, float]:
    answer = http_get(f"{url}/api/v1/query", {"query": expr})
    return {
        r["metric"].get("ml_feature_name", ""): float(r["value"][1])
        for r in answer["data"]["result"]
    }


@pytest.fixture(scope="module")
def fleet_scores(fleet: str, data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The rules' results once every process's every row has been scraped and evaluated."""
    usable = np.count_nonzero(np.isfinite(data["live"]), axis=0)
    expected = {name: float(n) for name, n in zip(FEATURES, usable, strict=True)}

    def complete() -> dict[str, dict[str, float]] | None:
        if _query(fleet, "ml:drift_live_samples:1h") != expected:
            return None
        # The rules' evaluation that saw every row: a query may land between the group's writes
        # of the sample counts and of the scores (a busy machine stretches that moment).
        counted_at = max(_query(fleet, "timestamp(ml:drift_live_samples:1h)").values())
        rules = ("psi", "jensen_shannon", "ks")
        if min(min(_query(fleet, f"timestamp(ml:drift_{rule}:1h)").values(), default=0.0)
               for rule in rules) < counted_at:  # fmt: skip
            return None
        scores = {rule: _query(fleet, f"ml:drift_{rule}:1h") for rule in rules}
        return scores if all(set(s) == set(FEATURES) for s in scores.values()) else None

    return eventually(complete, "the fleet-drift rules over all rows of the three processes")


@pytest.fixture(scope="module")
def cli(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("otel-mlmon")), "drift", "--json",
         str(data["dir"] / "reference.csv"), str(data["dir"] / "union.csv")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert 1 == result.returncode, result.stderr
    return {f["feature"]: f for f in json.loads(result.stdout)["features"]}


@pytest.mark.parametrize("rule", ["psi", "jensen_shannon"])
def test_fleet_rules_equal_the_cli_on_the_union_of_the_processes_rows(
    fleet_scores: dict[str, dict[str, float]], cli: dict[str, dict[str, Any]], rule: str
) -> None:
    expected = {feature: cli[feature][rule] for feature in FEATURES}
    assert expected == pytest.approx(fleet_scores[rule], rel=1e-6)


def test_fleet_rules_equal_the_in_process_scores_of_one_window_holding_every_row(
    fleet_scores: dict[str, dict[str, float]], data: dict[str, Any]
) -> None:
    from opentelemetry.metrics import NoOpMeter

    processor = DriftProcessor(
        NoOpMeter("test"), attributes=dict, feature_names=FEATURES, reference=data["reference"],
        config=DriftConfig(window=len(data["live"]), min_samples=1),
    )  # fmt: skip
    processor.append(data["live"])
    scores = {(s.feature, s.method): s.score for s in processor.scores()}
    for rule in ("psi", "jensen_shannon"):
        expected = {feature: scores[(feature, rule)] for feature in FEATURES}
        assert expected == pytest.approx(fleet_scores[rule], rel=1e-6)


@pytest.mark.parametrize(("rule", "factor"), [("psi", 10.0), ("jensen_shannon", 3.0), ("ks", 3.0)])
def test_the_shifted_feature_stands_far_above_the_rest(
    fleet_scores: dict[str, dict[str, float]], rule: str, factor: float
) -> None:
    others = max(v for f, v in fleet_scores[rule].items() if f != SHIFTED)
    assert fleet_scores[rule][SHIFTED] > factor * others, fleet_scores[rule]


def test_scores_are_finite_and_the_binned_ks_is_close_to_the_exact_one(
    fleet_scores: dict[str, dict[str, float]], cli: dict[str, dict[str, Any]]
) -> None:
    assert all(np.isfinite(v) for s in fleet_scores.values() for v in s.values())
    # Ten bins see the empirical CDFs at nine points: the binned distance is at most the
    # exact one, and close to it for a location shift.
    for feature in FEATURES:
        assert fleet_scores["ks"][feature] <= cli[feature]["statistic"] + 1e-12
    assert fleet_scores["ks"][SHIFTED] == pytest.approx(cli[SHIFTED]["statistic"], abs=0.02)


def test_the_dashboards_fleet_drift_row_answers_on_the_real_prometheus(
    fleet: str, fleet_scores: dict[str, dict[str, float]]
) -> None:
    dashboard = json.loads(
        (REPO / "collector" / "grafana" / "dashboards" / "otel-mlmon.json").read_text()
    )
    panels = dashboard["panels"]
    start = next(i for i, p in enumerate(panels) if p["title"] == "Fleet drift")
    end = next((i for i, p in enumerate(panels) if i > start and p["type"] == "row"), len(panels))
    queries = {
        f"{panel['title']} {target['refId']}": target["expr"]
        .replace("$service", ".*")
        .replace("$model", ".*")
        .replace("$__rate_interval", "5s")
        for panel in panels[start + 1 : end]
        for target in panel["targets"]
    }
    features = {name: set(_query(fleet, expr)) for name, expr in queries.items()}
    assert {name: set(FEATURES) for name in queries} == features
