"""The ring window: bounded, ordered, thread-safe, and counting non-finite values once."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from otel_mlmon.drift.window import RingWindow


def _rows(start: int, stop: int, width: int = 3) -> np.ndarray:
    return np.repeat(np.arange(start, stop, dtype=float)[:, None], width, axis=1)


def _sorted_first_column(window: RingWindow) -> list[float]:
    snapshot, _ = window.snapshot()
    return sorted(snapshot[:, 0].tolist())


def test_window_keeps_only_the_last_capacity_rows() -> None:
    window = RingWindow(4, 3)
    for i in range(10):
        window.append_row(_rows(i, i + 1)[0])
    assert len(window) == 4
    assert _sorted_first_column(window) == [6.0, 7.0, 8.0, 9.0]


def test_batch_append_wraps_around_the_end_of_the_ring() -> None:
    window = RingWindow(5, 3)
    window.append_rows(_rows(0, 3))
    window.append_rows(_rows(3, 7))
    assert _sorted_first_column(window) == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_batch_larger_than_the_window_keeps_its_last_rows() -> None:
    window = RingWindow(3, 3)
    window.append_rows(_rows(0, 10))
    assert _sorted_first_column(window) == [7.0, 8.0, 9.0]


def test_partial_window_snapshot_holds_only_written_rows() -> None:
    window = RingWindow(10, 3)
    window.append_rows(_rows(0, 2))
    snapshot, _ = window.snapshot()
    assert snapshot.shape == (2, 3)


def test_version_changes_on_every_append_and_clear() -> None:
    window = RingWindow(3, 3)
    versions = [window.version]
    window.append_row([1.0, 2.0, 3.0])
    versions.append(window.version)
    window.append_rows(_rows(0, 2))
    versions.append(window.version)
    window.clear()
    versions.append(window.version)
    assert len(set(versions)) == 4
    assert len(window) == 0


def test_non_finite_values_are_counted_exactly_once_even_when_overwritten() -> None:
    window = RingWindow(4, 2)
    expected = 0
    for i in range(25):
        row = [float(i), np.nan if i % 3 == 0 else 1.0]
        expected += i % 3 == 0
        window.append_row(row)
    window.append_rows(np.array([[np.inf, 1.0]] * 9))  # larger than the ring
    expected += 9
    assert expected == window.take_non_finite()
    assert window.take_non_finite() == 0


def test_a_row_numpy_cannot_convert_is_not_appended() -> None:
    window = RingWindow(2, 3)
    window.append_rows(_rows(0, 2))
    with pytest.raises(ValueError):
        window.append_row([1.0, "word", 3.0])
    assert len(window) == 2


def test_invalid_dimensions_raise() -> None:
    with pytest.raises(ValueError):
        RingWindow(0, 3)


def test_concurrent_appends_lose_no_row() -> None:
    window = RingWindow(100_000, 2)

    def writer(value: float) -> None:
        for _ in range(5_000):
            window.append_row([value, value])

    threads = [threading.Thread(target=writer, args=(float(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot, _ = window.snapshot()
    assert len(window) == 20_000
    assert {
        float(v): int(c)
        for v, c in zip(*np.unique(snapshot[:, 0], return_counts=True), strict=True)
    } == {0.0: 5_000, 1.0: 5_000, 2.0: 5_000, 3.0: 5_000}


def test_memory_stays_bounded_over_a_million_rows() -> None:
    window = RingWindow(1_000, 20)
    batch = np.random.default_rng(0).normal(size=(1_000, 20))
    row = batch[0]
    nbytes = window.nbytes
    tracemalloc.start()
    try:
        for _ in range(100):  # 100,000 single rows
            for _ in range(1_000):
                window.append_row(row)
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(900):  # 900,000 rows in batches
            window.append_rows(batch)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert nbytes == window.nbytes
    assert after - before < 64 * 1024, "the window grew with traffic"
    assert len(window) == 1_000


@pytest.mark.parametrize("batch", [1, 3, 7, 25])
def test_spare_rows_are_not_in_the_window_and_every_row_reaches_the_observer_once(
    batch: int,
) -> None:
    window = RingWindow(4, 3, spare=8)
    seen: list[float] = []
    window.observe(lambda block: seen.extend(block[:, 0].tolist()))
    for start in range(0, 100, batch):
        window.append_rows(_rows(start, min(start + batch, 100)))
        # The window is the last 4 rows written, whatever the spare rows hold.
        last = min(start + batch, 100)
        assert list(range(max(0, last - 4), last)) == _sorted_first_column(window)
    window.flush()
    assert list(range(100)) == sorted(seen)


def test_rows_wait_for_the_observer_until_the_spare_rows_are_used_up() -> None:
    window = RingWindow(4, 3, spare=8)
    blocks: list[int] = []
    window.observe(lambda block: blocks.append(block.shape[0]))
    for i in range(12):
        window.append_row(_rows(i, i + 1)[0])
    assert [] == blocks  # 12 rows fit: nothing counted on the writing thread yet
    window.append_row(_rows(12, 13)[0])
    assert 12 == sum(blocks)  # the 13th row would overwrite an uncounted one: counted first
    assert 12 * 3 == window.nbytes // 8


def test_observe_hands_waiting_rows_to_the_previous_observer_first() -> None:
    window = RingWindow(4, 1)
    window.append_rows(np.arange(3.0).reshape(-1, 1))
    first: list[float] = []
    second: list[float] = []
    window.observe(lambda block: first.extend(block[:, 0].tolist()))  # none before: it gets them
    window.append_row([3.0])
    window.observe(lambda block: second.extend(block[:, 0].tolist()))
    window.append_row([4.0])
    window.flush()
    assert ([0.0, 1.0, 2.0, 3.0], [4.0]) == (first, second)
