"""The attribute dicts of one model version, built once and reused on every record.

Swapped as a whole by ``update_model()``, so a reader never sees half an update. The class
table maps a predicted value to its ``ml.prediction.class`` attributes and is bounded in count
(past the bound, values are reported as ``_OTHER``) and in size: a class's text is cut to the
attribute value length limit (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, default
:data:`DEFAULT_VALUE_LENGTH`), and the cut is counted under ``ml.monitor.rejected_inputs``
with reason ``value_truncated``. Only the cut text is kept, never the value passed in.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from otel_mlmon import _env, semconv
from otel_mlmon.context import ModelContext

if TYPE_CHECKING:
    from otel_mlmon.monitor.labels import IdCodec

_MAX_ERROR_TYPES: Final = 64
#: Characters kept of a user value put in an attribute when OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
#: is unset (the OpenTelemetry default is no limit, which lets one request keep megabytes).
DEFAULT_VALUE_LENGTH: Final = 256
_VALUE_LENGTH_LIMIT: Final = "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"
# Class values kept as they are (small by nature); anything else is kept as its cut text.
_SMALL: Final[frozenset[type]] = frozenset({int, float, bool})


def value_length_limit() -> int:
    """Characters kept of a user value in an attribute (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``)."""
    return _env.env_int(_VALUE_LENGTH_LIMIT, DEFAULT_VALUE_LENGTH, minimum=1)


def scalar(value: object) -> object:
    """A plain Python value for a numpy scalar, so ``1`` and ``np.int64(1)`` join one class."""
    return value.item() if isinstance(value, np.generic) else value


def invalid_class(value: object) -> bool:
    """None, NaN and infinities are no class (NaN would take a new class slot every time)."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


class ModelAttributes:
    """Attribute dicts of one model version, and its bounded class table."""

    __slots__ = (
        "base",
        "classes",
        "classification",
        "errors",
        "ids",
        "known",
        "lock",
        "max_classes",
        "max_length",
        "model",
        "overflow",
        "regression",
        "role",
        "span",
        "task",
    )

    def __init__(
        self,
        name: str,
        version: str,
        task: str,
        max_classes: int,
        known: Sequence[Hashable] | None = None,
        role: str | None = None,
    ) -> None:
        self.model = ModelContext(name, version)
        self.task = task
        #: ``ml.model.role`` of every series (``shadow``), or None for a served version.
        self.role = role
        self.base: Mapping[str, str] = {
            semconv.ML_MODEL_NAME: name,
            semconv.ML_MODEL_VERSION: version,
            **({semconv.ML_MODEL_ROLE: role} if role else {}),
        }
        self.span: Mapping[str, str] = {**self.base, semconv.ML_MODEL_TASK: task}
        self.overflow: Mapping[str, str] = {
            **self.base,
            semconv.ML_PREDICTION_CLASS: semconv.OVERFLOW_CLASS,
        }
        # The task as flags, so the recording path tests a bool rather than compares strings.
        self.classification = task == "classification"
        self.regression = task == "regression"
        self.max_classes = max_classes
        self.max_length = value_length_limit()
        self.classes: dict[Hashable, Mapping[str, str]] = {}
        self.errors: dict[str, Mapping[str, str]] = {}
        self.lock = threading.Lock()
        #: The known class values (plain Python scalars), or None.
        self.known: tuple[Hashable, ...] | None = None
        #: Makes and verifies this version's prediction ids (set by the monitor).
        self.ids: IdCodec | None = None
        if known is not None:
            self.known = tuple(scalar(value) for value in known)
            self.max_classes = len(self.known)
            for value in self.known:
                self.for_class(value)

    def bounded(self, value: object) -> tuple[Hashable, bool]:
        """``value`` as the class table keys it, and whether it was cut: small scalars as
        they are, anything else as its text, cut to :attr:`max_length` characters."""
        if type(value) in _SMALL:
            return value, False
        text = value if isinstance(value, str) else str(value)
        if len(text) > self.max_length:
            return text[: self.max_length], True
        return text, False

    def for_class(self, value: object) -> tuple[Mapping[str, str], bool]:
        """Attributes for predicted class ``value`` and whether it fell into ``_OTHER``.

        Callers count a cut value themselves (see :meth:`bounded`); the fast lane of the
        recorder looks ``classes`` up directly with plain values first.
        """
        key, _ = self.bounded(value)
        found = self.classes.get(key)
        if found is not None:
            return found, False
        if len(self.classes) >= self.max_classes:  # full: no lock needed to say so
            return self.overflow, True
        with self.lock:
            if key in self.classes:
                return self.classes[key], False
            if len(self.classes) >= self.max_classes:
                return self.overflow, True
            attributes = {**self.base, semconv.ML_PREDICTION_CLASS: str(key)}
            self.classes[key] = attributes
            return attributes, False

    def for_error(self, error_type: str) -> Mapping[str, str]:
        """Attributes for a failed call raising ``error_type``, bounded like classes."""
        attributes = self.errors.get(error_type)
        if attributes is not None:
            return attributes
        error_type = error_type[: self.max_length]
        with self.lock:
            if len(self.errors) >= _MAX_ERROR_TYPES:
                error_type = semconv.OTHER_ERROR_TYPE
            attributes = self.errors.setdefault(
                error_type, {**self.base, semconv.ERROR_TYPE: error_type}
            )
            return attributes

    def rejected(self, reason: str) -> Mapping[str, str]:
        """Attributes of ``ml.monitor.rejected_inputs`` for ``reason``."""
        return {**self.base, semconv.ML_REJECTION_REASON: reason}

    def reset_after_fork(self) -> None:
        """A fresh lock for the child: the parent's may have been held at fork."""
        self.lock = threading.Lock()
