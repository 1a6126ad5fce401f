"""The examples' documented commands, run as a user runs them (one process, several workers),
and hostile bodies sent over a raw socket: a 44 MB body is refused with 413 before it is read
and never echoed, a malformed one gets a 422 without its input, memory stays bounded, and
every worker serves and stays up."""

from __future__ import annotations

import contextlib
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import psutil
import pytest
from _otlp import OtlpHttpServer, sum_points
from _services import BIN, ROOT, load_example, start_command
from _wait import free_port, stop_process, wait_healthy

from otel_mlmon.demo.scrape import parse_samples

ROW = [5.1, 3.5, 1.4, 0.2]
#: The body size of the report that drove a service's memory to 1.25 GB.
HUGE_BODY_BYTES = 44 * 2**20
#: What a 44 MB body may add to the resident memory of the whole service (all its processes):
#: a quarter of the body, far below what reading it (or parsing it) takes.
RSS_GROWTH_BOUND = HUGE_BODY_BYTES // 4
#: Bytes of a body sent when the request declares its length: the service must answer 413
#: without waiting for the rest.
DECLARED_BODY_SENT = 256 * 1024
#: A string that must never come back in a response.
MARKER = b"ECHO-ME-"
PREDICTIONS = 4


def documented_commands(example: ModuleType) -> list[str]:
    """The ``.venv/bin/...`` command lines of an example's docstring."""
    return [line.strip() for line in (example.__doc__ or "").splitlines() if ".venv/bin/" in line]


def as_run_here(command: str, port: int) -> list[str]:
    """A documented command with this test's interpreter and scripts and a free port."""
    words = shlex.split(command, comments=True)
    words = [sys.executable if w == ".venv/bin/python" else w for w in words]
    words = [str(BIN / w.removeprefix(".venv/bin/")) if w.startswith(".venv/bin/") else w
             for w in words]  # fmt: skip
    words = [re.sub(r"^(127\.0\.0\.1:)?800[01]$", rf"\g<1>{port}", w) for w in words]
    if "--port" not in words and not any(w.startswith("127.0.0.1:") for w in words):
        words += ["--port", str(port)]  # the python commands' default port, made free
    return words


#: Every documented command of both services: one process and several workers each.
COMMANDS = [
    c for name in ("fastapi_app", "flask_app") for c in documented_commands(load_example(name))
]


@dataclass
class Server:
    """A documented command running: the process it started and the port it serves."""

    process: subprocess.Popen[str]
    port: int
    output: Path
    command: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def workers(self) -> list[psutil.Process]:
        """The processes that accept connections on the port: the workers, or the process."""
        listening = [p for p in self.tree() if _listens(p, self.port)]
        return [p for p in listening if p.pid != self.process.pid] or listening

    def resident_bytes(self) -> int:
        return sum(p.memory_info().rss for p in self.tree())


def _listens(process: psutil.Process, port: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr.port == port
            for c in process.net_connections(kind="tcp")
        )
    return False


@pytest.fixture(scope="module", params=COMMANDS, ids=lambda c: c.split("#")[0].strip())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One documented command, started once for the module and stopped after it."""
    port = free_port()
    command = as_run_here(request.param, port)
    output = tmp_path_factory.mktemp("server") / "output.log"
    with output.open("w") as sink:
        # Port 0: each process binds a free one. One port for all the workers is the embedded
        # endpoint's multi-process mode, tested with that endpoint.
        process = start_command(command, sink, OTEL_EXPORTER_PROMETHEUS_PORT="0")
    running = Server(process, port, output, command)
    try:
        wait_healthy(running.base, process)
        yield running
    finally:
        stop_process(process)


def test_every_worker_answers_predict(server: Server) -> None:
    # All but one worker stopped, the kernel hands the next connection to that one.
    workers = server.workers()
    statuses = {}
    for serving in workers:
        others = [w for w in workers if w.pid != serving.pid]
        for other in others:
            other.suspend()
        try:
            with httpx.Client(base_url=server.base, timeout=30) as client:
                statuses[serving.pid] = client.post("/predict", json={"features": ROW}).status_code
        finally:
            for other in others:
                other.resume()

    expected_workers = int(_option(server.command, ("--workers", "-w"), "1"))
    assert ({w.pid: 200 for w in workers}, expected_workers) == (statuses, len(workers))


def _option(command: list[str], names: tuple[str, ...], default: str) -> str:
    for i, word in enumerate(command[:-1]):
        if word in names:
            return command[i + 1]
    return default


def test_a_malformed_body_gets_a_422_without_its_input(server: Server) -> None:
    body = b'{"features": "' + MARKER * 6000 + b'"}'  # 48 KB: under the size bound

    response = httpx.post(
        f"{server.base}/predict", content=body, headers={"content-type": "application/json"}
    )

    assert 422 == response.status_code
    assert MARKER not in response.content
    assert len(response.content) < 2048


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_huge_body_gets_a_413_before_it_is_read(server: Server, framing: str) -> None:
    before = server.resident_bytes()

    status, content, sent = post_huge_body(server.port, chunked=framing == "chunked")

    grown = server.resident_bytes() - before
    assert (413, False) == (status, MARKER in content)
    assert sent < HUGE_BODY_BYTES  # answered while the body was still coming
    assert grown < RSS_GROWTH_BOUND, f"resident memory grew by {grown} bytes"


def test_the_service_stays_up_with_the_same_workers(server: Server) -> None:
    workers = {w.pid for w in server.workers()}

    response = httpx.post(f"{server.base}/predict", json={"features": ROW}, timeout=30)

    assert (200, workers) == (response.status_code, {w.pid for w in server.workers()})
    assert server.process.poll() is None


def test_the_python_command_prints_where_its_metrics_are(server: Server) -> None:
    if server.command[0] != sys.executable:
        pytest.skip("only the python commands print the endpoint")
    httpx.post(f"{server.base}/predict", json={"features": ROW}, timeout=30)
    url = re.search(r"metrics: (http://\S+/metrics)", server.output.read_text())
    assert url is not None, server.output.read_text()

    names = {name for name, _, _ in parse_samples(httpx.get(url.group(1), timeout=10).text)}

    assert "ml_model_predictions_total" in names


def test_uvicorn_workers_flush_their_telemetry_when_the_server_stops(
    otlp_http: OtlpHttpServer,
) -> None:
    (documented,) = [c for c in COMMANDS if "--workers" in c]
    port = free_port()
    process = start_command(
        as_run_here(documented, port),
        subprocess.DEVNULL,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_http.endpoint,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        for _ in range(PREDICTIONS):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                assert 200 == client.post("/predict", json={"features": ROW}).status_code
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    names = [span.name for span in otlp_http.receiver.spans()]
    assert PREDICTIONS == names.count("predict iris"), names
    counted = sum_points(otlp_http.receiver.requests["/v1/metrics"], "ml.model.predictions")
    assert PREDICTIONS == sum(value for _, value in counted)


@pytest.mark.parametrize(
    "command",
    [
        ["otel-mlmon", "demo"],
        *(["python", f"examples/{n}.py"] for n in ("fastapi_app", "flask_app", "quickstart")),
    ],
    ids=" ".join,
)
def test_every_command_names_its_ports_alike(command: list[str]) -> None:
    program = sys.executable if command[0] == "python" else str(BIN / command[0])

    result = subprocess.run(
        [program, *command[1:], "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    # Each option with its help text, joined across argparse's wrapped lines.
    options = dict(re.findall(r"^  (--[\w-]+)(?: \S+)?\s+(.*(?:\n {8,}.*)*)", result.stdout, re.M))
    ports = {name: " ".join(text.split()) for name, text in options.items() if "port" in name}
    assert "--prometheus-port" in ports, result.stdout
    assert [] == [
        n for n, text in ports.items() if "Prometheus" in text and n != "--prometheus-port"
    ]
    assert [] == [n for n in ports if n not in ("--port", "--prometheus-port")]


def post_huge_body(port: int, *, chunked: bool) -> tuple[int, bytes, int]:
    """POST ``HUGE_BODY_BYTES`` to ``/predict`` over a raw socket, chunked or with its length
    declared (then only ``DECLARED_BODY_SENT`` of it is sent), and stop sending as soon as the
    service answers. Returns the status, the response body and the body bytes sent."""
    head = [
        "POST /predict HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE_BODY_BYTES}",
    ]
    to_send = HUGE_BODY_BYTES if chunked else DECLARED_BODY_SENT
    piece = b'{"features": "' + MARKER * (2**16 // len(MARKER))
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        sent, pending = 0, b""
        while True:
            want_write = [sock] if sent < to_send or pending else []
            readable, writable, _ = select.select([sock], want_write, [], 60)
            if readable:
                break
            assert writable, "the service neither answered nor read the body"
            if not pending:
                data = piece[: to_send - sent]
                sent += len(data)
                pending = b"%x\r\n%b\r\n" % (len(data), data) if chunked else data
            try:
                pending = pending[sock.send(pending) :]
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        return (*_read_response(sock), sent)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n\r\n" not in received or not _complete(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    head, _, content = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), content


def _complete(received: bytes) -> bool:
    head, _, content = received.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return length is not None and len(content) >= int(length.group(1))
