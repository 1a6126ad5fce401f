"""Quickstart: a scikit-learn model recording predictions on the embedded default.

Trains a classifier on the iris data set that ships with scikit-learn, records predictions (with
a delayed label for part of them) and serves the metrics on the Prometheus endpoint while it runs.

    python examples/quickstart.py --duration 30
"""

from __future__ import annotations

import argparse
import random
import time

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import otel_mlmon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run")
    parser.add_argument("--rate", type=float, default=50.0, help="predictions per second")
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=None,
        help="port of the Prometheus endpoint (default 9464 or OTEL_EXPORTER_PROMETHEUS_PORT)",
    )
    args = parser.parse_args()

    telemetry = otel_mlmon.configure(
        service_name="iris-quickstart", prometheus_port=args.prometheus_port
    )
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    monitor = otel_mlmon.ModelMonitor(
        "iris", version="1.0.0", task="classification", classes=[0, 1, 2]
    )
    monitor.model_loaded(
        framework="sklearn", metrics={"train_accuracy": model.score(data.data, data.target)}
    )
    if telemetry.prometheus_address:
        host, port = telemetry.prometheus_address
        print(f"metrics: curl http://{host}:{port}/metrics", flush=True)

    deadline = time.monotonic() + args.duration
    count = 0
    try:
        while time.monotonic() < deadline:
            row = random.randrange(len(data.data))
            features = data.data[row : row + 1]
            with monitor.predict(features=features) as p:
                probabilities = model.predict_proba(features)[0]
                p.record(int(probabilities.argmax()), float(probabilities.max()))
            if random.random() < 0.5:  # half the labels come back
                monitor.record_label(p.id, int(data.target[row]))
            count += 1
            time.sleep(1.0 / args.rate)
    except KeyboardInterrupt:
        pass
    print(f"recorded {count} predictions", flush=True)
    telemetry.shutdown()


if __name__ == "__main__":
    main()
