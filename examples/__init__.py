"""The example services, installed with the package as ``otel_mlmon.examples`` (setup.py).

Run them from a checkout (``python examples/fastapi_app.py``, their docstrings say how) or
from an installed wheel (``python -m otel_mlmon.examples.fastapi_app``); ``otel-mlmon demo``
drives traffic at the FastAPI one.
"""
