"""docker-compose.yml: valid against the Compose Specification's schema (no container engine
runs here), pinned images, loopback-only ports, named volumes, health checks, and mounts of
files that exist."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from stack_files import COMPOSE, LOKI_CONFIG, PROMETHEUS_CONFIG, REPO, load_yaml


def _schema_path() -> Path:
    # shared/ sits beside the repository (a worktree of it, or CI's clone).
    candidates = [REPO.parent / "shared", REPO.parent.parent / "shared", Path("/work/shared")]
    if os.environ.get("OTEL_MLMON_SHARED"):
        candidates.insert(0, Path(os.environ["OTEL_MLMON_SHARED"]))
    for shared in candidates:
        path = shared / "schemas" / "compose-spec.json"
        if path.is_file():
            return path
    pytest.skip("the Compose Specification schema (shared/schemas/compose-spec.json) is absent")


def _services() -> dict[str, dict]:  # type: ignore[type-arg]
    return load_yaml(COMPOSE)["services"]  # type: ignore[no-any-return]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(_schema_path().read_text())
    jsonschema.Draft7Validator(schema).validate(load_yaml(COMPOSE))


def test_stack_has_the_services_the_issue_names() -> None:
    expected = {"otel-collector", "prometheus", "jaeger", "loki", "grafana", "alertmanager",
                "fastapi-example"}  # fmt: skip
    assert expected == set(_services())


def test_every_image_is_pinned_to_a_version() -> None:
    unpinned = [
        service["image"]
        for service in _services().values()
        if ":" not in service["image"] or service["image"].endswith((":latest", ":main"))
    ]
    assert unpinned == []


def test_every_port_is_bound_to_loopback() -> None:
    ports = [port for service in _services().values() for port in service.get("ports", [])]
    assert ports
    assert [port for port in ports if not str(port).startswith("127.0.0.1:")] == []


def test_every_service_but_the_shell_less_collector_has_a_health_check() -> None:
    without = {name for name, service in _services().items() if "healthcheck" not in service}
    assert {"otel-collector"} == without


def test_data_lives_in_named_volumes_and_mounted_files_exist() -> None:
    compose = load_yaml(COMPOSE)
    named, missing = set(compose["volumes"]), []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                if not (REPO / source).exists():
                    missing.append(source)
            else:
                assert source in named, f"{source} is neither a named volume nor a repo path"
    assert missing == []


def test_example_service_is_optional_and_exports_to_the_collector() -> None:
    example = _services()["fastapi-example"]
    assert example["profiles"] == ["example"]
    assert example["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"


def test_loki_accepts_otlp_logs_with_structured_metadata() -> None:
    loki = load_yaml(LOKI_CONFIG)
    schema = loki["schema_config"]["configs"][-1]
    # Structured metadata (trace_id, span_id, attributes) needs the TSDB store and schema v13.
    assert (schema["store"], schema["schema"]) == ("tsdb", "v13")
    assert loki["limits_config"]["allow_structured_metadata"] is True


def test_prometheus_stores_exemplars() -> None:
    assert "--enable-feature=exemplar-storage" in _services()["prometheus"]["command"]


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60}
    number = duration.rstrip("ms")
    return float(number) * units[duration[len(number) :]]


def test_the_example_exports_less_often_than_prometheus_scrapes_the_collector() -> None:
    # An exemplar is on the collector's endpoint from one export to the next: a scrape interval
    # longer than the export interval loses some (measured in docs/stack.md).
    config = load_yaml(PROMETHEUS_CONFIG)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "otel-collector")
    scrape = _seconds(job.get("scrape_interval", config["global"]["scrape_interval"]))
    export = int(_services()["fastapi-example"]["environment"]["OTEL_METRIC_EXPORT_INTERVAL"])
    assert export / 1000 >= 2 * scrape
