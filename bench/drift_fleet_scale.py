"""Fleet drift at scale: series count and rule evaluation time as the fleet grows
(docs/scaling.md).

A generator stands in for N processes of one model (20 numeric features, 10 bins): it serves
what N otel-mlmon processes would (``ml_drift_live_values_total`` and
``ml_drift_live_values_at_or_below_total`` growing by multinomial draws on the reference's
shares, the two reference gauges), each process told apart by a ``process`` label. Debian's
Prometheus scrapes it and evaluates the shipped ``otel-mlmon-drift.rules.yml``. To measure the
rules on a full hour of data without waiting an hour, the samples carry timestamps that start
one hour in the past and advance 30 s per scrape (a 30 s scrape interval) until they reach the
present; then the fleet-drift group's evaluation time is read from Prometheus' own metrics.

Run: ``.venv/bin/python -m bench.drift_fleet_scale`` (``--quick``: one small fleet). Not a test.
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench import quick

RULES = (
    Path(__file__).resolve().parents[1] / "collector/prometheus/rules/otel-mlmon-drift.rules.yml"
)
FEATURES = 20
BINS = 10
STEP_S = 30  # simulated scrape interval
SCRAPE_S = 2  # real one, while the simulated clock catches up
VALUES_PER_STEP = 20  # live values per feature per process per simulated scrape


class Fleet:
    """The metrics of ``processes`` processes, advanced one simulated scrape per read."""

    def __init__(self, processes: int, start_ms: int) -> None:
        rng = np.random.default_rng(processes)
        self.rng = rng
        self.shares = rng.dirichlet(np.full(BINS, 20.0), size=FEATURES)
        self.reference = np.round(self.shares * 1_000).astype(np.int64)
        self.counts = np.zeros((processes, FEATURES, BINS + 1), np.int64)  # + missing bin
        self.time_ms = start_ms
        self.lock = threading.Lock()
        self.body = b""
        model = 'ml_model_name="m",ml_model_version="1"'
        self.prefixes: dict[str, list[str]] = {"live": [], "below": [], "ref": [], "refbelow": []}
        for p in range(processes):
            for f in range(FEATURES):
                base = f'{model},ml_feature_name="f{f}",ml_drift_reference_id="r{f}",process="p{p}"'
                for b in range(BINS + 1):
                    labels = f'{{{base},ml_drift_bin="{b if b < BINS else "missing"}"}} '
                    self.prefixes["live"].append("ml_drift_live_values_total" + labels)
                    self.prefixes["ref"].append("ml_drift_reference_values" + labels)
                    if b < BINS:
                        self.prefixes["below"].append(
                            "ml_drift_live_values_at_or_below_total" + labels
                        )
                        self.prefixes["refbelow"].append(
                            "ml_drift_reference_values_at_or_below" + labels
                        )

    def series(self) -> int:
        return sum(len(v) for v in self.prefixes.values())

    def render(self) -> bytes:
        with self.lock:
            now_ms = int(time.time() * 1000)
            if self.body and now_ms - self.time_ms < STEP_S * 1000:
                return self.body  # caught up: one new sample per 30 s, the same one until then
            self.time_ms = min(self.time_ms + STEP_S * 1000, now_ms)
            processes = self.counts.shape[0]
            draws = self.rng.multinomial(VALUES_PER_STEP, self.shares, size=(processes, FEATURES))
            self.counts[:, :, :BINS] += draws
            live = self.counts.reshape(-1)
            below = np.cumsum(self.counts[:, :, :BINS], axis=2).reshape(-1)
            reference = np.broadcast_to(
                np.concatenate([self.reference, np.zeros((FEATURES, 1), np.int64)], axis=1),
                self.counts.shape,
            ).reshape(-1)
            ref_below = np.broadcast_to(np.cumsum(self.reference, axis=1),
                                        (processes, FEATURES, BINS)).reshape(-1)  # fmt: skip
            stamp = f" {self.time_ms}\n"
            lines = []
            for name, values in (("live", live), ("below", below), ("ref", reference),
                                 ("refbelow", ref_below)):  # fmt: skip
                pairs = zip(self.prefixes[name], values.tolist(), strict=True)
                lines.extend(prefix + str(value) + stamp for prefix, value in pairs)
            self.body = "".join(lines).encode()
            return self.body


def _serve(fleet: Fleet) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = fleet.render()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=60) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


def _own_metrics(url: str) -> dict[str, float]:
    """Prometheus' own metrics (it does not scrape itself here): head series, and the
    fleet-drift rule group's last evaluation time and duration."""
    found: dict[str, float] = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:
        for line in response.read().decode().splitlines():
            group = ';otel-mlmon.fleet-drift"' in line
            if line.startswith("prometheus_tsdb_head_series "):
                found["head_series"] = float(line.split()[-1])
            elif group and line.startswith("prometheus_rule_group_last_duration_seconds"):
                found["last_duration"] = float(line.split()[-1])
            elif group and line.startswith("prometheus_rule_group_last_evaluation_timestamp"):
                found["last_evaluation"] = float(line.split()[-1])
    return found


def measure(processes: int, evaluations: int) -> dict[str, float]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed: apt-get install -y prometheus")
    fleet = Fleet(processes, int((time.time() - 3_600) * 1000))
    server, port = _serve(fleet)
    with tempfile.TemporaryDirectory() as workdir:
        listen = f"127.0.0.1:{_free_port()}"
        config = Path(workdir) / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s",
                       "evaluation_interval": "20s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "fleet",
                                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
        }))  # fmt: skip
        prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
             f"--web.listen-address={listen}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://{listen}"
        try:
            while fleet.time_ms < int(time.time() * 1000) - 2 * STEP_S * 1000:
                time.sleep(1)  # the simulated hour is being scraped in
            durations: list[float] = []
            seen = None
            while len(durations) < evaluations:
                time.sleep(5)
                own = _own_metrics(url)
                stamp = own.get("last_evaluation")
                if stamp is not None and stamp != seen and own.get("last_duration") is not None:
                    seen = stamp
                    durations.append(own["last_duration"])
            head = _own_metrics(url)["head_series"]
            scrape = float(_query(url, "scrape_duration_seconds")[0]["value"][1])
            psi = _query(url, "ml:drift_psi:1h")
            samples = _query(url, 'ml:drift_live_samples:1h{ml_feature_name="f0"}')
            return {
                "processes": processes,
                "exported series": fleet.series(),
                "head series": head,
                "rule evaluation (s)": statistics.median(durations),
                "scrape (s)": scrape,
                "scores": len(psi),
                "live values per feature per hour": float(samples[0]["value"][1]),
            }
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=60)
            server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small fleet")
    args, _ = parser.parse_known_args()
    sizes = (5,) if args.quick or quick() else (10, 50, 200)
    print("# Fleet drift at scale: 20 features x 10 bins per process, 1 h window, 30 s scrapes\n")
    print("| processes | series exported | series in Prometheus' head | fleet-drift rule group "
          "evaluation (median, s) | scrape of the generator (s) | scores recorded |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for processes in sizes:
        r = measure(processes, 3 if args.quick else 5)
        print(f"| {processes:,} | {r['exported series']:,.0f} | {r['head series']:,.0f} | "
              f"{r['rule evaluation (s)']:.3f} | {r['scrape (s)']:.2f} | {r['scores']:.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
