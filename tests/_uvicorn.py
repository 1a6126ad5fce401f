"""An ASGI app served by uvicorn in a thread of the test, on an ephemeral loopback port: the
real server's socket, thread pool and lifespan, inside the test's own process (its in-memory
telemetry and log capture see everything)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from _wait import eventually


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` (uvicorn.Config ``options`` on top of host and port) until the block ends;
    yields the base URL once uvicorn has started."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive() and not server.started:
            raise AssertionError("uvicorn stopped before it started serving")
        return bool(server.started)

    try:
        eventually(started, "uvicorn to start serving")
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
