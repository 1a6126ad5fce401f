"""An iris classifier served by Flask, instrumented with otel-mlmon.

The model and its telemetry are in ``examples/iris.py`` (``otel_mlmon.examples.iris`` once
installed); this file is the Flask part. Run it from the repository root, on Flask's
development server or on gunicorn with one or several workers:

    .venv/bin/python examples/flask_app.py                        # 127.0.0.1:8001, metrics :9464
    .venv/bin/gunicorn -w 2 -b 127.0.0.1:8001 --chdir examples 'flask_app:create_app()'

The endpoints are those of ``examples/fastapi_app.py`` (``/predict`` single and batch,
``/feedback``, ``/outcome``, ``/health``), and so are its rollout variables
(``EXAMPLE_MODEL_VERSION``, ``EXAMPLE_SHADOW_VERSION``, docs/rollouts.md). Telemetry:
``opentelemetry-instrumentation-flask`` makes the server span and
``http.server.request.duration``; ``otel_mlmon.instrument_flask`` applies it and adds request
IDs, ML attributes on the server span and the ``predict iris`` span below it.
Under gunicorn, ``create_app()`` runs ``otel_mlmon.configure()`` in each worker (after the
fork), so each worker has its own exporters.

Bad input: a body over ``iris.MAX_BODY_BYTES`` is answered 413 before it is read (Flask's
``MAX_CONTENT_LENGTH``); a malformed one 422 with a fixed message, never the input itself.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

import otel_mlmon
from otel_mlmon.examples import iris


def _json_body() -> Any:
    """The request's JSON, or None when it is not JSON. Werkzeug answers 413 when the declared
    length is over ``MAX_CONTENT_LENGTH``, but reads a chunked body only up to it and stops
    there without a word: one that fills the whole allowance is refused here."""
    data = request.get_data(cache=True)
    if request.content_length is None and len(data) >= iris.MAX_BODY_BYTES:
        raise RequestEntityTooLarge()
    return request.get_json(silent=True)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_row(value: object) -> bool:
    return isinstance(value, list) and len(value) == iris.N_FEATURES and all(map(_is_number, value))


def _is_batch(value: object, item: Any) -> bool:
    return isinstance(value, list) and 0 < len(value) <= iris.MAX_BATCH and all(map(item, value))


def _names_prediction(body: Any) -> bool:
    """A JSON object whose ``prediction_id`` is a string of a sensible length."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("prediction_id"), str)
        and 0 < len(body["prediction_id"]) <= iris.MAX_PREDICTION_ID_CHARS
    )


def _is_label(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def routes(service: iris.IrisService) -> Blueprint:
    """The endpoints, each a call into ``service`` once the body is checked."""
    blueprint = Blueprint("iris", __name__)

    @blueprint.post("/predict")
    def predict() -> Any:
        body = _json_body()
        features = body.get("features") if isinstance(body, dict) else None
        if not (_is_row(features) or _is_batch(features, _is_row)):
            # Rejected before the model: no predict span, as FastAPI's validation does.
            detail = f"features: {iris.N_FEATURES} numbers, or up to {iris.MAX_BATCH} rows of them"
            return jsonify(detail=detail), 422
        return jsonify(service.predict(features, fault=request.headers.get("X-Example-Fault")))

    @blueprint.post("/feedback")
    def feedback() -> Any:
        body = _json_body()
        if not (
            _names_prediction(body)
            and (_is_label(body.get("label")) or _is_batch(body.get("label"), _is_label))
        ):
            return jsonify(
                detail=f"prediction_id (a string) and label (an integer, or up to {iris.MAX_BATCH})"
                " are required"
            ), 422
        return jsonify(service.feedback(body["prediction_id"], body["label"])), 202

    @blueprint.post("/outcome")
    def outcome() -> Any:
        body = _json_body()
        if not (
            _names_prediction(body)
            and isinstance(body.get("kind"), str)
            and 0 < len(body["kind"]) <= iris.MAX_OUTCOME_KIND_CHARS
            and (body.get("value") is None or _is_number(body["value"]))
        ):
            return jsonify(
                detail="prediction_id and kind (strings) are required; value, if any, a number"
            ), 422
        answer = service.outcome(body["prediction_id"], body["kind"], body.get("value"))
        return jsonify(answer), 202

    @blueprint.get("/health")
    def health() -> Any:
        return jsonify(service.health())

    return blueprint


def too_large(error: RequestEntityTooLarge) -> Any:
    """The 413, as JSON like every other answer of the service."""
    return jsonify(detail=f"request body over {iris.MAX_BODY_BYTES} bytes"), 413


def create_app(
    *,
    model: iris.IrisModel | None = None,
    monitor: otel_mlmon.ModelMonitor | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    configure: bool | None = None,
    faults: bool | None = None,
) -> Flask:
    """The service. Without providers (a WSGI server calling ``create_app()``) it runs
    ``otel_mlmon.configure()`` first; tests pass in-memory providers instead. ``faults``
    enables the ``X-Example-Fault`` header (default: ``EXAMPLE_FAULTS``)."""
    if configure is None:
        configure = tracer_provider is None and meter_provider is None
    if configure:
        otel_mlmon.configure(service_name="iris-flask")
    providers = {
        k: v
        for k, v in (("tracer_provider", tracer_provider), ("meter_provider", meter_provider))
        if v is not None
    }
    service = iris.build_service(model=model, monitor=monitor, faults=faults, **providers)
    app = Flask("iris")
    # Werkzeug answers 413 from the Content-Length alone (a chunked body: _json_body()).
    app.config["MAX_CONTENT_LENGTH"] = iris.MAX_BODY_BYTES
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_blueprint(routes(service))
    otel_mlmon.instrument_flask(app, monitor=service.monitor, **providers)
    app.config["MODEL"] = service.model
    app.config["MONITOR"] = service.monitor
    return app


def main() -> None:
    args = iris.command_line(__doc__.splitlines()[0], port=8001)
    telemetry = iris.start_telemetry("iris-flask", args.prometheus_port)
    try:
        create_app(configure=False).run(host=args.host, port=args.port, threaded=True)
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
