"""Request and model context, one ``ContextVar`` per key.

Binding returns a token and resetting takes it back, as structlog's ``bind_contextvars`` /
``reset_contextvars`` do: a value never leaks out of the request or prediction that set it, and
asyncio tasks and ``contextvars.copy_context()`` thread hand-offs see the values of their parent.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Final, NamedTuple

from opentelemetry.trace import Span


class ModelContext(NamedTuple):
    """The model a prediction in progress belongs to."""

    name: str
    version: str


class RequestScope:
    """The HTTP request being handled, as the web-framework integrations see it.

    ``span`` is the request's server span (the framework's own), ``monitor`` the only
    ``ModelMonitor`` whose predictions describe it (``None``: any). ``ModelMonitor.predict``
    puts the model's attributes and the prediction's ID on that span.
    """

    __slots__ = ("monitor", "request_id", "span")

    def __init__(self, span: Span, request_id: str, monitor: object | None) -> None:
        self.span = span
        self.request_id = request_id
        self.monitor = monitor


_request_scope: Final[ContextVar[RequestScope | None]] = ContextVar(
    "otel_mlmon.request_scope", default=None
)
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


def get_request_scope() -> RequestScope | None:
    """The :class:`RequestScope` of the request being handled, or ``None`` outside one."""
    return _request_scope.get()


def bind_request_scope(scope: RequestScope) -> Token[RequestScope | None]:
    """Make ``scope`` current; pass the token to :func:`reset_request_scope` when done."""
    return _request_scope.set(scope)


def reset_request_scope(token: Token[RequestScope | None]) -> None:
    """Restore the request scope that was current before the matching bind."""
    _request_scope.reset(token)
