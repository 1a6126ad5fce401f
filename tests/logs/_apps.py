"""Small FastAPI and Flask services instrumented by otel-mlmon, for the request events."""

from __future__ import annotations

import asyncio
from typing import Any

import flask
import httpx
from fastapi import FastAPI, Request

from otel_mlmon.instrumentation import (
    instrument_fastapi,
    instrument_flask,
    uninstrument_fastapi,
    uninstrument_flask,
)
from otel_mlmon.testing import InMemoryTelemetry


class ServiceError(RuntimeError):
    """What the services' ``/fail`` endpoint raises, with the request body in its message."""


def fastapi_app(telemetry: InMemoryTelemetry) -> Any:
    """FastAPI with its native telemetry on the in-memory providers (its own exception log
    record included) and the otel-mlmon layer."""
    app = FastAPI(
        telemetry={
            "operation_spans": False,
            "logger_provider": telemetry.logger_provider,
            **telemetry.providers,
        }
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.post("/fail")
    async def fail(request: Request) -> None:
        raise ServiceError(f"cannot score {(await request.body()).decode()}")

    instrument_fastapi(app, **telemetry.providers)
    return app


def flask_app(telemetry: InMemoryTelemetry) -> Any:
    """Flask with the contrib instrumentation and the otel-mlmon layer."""
    app = flask.Flask("events")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return {"item": item_id}

    @app.post("/fail")
    def fail() -> Any:
        raise ServiceError(f"cannot score {flask.request.get_data(as_text=True)}")

    instrument_flask(app, **telemetry.providers)
    return app


def uninstrument(app: Any) -> None:
    """Take the otel-mlmon layer (and what it added) off ``app``."""
    if hasattr(app, "wsgi_app"):
        uninstrument_flask(app)
    else:
        uninstrument_fastapi(app)


def call(
    app: Any, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> int:
    """One request into ``app`` in process (ASGI for FastAPI, the test client for Flask);
    returns the status code. An exception the app raises is answered 500, as by a server."""
    if hasattr(app, "wsgi_app"):
        response = app.test_client().open(path, method=method, data=body, headers=headers)
        return int(response.status_code)

    async def send() -> int:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.request(method, path, content=body, headers=headers)
            return answer.status_code

    return asyncio.run(send())
