"""Feature and prediction drift: statistics (pure numpy), a ring-buffer window, and the
processor that reports them as OpenTelemetry observable gauges.

.. code-block:: python

    monitor = otel_mlmon.ModelMonitor("iris", version="1.2.0",
                                      feature_names=names, reference=X_train)

Importing this package imports numpy and the OpenTelemetry API only (never scipy or pandas).
"""

from otel_mlmon.drift.config import DriftConfig
from otel_mlmon.drift.processor import DriftProcessor
from otel_mlmon.drift.reference import Score
from otel_mlmon.drift.statistics import METHODS, DriftMethod

__all__ = ["METHODS", "DriftConfig", "DriftMethod", "DriftProcessor", "Score"]
