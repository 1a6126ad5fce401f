"""What :func:`otel_mlmon.logs.configure_logging` set that the other modules read per record.

One instance, replaced field by field under the configuration lock; reads are plain attribute
reads (a record never waits on configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass
class Settings:
    """The logging bridge's current settings, with their defaults."""

    #: Fraction of ``prediction_made`` events :func:`~otel_mlmon.logs.log_prediction` keeps.
    sample_predictions: float = 1.0
    #: Whether :func:`~otel_mlmon.logs.log_prediction` logs raw features.
    include_features: bool = False
    #: Whether exception messages appear on lines and records (they may carry request data).
    record_exception_messages: bool = False

    def reset(self) -> None:
        """Back to the defaults (for tests that configured logging)."""
        defaults = Settings()
        self.sample_predictions = defaults.sample_predictions
        self.include_features = defaults.include_features
        self.record_exception_messages = defaults.record_exception_messages


settings: Final = Settings()
