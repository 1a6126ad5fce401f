"""What ``opentelemetry-instrument`` runs before and after it loads the instrumentors: the
``opentelemetry_pre_instrument`` / ``opentelemetry_post_instrument`` entry points ``otel_mlmon``.

Before: the stable HTTP semantic conventions become the contrib instrumentations' choice
(unless the user set ``OTEL_SEMCONV_STABILITY_OPT_IN``, or disabled both of our instrumentors),
so that the contrib Flask and FastAPI instrumentations, whichever loads first, emit
``http.server.request.duration`` in seconds with bounded attributes, as FastAPI's native
telemetry does.

While the instrumentors load, the instrumentor base class's "Attempting to instrument while
already instrumented" warning is held back: our configurator has instrumented system metrics
and our Flask instrumentor the contrib Flask instrumentation on purpose, so their entry points
finding them instrumented is the expected case, not something for the user to act on.
"""

from __future__ import annotations

import logging
from typing import Final

from otel_mlmon import _env
from otel_mlmon._guard import internal_error
from otel_mlmon.instrumentation import _layer

#: The logger of ``opentelemetry.instrumentation.instrumentor.BaseInstrumentor``.
INSTRUMENTOR_LOGGER: Final = "opentelemetry.instrumentation.instrumentor"
ALREADY_INSTRUMENTED: Final = "Attempting to instrument while already instrumented"
OUR_INSTRUMENTORS: Final = frozenset({"otel_mlmon_fastapi", "otel_mlmon_flask"})


class _ExpectedRepeat(logging.Filter):
    """Drops the base class's "already instrumented" warning, and nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != ALREADY_INSTRUMENTED


_expected_repeat: Final = _ExpectedRepeat()


def before_instrumentors() -> None:
    """``opentelemetry_pre_instrument`` entry point."""
    try:
        logging.getLogger(INSTRUMENTOR_LOGGER).addFilter(_expected_repeat)
        disabled = set(_env.env_list("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"))
        if "*" not in disabled and not OUR_INSTRUMENTORS <= disabled:
            _layer.prefer_stable_http_conventions()
    except Exception as exc:
        internal_error("opentelemetry-instrument pre-instrument hook", exc)


def after_instrumentors() -> None:
    """``opentelemetry_post_instrument`` entry point."""
    logging.getLogger(INSTRUMENTOR_LOGGER).removeFilter(_expected_repeat)
