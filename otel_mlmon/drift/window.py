"""A preallocated, thread-safe ring of rows: the live drift window.

Appending copies the rows into a fixed ``capacity x width`` float64 array under a short lock:
O(width) per row, no allocation, no statistics. Memory is ``capacity * width * 8`` bytes for the
life of the buffer, whatever the traffic.

Non-finite values (NaN, +-inf: the encoding of a missing value) are stored as they are and
counted off the hot path: :meth:`RingWindow.take_non_finite` counts the rows written since its
last call, and a row about to be overwritten before it was counted is counted in bulk first,
so every written value is counted exactly once at an amortised O(width) per row. The same
blocks of rows go to an optional ``observer`` (the fleet-drift bin counters), so every row
reaches it exactly once too, in blocks, never one call per append.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
#: Receives each block of rows once, under the window's lock: it must be quick and not raise.
Observer = Callable[[FloatArray], None]


class RingWindow:
    """The last ``capacity`` rows of ``width`` float64 values.

    ``spare`` more rows are stored (and not part of the window) so that rows reach the
    observer in blocks at collection rather than when their slot is reused: up to
    ``capacity + spare`` rows can be written between two counts before one happens on the
    writing thread. ``append`` and ``snapshot`` may be called from any thread; each holds the
    lock only for the copy.
    """

    __slots__ = (
        "_count",
        "_data",
        "_lock",
        "_next",
        "_non_finite",
        "_observer",
        "_size",
        "_unchecked",
        "_version",
        "capacity",
        "width",
    )

    def __init__(self, capacity: int, width: int, spare: int = 0) -> None:
        if capacity < 1 or width < 1 or spare < 0:
            raise ValueError(
                f"a window needs capacity and width >= 1, spare >= 0, not {capacity}, {width}, "
                f"{spare}"
            )
        self.capacity = capacity
        self.width = width
        self._size = capacity + spare
        self._data: FloatArray = np.full((self._size, width), np.nan)
        self._next = 0
        self._count = 0
        self._version = 0
        self._unchecked = 0
        self._non_finite = 0
        self._observer: Observer | None = None
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held by the ring's storage (constant)."""
        return self._data.nbytes

    @property
    def version(self) -> int:
        """Changes whenever rows are appended or the window is cleared."""
        return self._version

    def __len__(self) -> int:
        return self._count

    def append_row(self, row: npt.ArrayLike) -> None:
        """Append one row of ``width`` values (anything numpy assigns to a float64 row).

        Raises ``ValueError``/``TypeError`` from numpy when a value is not a number; nothing
        is appended then.
        """
        with self._lock:
            if self._unchecked == self._size:
                self._count_unchecked()
            index = self._next
            try:
                self._data[index] = row
            except (TypeError, ValueError):
                # numpy may have written part of the row over the slot's oldest row: blank it
                # rather than keep half of each.
                self._data[index] = np.nan
                raise
            self._next = index + 1 if index + 1 < self._size else 0
            if self._count < self.capacity:
                self._count += 1
            self._unchecked += 1
            self._version += 1

    def append_rows(self, rows: FloatArray) -> None:
        """Append a ``k x width`` batch in order; only the last ``capacity`` rows are kept."""
        k = rows.shape[0]
        if k == 0:
            return
        with self._lock:
            size = self._size
            if k > size:
                # Rows that never reach the ring are still counted once.
                self._counted(rows[:-size])
                rows = rows[-size:]
                k = size
            if self._unchecked + k > size:
                self._count_unchecked()
            start = self._next
            first = min(k, size - start)
            self._data[start : start + first] = rows[:first]
            if first < k:
                self._data[: k - first] = rows[first:]
            self._next = (start + k) % size
            self._count = min(self._count + k, self.capacity)
            self._unchecked += k
            self._version += 1

    def _count_unchecked(self) -> None:
        # Caller holds the lock. The unchecked rows are the last `_unchecked` written.
        n = self._unchecked
        if n == 0:
            return
        end = self._next
        start = end - n
        if start >= 0:
            self._counted(self._data[start:end])
        else:
            self._counted(self._data[start:])
            self._counted(self._data[:end])
        self._unchecked = 0

    def _counted(self, block: FloatArray) -> None:
        # Caller holds the lock: each row passes here exactly once.
        if not block.shape[0]:
            return
        self._non_finite += int(np.count_nonzero(~np.isfinite(block)))
        if self._observer is not None:
            self._observer(block)

    def observe(self, observer: Observer | None) -> None:
        """Hand every row counted from now on to ``observer`` (``None``: stop). Rows written
        and not yet counted go to the previous observer first, or, when there was none, to
        ``observer``."""
        with self._lock:
            if self._observer is not None:
                self._count_unchecked()
            self._observer = observer

    def flush(self) -> None:
        """Count the rows written since the last count now (missing values, observer)."""
        with self._lock:
            self._count_unchecked()

    def take_non_finite(self) -> int:
        """Non-finite values written since the last call (each value counted once)."""
        with self._lock:
            self._count_unchecked()
            count, self._non_finite = self._non_finite, 0
            return count

    def snapshot(self) -> tuple[FloatArray, int]:
        """A copy of the rows in the window (in no particular order) and the version copied."""
        with self._lock:
            if self._size == self._count:
                return self._data.copy(), self._version
            start = self._next - self._count  # the window: the last `_count` rows written
            if start >= 0:
                return self._data[start : self._next].copy(), self._version
            return np.concatenate((self._data[start:], self._data[: self._next])), self._version

    def clear(self) -> None:
        """Forget every row (non-finite values written so far stay counted)."""
        with self._lock:
            self._count_unchecked()
            self._data.fill(np.nan)
            self._next = self._count = 0
            self._version += 1

    def reset_after_fork(self) -> None:
        """Give a forked child a fresh lock: the parent's may have been held at fork."""
        self._lock = threading.Lock()
