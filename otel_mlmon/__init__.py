"""otel-mlmon: OpenTelemetry-native telemetry for machine-learning model services.

.. code-block:: python

    import otel_mlmon

    telemetry = otel_mlmon.configure(service_name="iris-api")
    monitor = otel_mlmon.ModelMonitor("iris", version="1.2.0")
    with monitor.predict(features=x) as p:
        p.record(prediction=y, confidence=0.93)
    monitor.record_label(p.id, true_label)
    monitor.record_outcome(p.id, "revenue", 12.5)   # declared in Outcomes(kinds=...)
    telemetry.shutdown()

Only the names in ``__all__`` are public; every other module and name may change.
"""

from typing import TYPE_CHECKING

from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor import (
    Classes,
    Drift,
    Labels,
    ModelMonitor,
    Outcomes,
    Prediction,
    ShadowMonitor,
    ShadowPrediction,
)
from otel_mlmon.version import __version__

if TYPE_CHECKING:
    from otel_mlmon.drift import DriftConfig
    from otel_mlmon.instrumentation import instrument_fastapi, instrument_flask
    from otel_mlmon.logs import configure_logging, get_logger
    from otel_mlmon.sdk import Telemetry, configure, default_views

__all__ = [
    "Classes",
    "ConfigurationError",
    "Drift",
    "DriftConfig",
    "Labels",
    "ModelMonitor",
    "Outcomes",
    "Prediction",
    "ShadowMonitor",
    "ShadowPrediction",
    "Telemetry",
    "__version__",
    "configure",
    "configure_logging",
    "default_views",
    "get_logger",
    "instrument_fastapi",
    "instrument_flask",
]

# These are loaded on first use: sdk.py is the one module that imports the OpenTelemetry SDK and
# its exporters, logs.py brings structlog and its instrumentation, and the drift package its
# statistics; a library, or an application that brings its own providers or does not use drift,
# never pays for them at import.
_LAZY: dict[str, str] = {
    "DriftConfig": "otel_mlmon.drift",
    "Telemetry": "otel_mlmon.sdk",
    "configure": "otel_mlmon.sdk",
    "configure_logging": "otel_mlmon.logs",
    "default_views": "otel_mlmon.sdk",
    "get_logger": "otel_mlmon.logs",
    "instrument_fastapi": "otel_mlmon.instrumentation",
    "instrument_flask": "otel_mlmon.instrumentation",
}


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all __getattr__

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
