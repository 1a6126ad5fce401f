"""Errors otel-mlmon raises: only for programmer mistakes, at start-up, never from telemetry."""


class ConfigurationError(ValueError):
    """A setting given to otel-mlmon is invalid.

    Raised at construction or ``configure()`` time, never while recording: a monitor that was
    built without error does not raise into the request path.

    .. versionadded:: 0.1.0
    """
