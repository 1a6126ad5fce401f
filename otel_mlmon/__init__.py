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

from typing import TYPE_CHECKING

from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.monitor import ModelMonitor, Prediction
from otel_mlmon.version import __version__

if TYPE_CHECKING:
    from otel_mlmon.sdk import Telemetry, configure, default_views

__all__ = [
    "ConfigurationError",
    "ModelMonitor",
    "Prediction",
    "Telemetry",
    "__version__",
    "configure",
    "default_views",
]

# configure() and its companions live in sdk.py, the one module that imports the OpenTelemetry
# SDK and its exporters (about half of the package's import time). They are loaded on first
# use, so a library or an application that brings its own providers never pays for them.
_LAZY = frozenset({"Telemetry", "configure", "default_views"})


if not TYPE_CHECKING:  # type checkers see the imports above, not a catch-all __getattr__

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            from otel_mlmon import sdk

            value = getattr(sdk, name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
