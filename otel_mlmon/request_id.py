"""Request IDs: the ``X-Request-ID`` header, checked, generated and bound for one request.

An incoming ID is honoured when it is well formed: 1 to :data:`MAX_LENGTH` characters from
``A-Z a-z 0-9 . _ : -``. Anything else (too long, empty, spaces, quotes, control characters,
non-ASCII) is replaced by a fresh ID, so a client cannot inject log lines, headers or unbounded
strings through it; an absent header gets a fresh ID too. A generated ID is 32 lower-case hex
digits.

The HTTP integrations (:mod:`otel_mlmon.instrumentation`) call :func:`resolve_request_id` once
per request, echo the result on the response, put it on the server span as ``ml.request.id``
and hold it in :func:`otel_mlmon.context.get_request_id` for the request's duration, bound and
reset with tokens. Use :func:`bound_request_id` to do the same in other servers (a queue
consumer, a gRPC handler).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from otel_mlmon import _random
from otel_mlmon.context import bind_request_id, reset_request_id

#: The header read from requests and written on responses (HTTP header names are
#: case-insensitive; ASGI and WSGI servers hand them over lower-cased or as ``HTTP_X_REQUEST_ID``).
HEADER: Final = "X-Request-ID"
#: Longest incoming ID honoured; a longer one is replaced.
MAX_LENGTH: Final = 128

_WELL_FORMED: Final = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_LENGTH}}}")


def new_request_id() -> str:
    """A fresh request ID: 32 lower-case hex digits (128 random bits)."""
    # Not uuid4/os.urandom: a request ID is no secret, and getrandbits costs well under a
    # microsecond where urandom costs a system call (_random reseeds in a forked child).
    return f"{_random.getrandbits(128):032x}"


def is_well_formed(value: str) -> bool:
    """Whether ``value`` would be honoured as an incoming request ID."""
    return _WELL_FORMED.fullmatch(value) is not None


def resolve_request_id(incoming: str | bytes | None) -> tuple[str, bool]:
    """The ID to use for a request carrying header value ``incoming`` (``None`` if absent).

    Returns ``(request_id, honoured)``: ``honoured`` is ``True`` when the incoming value was
    well formed and is used as is, ``False`` when a fresh ID was generated. Never raises.
    """
    if incoming:
        if isinstance(incoming, bytes):
            # Latin-1 maps every byte to one character; non-ASCII then fails the pattern.
            incoming = incoming.decode("latin-1")
        if len(incoming) <= MAX_LENGTH and _WELL_FORMED.fullmatch(incoming) is not None:
            return incoming, True
    return new_request_id(), False


@contextmanager
def bound_request_id(incoming: str | bytes | None = None) -> Iterator[str]:
    """Resolve ``incoming`` and make the ID current for the ``with`` block; yields the ID.

    The previous value is restored with the token on exit, also when the block raises.
    """
    request_id, _ = resolve_request_id(incoming)
    token = bind_request_id(request_id)
    try:
        yield request_id
    finally:
        reset_request_id(token)
