"""otel-mlmon: OpenTelemetry-native telemetry for machine-learning model services.

.. code-block:: python

    import otel_mlmon

    telemetry = otel_mlmon.configure(service_name="iris-api")
    monitor = otel_mlmon.ModelMonitor("iris", version="1.2.0")
    with monitor.predict(features=x) as p:
        p.record(prediction=y, confidence=0.93)
    monitor.record_label(p.id, true_label)
    telemetry.shutdown()

Only the names in ``__all__`` are public; every other module and name may change.
"""

from otel_mlmon.drift import DriftConfig
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.instrumentation import instrument_fastapi, instrument_flask
from otel_mlmon.logs import configure_logging, get_logger
from otel_mlmon.monitor import ModelMonitor, Prediction
from otel_mlmon.sdk import Telemetry, configure, default_views
from otel_mlmon.version import __version__

__all__ = [
    "ConfigurationError",
    "DriftConfig",
    "ModelMonitor",
    "Prediction",
    "Telemetry",
    "__version__",
    "configure",
    "configure_logging",
    "default_views",
    "get_logger",
    "instrument_fastapi",
    "instrument_flask",
]
