"""Reading what the logging bridge wrote and exported."""

from __future__ import annotations

import io
import json
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord

from otel_mlmon.testing import InMemoryTelemetry


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as one JSON object."""
    return [json.loads(line) for line in out.getvalue().splitlines()]


def record_of(telemetry: InMemoryTelemetry, body: str) -> ReadableLogRecord:
    """The one exported record whose body is ``body``."""
    (found,) = [r for r in telemetry.logs() if r.log_record.body == body]
    return found


def attributes_of(telemetry: InMemoryTelemetry, body: str) -> dict[str, Any]:
    """The attributes of the one exported record whose body is ``body``."""
    return dict(record_of(telemetry, body).log_record.attributes or {})
