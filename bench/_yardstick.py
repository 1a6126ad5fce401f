"""Issue 18's yardstick: a keyed BLAKE2b-64 of 28 bytes, the unit its budgets are stated in.

The issue gives absolute budgets ("reading p.id <= 2 us", "record_label <= 5 us") on a machine
where this call took 0.8 us. Timed in the same rounds as what it measures, the budgets hold as
ratios (2.5x and 6.25x it) on a slower or busier machine alike.
"""

from __future__ import annotations

import hashlib

from bench import median_ratio

#: What the yardstick took on issue 18's machine.
YARDSTICK_US = 0.8
#: The yardstick's key and message.
KEY, MESSAGE = bytes(range(32)), bytes(28)


def loop_yardstick(n: int) -> None:
    """A keyed BLAKE2b-64 of 28 bytes, ``n`` times: issue 18's unit of cost."""
    blake2b, key, message = hashlib.blake2b, KEY, MESSAGE
    for _ in range(n):
        blake2b(message, key=key, digest_size=8).digest()


def yardstick_target(t: dict[str, list[float]], name: str, target_us: float) -> tuple[float, bool]:
    """``name``'s cost over the yardstick's (median of same-round ratios), and whether that
    stays within ``target_us`` on issue 18's machine (``target_us / YARDSTICK_US``)."""
    ratio = median_ratio(t[name], t["yardstick"])
    return ratio, ratio <= target_us / YARDSTICK_US
