"""The one registry of fork hooks.

A pre-forking server (gunicorn, ``uvicorn --workers``, multiprocessing's ``fork`` start method)
copies the parent's memory into each worker, locks included: a lock another thread held at fork
time stays held forever in the child, a serving thread does not exist there, a handle may point
at the parent's pid. Each module that holds such state registers one plain function here with
:func:`after_fork_in_child`; this module registers a single ``os.register_at_fork`` hook that
runs them in registration order.

One failing hook never stops the others: its error is logged with its traceback and re-raised
nowhere (the child must come up). This module sits below the guard, which registers a hook
here. Registration is explicit at import of the module that owns the state; hooks are never
unregistered (they iterate weak sets of live owners).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Final

Hook = Callable[[], None]

_hooks: Final[list[Hook]] = []
_logger: Final = logging.getLogger("otel_mlmon")


def after_fork_in_child(hook: Hook) -> Hook:
    """Run ``hook()`` in every forked child, after the hooks registered before it.

    Usable as a decorator; registering the same function twice runs it once.
    """
    if hook not in _hooks:
        _hooks.append(hook)
    return hook


def run_child_hooks() -> None:
    """Run every registered hook, each isolated from the others' failures (the os hook;
    tests call it to simulate a fork without forking)."""
    _run_isolated(list(_hooks))  # the child must come up whatever one hook does


def registered() -> tuple[Hook, ...]:
    """The registered hooks, in the order they run."""
    return tuple(_hooks)


_parent_hooks: Final[list[tuple[Hook, Hook]]] = []


def around_fork_in_parent(before: Hook, after: Hook) -> None:
    """Run ``before()`` in the parent just before every fork and ``after()`` in the parent
    just after it: to hold a lock across the fork, so that no thread of the parent is inside
    the section it guards when the child's copy is made. ``before`` must return quickly (bound
    any wait); neither may raise (a failure is logged, the fork goes on)."""
    if (before, after) not in _parent_hooks:
        _parent_hooks.append((before, after))


def _run_isolated(hooks: list[Hook]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:  # the fork must go on whatever one hook does
            _logger.warning(
                "otel-mlmon: fork hook %s failed in process %d; the other hooks ran",
                getattr(hook, "__qualname__", hook),
                os.getpid(),
                exc_info=True,
            )


def _before_fork() -> None:
    _run_isolated([before for before, _ in reversed(_parent_hooks)])


def _after_fork_in_parent() -> None:
    _run_isolated([after for _, after in _parent_hooks])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=run_child_hooks
    )
