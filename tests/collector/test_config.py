"""collector/otelcol-config.yaml: the pipelines the issue asks for, every endpoint from the
environment with a default, the debug exporter off, and every component in the slim
collector's Go module (the end-to-end test runs `otelcol validate` on the built binary)."""

from __future__ import annotations

import re

from stack_files import OTELCOL_CONFIG, OTELCOL_DEBUG_OVERLAY, OTELCOL_MODULE, load_yaml

#: Component type -> the Go module that provides it, at the one release go.mod pins.
_CORE = "go.opentelemetry.io/collector"
_CONTRIB = "github.com/open-telemetry/opentelemetry-collector-contrib"
MODULES = {
    "otlp": f"{_CORE}/receiver/otlpreceiver",
    "memory_limiter": f"{_CORE}/processor/memorylimiterprocessor",
    "batch": f"{_CORE}/processor/batchprocessor",
    "resource": f"{_CONTRIB}/processor/resourceprocessor",
    "prometheus": f"{_CONTRIB}/exporter/prometheusexporter",
    "otlp_grpc": f"{_CORE}/exporter/otlpexporter",
    "otlp_http": f"{_CORE}/exporter/otlphttpexporter",
    "debug": f"{_CORE}/exporter/debugexporter",
    "health_check": f"{_CONTRIB}/extension/healthcheckextension",
}


def _config() -> dict:  # type: ignore[type-arg]
    return load_yaml(OTELCOL_CONFIG)  # type: ignore[no-any-return]


def _component_types() -> set[str]:
    config = _config()
    return {
        name.split("/", 1)[0]
        for kind in ("receivers", "processors", "exporters", "extensions")
        for name in config.get(kind, {})
    }


def test_every_component_is_built_into_the_slim_collector_at_one_release() -> None:
    go_mod = (OTELCOL_MODULE / "go.mod").read_text()
    components_go = (OTELCOL_MODULE / "components.go").read_text()
    required = dict(re.findall(r"^\t(\S+) (v\S+)$", go_mod, flags=re.MULTILINE))
    missing = [t for t in sorted(_component_types()) if MODULES[t] not in required
               or f'"{MODULES[t]}"' not in components_go]  # fmt: skip
    assert missing == []
    releases = {required[MODULES[t]].removeprefix("v")[:6] for t in _component_types()}
    assert {"0.165."} == releases


def test_each_signal_has_its_pipeline_with_memory_limiter_first_and_batch_last() -> None:
    pipelines = _config()["service"]["pipelines"]
    exporters = {signal: pipeline["exporters"] for signal, pipeline in pipelines.items()}
    assert exporters == {
        "metrics": ["prometheus"],
        "traces": ["otlp_grpc/jaeger"],
        "logs": ["otlp_http/logs"],
    }
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert pipeline["processors"][0] == "memory_limiter"
        assert pipeline["processors"][-1] == "batch"


def test_every_endpoint_comes_from_the_environment_with_a_default() -> None:
    text = OTELCOL_CONFIG.read_text()
    endpoints = re.findall(r"^\s*endpoint:\s*(.+)$", text, flags=re.MULTILINE)
    assert len(endpoints) == 6
    assert [e for e in endpoints if not re.fullmatch(r"\$\{env:[A-Z_]+:-[^}]+\}", e)] == []


def test_debug_exporter_is_off_unless_the_overlay_is_merged() -> None:
    in_pipelines = {e for p in _config()["service"]["pipelines"].values() for e in p["exporters"]}
    overlay = load_yaml(OTELCOL_DEBUG_OVERLAY)["service"]["pipelines"]
    assert "debug" not in in_pipelines
    assert all("debug" in pipeline["exporters"] for pipeline in overlay.values())


def test_no_resource_attribute_becomes_a_label_but_job_and_instance() -> None:
    # The embedded endpoint's series carry none either: one set of label names on both paths.
    exporter = _config()["exporters"]["prometheus"]
    assert not {"resource_constant_labels", "resource_to_telemetry_conversion"} & set(exporter)


def test_the_prometheus_exporter_serves_openmetrics_with_exemplars() -> None:
    assert _config()["exporters"]["prometheus"]["enable_open_metrics"] is True
