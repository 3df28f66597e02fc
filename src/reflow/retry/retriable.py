"""`@retry` and `Retriable`: a function wrapped in a retry policy, sync or async."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, Unpack, overload

from reflow.retry import _clock
from reflow.retry.budget import RetryBudget
from reflow.retry.conditions import Condition
from reflow.retry.durations import Duration
from reflow.retry.hooks import HOOK_NAMES, Hook
from reflow.retry.plan import drive_async, drive_sync, plan
from reflow.retry.policy import HookArg, OnLike, Policy, PolicyOptions, make_policy
from reflow.retry.state import AttemptState
from reflow.retry.waits import WaitLike

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H", bound=Hook)


class Retriable(Generic[P, R]):
    """A function together with its retry policy; call it like the function.

    Sync functions stay sync and `async def` functions stay awaitable. Registering a hook
    (`@fetch.on_failure`) changes this Retriable; `with_options()` makes a new one.
    """

    _fn: Callable[P, R]
    _policy: Policy
    __qualname__: str

    def __init__(self, fn: Callable[P, R], policy: Policy) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._policy = policy

    @property
    def policy(self) -> Policy:
        """The validated policy this Retriable applies."""
        return self._policy

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        policy = self._policy
        start = _clock.monotonic()
        if policy.plain:
            try:
                return self._fn(*args, **kwargs)
            except Exception as exc:
                first = exc
            steps = plan(policy, self.__qualname__, args, kwargs, start, (first, None))
            del first  # the traceback holds this frame: do not leave a reference cycle
        else:
            steps = plan(policy, self.__qualname__, args, kwargs, start)
        result: R = drive_sync(steps, self._fn, args, kwargs)
        return result

    def continue_after(
        self, failure: Exception, started: float, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Finish a call whose first attempt the caller ran itself, and which raised `failure`.

        For layers above that run the first attempt inline on their own fast path: hooks and
        conditions then see attempt 1 as if this Retriable had made it. `started` is the retry
        clock's reading (`reflow.retry._clock.monotonic()`) taken before that attempt.
        """
        steps = plan(self._policy, self.__qualname__, args, kwargs, started, (failure, None))
        del failure  # the traceback holds the caller's frame: leave no reference cycle here
        result: R = drive_sync(steps, self._fn, args, kwargs)
        return result

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        """Bind like a function does, so `@retry` works on methods."""
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def with_options(self, **overrides: Unpack[PolicyOptions]) -> Retriable[P, R]:
        """A new Retriable of the same function with some options replaced."""
        unknown = set(overrides) - set(self._policy.options) - set(HOOK_NAMES)
        if unknown:
            raise TypeError(
                f"with_options() got unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join([*self._policy.options, *HOOK_NAMES])}"
            )
        options: dict[str, Any] = {**self._policy.options, **self._policy.hooks, **overrides}
        return _make(self._fn, make_policy(**options))

    def _add_hook(self, kind: str, hook: H) -> H:
        self._policy = self._policy.with_hook(kind, hook)
        return hook

    def before_attempt(self, hook: H) -> H:
        """Register a hook called before every attempt."""
        return self._add_hook("before_attempt", hook)

    def on_success(self, hook: H) -> H:
        """Register a hook called when an attempt succeeds."""
        return self._add_hook("on_success", hook)

    def on_failure(self, hook: H) -> H:
        """Register a hook called after every failed attempt, the last one included."""
        return self._add_hook("on_failure", hook)

    def before_wait(self, hook: H) -> H:
        """Register a hook called before waiting for the next attempt (`wait_seconds` is set)."""
        return self._add_hook("before_wait", hook)

    def after_wait(self, hook: H) -> H:
        """Register a hook called after the wait, before the next attempt."""
        return self._add_hook("after_wait", hook)

    def on_giveup(self, hook: H) -> H:
        """Register a hook called once when retrying ends in failure."""
        return self._add_hook("on_giveup", hook)

    def __repr__(self) -> str:
        policy = self._policy
        return f"<Retriable {self.__qualname__} until={policy.until!r} wait={policy.wait!r}>"


class _AsyncRetriable(Retriable[P, R]):
    """A Retriable of an `async def` function: calling it returns a coroutine."""

    def __init__(self, fn: Callable[P, R], policy: Policy) -> None:
        super().__init__(fn, policy)
        mark_coroutine_function(self)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:  # type: ignore[override]
        policy = self._policy
        start = _clock.monotonic()
        fn: Any = self._fn
        if policy.plain:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                first = exc
            steps = plan(policy, self.__qualname__, args, kwargs, start, (first, None))
            del first  # the traceback holds this frame: do not leave a reference cycle
        else:
            steps = plan(policy, self.__qualname__, args, kwargs, start)
        return await drive_async(steps, fn, args, kwargs)

    async def continue_after(  # type: ignore[override]
        self, failure: Exception, started: float, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        steps = plan(self._policy, self.__qualname__, args, kwargs, started, (failure, None))
        del failure
        return await drive_async(steps, self._fn, args, kwargs)  # type: ignore[arg-type]


def mark_coroutine_function(obj: object) -> None:
    """Make a callable object that returns coroutines pass `iscoroutinefunction` checks."""
    marker = getattr(inspect, "_is_coroutine_mark", None)
    if marker is not None:  # Python 3.12+: inspect.iscoroutinefunction(obj) is True
        obj._is_coroutine_marker = marker  # type: ignore[attr-defined]
    else:  # Python 3.11: asyncio.iscoroutinefunction(obj) is True
        import asyncio.coroutines

        obj._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]


def _make(fn: Callable[P, R], policy: Policy) -> Retriable[P, R]:
    if not callable(fn):
        raise TypeError(f"retry() decorates a function, got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"retry() cannot retry the generator function {fn.__qualname__}: calling it only "
            "creates the generator, so nothing could fail; retry the code that consumes it"
        )
    # A Retriable of an async function is not a coroutine function to inspect on Python 3.11.
    if inspect.iscoroutinefunction(fn) or isinstance(fn, _AsyncRetriable):
        return _AsyncRetriable(fn, policy)  # type: ignore[arg-type]
    return Retriable(fn, policy)


@overload
def retry(fn: Callable[P, R], /) -> Retriable[P, R]: ...


@overload
def retry(
    *,
    until: Condition | Callable[[AttemptState], bool] | None = None,
    attempts: int | None = None,
    on: OnLike | None = None,
    wait: WaitLike | None = None,
    deadline: Duration | None = None,
    timeout: Duration | None = None,
    budget: RetryBudget | None = None,
    before_attempt: HookArg = None,
    on_success: HookArg = None,
    on_failure: HookArg = None,
    before_wait: HookArg = None,
    after_wait: HookArg = None,
    on_giveup: HookArg = None,
) -> Callable[[Callable[P, R]], Retriable[P, R]]: ...


def retry(
    fn: Callable[P, R] | None = None,
    /,
    *,
    until: Condition | Callable[[AttemptState], bool] | None = None,
    attempts: int | None = None,
    on: OnLike | None = None,
    wait: WaitLike | None = None,
    deadline: Duration | None = None,
    timeout: Duration | None = None,
    budget: RetryBudget | None = None,
    before_attempt: HookArg = None,
    on_success: HookArg = None,
    on_failure: HookArg = None,
    before_wait: HookArg = None,
    after_wait: HookArg = None,
    on_giveup: HookArg = None,
) -> Retriable[P, R] | Callable[[Callable[P, R]], Retriable[P, R]]:
    """Retry a function when it raises, following a policy checked right here.

    `@retry` alone makes up to 5 attempts on any `Exception`, waiting 0.1 s, 0.2 s, 0.4 s...
    (capped at 5 s, full jitter). `until` is a stop condition; `attempts`, `on` and `deadline`
    are shorthands for the usual ones. `wait` is seconds, a `timedelta`, a sequence (the last
    repeats), a strategy from `reflow.retry.waits` or a function of the `AttemptState`.
    `timeout` bounds each attempt. Bad options raise here, not at the first call.
    """
    policy = make_policy(
        until=until, attempts=attempts, on=on, wait=wait, deadline=deadline, timeout=timeout,
        budget=budget, before_attempt=before_attempt, on_success=on_success,
        on_failure=on_failure, before_wait=before_wait, after_wait=after_wait,
        on_giveup=on_giveup,
    )  # fmt: skip
    if fn is not None:
        return _make(fn, policy)

    def decorate(fn: Callable[P, R]) -> Retriable[P, R]:
        return _make(fn, policy)

    return decorate
