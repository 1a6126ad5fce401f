"""What a recorded output needs besides counting: confidence checks, the failing call's span.

Model libraries put the input into their exception messages, so a failing prediction's span
carries its type and frames only, unless messages were asked for.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING

import numpy as np
from opentelemetry.trace import Span, Status, StatusCode

from otel_mlmon import semconv
from otel_mlmon.monitor._attributes import ModelAttributes, scalar

if TYPE_CHECKING:
    from otel_mlmon.monitor._recorder import Recorder


def record_exception(span: Span, exc: BaseException, error_type: str, messages: bool) -> None:
    """The exception event, ``error.type`` and ERROR status on the prediction's span.

    Model libraries put the input into their messages (scikit-learn: "Expected 2D array, got
    1D array instead: array=[...]"), so by default neither the message nor the traceback's last
    line, which repeats it, is recorded: only the type and the frames.
    """
    span.set_attribute(semconv.ERROR_TYPE, error_type)
    if messages:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        return
    frames = "".join(traceback.format_tb(exc.__traceback__))
    span.add_event(
        "exception",
        {
            "exception.type": error_type,
            "exception.stacktrace": f"Traceback (most recent call last):\n{frames}{error_type}",
        },
    )
    span.set_status(Status(StatusCode.ERROR))


def valid_confidence(value: object) -> float | None:
    value = scalar(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if 0.0 <= value <= 1.0 else None  # NaN fails both comparisons


def record_confidences(
    recorder: Recorder, attributes: ModelAttributes, confidence: object, size: int
) -> None:
    scores = confidence.tolist() if isinstance(confidence, np.ndarray) else confidence
    if not isinstance(scores, (list, tuple)) or len(scores) != size:
        recorder.reject(semconv.REJECT_CONFIDENCE_LENGTH)
        return
    record, base = recorder.instruments.confidence.record, attributes.base
    rejected = 0
    for raw in scores:
        score = valid_confidence(raw)
        if score is None:
            rejected += 1
        else:
            record(score, base)
    if rejected:
        recorder.reject(semconv.REJECT_CONFIDENCE_INVALID, rejected)
