"""`@task` and `Task`: one function with retries, a timeout, a cache, states and hooks.

The attempt loop is `reflow.retry`'s: a task builds one `Retriable` around its function and
follows the run through the retry hooks (before_attempt -> Running, before_wait ->
AwaitingRetry, on_success -> Completed, on_giveup -> Failed). Each call is a `TaskRun`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Callable, Iterable
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from reflow import events
from reflow.retry import (
    AttemptState,
    AttemptTimeout,
    StopRetrying,
    _clock,
    retry,
)
from reflow.retry.hooks import run_awaitable
from reflow.retry.retriable import mark_coroutine_function
from reflow.states import (
    Cached,
    Cancelled,
    Completed,
    Failed,
    Pending,
    Retrying,
    Running,
    Skipped,
    State,
    TimedOut,
    new_state,
)
from reflow.task import context, limits
from reflow.task.cache import (
    DEFAULT_CACHE_STORE,
    CacheEntry,
    CachePolicy,
    CacheStore,
    compute_key,
    source_hash,
)
from reflow.task.config import TaskConfig
from reflow.task.futures import Future, FutureList
from reflow.task.hooks import (
    StateHandler,
    TaskHook,
    apply_handlers,
    check_callables,
    fire_async,
    fire_sync,
)
from reflow.task.hooks import (
    logger as task_logger,
)
from reflow.task.options import RetryDelay
from reflow.task.run import AttemptRecord, TaskRun
from reflow.task.signals import BAD_CALL, Fail, Pause, Skip, is_crash
from reflow.task.signals import Retry as RetrySignal

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


class Task(Generic[P, R]):
    """A function run as a task: call it like the function, or ask for its final state.

    `task(x)` returns the result or raises; `task(x, return_state=True)` returns the final
    `State`. Options are Prefect's names (`retries`, `retry_delay_seconds`, ...), checked here.
    """

    def __init__(self, fn: Callable[P, R], **options: Any) -> None:
        if not callable(fn):
            raise TypeError(f"@task decorates a function, got {fn!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"@task cannot run the generator function {fn.__qualname__}")
        self.fn = fn
        self._options = options
        o = TaskConfig(fn, options)
        self.name: str = o.name
        self.description: str | None = o.description
        self.version: str | None = o.version
        self.tags: frozenset[str] = o.tags
        self.retries: int = o.retries
        self.timeout_seconds: float | None = o.timeout_seconds
        self.cache_policy: CachePolicy | None = o.cache_policy
        self.cache_expiration: float | None = o.cache_expiration
        self.refresh_cache: bool = o.refresh_cache
        self.cache_store: CacheStore = o.cache_store
        self.persist_result: bool | None = o.persist_result
        self.skip_on_upstream_skip: bool = o.skip_on_upstream_skip
        self.trigger: Callable[..., Any] | None = o.trigger
        self.revert_fn: Callable[..., Any] | None = o.revert
        self.retry_condition_fn = o.retry_condition_fn
        self.hooks: dict[str, tuple[TaskHook, ...]] = o.hooks
        self.state_handlers: tuple[StateHandler, ...] = o.state_handlers
        self.is_async = inspect.iscoroutinefunction(fn)
        self._source_hash: str | None = None
        self._takes_return_state = "return_state" in _parameter_names(fn)
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn
        attempt: Callable[..., Any] = self._attempt_async if self.is_async else self._attempt_sync
        self._retriable = retry(
            until=o.until,
            wait=o.wait,
            timeout=o.timeout_seconds,
            before_attempt=self._before_attempt,
            on_failure=self._on_attempt_failure,
            before_wait=self._before_wait,
            on_success=self._on_success,
            on_giveup=self._on_giveup,
        )(attempt)
        self._retriable.__qualname__ = self.__qualname__  # its logs and notes name the task
        self._fast = self._can_run_fast()

    def _can_run_fast(self) -> bool:
        """Whether a call may run its first attempt inline (nothing to fire, look up or time).

        On the fast path the task records the same states and attempts itself and hands over to
        its Retriable only if that attempt raises; hooks, a cache or a timeout need the full path.
        """
        has_hooks = any(self.hooks.values())
        return not (has_hooks or self.cache_policy is not None or self.timeout_seconds)

    # -- the public surface -------------------------------------------------------------------

    @property
    def source_hash(self) -> str:
        """A digest of the function's source (what `TASK_SOURCE` keys on)."""
        if self._source_hash is None:
            self._source_hash = source_hash(self.fn)
        return self._source_hash

    def with_options(self, **overrides: Any) -> Task[P, R]:
        """A new task of the same function with some options replaced."""
        unknown = set(overrides) - set(TaskConfig.NAMES)
        if unknown:
            raise TypeError(
                f"with_options() got unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(TaskConfig.NAMES)}"
            )
        current = {**self._options, **self.hooks, "state_handlers": self.state_handlers}
        current["revert"] = self.revert_fn
        return _make(self.fn, {**current, **overrides})

    def revert(self, fn: F) -> F:
        """Register the compensation `fn(result, *args, **kwargs)` that undoes this task."""
        self.revert_fn = check_callables(fn, "revert")[0]
        return fn

    def on_running(self, fn: F) -> F:
        """Register a hook `(task, run, state)` called as each attempt starts."""
        return self._add_hook("on_running", fn)

    def on_retry(self, fn: F) -> F:
        """Register a hook `(task, run, state)` called when a failed attempt will be retried."""
        return self._add_hook("on_retry", fn)

    def on_completion(self, fn: F) -> F:
        """Register a hook `(task, run, state)` called when the run completes (cached included)."""
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: F) -> F:
        """Register a hook `(task, run, state)` called when the run fails for good."""
        return self._add_hook("on_failure", fn)

    def _add_hook(self, kind: str, fn: F) -> F:
        self.hooks = {**self.hooks, kind: (*self.hooks[kind], *check_callables(fn, kind))}
        self._fast = self._can_run_fast()
        return fn

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State[R]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        runner = context.runner.get()
        if runner is not None:
            return runner.call(self, args, kwargs)  # inside a flow: the flow records the run
        return_state = self._pop_return_state(kwargs)
        run = self._start(args, kwargs)
        token = context.task_run.set(run)
        try:
            if self.tags and limits.registry:
                slots = limits.acquire(self.tags)
                try:
                    self._execute(run, args, kwargs)
                finally:
                    limits.release(slots)
            else:
                self._execute(run, args, kwargs)
        finally:
            context.task_run.reset(token)
        return self._outcome(run, return_state)

    def submit(self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any) -> Future[R]:
        """Start a run in the flow's executor and return its `Future` at once.

        Futures among the arguments (also inside lists, tuples, sets and dicts) and in
        `wait_for` are upstreams: the run starts once they are done, with their results in place.
        """
        return self._runner("submit").submit(self, args, kwargs, wait_for or ())

    def map(
        self, *args: Any, wait_for: Iterable[Any] | None = None, **kwargs: Any
    ) -> FutureList[R]:
        """Submit one run per element of the iterable arguments, zipped; `unmapped(x)` is whole.

        Arguments that are not iterable (or are str, bytes or mappings) go whole to every run.
        Iterables of different lengths are an error, raised before any run starts.
        """
        return self._runner("map").map(self, args, kwargs, wait_for or ())

    def _runner(self, method: str) -> context.TaskRunner:
        runner = context.runner.get()
        if runner is None:
            raise RuntimeError(
                f"{self.name}.{method}() runs inside a flow: call it from a function decorated "
                f"with @reflow.flow (outside a flow, call the task directly: {self.name}(...))"
            )
        return runner

    def _execute(self, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Take a Pending run to its final state in this thread; only interrupts propagate."""
        if self._fast:
            started = self._enter_first_attempt(run)
            try:
                result = self._attempt_sync(run, args, kwargs)
            except Exception as exc:
                failure = exc
            except BaseException as interrupt:
                self._cancel(run, interrupt)
                raise
            else:
                self._complete(run, result)
                return
            with _Settle(self, run):
                self._retriable.continue_after(failure, started, (run, args, kwargs), {})
            return
        key = self._cache_key(run)
        if key is not None and self._serve_cached(run, key):
            fire_sync(self, self.hooks[_final_hook(run.state)], run, run.state)
            return
        with _Settle(self, run):
            self._retriable(run, args, kwargs)
        self._store(run, key)

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        """Bind like a function does, so `@task` works on methods."""
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<Task {self.name} retries={self.retries}>"

    # -- one call -----------------------------------------------------------------------------

    def _pop_return_state(self, kwargs: dict[str, Any]) -> bool:
        if "return_state" in kwargs and not self._takes_return_state:
            return bool(kwargs.pop("return_state"))
        return False

    def _start(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], parent_id: str | None = None
    ) -> TaskRun:
        run = TaskRun(self, args, kwargs)
        run.parent_id = parent_id
        self._transition(run, Pending())
        return run

    def _cache_key(self, run: TaskRun) -> str | None:
        if self.cache_policy is None:
            return None
        run.cache_key = compute_key(self.cache_policy, run, run.parameters)
        return run.cache_key

    def _serve_cached(self, run: TaskRun, key: str) -> bool:
        if self.refresh_cache:
            return False
        entry = self._cache_for(run).get(key)
        if entry is None or not entry.is_fresh(time.time()):
            return False
        self._transition(run, Cached(entry.value, message=f"cache hit {key[:12]}"))
        return True

    def _store(self, run: TaskRun, key: str | None) -> None:
        state = run.state
        if key is None or state.name != "Completed":
            return  # a failed or skipped run is never cached
        now = time.time()
        expires = None if self.cache_expiration is None else now + self.cache_expiration
        self._cache_for(run).put(key, CacheEntry(state.data, now, expires, self.name))

    def _cache_for(self, run: TaskRun) -> CacheStore:
        """The cache of this run: the task's, except that a run whose result is not kept
        (`persist_result=False`) keeps its entries in this process, not in the default store."""
        store = self.cache_store
        if run.persist_result is False and store is DEFAULT_CACHE_STORE:
            return DEFAULT_CACHE_STORE.memory
        return store

    def _outcome(self, run: TaskRun, return_state: bool) -> Any:
        state = run.state
        if return_state:
            return state
        if state.is_completed():
            return state.data
        if state.exception is not None:
            raise state.exception
        raise Fail(state.message or f"task {self.name} ended {state.name}")

    def _cancel(self, run: TaskRun, interrupt: BaseException) -> None:
        attempt = len(run.attempts)
        if run.attempts:
            run.attempts[-1].ended = time.time()
        message = f"{type(interrupt).__name__} during attempt {attempt}; not retried"
        self._transition(run, Cancelled(message, attempt=attempt))

    def _transition(self, run: TaskRun, new: State[Any]) -> State[Any]:
        """Every state change of a run goes through here: handlers, history, then events."""
        if self.state_handlers:
            new = apply_handlers(self, self.state_handlers, run, new)
        states = run.states
        states.append(new)
        if events.subscribers:
            previous = states[-2] if len(states) > 1 else None
            events.publish(
                events.StateChange("task", run.id, run.task_name, new, previous, run.parent_id, run)
            )
        return new

    def _fire(self, kind: str, run: TaskRun, state: State[Any]) -> Any:
        hooks = self.hooks[kind]
        if not hooks:
            return None
        if self.is_async:
            return fire_async(self, hooks, run, state)  # awaited by the retry layer
        fire_sync(self, hooks, run, state)
        return None

    # -- the attempt and the retry-layer hooks that follow it ---------------------------------

    def _attempt_sync(self, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            invoke = run.invoke
            if invoke is not None:
                return invoke(self.fn, args, kwargs)
            return self.fn(*args, **kwargs)
        except Skip as signal:
            run.skip = signal
            return signal.result
        except TypeError as exc:
            self._mark_bad_call(exc, args, kwargs)
            raise

    async def _attempt_async(
        self, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return await self.fn(*args, **kwargs)  # type: ignore[misc]
        except Skip as signal:
            run.skip = signal
            return signal.result
        except TypeError as exc:
            self._mark_bad_call(exc, args, kwargs)
            raise

    def _mark_bad_call(self, exc: TypeError, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A TypeError whose cause is the call itself is not retried: it would fail again."""
        try:
            inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as mismatch:
            setattr(exc, BAD_CALL, True)
            exc.add_note(
                f"reflow: task {self.name} was called with arguments that do not fit: {mismatch}"
            )
        except ValueError:
            pass  # no signature to check against

    def _before_attempt(self, st: AttemptState) -> Any:
        run: TaskRun = st.args[0]
        run.skip = None
        run.attempts.append(AttemptRecord(st.attempt, time.time()))
        new = Running(attempt=1) if st.attempt == 1 else Retrying(attempt=st.attempt)
        return self._fire("on_running", run, self._transition(run, new))

    def _on_attempt_failure(self, st: AttemptState) -> Any:
        run: TaskRun = st.args[0]
        exc = st.exception
        record = run.attempts[-1]
        record.ended = time.time()
        if isinstance(exc, AttemptTimeout):
            record.state = TimedOut(exc, message=str(exc), attempt=st.attempt)
        elif isinstance(exc, Pause):
            message = exc.message or f"task {self.name} paused its flow run"
            record.state = new_state("Paused", message=message, exception=exc, attempt=st.attempt)
        elif exc is not None and is_crash(exc):
            message = f"its worker was lost: {_describe(exc)}"
            record.state = new_state("Crashed", message=message, exception=exc, attempt=st.attempt)
        else:
            record.state = Failed(exc, message=_describe(exc), attempt=st.attempt)
        condition = self.retry_condition_fn
        if (
            condition is None
            or isinstance(exc, RetrySignal | Fail)
            or self._retriable.policy.until(st)
        ):
            return None  # forced retry, forced failure, or no retry anyway: nothing to ask
        if self.is_async:
            return self._ask_condition_async(condition, run, record.state, exc)
        try:
            verdict = condition(self, run, record.state)
            if inspect.isawaitable(verdict):
                verdict = run_awaitable(verdict)
        except Exception as error:
            self._condition_failed(run, exc, error)
        if not verdict:
            raise StopRetrying("retry_condition_fn returned False")
        return None

    async def _ask_condition_async(
        self, condition: Callable[..., Any], run: TaskRun, state: State[Any], exc: Any
    ) -> None:
        try:
            verdict = condition(self, run, state)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as error:
            self._condition_failed(run, exc, error)
        if not verdict:
            raise StopRetrying("retry_condition_fn returned False")

    def _condition_failed(self, run: TaskRun, exc: Any, error: Exception) -> None:
        run.hook_errors.append(error)
        if exc is not None:
            exc.add_note(f"reflow: retry_condition_fn raised {error!r}; the task is not retried")
        task_logger.error(
            "reflow: retry_condition_fn of task %s raised; not retrying", self.name,
            exc_info=(type(error), error, error.__traceback__),
        )  # fmt: skip
        raise StopRetrying(f"retry_condition_fn raised {type(error).__name__}") from error

    def _before_wait(self, st: AttemptState) -> Any:
        run: TaskRun = st.args[0]
        message = f"attempt {st.attempt} failed ({_describe(st.exception)}); "
        message += f"retrying in {st.wait_seconds:.3g} s"
        state = new_state("AwaitingRetry", message=message, attempt=st.attempt)
        return self._fire("on_retry", run, self._transition(run, state))

    def _on_success(self, st: AttemptState) -> Any:
        run: TaskRun = st.args[0]
        state = self._complete(run, st.result)
        return self._fire(_final_hook(state), run, state)

    def _complete(self, run: TaskRun, result: Any) -> State[Any]:
        """End the current attempt and the run as Completed, or Skipped after a Skip signal."""
        record = run.attempts[-1]
        record.ended = time.time()
        if run.skip is not None:
            final = Skipped(run.skip.message, data=result, attempt=record.number)
        else:
            final = Completed(result, attempt=record.number)
        record.state = final
        return self._transition(run, final)

    def _enter_first_attempt(self, run: TaskRun) -> float:
        """Move a run to Running for attempt 1, as the before_attempt hook would.

        Returns the retry clock's reading for `Retriable.continue_after` should it fail.
        """
        started = _clock.monotonic()
        state = self._transition(run, Running(attempt=1))
        run.attempts.append(AttemptRecord(1, state.timestamp))
        return started

    def _on_giveup(self, st: AttemptState) -> Any:
        run: TaskRun = st.args[0]
        final = run.attempts[-1].state or Failed(st.exception, attempt=st.attempt)
        state = self._transition(run, final)
        if state.is_paused():
            return None  # not an end: the run goes on when its flow run resumes
        return self._fire(_final_hook(state), run, state)


class _AsyncTask(Task[P, R]):
    """A task of an `async def` function: calling it returns a coroutine."""

    def __init__(self, fn: Callable[P, R], **options: Any) -> None:
        super().__init__(fn, **options)
        mark_coroutine_function(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A coroutine to await; in a sync flow (no running loop) the call runs at once on the
        flow's event loop and returns its value."""
        runner = context.runner.get()
        if runner is not None and not _loop_running():
            return runner.call_from_sync(self, args, kwargs)
        return self._call(runner, args, kwargs)

    async def _call(self, runner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if runner is not None:
            return await runner.call_async(self, args, kwargs)
        return_state = self._pop_return_state(kwargs)
        run = self._start(args, kwargs)
        token = context.task_run.set(run)
        try:
            if self.tags and limits.registry:
                slots = await limits.acquire_async(self.tags)
                try:
                    await self._execute_async(run, args, kwargs)
                finally:
                    limits.release(slots)
            else:
                await self._execute_async(run, args, kwargs)
        finally:
            context.task_run.reset(token)
        return self._outcome(run, return_state)

    async def _execute_async(
        self, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Take a Pending run to its final state on this event loop; only interrupts propagate."""
        if self._fast:
            started = self._enter_first_attempt(run)
            try:
                result = await self._attempt_async(run, args, kwargs)
            except Exception as exc:
                failure = exc
            except BaseException as interrupt:
                self._cancel(run, interrupt)
                raise
            else:
                self._complete(run, result)
                return
            with _Settle(self, run):
                await self._retriable.continue_after(failure, started, (run, args, kwargs), {})
            return
        key = self._cache_key(run)
        if key is not None and self._serve_cached(run, key):
            await fire_async(self, self.hooks[_final_hook(run.state)], run, run.state)
            return
        with _Settle(self, run):
            await self._retriable(run, args, kwargs)
        self._store(run, key)


class _Settle:
    """Around a task's retry loop: a failure is already the run's final state (the call's
    outcome raises it); an interrupt (KeyboardInterrupt, CancelledError) cancels the run."""

    __slots__ = ("run", "task")

    def __init__(self, task: Task[..., Any], run: TaskRun) -> None:
        self.task = task
        self.run = run

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            return False
        if isinstance(exc, Exception):
            return True  # recorded in the final state by the on_giveup hook; raised from there
        self.task._cancel(self.run, exc)
        return False


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _final_hook(state: State[Any]) -> str:
    """The hook kind a final state fires (a state handler may have turned a hit into a failure)."""
    return "on_completion" if state.is_completed() else "on_failure"


def _describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "rejected result"


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _make(fn: Callable[P, R], options: dict[str, Any]) -> Task[P, R]:
    if inspect.iscoroutinefunction(fn):
        return _AsyncTask(fn, **options)  # type: ignore[arg-type]
    return Task(fn, **options)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: RetryDelay | None = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[[Task[..., Any], TaskRun, State[Any]], object] | None = None,
    retry_on: type[Exception] | tuple[type[Exception], ...] | list[type[Exception]] | None = None,
    timeout_seconds: float | timedelta | None = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: Callable[[TaskRun, dict[str, Any]], str | None] | None = None,
    cache_expiration: float | timedelta | None = None,
    refresh_cache: bool = False,
    cache_store: CacheStore | None = None,
    persist_result: bool | None = None,
    on_running: TaskHook | Iterable[TaskHook] | None = None,
    on_retry: TaskHook | Iterable[TaskHook] | None = None,
    on_completion: TaskHook | Iterable[TaskHook] | None = None,
    on_failure: TaskHook | Iterable[TaskHook] | None = None,
    state_handlers: StateHandler | Iterable[StateHandler] | None = None,
    skip_on_upstream_skip: bool = True,
    trigger: Callable[..., Any] | None = None,
    revert: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a task: retries, timeout, cache, states and hooks, checked right here.

    `@task` alone runs the function once (retries default to `REFLOW_TASK_DEFAULT_RETRIES`,
    0 when unset). Called outside a flow, a task runs at once and returns its value.
    """
    if fn is not None:
        return _make(fn, options)
    TaskConfig(lambda: None, options)  # check the options now, before there is a function

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return _make(fn, options)

    return decorate
