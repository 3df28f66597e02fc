"""Hooks: user callbacks told about each step of a retried call, sync or async.

A hook that raises `StopRetrying` ends retrying; any other error is logged with its traceback
and the call goes on as if the hook had returned.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from reflow.retry.errors import StopRetrying
from reflow.retry.state import AttemptState

logger = logging.getLogger("reflow.retry")

Hook = Callable[[AttemptState], object]
HOOK_NAMES = (
    "before_attempt",
    "on_success",
    "on_failure",
    "before_wait",
    "after_wait",
    "on_giveup",
)


def check_hooks(
    value: Any, argument: str, signature: str = "(AttemptState) -> None"
) -> tuple[Any, ...]:
    """Return hooks as a tuple, raising at decoration time on anything not callable."""
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        raise TypeError(f"{argument} takes functions {signature}, got {value!r}")
    try:
        hooks = (value,) if callable(value) else tuple(value)
    except TypeError:
        raise TypeError(
            f"{argument} takes a function {signature} or a list of them, got {value!r}"
        ) from None
    for hook in hooks:
        if not callable(hook):
            raise TypeError(f"{argument} takes functions {signature}, got {hook!r}")
    return hooks


def _log_hook_error(hook: Hook, state: AttemptState) -> None:
    logger.exception(
        "reflow: the %s hook %s raised during attempt %d of %s; the call goes on as if it "
        "had returned",
        state.phase.value,
        getattr(hook, "__qualname__", hook),
        state.attempt,
        state.name,
    )


def run_awaitable(awaitable: Awaitable[object]) -> object:
    """Run an awaitable to completion from sync code and return its value."""
    import asyncio

    async def wrapper() -> object:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapper())
    # This thread already runs a loop we may not block on: run the hook on a loop of its own.
    errors: list[BaseException] = []
    results: list[object] = []

    def target() -> None:
        try:
            results.append(asyncio.run(wrapper()))
        except BaseException as exc:  # handed back to the caller's thread below
            errors.append(exc)

    thread = threading.Thread(target=target, name="reflow-async-hook")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def call_hooks_sync(hooks: tuple[Hook, ...], state: AttemptState) -> str | bool:
    """Call `hooks` in order; when one raised `StopRetrying`, return its message or True."""
    stop: str | bool = False
    for hook in hooks:
        try:
            outcome = hook(state)
            if inspect.isawaitable(outcome):
                run_awaitable(outcome)
        except StopRetrying as signal:
            stop = str(signal) or True
        except Exception:
            _log_hook_error(hook, state)
    return stop


async def call_hooks_async(hooks: tuple[Hook, ...], state: AttemptState) -> str | bool:
    """Call (and await) `hooks` in order; when one raised `StopRetrying`, its message or True."""
    stop: str | bool = False
    for hook in hooks:
        try:
            outcome = hook(state)
            if inspect.isawaitable(outcome):
                await outcome
        except StopRetrying as signal:
            stop = str(signal) or True
        except Exception:
            _log_hook_error(hook, state)
    return stop


__all__ = ["HOOK_NAMES", "Hook", "call_hooks_async", "call_hooks_sync", "check_hooks"]
