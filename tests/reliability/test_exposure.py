"""The bundled stack (docker-compose.yml) exposes nothing beyond 127.0.0.1 and enables no debug
endpoint by default: every published port binds loopback, no service shares the host's network,
the collector runs without zpages, pprof or the debug exporter in a pipeline, Grafana's
anonymous users cannot edit or administer, and Prometheus' admin API is off.

What the images serve on their own ports regardless of configuration (Prometheus, Alertmanager
and Loki answer /debug/pprof on their web port) is reachable from this host only, through the
loopback binding checked here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
LOOPBACK = "127.0.0.1"
#: Collector extensions that serve debugging pages or profiles.
DEBUG_EXTENSIONS = ("zpages", "pprof")
#: Grafana roles an anonymous visitor must never get.
PRIVILEGED_ROLES = ("admin", "editor")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]  # type: ignore[no-any-return]


def host_ip(port: object) -> str | None:
    """The host address a Compose ``ports`` entry publishes on; ``None`` means every interface.

    Short syntax: ``[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`` (an IPv6 address in
    brackets); long syntax: a mapping with ``host_ip``.
    """
    if isinstance(port, dict):
        return port.get("host_ip") or None
    text = str(port).split("/", 1)[0]
    if text.startswith("["):
        return text[1 : text.index("]")]
    parts = text.split(":")
    return parts[0] if len(parts) == 3 else None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("127.0.0.1:4317:4317", "127.0.0.1"),
        ("127.0.0.1:8000:8000/tcp", "127.0.0.1"),
        ("[::1]:3000:3000", "::1"),
        ("0.0.0.0:3000:3000", "0.0.0.0"),
        ("3000:3000", None),
        ("3000", None),
        (4317, None),
        ({"target": 80, "published": 8080}, None),
        ({"target": 80, "published": 8080, "host_ip": "127.0.0.1"}, "127.0.0.1"),
    ],
)
def test_the_port_parser_reads_every_compose_syntax(entry: object, expected: str | None) -> None:
    assert expected == host_ip(entry)


def test_every_published_port_binds_loopback_only() -> None:
    published = {
        (name, str(port)): host_ip(port)
        for name, service in _services().items()
        for port in service.get("ports", [])
    }
    assert published, "the stack publishes no port at all?"
    assert {key: LOOPBACK for key in published} == published


def test_no_service_shares_the_host_network_or_runs_privileged() -> None:
    shared = {
        name: (service.get("network_mode"), service.get("privileged"))
        for name, service in _services().items()
        if service.get("network_mode") == "host" or service.get("privileged")
    }
    assert {} == shared


def _mounted(service: dict[str, Any], target: str) -> Path:
    """The repository file a service mounts at ``target``."""
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":", 1)[0] == target:
            return ROOT / source
    raise AssertionError(f"nothing is mounted at {target}")


def test_the_collector_runs_without_debug_endpoints_or_the_debug_exporter() -> None:
    collector = _services()["otel-collector"]
    configs = [arg.split("=", 1)[1] for arg in collector["command"] if arg.startswith("--config=")]
    assert ["/etc/otelcol/config.yaml"] == configs  # the debug overlay is not merged
    config = yaml.safe_load(_mounted(collector, "/etc/otelcol/config.yaml").read_text())
    service = config["service"]
    enabled = [name.split("/", 1)[0] for name in service.get("extensions", [])]
    assert [] == [name for name in enabled if name in DEBUG_EXTENSIONS]
    in_pipelines = {
        exporter.split("/", 1)[0]
        for pipeline in service["pipelines"].values()
        for exporter in pipeline["exporters"]
    }
    assert "debug" not in in_pipelines
    level = str(service.get("telemetry", {}).get("logs", {}).get("level", "info"))
    assert "debug" not in level.lower()


def test_grafana_gives_anonymous_visitors_no_edit_or_admin_role() -> None:
    environment = _services()["grafana"].get("environment", {})
    if str(environment.get("GF_AUTH_ANONYMOUS_ENABLED", "false")).lower() == "true":
        role = str(environment.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer")).lower()
        assert role not in PRIVILEGED_ROLES
    profiling = str(environment.get("GF_DIAGNOSTICS_PROFILING_ENABLED", "false")).lower()
    assert "false" == profiling


def test_prometheus_admin_api_is_off() -> None:
    flags = [str(flag) for flag in _services()["prometheus"].get("command", [])]
    assert [] == [flag for flag in flags if flag.startswith("--web.enable-admin-api")]
