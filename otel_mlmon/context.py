"""Request and model context, one ``ContextVar`` per key.

Binding returns a token and resetting takes it back, as structlog's ``bind_contextvars`` /
``reset_contextvars`` do: a value never leaks out of the request or prediction that set it, and
asyncio tasks and ``contextvars.copy_context()`` thread hand-offs see the values of their parent.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Final, NamedTuple


class ModelContext(NamedTuple):
    """The model a prediction in progress belongs to."""

    name: str
    version: str


_request_id: Final[ContextVar[str | None]] = ContextVar("otel_mlmon.request_id", default=None)
_model: Final[ContextVar[ModelContext | None]] = ContextVar("otel_mlmon.model", default=None)


def get_request_id() -> str | None:
    """The request ID of the request being handled, or ``None`` outside one."""
    return _request_id.get()


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make ``request_id`` current; pass the token to :func:`reset_request_id` when done."""
    return _request_id.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    """Restore the request ID that was current before the matching bind."""
    _request_id.reset(token)


def get_model() -> ModelContext | None:
    """The model of the prediction in progress (inside ``ModelMonitor.predict()``), or ``None``."""
    return _model.get()


def bind_model(model: ModelContext) -> Token[ModelContext | None]:
    """Make ``model`` current; pass the token to :func:`reset_model` when done."""
    return _model.set(model)


def reset_model(token: Token[ModelContext | None]) -> None:
    """Restore the model that was current before the matching bind."""
    _model.reset(token)
