"""Fleet drift: live values counted per bin of the reference, for backends to sum.

Counts per bin add up exactly across processes, and PSI, Jensen-Shannon and a binned KS follow
from counts alone, so with the reference's bins frozen each process only counts and Prometheus
(or Mimir, Thanos) sums and scores (``collector/prometheus/rules/otel-mlmon-drift.rules.yml``).

The bins are the ones PSI and Jensen-Shannon use in process and in ``otel-mlmon drift``:
a numeric feature's reference-quantile bins ``(-inf, e1], ..., (ek, inf)``; a categorical
feature's Jensen-Shannon cells (the categories holding at least one bin's share of the
reference, then one cell for every other category, unseen and overflow ones included). Missing
values count in a bin of their own, ``missing``. Each bin is an ``ml.drift.bin`` attribute: its
index, which names no feature value (no raw data leaves the process).

Counting is vectorised over blocks of rows: the ring window hands each block of rows to
:meth:`LiveBins.count` once, when it counts missing values: at collection, or when rows that
waited for one are about to be overwritten (the window holds ``DriftConfig.fleet_buffer``
windows of rows for that), never per row on the hot path. A feature's bins carry
``ml.drift.reference.id``, a digest of the bins and the reference counts, so processes with
another reference never add into the same series.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from otel_mlmon import semconv
from otel_mlmon.drift.reference import CategoricalReference, NumericReference, Reference

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: ``ml.drift.bin`` of the missing values.
MISSING_BIN: Final = "missing"


@dataclass(frozen=True)
class _Feature:
    """One exported feature: where its counts sit in the flat arrays, and its labels."""

    name: str
    column: int
    offset: int
    cells: int  # bins without the missing one
    numeric: bool
    reference_id: str
    bin_labels: tuple[str, ...]  # cells, then "missing"


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:12]


class LiveBins:
    """Cumulative counts of live values per reference bin, for some features of one stream.

    Args:
        reference: the prepared reference (its schema, bins and counts).
        columns: indexes of the features to count (order kept).

    Thread-safe: :meth:`count` runs under the ring window's lock and this object's own; the
    observations read a copy taken under the latter.
    """

    def __init__(self, reference: Reference, columns: Sequence[int]) -> None:
        schema = reference.schema
        features: list[_Feature] = []
        reference_counts: list[FloatArray] = []
        numeric_edges: list[FloatArray] = []
        lookups: list[npt.NDArray[np.intp]] = []
        offset = 0
        for column in columns:
            prepared = reference.features[column]
            numeric = isinstance(prepared, NumericReference)
            if isinstance(prepared, NumericReference):
                cells, usable = prepared.counts, prepared.sorted.size
                shape = prepared.edges.tobytes()
                numeric_edges.append(prepared.edges)
            else:
                cells, usable = prepared.pooled(prepared.counts), int(prepared.counts.sum())
                encoder = schema.encoders[column]
                keys = encoder.categories() if encoder is not None else []
                shape = "\0".join(keys[c] for c in prepared.frequent).encode()
                lookups.append(_cell_lookup(prepared))
            counts = np.append(cells, reference.rows - usable)  # the missing bin last
            kind = b"numeric" if numeric else b"categorical"
            labels = (*(str(i) for i in range(cells.size)), MISSING_BIN)
            features.append(
                _Feature(
                    schema.names[column],
                    column,
                    offset,
                    cells.size,
                    numeric,
                    _digest(kind, shape, counts.tobytes()),
                    labels,
                )
            )
            reference_counts.append(counts)
            offset += cells.size + 1
        self.features: tuple[_Feature, ...] = tuple(features)
        self.reference_counts: FloatArray = (
            np.concatenate(reference_counts) if reference_counts else np.zeros(0)
        )
        self._counts: IntArray = np.zeros(offset, np.int64)
        self._lock = threading.Lock()
        ordered = [f for f in features if f.numeric]
        self._numeric_columns = np.array([f.column for f in ordered], np.intp)
        # The numeric features' usable bins, packed: where each starts, and where they and
        # the missing bins sit in the counts.
        starts = np.cumsum([0, *(f.cells for f in ordered)])
        self._numeric = list(zip(starts[:-1].tolist(), numeric_edges, strict=True))
        self._numeric_size = int(starts[-1])
        self._numeric_firsts = starts[:-1]
        self._numeric_cells = np.concatenate(
            [np.arange(f.offset, f.offset + f.cells) for f in ordered] or [np.zeros(0, np.intp)]
        )
        self._numeric_missing = np.array([f.offset + f.cells for f in ordered], np.intp)
        categorical = [f for f in features if not f.numeric]
        self._categorical = list(zip(categorical, lookups, strict=True))

    def count(self, rows: FloatArray) -> None:
        """Add a ``k x width`` block of encoded rows (missing values NaN) to the counts."""
        found = self._bin(rows)
        with self._lock:
            self._counts += found

    def _bin(self, rows: FloatArray) -> IntArray:
        found = np.zeros(self._counts.size, np.int64)
        if self._numeric:
            # One sort of each numeric column (numpy's vectorised sort is the cheapest way to
            # bin many values on a few edges), then the count at or below each edge is one
            # search per edge: bin i holds e_i < x <= e_(i+1).
            columns = rows.T[self._numeric_columns]
            finite = np.isfinite(columns)
            usable = np.count_nonzero(finite, axis=1).tolist()
            if not finite.all():
                columns[~finite] = np.nan  # +-inf is missing too; NaN sorts last
            columns.sort(axis=1)
            # Values at or below each edge, then all usable values, feature after feature; the
            # per-bin counts are the differences within each feature.
            cumulative = np.empty(self._numeric_size, np.int64)
            for (start, edges), column, n in zip(self._numeric, columns, usable, strict=True):
                cumulative[start : start + edges.size] = np.searchsorted(
                    column[:n], edges, side="right"
                )
                cumulative[start + edges.size] = n
            cells = np.diff(cumulative, prepend=0)
            cells[self._numeric_firsts] = cumulative[self._numeric_firsts]
            found[self._numeric_cells] = cells
            found[self._numeric_missing] = rows.shape[0] - np.asarray(usable, np.int64)
        for feature, lookup in self._categorical:
            codes = rows[:, feature.column]
            finite = np.isfinite(codes)
            cells = lookup[np.minimum(codes[finite].astype(np.intp), lookup.size - 1)]
            found[feature.offset : feature.offset + feature.cells] += np.bincount(
                cells, minlength=feature.cells
            )
            found[feature.offset + feature.cells] += int(codes.size - np.count_nonzero(finite))
        return found

    def snapshot(self) -> IntArray:
        """A copy of the counts (flat, in :attr:`features` order)."""
        with self._lock:
            return self._counts.copy()

    def reset(self) -> None:
        """Back to zero (a new model version starts its own series)."""
        with self._lock:
            self._counts[:] = 0

    def reset_after_fork(self) -> None:
        """A forked child starts from zero with a fresh lock: the parent reports its counts."""
        self._lock = threading.Lock()
        self._counts[:] = 0

    def observations(
        self, counts: IntArray | FloatArray, base: Mapping[str, str], *, cumulative: bool
    ) -> Iterator[tuple[float, dict[str, str]]]:
        """``(value, attributes)`` per feature and bin of ``counts`` (live or reference).

        ``cumulative``: the values at or below each numeric bin (usable values only), for the
        binned KS; categorical features have no order and yield nothing then.
        """
        for feature in self.features:
            if cumulative and not feature.numeric:
                continue
            block = counts[feature.offset : feature.offset + feature.cells + 1]
            values = np.cumsum(block[:-1]) if cumulative else block
            for value, label in zip(values.tolist(), feature.bin_labels, strict=False):
                yield (
                    float(value),
                    {
                        **base,
                        semconv.ML_FEATURE_NAME: feature.name,
                        semconv.ML_DRIFT_BIN: label,
                        semconv.ML_DRIFT_REFERENCE_ID: feature.reference_id,
                    },
                )


def _cell_lookup(reference: CategoricalReference) -> npt.NDArray[np.intp]:
    """Category code -> Jensen-Shannon cell; the last entry (every larger code too: categories
    first seen after the reference) is the pooled cell."""
    pooled = reference.frequent.size
    size = max(int(reference.frequent.max()) + 1 if pooled else 0, reference.counts.size) + 1
    lookup = np.full(size, pooled, np.intp)
    lookup[reference.frequent] = np.arange(pooled)
    return lookup
