"""An iris classifier served by FastAPI, instrumented with otel-mlmon.

The model and its telemetry are in ``examples/iris.py`` (``otel_mlmon.examples.iris`` once
installed); this file is the FastAPI part. Run it from the repository root, in one process or
with several workers (``create_app()`` configures telemetry in each worker):

    .venv/bin/python examples/fastapi_app.py            # http://127.0.0.1:8000, metrics on :9464
    .venv/bin/uvicorn --factory --workers 2 --port 8000 --app-dir examples fastapi_app:create_app

    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"features": [5.1, 3.5, 1.4, 0.2]}'                       # single
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}' # batch
    curl -s localhost:8000/feedback -H 'content-type: application/json' \\
         -d '{"prediction_id": "<id from /predict>", "label": 0}'
    curl -s localhost:8000/outcome -H 'content-type: application/json' \\
         -d '{"prediction_id": "<id from /predict>", "kind": "revenue", "value": 12.5}'
    curl -s localhost:8000/health
    curl -s localhost:9464/metrics | grep ml_model

A canary beside it (docs/rollouts.md): the uvicorn command above twice, the second serving the
canary (``EXAMPLE_MODEL_VERSION=1.1.0``) on port 8001 with metrics on 9465
(``OTEL_EXPORTER_PROMETHEUS_PORT=9465``), both with a key they share and the fleet's versions,
so that a label or an outcome posted to either counts for the version that made the prediction:

    export OTEL_MLMON_LABEL_KEY=$(openssl rand -base64 32) OTEL_MLMON_FLEET_VERSIONS=1.0.0,1.1.0

From an installed wheel (``pip install 'otel-mlmon[examples]'``) the same module is
``otel_mlmon.examples.fastapi_app``: ``python -m otel_mlmon.examples.fastapi_app``.

Telemetry: FastAPI's native OpenTelemetry telemetry makes the server span and
``http.server.request.duration``; ``otel_mlmon.instrument_fastapi`` adds request IDs, ML
attributes on the server span and the ``predict iris`` span below it; each prediction logs a
``prediction_made`` line (JSON on stdout and an OTel log record with the trace ID). To export to
a collector instead of the Prometheus endpoint, set
``OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318``.

Bad input: a body over ``iris.MAX_BODY_BYTES`` is answered 413 before it is read (FastAPI's
``max_body_size``); a malformed one 422 with where and what is wrong, never the input itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import otel_mlmon
from otel_mlmon.examples import iris

#: Validation errors listed in a 422 at most (a bad 256-row batch has over a thousand).
MAX_ERRORS = 10

Row = Annotated[list[float], Field(min_length=iris.N_FEATURES, max_length=iris.N_FEATURES)]


class PredictRequest(BaseModel):
    """One row of four measurements, or a batch of rows (at most 256)."""

    features: Row | Annotated[list[Row], Field(min_length=1, max_length=iris.MAX_BATCH)]


class OutcomeRequest(BaseModel):
    """A business outcome of an earlier prediction: a kind of ``iris.OUTCOMES``, and its value
    (revenue in USD, a 1-5 rating)."""

    prediction_id: Annotated[str, Field(min_length=1, max_length=iris.MAX_PREDICTION_ID_CHARS)]
    kind: Annotated[str, Field(min_length=1, max_length=iris.MAX_OUTCOME_KIND_CHARS)]
    value: float | None = None


class FeedbackRequest(BaseModel):
    """The true class of an earlier prediction (one per row for a batch)."""

    prediction_id: Annotated[str, Field(min_length=1, max_length=iris.MAX_PREDICTION_ID_CHARS)]
    label: int | Annotated[list[int], Field(min_length=1, max_length=iris.MAX_BATCH)]


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """A 422 that says where and what is wrong, without FastAPI's default ``input`` (the
    offending value, which can be the whole body, sent back) or ``ctx``."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors[:MAX_ERRORS]]
    return JSONResponse({"detail": detail}, status_code=422)


def routes(service: iris.IrisService) -> APIRouter:
    """The endpoints, each a call into ``service``."""
    router = APIRouter()

    @router.post("/predict")
    def predict(
        request: PredictRequest,
        x_example_fault: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> dict[str, Any]:
        # A sync endpoint: scikit-learn holds the GIL, FastAPI runs it in its thread pool.
        return service.predict(request.features, fault=x_example_fault)

    @router.post("/feedback", status_code=202)
    async def feedback(request: FeedbackRequest) -> dict[str, Any]:
        return service.feedback(request.prediction_id, request.label)

    @router.post("/outcome", status_code=202)
    async def outcome(request: OutcomeRequest) -> dict[str, Any]:
        return service.outcome(request.prediction_id, request.kind, request.value)

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return service.health()

    return router


def flush_on_shutdown(telemetry: otel_mlmon.Telemetry | None) -> Any:
    """A lifespan that shuts ``telemetry`` down (flushing it) when the server stops: uvicorn
    ends a worker by re-raising SIGTERM, so exit handlers never run (docs/reliability.md)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if telemetry is not None:
            telemetry.shutdown()

    return lifespan


def create_app(
    *,
    model: iris.IrisModel | None = None,
    monitor: otel_mlmon.ModelMonitor | None = None,
    telemetry: dict[str, Any] | None = None,
    faults: bool | None = None,
    configure: bool | None = None,
    shadow: str | None = None,
) -> FastAPI:
    """The service. Called with no arguments (``uvicorn --factory`` in each worker) it runs
    ``otel_mlmon.configure()`` first; ``configure=False`` when the caller did already.
    ``telemetry`` is FastAPI's native telemetry configuration (providers for tests, which
    also skips ``configure()``); by default the global providers, without FastAPI's operation
    spans. ``faults`` enables the ``X-Example-Fault`` header (default: ``EXAMPLE_FAULTS``);
    ``shadow`` names a version run in the shadow of the served one (default:
    ``EXAMPLE_SHADOW_VERSION``)."""
    providers = {
        k: v for k, v in (telemetry or {}).items() if k in ("tracer_provider", "meter_provider")
    }
    if configure is None:
        configure = not providers
    configured = otel_mlmon.configure(service_name="iris-fastapi") if configure else None
    service = iris.build_service(
        model=model, monitor=monitor, faults=faults, shadow=shadow, **providers
    )
    app = FastAPI(
        title="iris",
        lifespan=flush_on_shutdown(configured),
        max_body_size=iris.MAX_BODY_BYTES,
        exception_handlers={RequestValidationError: validation_failed},
        # One server span per request: the operation spans (dependencies, endpoint,
        # serialization) add three spans and ~90 us per request and nothing a model service
        # needs; the predict span already times the model.
        telemetry={"operation_spans": False, **(telemetry or {})},
    )
    app.include_router(routes(service))
    otel_mlmon.instrument_fastapi(app, monitor=service.monitor, **providers)
    app.state.model = service.model
    app.state.monitor = service.monitor
    app.state.service = service
    return app


def main() -> None:
    args = iris.command_line(__doc__.splitlines()[0], port=8000)

    import uvicorn

    telemetry = iris.start_telemetry("iris-fastapi", args.prometheus_port)
    try:
        app = create_app(configure=False)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
