"""`@flow` and `Flow`: a function whose task calls run as a graph and are recorded as one run.

A flow attempt runs the function with the flow engine plugged in (`reflow.task.context`), waits
for every task run it started, and decides the run's state from what it returned and from its
reference task runs. Retries re-run the function through a `reflow.retry` Retriable; task runs
completed in an earlier attempt are reused by their call key, not run again.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from reflow import events
from reflow.executors.base import Executor, check_executor
from reflow.executors.default import default_executor
from reflow.flow import runlog
from reflow.flow.arguments import resolve_call, upstreams
from reflow.flow.engine import Engine
from reflow.flow.errors import FlowPaused, ParameterError
from reflow.flow.parameters import Parameters
from reflow.flow.persistence import persistence_for
from reflow.flow.run import FlowRun
from reflow.retry import AttemptState, AttemptTimeout
from reflow.retry.conditions import AttemptsExhausted, ExceptionMatches
from reflow.retry.durations import to_seconds
from reflow.retry.hooks import run_awaitable
from reflow.retry.retriable import mark_coroutine_function
from reflow.retry.retriable import retry as retriable_of
from reflow.retry.timeouts import Interrupt
from reflow.states import NOT_KEPT, State, new_state
from reflow.task import context
from reflow.task.decorator import Task
from reflow.task.hooks import check_callables
from reflow.task.options import RetryDelay, delay_wait
from reflow.task.signals import Fail, PauseFlow, is_bad_call

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger("reflow.flow")

FlowHook = Callable[["Flow[..., Any]", FlowRun, State[Any]], object]
FLOW_HOOKS = ("on_completion", "on_failure", "on_cancellation", "on_crashed")
_HOOK_OF = {
    "COMPLETED": "on_completion",
    "FAILED": "on_failure",
    "CANCELLED": "on_cancellation",
    "CRASHED": "on_crashed",
}


class _AttemptFailed(Exception):
    """An attempt ended Failed without raising (a reference task failed): retry the flow."""

    def __init__(self, state: State[Any]) -> None:
        super().__init__(state.message)
        self.state = state


def _not_retryable(exc: BaseException) -> bool:
    """A failure that re-running the flow would only repeat: a bad parameter, or a task run
    that failed with `Fail` or a call that cannot work (bad arguments, unserialisable)."""
    if isinstance(exc, _AttemptFailed):
        exc = exc.state.exception or exc
    if getattr(exc, REVERT_ALL, False):
        return True  # a subflow's controller said REVERT_ALL: nothing around it retries
    return isinstance(exc, Fail | ParameterError) or is_bad_call(exc)


class Flow(Generic[P, R]):
    """A function run as a flow: `flow(x)` returns its value or raises; `return_state=True`
    gives the final `State`; `flow.run(x)` gives the `FlowRun` record."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: RetryDelay = 0,
        timeout_seconds: float | timedelta | None = None,
        executor: Executor | None = None,
        reference_tasks: Iterable[Task[..., Any] | str] | None = None,
        validate_parameters: bool = True,
        on_completion: FlowHook | Iterable[FlowHook] | None = None,
        on_failure: FlowHook | Iterable[FlowHook] | None = None,
        on_cancellation: FlowHook | Iterable[FlowHook] | None = None,
        on_crashed: FlowHook | Iterable[FlowHook] | None = None,
        retry: Any = None,
        persist: bool | None = None,
        store: Any = None,
        persist_result: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow decorates a function, got {fn!r}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(f"@flow cannot run the generator function {fn.__qualname__}")
        self.fn = fn
        self.name: str = name if name is not None else getattr(fn, "__name__", repr(fn))
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a flow's name is a non-empty str, got {self.name!r}")
        self._label = "@flow(...)" if fn is _options_only else f"flow {self.name}"
        self.description = description if description is not None else inspect.getdoc(fn)
        self.version = version
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"{self._label}: retries is an int >= 0, got {retries!r}")
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.timeout_seconds = (
            None if timeout_seconds is None else to_seconds(timeout_seconds, "timeout_seconds")
        )
        self.executor = None if executor is None else check_executor(executor)
        self.reference_tasks = _check_references(reference_tasks, self._label)
        self.validate_parameters = validate_parameters
        self.hooks: dict[str, tuple[FlowHook, ...]] = {
            "on_completion": check_callables(on_completion, "on_completion", "(flow, run, state)"),
            "on_failure": check_callables(on_failure, "on_failure", "(flow, run, state)"),
            "on_cancellation": check_callables(
                on_cancellation, "on_cancellation", "(flow, run, state)"
            ),
            "on_crashed": check_callables(on_crashed, "on_crashed", "(flow, run, state)"),
        }
        self.is_async = inspect.iscoroutinefunction(fn)
        self._parameters = Parameters(fn, self.name)
        self.retry = _check_controller(retry, retries, self)
        if persist is not None and not isinstance(persist, bool):
            raise TypeError(f"{self._label}: persist is True, False or None, got {persist!r}")
        self.persist = persist
        self.store = store
        if persist_result is not None and not isinstance(persist_result, bool):
            raise TypeError(
                f"{self._label}: persist_result is True, False (its result, and those of its "
                f"tasks that do not say, are never written to the store) or None, got "
                f"{persist_result!r}"
            )
        self.persist_result = persist_result
        self._takes_return_state = "return_state" in self._parameters.signature.parameters
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn
        attempt = self._attempt_async if self.is_async else self._attempt
        until: Any = AttemptsExhausted(1 + retries) | ExceptionMatches(_not_retryable)
        if self.retry is not None:
            until = self._controller_stops  # the controller decides, after the scope's reverts
        self._retriable = retriable_of(
            until=until,
            wait=delay_wait(retry_delay_seconds, retries),
            timeout=self.timeout_seconds,
            before_attempt=self._before_attempt,
            before_wait=self._before_wait,
        )(attempt)
        self._retriable.__qualname__ = f"flow {self.name}"

    # -- the public surface -------------------------------------------------------------------

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(self, *args: Any, return_state: Literal[True], **kwargs: Any) -> State[R]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return_state = self._pop_return_state(kwargs)
        return self._outcome(self._start(args, kwargs), return_state)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> FlowRun:
        """Run the flow and return its `FlowRun` (state, task runs, graph) instead of its value.

        Never raises the flow's failure: it is in `flow_run.state`.
        """
        return self._start(args, kwargs)

    def with_options(self, **overrides: Any) -> Flow[P, R]:
        """A new flow of the same function with some options replaced."""
        current: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "executor": self.executor,
            "reference_tasks": self.reference_tasks,
            "validate_parameters": self.validate_parameters,
            "retry": self.retry,
            "persist": self.persist,
            "store": self.store,
            "persist_result": self.persist_result,
            **self.hooks,
        }
        unknown = set(overrides) - set(current)
        if unknown:
            raise TypeError(
                f"with_options() got unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(current)}"
            )
        return _make(self.fn, {**current, **overrides})

    def on_completion(self, fn: F) -> F:
        """Register a hook `(flow, flow_run, state)` called when a run completes."""
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: F) -> F:
        """Register a hook `(flow, flow_run, state)` called when a run fails for good."""
        return self._add_hook("on_failure", fn)

    def on_cancellation(self, fn: F) -> F:
        """Register a hook `(flow, flow_run, state)` called when a run is cancelled."""
        return self._add_hook("on_cancellation", fn)

    def on_crashed(self, fn: F) -> F:
        """Register a hook `(flow, flow_run, state)` called when a run crashes (interrupted)."""
        return self._add_hook("on_crashed", fn)

    def _add_hook(self, kind: str, fn: F) -> F:
        added = check_callables(fn, kind, "(flow, run, state)")
        self.hooks = {**self.hooks, kind: (*self.hooks[kind], *added)}
        return fn

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"

    # -- one run ------------------------------------------------------------------------------

    def _pop_return_state(self, kwargs: dict[str, Any]) -> bool:
        if "return_state" in kwargs and not self._takes_return_state:
            return bool(kwargs.pop("return_state"))
        return False

    def _start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowRun:
        run_key, kept = self._run_key(kwargs)
        if run_key is not None:
            earlier = self._keyed_run(run_key, kept)
            if earlier is not None:
                return earlier  # type: ignore[no-any-return]
        flow_run, go = self._open(args, kwargs)
        if run_key is not None:
            flow_run.run_key, flow_run.persistence = run_key, kept
        if go:
            self._execute(flow_run)
        return flow_run

    def _run_key(self, kwargs: dict[str, Any]) -> tuple[str | None, Any]:
        """`run_key=` (the caller's, unless the function has such a parameter), and the store
        that keeps keyed runs."""
        if "run_key" not in kwargs or "run_key" in self._parameters.signature.parameters:
            return None, None
        run_key = kwargs.pop("run_key")
        if run_key is None:
            return None, None
        if not isinstance(run_key, str) or not run_key:
            raise TypeError(f"{self._label}: run_key is a non-empty str, got {run_key!r}")
        kept = persistence_for(True if self.persist is None else self.persist, self.store)
        if kept is None:
            raise ValueError(
                f"{self._label}: run_key= needs runs kept in a store, to find the earlier "
                "one (persist=False or REFLOW_STORE=memory keeps them in memory)"
            )
        return run_key, kept

    def _keyed_run(self, run_key: str, kept: Any) -> Any:
        """The run made with this key before: as it ended (Completed, Failed, Cancelled), or
        resumed to its end (it crashed, paused, or never finished)."""
        found = kept.by_run_key(run_key)
        if found is None:
            return None
        run_id, name, result, error = found
        state = new_state(name, message=f"the run of key {run_key!r}, as it ended")
        if not state.is_final() or state.is_crashed():
            return kept.resume(run_id, self)
        flow_run = FlowRun(self, run_id=run_id)
        flow_run.run_key = run_key
        if state.is_completed():
            message = state.message
            if result is NOT_KEPT:
                message = (
                    f"the run of key {run_key!r} completed, but its result was not kept in the "
                    "store (persist_result=False, or a value that cannot be stored): there is "
                    "no value to give back"
                )
            state = new_state(name, data=result, message=message)
        else:
            failure = RuntimeError(f"the run of key {run_key!r} ended {name}: {error}")
            state = new_state(name, exception=failure, message=state.message)
        flow_run.states.append(state)
        return flow_run

    def _open(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[FlowRun, bool]:
        """The run to execute (and whether to): a new one, or in a flow retry or resume of
        the parent, its earlier completed (reused as is) or paused (resumed) run."""
        parent = context.runner.get()
        engine = parent if isinstance(parent, Engine) else None
        flow_run: FlowRun | None = None
        if engine is not None:
            key = engine.next_key(f"flow:{self.name}")
            earlier = engine.flow_run.subflows_by_key.get(key)
            engine.subflow_keys.append(key)
            if earlier is not None and earlier.flow is self and earlier.states:
                if earlier.state.is_completed():
                    return earlier, False
                if earlier.state.is_paused():
                    return earlier, True
            ups, _ = upstreams(args, kwargs)
            for up in ups:
                up.wait()
            args, kwargs = resolve_call(args, kwargs)
            flow_run = FlowRun(self, parent_id=engine.flow_run.id)
            if flow_run.persist_result is None:  # as its parent says
                flow_run.persist_result = engine.flow_run.persist_result
            flow_run.upstream = tuple(u.run.id for u in ups)
            engine.flow_run.subflows_by_key[key] = flow_run
            engine.subflow_keys.append(key)
            engine.flow_run.subflow_runs.append(flow_run)
        else:
            flow_run = FlowRun(self)
        self._transition(flow_run, new_state("Pending"))
        provides = _provided_name(self.retry)
        if provides is not None:
            kwargs = {**kwargs, provides: None}  # a stand-in: each attempt gets the value
        try:
            if self.validate_parameters:
                bound = self._parameters.bind(args, kwargs, skip=provides)
            else:
                bound = self._parameters.signature.bind(*args, **kwargs)
                bound.apply_defaults()
        except (ParameterError, TypeError) as exc:
            error = exc if isinstance(exc, ParameterError) else ParameterError(str(exc))
            self._finish(flow_run, new_state("Failed", exception=error, message=str(error)))
            return flow_run, False
        flow_run.bound = bound
        flow_run.parameters = dict(bound.arguments)
        flow_run.call = (bound.args, bound.kwargs)
        return flow_run, True

    def _resume(self, flow_run: FlowRun) -> Any:
        self._execute(flow_run)
        return flow_run.state

    def resume(self, run_id: str, store: Any = None) -> Any:
        """Run this flow's stored run `run_id` again, reusing its completed task calls (see
        `reflow.resume`); returns its final state."""
        return self._kept(store).resume(run_id, self).state

    def _kept(self, store: Any) -> Any:
        kept = persistence_for(True, store if store is not None else self.store)
        if kept is None:
            raise RuntimeError("resume() needs a store: REFLOW_STORE is 'memory'")
        return kept

    def _resume_stored(
        self,
        run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        persistence: Any,
        run_key: str | None = None,
    ) -> Any:
        """Execute a stored run again under its own id (the store layer calls this)."""
        flow_run = self._reopen(run_id, args, kwargs, persistence, run_key)
        self._execute(flow_run)
        return flow_run

    def _reopen(
        self,
        run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        persistence: Any,
        run_key: str | None = None,
    ) -> FlowRun:
        flow_run = FlowRun(self, run_id=run_id)
        flow_run.persistence = persistence
        flow_run.run_key = run_key
        bound = self._parameters.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        flow_run.bound = bound
        flow_run.parameters = dict(bound.arguments)
        flow_run.call = (bound.args, bound.kwargs)
        if self.retry is not None:  # its controller goes on counting the tries of the run
            flow_run.scope = self.retry.new_scope(
                persistence.tries(run_id, self._controller_name())
            )
        self._transition(flow_run, new_state("Pending", message="resumed from the store"))
        return flow_run

    def _execute(self, flow_run: FlowRun) -> None:
        engine, executor = self._engine(flow_run)
        token = context.runner.set(engine)
        try:
            state = self._attempts(flow_run, engine)
        except BaseException as exc:
            self._interrupted(flow_run, engine, exc)
            raise
        finally:
            context.runner.reset(token)
            engine.close()
            executor.shutdown()
        self._finish(flow_run, state)

    def _persistence(self, flow_run: FlowRun) -> Any:
        """How this run is kept: as its own options say; without any, as its parent run is (a
        subflow), in memory in an attempt shipped to a worker process (only the flow's own
        process writes), else in the default store."""
        if flow_run.persistence is None:
            if self.persist is not None or self.store is not None:
                flow_run.persistence = persistence_for(self.persist, self.store)
            else:
                parent = context.runner.get()
                if isinstance(parent, Engine):
                    flow_run.persistence = parent.flow_run.persistence
                elif not runlog.in_shipped_attempt():
                    flow_run.persistence = persistence_for(None, None)
        return flow_run.persistence

    def _engine(self, flow_run: FlowRun, loop: Any = None) -> tuple[Engine, Executor]:
        # The executor first: one that cannot start (a cluster out of reach, a bad
        # REFLOW_EXECUTOR) leaves no run in the store that never ran.
        executor = self.executor if self.executor is not None else default_executor()
        executor.start()
        try:
            persistence = self._persistence(flow_run)
            if persistence is not None:
                persistence.begin(flow_run)
            return Engine(flow_run, executor, loop), executor
        except BaseException:
            executor.shutdown()
            raise

    def _attempts(self, flow_run: FlowRun, engine: Engine) -> State[Any]:
        try:
            state: State[Any] = self._retriable(flow_run, engine)  # type: ignore[assignment]
            return state
        except Exception as exc:
            return self._failed_attempts(engine, exc)

    def _failed_attempts(self, engine: Engine, exc: Exception) -> State[Any]:
        """The final state when the last attempt raised (its completed runs reverted first)."""
        engine.abandon("the flow's last attempt ended")
        if self.retry is None:  # with a controller, its scope was reverted before it decided
            engine.revert_completed()
        if isinstance(exc, _AttemptFailed):
            state = exc.state
        elif isinstance(exc, AttemptTimeout):
            state = new_state("TimedOut", exception=exc, message=str(exc))
        elif engine.cancelled:
            return new_state("Cancelled", message="the flow run was cancelled")
        else:
            state = new_state("Failed", exception=exc, message=f"{type(exc).__name__}: {exc}")
        return _with_revert_errors(state, engine.flow_run)

    def _attempt(self, flow_run: FlowRun, engine: Engine) -> State[Any]:
        args, kwargs = flow_run.call
        paused, value = False, None
        try:
            value = self.fn(*args, **kwargs)
        except PauseFlow:
            paused = True
        except Exception:
            engine.wait_settled()  # nothing submitted is lost, nothing runs twice on retry
            if engine.cancelled:
                return engine.outcome(None, False)  # Cancelled: not a failure to retry
            raise
        except BaseException as exc:
            if isinstance(exc, Interrupt):  # this attempt timed out: leave what still runs
                engine.abandon("the flow attempt timed out")
            raise
        engine.needed(value)
        engine.wait_settled()
        return self._judge(engine, value, paused)

    async def _attempt_async(self, flow_run: FlowRun, engine: Engine) -> State[Any]:
        args, kwargs = flow_run.call
        paused, value = False, None
        try:
            value = await self.fn(*args, **kwargs)  # type: ignore[misc]
        except PauseFlow:
            paused = True
        except Exception:
            await engine.wait_settled_async()
            if engine.cancelled:
                return engine.outcome(None, False)
            raise
        except BaseException:
            engine.abandon("the flow attempt was cancelled or timed out")
            raise
        engine.needed(value)
        await engine.wait_settled_async()
        return self._judge(engine, value, paused)

    def _judge(self, engine: Engine, value: Any, paused: bool) -> State[Any]:
        state = engine.outcome(value, paused)
        if state.is_failed() and not engine.cancelled:
            raise _AttemptFailed(state)  # the retry layer decides whether to run it again
        return state

    def _before_attempt(self, st: AttemptState) -> None:
        flow_run: FlowRun = st.args[0]
        engine: Engine = st.args[1]
        flow_run.attempts += 1
        engine.begin_attempt()
        if self.retry is not None:
            self._begin_try(flow_run)
        name = "Running" if st.attempt == 1 else "Retrying"
        self._transition(flow_run, new_state(name, attempt=st.attempt))

    def _begin_try(self, flow_run: FlowRun) -> None:
        """Ask the retry controller for this try's value; hand it to the flow function."""
        if flow_run.scope is None:
            flow_run.scope = self.retry.new_scope()
        value = flow_run.scope.begin(flow_run.parameters)
        self._keep_tries(flow_run)
        name = _provided_name(self.retry)
        if name is not None and flow_run.bound is not None:
            flow_run.bound.arguments[name] = value
            flow_run.parameters[name] = value
            flow_run.call = (flow_run.bound.args, flow_run.bound.kwargs)

    def _controller_name(self) -> str:
        """The name the retry controller's history is kept under: its own, when it was given
        one, else the flow's (as an unnamed controller of an atoms pattern is named)."""
        named = getattr(self.retry, "named", False)
        return str(self.retry.name) if named else self.name

    def _keep_tries(self, flow_run: FlowRun) -> None:
        """A kept run's controller began a try or decided: the store has its history before
        the run goes on, so a resume in another process counts the same tries."""
        if flow_run.persistence is not None and flow_run.scope is not None:
            tries = list(flow_run.scope.history)
            flow_run.persistence.keep_tries(flow_run.id, self._controller_name(), tries)

    def _controller_stops(self, st: AttemptState) -> bool:
        """The stop condition of a flow with a retry controller: revert the attempt's completed
        runs (newest first), then retry only if the controller says RETRY."""
        flow_run: FlowRun = st.args[0]
        engine: Engine = st.args[1]
        error = st.exception
        if error is None:
            return True
        if isinstance(error, _AttemptFailed) and error.state.exception is not None:
            error = error.state.exception
        engine.revert_completed()
        if _not_retryable(error) or getattr(error, REVERT_ALL, False) or flow_run.scope is None:
            return True
        failures = {r.key or r.task_name: r.state.exception for r in engine.failed_runs()}
        decision: str = flow_run.scope.decide(error, failures, flow_run.parameters)
        self._keep_tries(flow_run)
        if decision == "REVERT_ALL" and isinstance(error, BaseException):
            setattr(error, REVERT_ALL, True)  # enclosing flows fail without asking theirs
        return decision != "RETRY"

    def _before_wait(self, st: AttemptState) -> None:
        flow_run: FlowRun = st.args[0]
        error = st.exception
        failure = error.state.message if isinstance(error, _AttemptFailed) else repr(error)
        message = f"attempt {st.attempt} failed ({failure}); retrying in {st.wait_seconds:.3g} s"
        self._transition(flow_run, new_state("AwaitingRetry", message=message, attempt=st.attempt))

    def _interrupted(self, flow_run: FlowRun, engine: Engine, exc: BaseException) -> None:
        """KeyboardInterrupt, SystemExit, cancellation: record it (hooks fire), then it goes on."""
        engine.abandon(f"the flow run was interrupted by {type(exc).__name__}")
        if isinstance(exc, asyncio.CancelledError):
            state = new_state("Cancelled", message="the flow run was cancelled")
        else:
            message = f"interrupted by {type(exc).__name__}"
            state = new_state("Crashed", exception=exc, message=message)
        self._finish(flow_run, state)

    def _finish(self, flow_run: FlowRun, state: State[Any]) -> None:
        self._transition(flow_run, state)
        try:
            if flow_run.persistence is not None:
                flow_run.persistence.end(flow_run)  # committed before the flow returns
        finally:  # a store that failed is raised, after the run's hooks
            self._finish_hooks(flow_run, state)

    def _finish_hooks(self, flow_run: FlowRun, state: State[Any]) -> None:
        """The hooks of a final state (the store calls this for a crash it detects)."""
        kind = _HOOK_OF.get(state.type.name)
        for hook in self.hooks[kind] if kind else ():
            try:
                outcome = hook(self, flow_run, state)
                if inspect.isawaitable(outcome):
                    run_awaitable(outcome)
            except Exception as error:
                flow_run.hook_errors.append(error)
                logger.error(
                    "reflow: the hook %s of flow %s raised on %s; the run's state stands",
                    getattr(hook, "__qualname__", hook), self.name, state.name,
                    exc_info=(type(error), error, error.__traceback__),
                )  # fmt: skip

    def _transition(self, flow_run: FlowRun, state: State[Any]) -> None:
        states = flow_run.states
        states.append(state)
        if events.subscribers:
            previous = states[-2] if len(states) > 1 else None
            events.publish(
                events.StateChange("flow", flow_run.id, self.name, state, previous,
                                   flow_run.parent_id, flow_run)
            )  # fmt: skip

    def _outcome(self, flow_run: FlowRun, return_state: bool) -> Any:
        state = flow_run.state
        if return_state:
            return state
        if state.is_paused():
            if isinstance(context.runner.get(), Engine):
                raise PauseFlow(f"subflow {self.name} paused: {state.message}")
            raise FlowPaused(flow_run)
        return state.result()


class _AsyncFlow(Flow[P, R]):
    """A flow of an `async def` function: calling it returns a coroutine."""

    def __init__(self, fn: Callable[P, R], **options: Any) -> None:
        super().__init__(fn, **options)
        mark_coroutine_function(self)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return_state = self._pop_return_state(kwargs)
        return self._outcome(await self._start_async(args, kwargs), return_state)

    async def run(self, *args: Any, **kwargs: Any) -> FlowRun:  # type: ignore[override]
        return await self._start_async(args, kwargs)

    async def _start_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowRun:
        run_key, kept = self._run_key(kwargs)
        if run_key is not None:
            earlier = self._keyed_run(run_key, kept)
            if inspect.isawaitable(earlier):  # resumed: it never finished
                earlier = await earlier
            if earlier is not None:
                return earlier  # type: ignore[no-any-return]
        flow_run, go = self._open(args, kwargs)
        if run_key is not None:
            flow_run.run_key, flow_run.persistence = run_key, kept
        if go:
            await self._execute_async(flow_run)
        return flow_run

    async def _resume(self, flow_run: FlowRun) -> Any:
        await self._execute_async(flow_run)
        return flow_run.state

    async def resume(self, run_id: str, store: Any = None) -> Any:
        """`await flow.resume(run_id)`: see `Flow.resume`."""
        flow_run = await self._kept(store).resume(run_id, self)
        return flow_run.state

    async def _resume_stored(
        self,
        run_id: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        persistence: Any,
        run_key: str | None = None,
    ) -> Any:
        flow_run = self._reopen(run_id, args, kwargs, persistence, run_key)
        await self._execute_async(flow_run)
        return flow_run

    async def _execute_async(self, flow_run: FlowRun) -> None:
        engine, executor = self._engine(flow_run, asyncio.get_running_loop())
        token = context.runner.set(engine)
        try:
            try:
                state = await self._retriable(flow_run, engine)  # type: ignore[misc]
            except Exception as exc:
                state = self._failed_attempts(engine, exc)
            await engine.drain_async_jobs()
        except BaseException as exc:
            self._interrupted(flow_run, engine, exc)
            raise
        finally:
            context.runner.reset(token)
            engine.close()
            executor.shutdown()
        self._finish(flow_run, state)


REVERT_ALL = "_reflow_revert_all"


def _check_controller(value: Any, retries: int, flow: Flow[..., Any]) -> Any:
    """A retry controller from reflow.atoms (anything with `new_scope()`), or None."""
    if value is None:
        return None
    if not callable(getattr(value, "new_scope", None)):
        raise TypeError(
            f"{flow._label}: retry= takes a retry controller from reflow.atoms (Times(3), "
            f"ForEach([...], provides=...), ...), got {value!r}; for a number of retries use "
            "retries="
        )
    if retries:
        raise ValueError(
            f"{flow._label}: give retries= or a retry= controller, not both (the controller "
            "decides how many times the flow runs)"
        )
    name = _provided_name(value)
    takes = flow._parameters.signature.parameters
    if name is not None and flow.fn is not _options_only and name not in takes:
        raise TypeError(
            f"{flow._label}: its retry controller provides {name!r} for each try, but the flow "
            f"function has no parameter {name!r} to receive it"
        )
    return value


def _provided_name(controller: Any) -> str | None:
    """The one name a controller provides its value under, if any."""
    provides = getattr(controller, "provides", None) or {}
    names = list(provides)
    return names[0] if len(names) == 1 else None


def _with_revert_errors(state: State[Any], flow_run: FlowRun) -> State[Any]:
    """The final state, its exception grouped with the errors of reverts that failed."""
    errors = flow_run.revert_errors
    if not errors or not state.is_failed():
        return state
    first = state.exception or RuntimeError(state.message)
    group = ExceptionGroup(
        f"flow {flow_run.name} failed, and {len(errors)} revert(s) failed too",
        [e for e in (first, *errors) if isinstance(e, Exception)],
    )
    return new_state(state.name, exception=group, message=f"{state.message}; reverts failed")


def _check_references(
    value: Iterable[Task[..., Any] | str] | None, label: str
) -> frozenset[Any] | None:
    if value is None:
        return None
    if isinstance(value, Task | str):
        value = [value]
    items = frozenset(value)
    for item in items:
        if not isinstance(item, Task | str):
            raise TypeError(f"{label}: reference_tasks takes tasks (or task names), got {item!r}")
    return items


def _options_only() -> None:
    """Stands in for the function while `@flow(...)` checks its options."""


def _make(fn: Callable[P, R], options: dict[str, Any]) -> Flow[P, R]:
    if inspect.iscoroutinefunction(fn):
        return _AsyncFlow(fn, **options)  # type: ignore[arg-type]
    return Flow(fn, **options)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: RetryDelay = 0,
    timeout_seconds: float | timedelta | None = None,
    executor: Executor | None = None,
    reference_tasks: Iterable[Task[..., Any] | str] | None = None,
    validate_parameters: bool = True,
    on_completion: FlowHook | Iterable[FlowHook] | None = None,
    on_failure: FlowHook | Iterable[FlowHook] | None = None,
    on_cancellation: FlowHook | Iterable[FlowHook] | None = None,
    on_crashed: FlowHook | Iterable[FlowHook] | None = None,
    retry: Any = None,
    persist: bool | None = None,
    store: Any = None,
    persist_result: bool | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a flow: its task calls run as a recorded graph, checked right here.

    Options: `name`, `description`, `version`, `retries`, `retry_delay_seconds`,
    `timeout_seconds`, `executor` (default: a `ThreadExecutor` per run, or the executor that
    `REFLOW_EXECUTOR` names), `reference_tasks`, `validate_parameters`, the hooks
    `on_completion`, `on_failure`, `on_cancellation`, `on_crashed`, `retry` (a retry
    controller from reflow.atoms, instead of `retries`), and where runs are kept: `store` (a
    path, URL or store; default: the default store, `$REFLOW_HOME/reflow.db`) or
    `persist=False` (in memory only); `persist_result=False` keeps the run but none of its
    results (its own, its subflows' and its tasks', unless they say otherwise).
    """
    if fn is not None:
        return _make(fn, options)
    Flow(_options_only, **options)  # check the options now, before there is a function

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        return _make(fn, options)

    return decorate
