"""Environment variables of otel-mlmon itself.

The standard ``OTEL_*`` variables (``OTEL_SDK_DISABLED``, ``OTEL_SERVICE_NAME``,
``OTEL_EXPORTER_OTLP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_TRACES_SAMPLER`` ...) are read
by :func:`otel_mlmon.configure` and the OpenTelemetry SDK as the specification defines them.
These add what the specification has no name for. Keyword arguments override them; a malformed
value warns and falls back to the default.
"""

from typing import Final

OTEL_MLMON_MAX_CLASSES: Final = "OTEL_MLMON_MAX_CLASSES"
"""Default bound on distinct ``ml.prediction.class`` values per monitor (default 100)."""

OTEL_MLMON_PROMETHEUS: Final = "OTEL_MLMON_PROMETHEUS"
"""``true``/``false``: serve the Prometheus scrape endpoint even when OTLP is configured
(default: serve it only when no OTLP endpoint is configured)."""

OTEL_MLMON_PROMETHEUS_DIR: Final = "OTEL_MLMON_PROMETHEUS_DIR"
"""Directory under which the workers of a multi-process server share their metrics with the one
serving the Prometheus port (default ``$TMPDIR/otel-mlmon-<uid>``; created with mode 0700).
Point it at a writable volume when ``/tmp`` is read-only."""

OTEL_MLMON_CONSOLE_SPANS: Final = "OTEL_MLMON_CONSOLE_SPANS"
"""``true`` to print finished spans on stdout (default ``false``)."""

OTEL_MLMON_GPU_METRICS: Final = "OTEL_MLMON_GPU_METRICS"
"""``false`` to skip the NVML GPU gauges (default ``true``; absent anyway without a GPU)."""

OTEL_MLMON_PROCESS_METRICS: Final = "OTEL_MLMON_PROCESS_METRICS"
"""``false`` to skip the ``process.*`` gauges (default ``true``)."""

OTEL_MLMON_STRICT: Final = "OTEL_MLMON_STRICT"
"""``true`` re-raises errors inside otel-mlmon's own telemetry code instead of logging and
swallowing them. For otel-mlmon's test suite and for debugging; never in production."""

OTEL_MLMON_LABEL_KEY: Final = "OTEL_MLMON_LABEL_KEY"
"""The secret (16+ characters) that signs prediction ids; every replica that joins labels
shares it. Unset: a key file shared by the processes of one host and user (never logged)."""

OTEL_MLMON_LABEL_KEY_PREVIOUS: Final = "OTEL_MLMON_LABEL_KEY_PREVIOUS"
"""The key before the last rotation: ids it signed still verify (never logged)."""

OTEL_MLMON_FLEET_VERSIONS: Final = "OTEL_MLMON_FLEET_VERSIONS"
"""Comma-separated versions of the model served elsewhere in the fleet during a rollout (the
stable one and the canary): their prediction ids verify here too, so labels and outcomes that
reach this replica count for the version that made the prediction."""
