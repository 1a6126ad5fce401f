"""Feature and prediction drift: statistics (pure numpy), a ring-buffer window, the processor
that reports them as OpenTelemetry observable gauges, the per-bin counters of fleet drift, and
the offline comparison behind ``otel-mlmon drift``.

.. code-block:: python

    monitor = otel_mlmon.ModelMonitor("iris", version="1.2.0",
                                      feature_names=names, reference=X_train)

Rooms, leaves first: ``statistics`` and ``ks`` (the statistics), ``encoding`` (tables to
float64 matrices), ``reference`` (the prepared reference and scoring), ``window`` (the ring),
``config``, ``intake`` (rows into the ring), ``transitions`` (drift events), ``bins`` and
``fleet`` (fleet-drift counters), ``processor`` (the in-process facade); ``offline``,
``csv_input`` and ``command`` make up the CLI.

Importing this package imports numpy and the OpenTelemetry API only (never scipy or pandas).
"""

from otel_mlmon.drift.config import DriftConfig
from otel_mlmon.drift.processor import DriftProcessor
from otel_mlmon.drift.reference import Score
from otel_mlmon.drift.statistics import METHODS, DriftMethod

__all__ = ["METHODS", "DriftConfig", "DriftMethod", "DriftProcessor", "Score"]
