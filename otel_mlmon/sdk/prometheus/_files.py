"""The files workers share: prometheus_client's multi-process format, read by its own merge.

Each worker writes what its :class:`~._reader.ScrapeReader` collected into files of the layout
prometheus_client's ``MultiProcessCollector`` reads (``counter_<id>.db``, ``histogram_<id>.db``,
``gauge_liveall_<pid>.db``, each a ``MmapedDict``), and its exemplars beside them
(``exemplars_<id>.json``). The port owner merges them with ``MultiProcessCollector.merge``,
with prometheus_client's semantics:

- counters and histograms are summed over every worker that ever wrote, dead ones included, so
  a total never goes backwards when a worker dies or is recycled, and histograms stay exact;
- gauges carry a ``pid`` label and disappear with their worker (``liveall``).

A file is written whole under a temporary name and renamed into place, so a reader never sees
half of one. The files of dead workers are folded into ``counter_archive.db`` and
``histogram_archive.db`` (``merge(accumulate=False)``, prometheus_client's own recipe for writing
merged data back), so the directory does not grow with every recycled worker.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

ARCHIVE_ID: Final = "archive"
_KEPT_TYPES: Final = ("counter", "histogram")


def _key(metric_name: str, sample_name: str, labels: Mapping[str, str], help_text: str) -> str:
    return str(mmap_key(metric_name, sample_name, list(labels), list(labels.values()), help_text))


def _write_db(path: Path, values: Mapping[str, float]) -> None:
    """Write ``values`` as a whole new MmapedDict file at ``path``."""
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    table = MmapedDict(str(partial))  # type: ignore[no-untyped-call]
    try:
        for key, value in values.items():
            table.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    finally:
        table.close()  # type: ignore[no-untyped-call]
    os.replace(partial, path)


def _histogram_values(family: Metric, values: dict[str, float]) -> None:
    """Buckets as per-bucket counts (the file format; the merge accumulates them again) and
    ``_sum``; ``_count`` is left out, the merge derives it from the buckets."""
    cumulative: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = defaultdict(list)
    for sample in family.samples:
        if sample.name.endswith("_bucket"):
            rest = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
            cumulative[rest].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_sum"):
            values[_key(family.name, sample.name, sample.labels, family.documentation)] = (
                sample.value
            )
    for rest, buckets in cumulative.items():
        previous = 0.0
        for bound, count in sorted(buckets):
            labels = {**dict(rest), "le": _le(bound)}
            key = _key(family.name, f"{family.name}_bucket", labels, family.documentation)
            values[key] = count - previous
            previous = count


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


def _merge(files: list[str], accumulate: bool = True) -> list[Metric]:
    """prometheus_client's merge of multi-process files."""
    return list(MultiProcessCollector.merge(files, accumulate))  # type: ignore[no-untyped-call]


def write_snapshot(directory: Path, member_id: str, pid: int, families: Iterable[Metric]) -> None:
    """Write one worker's families (and their exemplars) into ``directory``."""
    by_type: dict[str, dict[str, float]] = {"counter": {}, "histogram": {}, "gauge": {}}
    exemplars: list[list[object]] = []
    for family in families:
        if family.type == "histogram":
            _histogram_values(family, by_type["histogram"])
        for sample in family.samples:
            if family.type == "counter" and sample.name.endswith("_total"):
                name, kind = family.name, "counter"
            elif family.type in ("gauge", "info", "unknown"):
                # target_info (an info family) becomes a gauge of 1 per live worker.
                name, kind = sample.name, "gauge"
            else:
                continue
            key = _key(name, sample.name, sample.labels, family.documentation)
            by_type[kind][key] = sample.value
        for sample in family.samples:
            if sample.exemplar is not None:
                exemplar = sample.exemplar
                exemplars.append(
                    [sample.name, sample.labels, exemplar.labels, exemplar.value,
                     exemplar.timestamp]
                )  # fmt: skip
    _write_db(directory / f"counter_{member_id}.db", by_type["counter"])
    _write_db(directory / f"histogram_{member_id}.db", by_type["histogram"])
    _write_db(directory / f"gauge_liveall_{pid}.db", by_type["gauge"])
    partial = directory / f".exemplars_{member_id}.json.partial"
    partial.write_text(json.dumps(exemplars))
    os.replace(partial, directory / f"exemplars_{member_id}.json")


def _exemplar_key(
    sample_name: str, labels: Mapping[str, str]
) -> tuple[str, frozenset[tuple[str, str]], float | None]:
    le = labels.get("le")
    rest = frozenset((k, v) for k, v in labels.items() if k != "le")
    return sample_name, rest, None if le is None else float(le)


def _read_exemplars(directory: Path) -> dict[object, Exemplar]:
    latest: dict[object, Exemplar] = {}
    seen: dict[object, float] = {}
    for path in directory.glob("exemplars_*.json"):
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):  # a worker retired between the glob and the read
            continue
        for sample_name, labels, exemplar_labels, value, timestamp in entries:
            key = _exemplar_key(sample_name, labels)
            if seen.get(key, -1.0) <= (timestamp or 0.0):
                seen[key] = timestamp or 0.0
                latest[key] = Exemplar(exemplar_labels, value, timestamp)
    return latest


def merged(directory: Path) -> list[Metric]:
    """Every worker's families merged by prometheus_client, with the latest exemplar of each
    bucket and counter over all live workers."""
    families = _merge(glob.glob(str(directory / "*.db")))
    exemplars = _read_exemplars(directory)
    if exemplars:
        for family in families:
            for index, sample in enumerate(family.samples):
                exemplar = exemplars.get(_exemplar_key(sample.name, sample.labels))
                if exemplar is not None:
                    family.samples[index] = sample._replace(exemplar=exemplar)
    return families


def member_ids(directory: Path) -> set[str]:
    """Ids of the workers that left counter or histogram files, dead or alive."""
    found = set()
    for kind in _KEPT_TYPES:
        for path in directory.glob(f"{kind}_*.db"):
            member = path.name[len(kind) + 1 : -len(".db")]
            if member != ARCHIVE_ID:
                found.add(member)
    return found


def retire(directory: Path, member_id: str, pid: int, pid_in_use: bool) -> None:
    """Fold a dead worker's counters and histograms into the archive and remove its files.

    Its gauges go (prometheus_client's ``mark_process_dead``), unless ``pid_in_use``: a live
    worker got the same pid and the gauge file is now that worker's.
    """
    for kind in _KEPT_TYPES:
        dead = directory / f"{kind}_{member_id}.db"
        if not dead.exists():
            continue
        archive = directory / f"{kind}_{ARCHIVE_ID}.db"
        files = [str(dead)] + ([str(archive)] if archive.exists() else [])
        values: dict[str, float] = {}
        for family in _merge(files, accumulate=False):
            for sample in family.samples:
                key = _key(family.name, sample.name, sample.labels, family.documentation)
                values[key] = sample.value
        _write_db(archive, values)
        # A crash between these two lines counts the dead worker twice: the window is a
        # system call wide, and the total still never goes backwards.
        dead.unlink()
    with contextlib.suppress(FileNotFoundError):
        (directory / f"exemplars_{member_id}.json").unlink()
    if not pid_in_use:
        mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
