"""The files of the bundled stack, and what the tests derive from them: the layout
docker-compose.yml mounts them in, the Prometheus names of otel-mlmon's metrics, and the PromQL
of the dashboard and the alert rules.

Shared by the static checks in this folder and by the end-to-end tests in ``tests/e2e``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from otel_mlmon import semconv

REPO: Final = Path(__file__).resolve().parents[2]
COLLECTOR: Final = REPO / "collector"
OTELCOL_CONFIG: Final = COLLECTOR / "otelcol-config.yaml"
OTELCOL_DEBUG_OVERLAY: Final = COLLECTOR / "otelcol-debug.yaml"
OTELCOL_MODULE: Final = COLLECTOR / "otelcol-mlmon"
PROMETHEUS_CONFIG: Final = COLLECTOR / "prometheus" / "prometheus.yml"
#: Alerting and recording rules (``*.rules.yml``, what Prometheus loads) and their promtool unit
#: tests (``*.test.yml``) side by side, as the monitoring mixins keep them.
RULES_DIR: Final = COLLECTOR / "prometheus" / "rules"
RULES_GLOB: Final = "*.rules.yml"
RULE_TESTS_GLOB: Final = "*.test.yml"
ALERTMANAGER_CONFIG: Final = COLLECTOR / "alertmanager" / "alertmanager.yml"
DATASOURCES: Final = COLLECTOR / "grafana" / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDER: Final = COLLECTOR / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARD: Final = COLLECTOR / "grafana" / "dashboards" / "otel-mlmon.json"
LOKI_CONFIG: Final = COLLECTOR / "loki" / "loki.yml"
COMPOSE: Final = REPO / "docker-compose.yml"
BUILD_SCRIPT: Final = COLLECTOR / "build.sh"


def cache_bin() -> Path:
    """Where collector/build.sh puts the binaries of the end-to-end test."""
    root = os.environ.get("OTEL_MLMON_CACHE") or str(Path.home() / ".cache" / "otel-mlmon")
    return Path(root) / "bin"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_files() -> list[Path]:
    """Every rules file of the repo (``collector/prometheus/rules/*.rules.yml``)."""
    return sorted(RULES_DIR.glob(RULES_GLOB))


def rule_test_files() -> list[Path]:
    """Every promtool unit-test file of the repo (``collector/prometheus/rules/*.test.yml``)."""
    return sorted(RULES_DIR.glob(RULE_TESTS_GLOB))


# --- the layout docker-compose.yml mounts ------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One volume of a compose service: a repo path (bind mount) or a named volume."""

    source: str
    target: str

    @property
    def repo_path(self) -> Path | None:
        """The repo file or folder of a bind mount; None for a named volume."""
        return REPO / self.source if self.source.startswith(".") else None


def compose_service(name: str) -> dict[str, Any]:
    return load_yaml(COMPOSE)["services"][name]  # type: ignore[no-any-return]


def mounts(service: str) -> list[Mount]:
    """The volumes of a compose service, short (``src:dst[:mode]``) or long syntax."""
    found = []
    for volume in compose_service(service).get("volumes", []):
        if isinstance(volume, dict):
            found.append(Mount(str(volume["source"]), str(volume["target"])))
        else:
            source, target = volume.split(":")[:2]
            found.append(Mount(source, target))
    return found


def in_container(root: Path, path: str) -> Path:
    """Where the container path ``path`` lies in a layout reproduced under ``root``."""
    return root / path.lstrip("/")


def reproduce_mounts(service: str, root: Path) -> None:
    """Lay out under ``root`` what the container of ``service`` sees: each bind-mounted repo
    file or folder copied to its container path, each named volume an empty folder."""
    for mount in mounts(service):
        target = in_container(root, mount.target)
        source = mount.repo_path
        if source is None:
            target.mkdir(parents=True, exist_ok=True)
        elif source.is_dir():
            shutil.copytree(source, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def compose_command(service: str, root: Path) -> list[str]:
    """The ``command`` of a compose service with every container path placed under ``root``
    (``--config.file=/etc/prometheus/prometheus.yml`` -> ``--config.file=<root>/etc/...``)."""
    args = []
    for arg in compose_service(service).get("command", []):
        flag, equals, value = arg.partition("=")
        if equals and value.startswith("/"):
            args.append(f"{flag}={in_container(root, value)}")
        elif arg.startswith("/"):
            args.append(str(in_container(root, arg)))
        else:
            args.append(arg)
    return args


def command_flag(command: list[str], flag: str) -> str:
    """The value of ``--flag=value`` in a command line (KeyError when absent)."""
    for arg in command:
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    raise KeyError(f"{flag} is not in {command}")


# --- Prometheus names: one set on both paths ---------------------------------------------------

#: UCUM units spelled out as a name suffix by both exporters; units in braces add nothing.
_UNIT_SUFFIXES: Final = {"s": "seconds", "By": "bytes", "Cel": "celsius", "W": "watts"}

#: The process.* gauges of opentelemetry-instrumentation-system-metrics in Prometheus, two of
#: them under the names configure()'s default Views give them (otel_mlmon.resources
#: PROCESS_METRIC_RENAMES), by their OpenTelemetry names.
PROCESS_METRICS: Final = {
    "process_cpu_utilization": "process.cpu.utilization",
    "process_memory_usage_bytes": "process.memory.usage",
    "process_memory_virtual_bytes": "process.memory.virtual",
    "process_threads": "process.threads",
    "process_open_file_descriptors": "process.open_file_descriptors",
}
PROCESS_METRIC_NAMES: Final = frozenset(PROCESS_METRICS)

#: The web frameworks' own HTTP server metrics (FastAPI's native telemetry, Flask's contrib
#: instrumentation), with the attributes of the stable HTTP conventions.
HTTP_SERVER_DURATION: Final = "http_server_request_duration_seconds"
HTTP_SERVER_ACTIVE_REQUESTS: Final = "http_server_active_requests"
HTTP_LABELS: Final = frozenset({
    "http_request_method", "http_route", "http_response_status_code", "error_type",
    "url_scheme", "network_protocol_name", "network_protocol_version",
})  # fmt: skip

#: Gauges of unit 1 outside the conventions table: the collector's exporter names them
#: ``..._ratio`` too.
_OTHER_RATIO_GAUGES: Final = frozenset({"process_cpu_utilization"})


def prometheus_name(spec: semconv.MetricSpec) -> str:
    """The Prometheus name of a metric of the conventions, the same on both paths.

    Dots become underscores; a unit becomes a suffix (``_seconds``, ``_bytes``, ...); counters
    end in ``_total``. A histogram's series add ``_bucket``, ``_sum`` and ``_count``. Unit ``1``
    adds nothing: the SDK's embedded exporter adds no ``_ratio``, and on the collector path
    Prometheus drops the one the collector's exporter appends to gauges (:func:`ratio_gauges`).
    """
    name = spec.name.replace(".", "_")
    suffix = _UNIT_SUFFIXES.get(spec.unit)
    if suffix and not name.endswith(f"_{suffix}"):
        name = f"{name}_{suffix}"
    if spec.instrument in ("Counter", "ObservableCounter"):  # monotonic sums
        name += "_total"
    return name


def ratio_gauges() -> frozenset[str]:
    """The gauges of unit 1 (true ratios): ``<name>_ratio`` out of the collector's exporter,
    renamed to ``<name>`` by the collector job's metric_relabel_configs in prometheus.yml."""
    ours = {prometheus_name(spec) for spec in semconv.METRICS
            if spec.unit == "1" and spec.instrument == "ObservableGauge"}  # fmt: skip
    return frozenset(ours | _OTHER_RATIO_GAUGES)


def known_series_names() -> dict[str, str]:
    """Every series name of otel-mlmon's metrics, the process gauges and the HTTP server
    histogram, mapped to its OpenTelemetry metric's name."""
    names: dict[str, str] = {}
    for spec in semconv.METRICS:
        base = prometheus_name(spec)
        if spec.instrument == "Histogram":
            for part in ("_bucket", "_sum", "_count"):
                names[base + part] = spec.name
        else:
            names[base] = spec.name
    names.update(PROCESS_METRICS)
    for part in ("_bucket", "_sum", "_count"):
        names[HTTP_SERVER_DURATION + part] = "http.server.request.duration"
    names[HTTP_SERVER_ACTIVE_REQUESTS] = "http.server.active_requests"
    return names


#: Labels of every series on both paths besides its metric's attributes: job (the service) and
#: instance (the process), and the histogram bucket bound.
SCRAPE_LABELS: Final = frozenset({"job", "instance", "le"})

#: What only the default path has (docs/stack.md, "One set of names on both paths"): the
#: embedded endpoint serves every worker of a server on one port, each gauge one series per
#: live worker told apart by this label (counters and histograms are summed over workers) ...
WORKER_LABEL: Final = "pid"
#: ... and counts its own failures to take its port, which no other path has.
DEFAULT_PATH_ONLY_SERIES: Final = frozenset({"ml_monitor_endpoint_errors_total"})

#: Instruments that Prometheus types as gauges (non-monotonic sums are gauges there).
_GAUGE_INSTRUMENTS: Final = frozenset({"ObservableGauge", "ObservableUpDownCounter",
                                       "UpDownCounter", "Gauge"})  # fmt: skip


def gauge_series() -> frozenset[str]:
    """The series names of the gauges among :func:`known_series_names`: the ones that carry
    :data:`WORKER_LABEL` on the default path."""
    ours = {prometheus_name(spec) for spec in semconv.METRICS
            if spec.instrument in _GAUGE_INSTRUMENTS}  # fmt: skip
    return frozenset(ours | PROCESS_METRIC_NAMES | {HTTP_SERVER_ACTIVE_REQUESTS})


_METRIC_TOKEN: Final = re.compile(r"\b((?:ml|hw|process|http)_[a-z0-9_]+)\b")
#: A recording rule's name, ``level:metric:operations`` (``ml:model_accuracy:1h``).
_RECORDED_TOKEN: Final = re.compile(r"(?<![\w:])([a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+)")
_SELECTOR: Final = re.compile(r"\{([^{}]*)\}")
_STRING: Final = re.compile(r'"[^"]*"')
_RANGE: Final = re.compile(r"\[[^\[\]]*\]")
_GROUPING: Final = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_MATCHER_LABEL: Final = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def _bare(expr: str) -> str:
    """``expr`` without strings, selectors' matchers, ranges and grouping clauses: what is left
    names series (string arguments, such as label_replace's label names, are not series)."""
    return _GROUPING.sub("", _RANGE.sub("", _SELECTOR.sub("", _STRING.sub('""', expr))))


def metric_names(expr: str) -> set[str]:
    """The series names (``ml_*``, ``hw_*``, ``process_*``, ``http_*``) an expression reads
    directly, not through recording rules."""
    return {match.group(1) for match in _METRIC_TOKEN.finditer(_bare(expr))}


def recorded_names(expr: str) -> set[str]:
    """The recording rules' series (``level:metric:operations``) an expression reads."""
    return {match.group(1) for match in _RECORDED_TOKEN.finditer(_bare(expr))}


def label_names(expr: str) -> set[str]:
    """The label names a PromQL expression matches on or groups by."""
    labels: set[str] = set()
    for selector in _SELECTOR.findall(expr):
        labels.update(_MATCHER_LABEL.findall(selector))
    for grouping in _GROUPING.findall(expr):
        labels.update(part.strip() for part in grouping.split(",") if part.strip())
    return labels


def known_label_names() -> set[str]:
    """Every label a series of either path can carry."""
    attributes = {spec.key.replace(".", "_") for spec in semconv.ATTRIBUTES}
    return attributes | HTTP_LABELS | SCRAPE_LABELS


# --- PromQL of the dashboard and the rules -----------------------------------------------------

_LABEL_VALUES: Final = re.compile(r"^label_values\((?P<selector>.*),\s*[a-zA-Z_]+\)$")


def dashboard_expressions(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(where, expr)`` for every PromQL expression of the dashboard: panel targets and the
    series selector of each ``label_values(...)`` template variable."""
    if dashboard is None:
        dashboard = json.loads(DASHBOARD.read_text())
    found: list[tuple[str, str]] = []
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text or "")
        if match:
            found.append((f"variable {variable['name']}", match.group("selector")))

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return found


def rules() -> list[dict[str, Any]]:
    """Every rule of every rules file."""
    return [
        rule
        for path in rule_files()
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def rule_expressions() -> list[tuple[str, str]]:
    """``(alert or record, expr)`` for every rule of every rules file."""
    return [(rule.get("alert") or rule["record"], rule["expr"]) for rule in rules()]


def alert_expressions() -> list[tuple[str, str]]:
    """``(alert, expr)`` for every alerting rule of every rules file."""
    return [(rule["alert"], rule["expr"]) for rule in rules() if "alert" in rule]


def recording_rules() -> dict[str, str]:
    """Every recording rule of the rules files: the series it records -> its expression."""
    return {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}


def series_read(expr: str) -> set[str]:
    """The series of otel-mlmon's metrics an expression reads, directly or through the bundled
    recording rules (followed to the series they read). A recorded name no bundled rule
    records is kept as it is, so that it shows up as a series nobody emits."""
    recorded = recording_rules()
    read, pending, seen = metric_names(expr), list(recorded_names(expr)), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in recorded:
            read |= metric_names(recorded[name])
            pending.extend(recorded_names(recorded[name]))
        else:
            read.add(name)
    return read


def substitute_grafana_variables(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana's ``$name`` / ``${name}`` variables by the given regex values, and the
    built-in interval variables by fixed windows."""
    builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
    values = {**builtins, **variables}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)
