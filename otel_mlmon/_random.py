"""The one random generator otel-mlmon draws from: request IDs, prediction-id nonces and event
sampling.

A generator of its own, never the ``random`` module's: an application that seeds ``random``
for a reproducible experiment or test gets the same stream with otel-mlmon as without it.
Seeded from the operating system, and again in every forked child, so gunicorn or uvicorn
workers forked from one parent never repeat each other's bits. Its methods are C calls, safe
from any thread. Not for secrets: the key of signed ids comes from ``secrets`` (see
``monitor._keys``).
"""

from __future__ import annotations

import random
from typing import Final

from otel_mlmon import _fork

_generator: Final = random.Random()

#: ``getrandbits(k)``: a non-negative int of ``k`` random bits.
getrandbits: Final = _generator.getrandbits
#: ``uniform_0_1()``: a float in [0, 1).
uniform_0_1: Final = _generator.random


@_fork.after_fork_in_child
def _reseed_in_child() -> None:
    _generator.seed()  # from os.urandom: the parent's state would give the parent's bits
