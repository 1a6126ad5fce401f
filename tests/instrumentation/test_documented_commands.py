"""Every documented way to serve HTTP, run as a user runs it (the examples' own start-up lines
and the zero-code command, each a subprocess with a clean environment, no
``OTEL_SEMCONV_STABILITY_OPT_IN``), scraped and received over real sockets:

- the HTTP duration is the stable ``http.server.request.duration`` in seconds on every path,
  Flask's as FastAPI's, never the old ``http.server.duration`` in milliseconds;
- clients cannot grow the metrics: 2,000 requests with distinct hostile ``Host`` headers,
  paths and query strings add no series and leave ``/metrics`` the same size;
- the spans carry neither the client's ``Host`` header nor any query value.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _otlp import OtlpHttpServer
from _served import (
    DOCUMENTED,
    Served,
    attribute_values,
    documented_command,
    request_count,
    series,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from otel_mlmon.demo import parse_samples

#: Requests with a distinct hostile Host header each (and a distinct path or query).
HOSTILE = 2_000
#: Requests of each kind before the baseline scrape, so that every bounded series exists.
WARM_UP = 5
HOSTILE_HOST = "attacker-{i}.evil.example"
QUERY_SECRET = "QSECRET{i}"
LAST = "last-request-of-the-span-test"


@pytest.fixture(scope="module", params=DOCUMENTED)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    command = documented_command(request.param, tmp_path_factory.mktemp("apps"))
    if not Path(command.argv[0]).exists():
        pytest.skip(f"{command.argv[0]} is not installed")
    receiver = OtlpHttpServer()
    service = Served(command, receiver)
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()
        receiver.close()


def _warm_up(client: httpx.Client) -> int:
    """Requests of every kind the hostile ones are (a route, an unknown path, with queries),
    from a well-behaved client; returns how many."""
    for _ in range(WARM_UP):
        assert 200 == client.get("/health?format=json").status_code
        assert 404 == client.get("/no/such/path?x=1").status_code
    return 2 * WARM_UP


def _hostile(served: Served) -> int:
    """HOSTILE requests, each with its own Host header, path or query; returns how many.

    Through ``http.client`` on one kept-alive connection: a third of httpx's cost per request,
    which matters with 2,000 requests per command.
    """
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        for i in range(HOSTILE):
            secret = QUERY_SECRET.format(i=i)
            if i % 2:
                path, expected = f"/health?token={secret}&{secret}", 200
            else:
                path, expected = f"/no/such/path-{i}/%2e%2e/{i}?token={secret}", 404
            connection.request("GET", path, headers={"Host": HOSTILE_HOST.format(i=i)})
            response = connection.getresponse()
            response.read()
            assert expected == response.status, path
    finally:
        connection.close()
    return HOSTILE


def test_the_http_duration_is_the_stable_histogram_in_seconds(served: Served) -> None:
    with httpx.Client(base_url=served.base, timeout=10) as client:
        sent = _warm_up(client)
    text = served.scrape_when(lambda t: request_count(t) >= sent)

    names = {name for name, _, _ in parse_samples(text)}
    routes = {
        labels.get("http_route")
        for name, labels, _ in parse_samples(text)
        if name == "http_server_request_duration_seconds_count"
    }
    assert {name for name in names if name.startswith("http_server_duration")} == set()
    assert "/health" in routes
    assert "http_server_active_requests" in names


def test_hostile_hosts_paths_and_queries_add_no_series_and_reach_no_span(
    served: Served,
) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as client:
        sent = _warm_up(client)
        baseline = served.scrape_when(lambda t: request_count(t) >= sent)
        before = request_count(baseline)
        sent = _hostile(served)
        client.get("/health", headers={"X-Request-ID": LAST})
    after = served.scrape_when(lambda t: request_count(t) >= before + sent + 1)
    # Spans are exported in the order they end: the last request's span comes last.
    served.wait_for_span(lambda span: f"ml.request.id={LAST}" in attribute_values([span]))

    assert series(baseline) == series(after)
    # Counts grow by a few digits; a series per request would add hundreds of bytes each.
    assert len(after) < len(baseline) + 2_000, (len(baseline), len(after))
    assert "evil.example" not in after and "SECRET" not in after
    servers = [s for s in served.receiver.spans() if s.kind == OtlpSpan.SPAN_KIND_SERVER]
    values = attribute_values(servers)
    assert len(servers) > HOSTILE
    assert [v for v in values if "evil.example" in v] == []
    assert [v for v in values if "SECRET" in v] == []
    queries = {v for v in values if v.startswith("url.query=")}
    assert {"url.query=token=REDACTED&REDACTED", "url.query=token=REDACTED",
            "url.query=format=REDACTED", "url.query=x=REDACTED"} == queries  # fmt: skip


def test_query_values_reach_no_log_line_and_no_log_record(served: Served) -> None:
    """The servers' own access lines (uvicorn, Werkzeug) go through configure()'s logging
    bridge to stdout and to the OTLP receiver: their query values are redacted there too."""
    last = "last-request-of-the-log-test"
    with httpx.Client(base_url=served.base, timeout=30) as client:
        for i in range(3):
            client.get(f"/health?token=LOGSECRET{i}&LOGSECRET{i}")
        client.get("/no/such/path?token=LOGSECRET9")
        client.get("/health", headers={"X-Request-ID": last})
    records = served.wait_for_log_record(lambda record: last in str(record))

    assert [] == [line for line in served.output().splitlines() if "LOGSECRET" in line]
    assert [] == [str(record) for record in records if "LOGSECRET" in str(record)]
