"""One process of the fleet in ``test_fleet_prometheus.py``: a model service as users write one.

``python fleet_worker.py REFERENCE.npy ROWS.npy``: ``configure()`` (its Prometheus port from
``OTEL_EXPORTER_PROMETHEUS_PORT``), a ``ModelMonitor`` with the reference, one ``predict`` per
row, then ``ready`` on stdout, and it serves its metrics until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading

import numpy as np

import otel_mlmon


def main(reference_path: str, rows_path: str) -> None:
    telemetry = otel_mlmon.configure(service_name="fleet-drift-test")
    reference = np.load(reference_path)
    monitor = otel_mlmon.ModelMonitor(
        "fleet",
        version="1.0",
        task="regression",
        drift=otel_mlmon.Drift(
            feature_names=[f"x{i}" for i in range(reference.shape[1])], reference=reference
        ),
    )
    for row in np.load(rows_path):
        with monitor.predict(features=row) as prediction:
            prediction.record(float(np.nansum(row)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    telemetry.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
