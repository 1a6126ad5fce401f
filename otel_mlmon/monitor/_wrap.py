"""``ModelMonitor.wrap``: a predict function run inside ``monitor.predict()``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from otel_mlmon.monitor._recorder import Prediction

P = ParamSpec("P")


def wrap_predict(
    predict: Callable[[object], Prediction], func: Callable[P, Any]
) -> Callable[P, Any]:
    """``func`` run inside ``predict(features=first argument)``, its result recorded (see
    :meth:`ModelMonitor.wrap`)."""

    def record(p: Prediction, result: object) -> None:
        if isinstance(result, tuple) and len(result) == 2:
            p.record(result[0], result[1])
        else:
            p.record(result)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with predict(args[0] if args else None) as p:
                result = await func(*args, **kwargs)
                record(p, result)
            return result

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        with predict(args[0] if args else None) as p:
            result = func(*args, **kwargs)
            record(p, result)
        return result

    return wrapper
