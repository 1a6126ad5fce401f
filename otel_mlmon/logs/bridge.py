"""The bridge: structlog and the standard ``logging`` module through one correlated chain.

:func:`configure_logging` installs one handler on the root logger. Its structlog
``ProcessorFormatter`` runs every record, structlog's and third-party ``logging`` calls alike,
through the correlation processors (:mod:`otel_mlmon.logs.processors`), the bounds
(:mod:`otel_mlmon.logs.bounds`), the exception fields (:mod:`otel_mlmon.logs.tracebacks`), the
OTel emitter (:mod:`otel_mlmon.logs.emission`) and a renderer: one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import IO, Any, Final, Literal

import structlog
from opentelemetry import _logs as logs_api
from opentelemetry.instrumentation.structlog import StructlogProcessor
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_mlmon import _compat, _fork
from otel_mlmon._guard import report_internal_error, strict, warn_once
from otel_mlmon.exceptions import ConfigurationError
from otel_mlmon.logs import bounds, tracebacks
from otel_mlmon.logs._settings import settings
from otel_mlmon.logs.emission import OTelLogEmitter, json_default
from otel_mlmon.logs.events import was_logged
from otel_mlmon.logs.processors import SHARED_PROCESSORS, Service, service_name_of

Renderer = Literal["json", "console"]

#: Loggers of servers that log an unhandled exception of the app a second time, after the
#: app's ``request_failed`` event already carried it ("Exception in ASGI application").
SERVER_ERROR_LOGGERS: Final = ("uvicorn.error",)

_configure_lock = threading.Lock()
#: The structlog processor list configure_logging() installed, to recognise its own config.
_our_processors: list[Processor] | None = None
#: The root logger's level before configure_logging() first set it.
_root_level_before: int | None = None


@_fork.after_fork_in_child
def _after_fork_in_child() -> None:
    global _configure_lock
    _configure_lock = threading.Lock()


class _Handler(logging.StreamHandler[IO[str]]):
    """The root handler configure_logging() installs; its type marks it as ours.

    Without an explicit stream it writes to whatever ``sys.stdout`` is at the time of each
    record, so a later redirection (a test runner's capture, a daemon's log file) is followed.
    Records of the noisy library loggers are rate-limited and arguments bounded before the
    message is formatted (:mod:`otel_mlmon.logs.bounds`).
    """

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream if stream is not None else sys.stdout)
        self._follow_stdout = stream is None
        self.rate_limit = bounds.LibraryRateLimit()
        self.addFilter(self.rate_limit)

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stdout:
            self.stream = sys.stdout
        super().emit(bounds.bound_arguments(record))

    def handleError(self, record: logging.LogRecord) -> None:
        # A line that cannot be rendered or written is dropped and counted, never raised.
        if strict():
            super().handleError(record)
            return
        exc = sys.exc_info()[1]
        report_internal_error("logs.handler", exc or RuntimeError("log record dropped"))


class _AlreadyLogged(logging.Filter):
    """A logger filter for :data:`SERVER_ERROR_LOGGERS`: a record of an exception that a
    ``request_failed`` event already wrote is dropped. A logger filter survives the server's
    own ``dictConfig`` (uvicorn's default configuration gives its loggers their own
    handlers), so the plain-text traceback is not written either."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = tracebacks.exc_info_of_record(record)
        return exc is None or not was_logged(exc)


_already_logged: Final = _AlreadyLogged()


def _configured_by_application(current: object) -> bool:
    """Whether the application configured structlog (then its configuration is kept).

    Not when the configuration is ours, nor when only the structlog instrumentation's
    ``instrument()`` configured it (its own record says whether the application did too).
    """
    if not structlog.is_configured() or current is _our_processors:
        return False
    if isinstance(current, list) and any(isinstance(p, StructlogProcessor) for p in current):
        return _compat.structlog_configured_by_app()
    return True


def _exports_to_otel(handler: logging.Handler) -> bool:
    """Whether ``handler`` is the SDK's or opentelemetry-instrumentation-logging's
    ``LoggingHandler`` (matched by name: library code does not import the SDK)."""
    cls = type(handler)
    return cls.__name__ == "LoggingHandler" and cls.__module__.startswith("opentelemetry.")


def _level_number(level: int | str) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str):
        number = logging.getLevelName(level.strip().upper())
        if isinstance(number, int):
            return number
    raise ConfigurationError(f"level must be a logging level name or number, not {level!r}")


def _renderer(name: str, stream: IO[str]) -> Processor:
    if name == "json":
        return structlog.processors.JSONRenderer(default=json_default)
    if name == "console":
        isatty = getattr(stream, "isatty", None)
        colors = bool(isatty()) if callable(isatty) else False
        return structlog.dev.ConsoleRenderer(colors=colors)
    raise ConfigurationError(f"renderer must be 'json' or 'console', not {name!r}")


def _drop_other_formatters_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Another handler (the server's own, pytest's) that formatted the record first left
    # ``message`` and ``asctime`` on it, unbounded; the line has ``event`` and ``timestamp``.
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    return event_dict


def _correlation() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *SHARED_PROCESSORS,
    ]


def _formatter(
    renderer: Renderer, render: Processor, provider: logs_api.LoggerProvider | None, export: bool
) -> structlog.stdlib.ProcessorFormatter:
    final: list[Processor] = [tracebacks.render_exception]
    if export:
        # Before remove_processors_meta: the emitter reads _from_structlog.
        final.append(OTelLogEmitter(provider))
    final.append(structlog.stdlib.ProcessorFormatter.remove_processors_meta)
    if renderer == "console":
        final.append(tracebacks.console_exception)
    final.append(render)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(),
            _drop_other_formatters_fields,
            *_correlation(),
            bounds.bound_event,
        ],
        processors=final,
    )


def _remove_handlers(root: logging.Logger) -> bool:
    """Take our handler(s) off the root logger; whether there was one."""
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    for old in ours:
        root.removeHandler(old)
        old.close()
    return bool(ours)


def _install_handler(handler: _Handler, level: int, export: bool) -> None:
    global _root_level_before
    root = logging.getLogger()
    if not _remove_handlers(root):
        _root_level_before = root.level
    root.addHandler(handler)
    root.setLevel(level)
    for name in SERVER_ERROR_LOGGERS:
        server_logger = logging.getLogger(name)
        if _already_logged not in server_logger.filters:
            server_logger.addFilter(_already_logged)
    if export and any(_exports_to_otel(h) for h in root.handlers):
        warn_once(
            "logs.otel_logging_handler",
            "otel-mlmon: an OpenTelemetry LoggingHandler is also on the root logger, so "
            "each record is exported twice; remove it (under opentelemetry-instrument: "
            "OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION=false) or pass export=False",
        )


def _configure_structlog() -> None:
    global _our_processors
    current = structlog.get_config().get("processors")
    if _configured_by_application(current):
        warn_once(
            "logs.structlog_configured",
            "otel-mlmon: structlog was configured by the application and is left as it is; "
            "add otel_mlmon.logs.SHARED_PROCESSORS and an OTelLogEmitter to its processors "
            "to correlate and export its events",
        )
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_correlation(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            bounds.bound_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    # Under opentelemetry-instrument, the structlog instrumentation's patched configure()
    # inserts its own StructlogProcessor: our emitter already exports every event, so it
    # is taken out again, or each structlog event would be exported twice.
    installed = structlog.get_config()["processors"]
    if any(isinstance(p, StructlogProcessor) for p in installed):
        installed[:] = [p for p in installed if not isinstance(p, StructlogProcessor)]
        warn_once(
            "logs.structlog_instrumented",
            "otel-mlmon: the structlog instrumentation is active; otel-mlmon's handler "
            "exports structlog events instead of its processor",
        )
    _our_processors = installed


def configure_logging(
    *,
    logger_provider: logs_api.LoggerProvider | None = None,
    renderer: Renderer = "json",
    level: int | str = logging.INFO,
    export: bool = True,
    stream: IO[str] | None = None,
    sample_predictions: float = 1.0,
    include_features: bool = False,
    record_exception_messages: bool = False,
) -> None:
    """Route structlog and the standard :mod:`logging` module through one correlated chain.

    Installs one handler on the root logger whose ``ProcessorFormatter`` runs
    :data:`~otel_mlmon.logs.SHARED_PROCESSORS`, emits each event as an OTel log record through
    ``logger_provider`` (default: the global one) unless ``export=False``, and renders it on
    ``stream`` (default ``sys.stdout``) as one JSON object per line, or readable text with
    ``renderer="console"``. The root logger's level becomes ``level``.

    structlog is configured to hand its events to that handler, unless the application
    configured structlog itself: then its configuration is kept (put the shared processors and
    an :class:`~otel_mlmon.logs.OTelLogEmitter` into it) and a warning says so.

    ``sample_predictions`` is the fraction of ``prediction_made`` events
    :func:`~otel_mlmon.logs.log_prediction` keeps; ``include_features`` lets it log the raw
    features; ``record_exception_messages`` puts exception messages on lines and records. Both
    are off by default: features and exception messages may carry personal data.

    Idempotent: a second call replaces what the first installed (one handler, never two).

    Raises:
        ConfigurationError: an unknown renderer or level, or a rate outside [0, 1].

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``record_exception_messages``; exceptions are the
       ``exception.*`` fields, without messages by default.
    """
    number = _level_number(level)
    if not 0.0 <= sample_predictions <= 1.0:
        raise ConfigurationError(f"sample_predictions must be in [0, 1], not {sample_predictions}")
    render = _renderer(renderer, stream if stream is not None else sys.stdout)
    provider = logger_provider if logger_provider is not None else logs_api.get_logger_provider()
    handler = _Handler(stream)
    handler.setFormatter(_formatter(renderer, render, provider, export))
    handler.setLevel(number)
    with _configure_lock:
        Service.name = service_name_of(provider)
        settings.sample_predictions = sample_predictions
        settings.include_features = include_features
        settings.record_exception_messages = record_exception_messages
        _install_handler(handler, number, export)
        _configure_structlog()


def unconfigure_logging() -> None:
    """Undo :func:`configure_logging`: its handler leaves the root logger (whose level is put
    back), its filters leave the servers' loggers, structlog's configuration is reset unless
    the application made it, and the settings are the defaults again. For tests, and for an
    application that hands logging to something else.

    .. versionadded:: 0.2.0
    """
    global _our_processors, _root_level_before
    with _configure_lock:
        root = logging.getLogger()
        _remove_handlers(root)
        if _root_level_before is not None:
            root.setLevel(_root_level_before)
            _root_level_before = None
        for name in SERVER_ERROR_LOGGERS:
            logging.getLogger(name).removeFilter(_already_logged)
        if _our_processors is not None and structlog.get_config()["processors"] is _our_processors:
            structlog.reset_defaults()
        _our_processors = None
        Service.name = None
        settings.reset()


def get_logger(name: str | None = None, **initial_values: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (the standard-library logger of that name underneath),
    bound to ``initial_values``.

    Typed as structlog's stdlib ``BoundLogger``, which it is once :func:`configure_logging`
    configured structlog; with an application's own structlog configuration it is whatever
    that configuration makes.

    .. versionadded:: 0.1.0
    """
    return structlog.stdlib.get_logger(name, **initial_values)
