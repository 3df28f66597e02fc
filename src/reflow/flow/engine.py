"""The flow engine: runs the task calls of one flow run, in order of their data dependencies.

Each submitted call becomes a `TaskRun` and a `Future` at once. When its upstream futures have
settled the engine judges it (skip propagation, then its trigger), puts the upstreams' results
in its arguments and starts it: sync runs go to a ready queue drained by at most `max_workers`
workers of the executor (one executor job per worker, not per run), async runs go to the flow's
event loop. Nothing blocks waiting for a slot: a run whose concurrency limit is full is parked
and started when a slot frees.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import itertools
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from reflow.executors.base import Executor, SerializationError
from reflow.flow.arguments import resolve_call, split_map, upstreams
from reflow.flow.errors import TriggerFailedError
from reflow.flow.held import HeldFuture
from reflow.flow.kept import KeptResults
from reflow.flow.run import FlowRun
from reflow.flow.runlog import RemoteCall, RemoteIds
from reflow.flow.triggers import all_successful
from reflow.retry.hooks import run_awaitable
from reflow.states import NOT_KEPT, Completed, MissingResult, State, StateError, new_state
from reflow.task import context, limits
from reflow.task.decorator import Task
from reflow.task.futures import Future, FutureList, Settled, allow_failure, unmapped
from reflow.task.hooks import fire_sync
from reflow.task.run import TaskRun
from reflow.task.signals import BAD_CALL, Pause, PauseFlow, Skip

_Slots = tuple[Any, ...]
_Held = tuple[HeldFuture, tuple[Any, ...], dict[str, Any], tuple[Any, ...], str]
_BLOCKED = new_state("Pending", message="waits behind a paused upstream")
_ALLOWED = Completed(message="allow_failure")
_WRAPPERS = (unmapped, allow_failure)


class Engine:
    """Runs the task calls of one flow run (one engine per run of the flow function's attempts;
    a resume gets a new one)."""

    def __init__(self, flow_run: FlowRun, executor: Executor, loop: Any = None) -> None:
        self.flow_run = flow_run
        self.executor = executor
        self.cond = Settled()
        self._lock = threading.Lock()
        self._ready: deque[tuple[Future[Any], _Slots]] = deque()
        self._workers = 0
        self._max_workers = max(1, executor.max_workers)
        self._remote = executor.ships_code
        # Optional executor members (reflow.executors.base): a batch submission for the first
        # attempts of a map's runs, and a check of the tasks it cannot run.
        self._submit_many = getattr(executor, "submit_many", None) if self._remote else None
        self._check_task = getattr(executor, "check_task", None)
        self._refusals: dict[int, BaseException | None] = {}
        self._presubmitted: dict[str, concurrent.futures.Future[Any]] = {}
        """First attempts already on their way (submit_many), by task run id."""
        self._kept = KeptResults.of(executor) if self._remote else None
        """Results left on the executor, passed to downstream attempts by reference."""
        self._orchestrator: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = loop  # the async flow's own loop
        self._loop_thread: threading.Thread | None = None
        self._own_loop = False
        self._async_jobs: set[asyncio.Task[None]] = set()  # async runs in flight
        self.futures: list[Future[Any]] = []
        """The futures of the current attempt of the flow function."""
        self.subflow_keys: list[str] = []
        """The call keys of the subflows the current attempt called."""
        self._counters: dict[tuple[str | None, str], itertools.count[int]] = {}
        self._earlier: dict[str, TaskRun] = {}
        self._claimed: dict[str, object] = {}  # runs started or ended: each only once
        self._results_off = flow_run.persist_result is False
        """The flow run keeps no results: its task runs that do not say keep none either."""
        self._held: dict[int, _Held] = {}
        """Calls held back (see `reflow.flow.held`), by id of their future: (future, args,
        kwargs, wait_for, key) until their value is needed."""
        self._held_lock = threading.RLock()  # a run's state handler may need a held call
        self._holding = False
        """Whether a call was ever held: only then do submissions look for held upstreams."""

    # -- attempts --------------------------------------------------------------------------

    def begin_attempt(self) -> None:
        """A new run of the flow function: call numbering restarts, completed runs are kept."""
        with self._lock:
            self._counters = {}
            self.futures = []
            self.subflow_keys = []
            self._earlier = dict(self.flow_run.runs_by_key)

    def next_key(self, name: str) -> str:
        """The call's key: `name-N` for the N-th call of `name` by the flow function, and
        `parent-key/name-N` for one made by a task run's code. Numbering per caller keeps keys
        the same from one attempt to the next even when tasks run concurrently.

        Thread-safe without a lock: dict.setdefault and next() on a count are atomic.
        """
        parent = context.task_run.get()
        scope = parent.key if parent is not None and parent.parent_id == self.flow_run.id else None
        counter = self._counters.get((scope, name))
        if counter is None:
            counter = self._counters.setdefault((scope, name), itertools.count())
        n = next(counter)
        return f"{name}-{n}" if scope is None else f"{scope}/{name}-{n}"

    @property
    def cancelled(self) -> bool:
        return self.flow_run.cancel_requested

    # -- the TaskRunner protocol -------------------------------------------------------------

    def submit(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any],
    ) -> Future[Any]:
        task._pop_return_state(kwargs)  # a future always: its state is future.state
        return self._submit(task, args, kwargs, tuple(wait_for), self.next_key(task.name))

    def map(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any],
    ) -> FutureList[Any]:
        extra = list(wait_for)
        args = tuple(self._materialize(a, extra) for a in args)
        kwargs = {k: self._materialize(v, extra) for k, v in kwargs.items()}
        calls = split_map(task.name, args, kwargs)
        base = self.next_key(task.name)
        wait = tuple(extra)
        ready: list[Future[Any]] = []
        futures = FutureList(
            self._submit(task, a, k, wait, f"{base}[{i}]", ready) for i, (a, k) in enumerate(calls)
        )
        self._dispatch_many(ready)
        return futures

    def _materialize(self, value: Any, extra: list[Any]) -> Any:
        """A future given whole to map() is mapped over its result (which is waited for)."""
        if isinstance(value, Future):
            extra.append(value)
            return value.result()
        return value

    def call(self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A direct call in the flow: it runs here, after waiting for its upstreams."""
        return_state = task._pop_return_state(kwargs)
        ups, allowed = upstreams(args, kwargs)
        future = self._new(task, args, kwargs, ups, self.next_key(task.name))
        if not future._done:
            if self._holding and ups:
                self._release_upstreams(future, ups)
            for up in ups:
                up.wait()
            if self._judged_to_run(future, ups, allowed):
                slots = limits.acquire(task.tags) if _limited(task) else ()
                self._run_sync(future, slots, remote=False)
        return self._outcome(future, return_state)

    async def call_async(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return_state = task._pop_return_state(kwargs)
        ups, allowed = upstreams(args, kwargs)
        future = self._new(task, args, kwargs, ups, self.next_key(task.name))
        if not future._done:
            if self._holding and ups:
                self._release_upstreams(future, ups)
            for up in ups:
                await _settled(up)
            if self._judged_to_run(future, ups, allowed):
                slots = await limits.acquire_async(task.tags) if _limited(task) else ()
                await self._run_async(future, slots)
        return self._outcome(future, return_state)

    # -- one call ----------------------------------------------------------------------------

    def _outcome(self, future: Future[Any], return_state: bool) -> Any:
        run = future.run
        state = run.state
        if not state.is_final() and not return_state:
            raise PauseFlow(f"task run {run.task_name} is {state.name}: {state.message}")
        return run.task._outcome(run, return_state)

    def _new(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ups: list[Future[Any]],
        key: str,
        hold: tuple[Any, ...] | None = None,
    ) -> Future[Any]:
        """A Pending run and its future, or a settled future over an earlier completed run.

        With `hold` (a submission's `wait_for`), an earlier run that completed without its
        result kept is held: its `HeldFuture` starts the call again once it is needed."""
        earlier = self._earlier.get(key)
        if earlier is None and self.flow_run.persistence is not None:
            earlier = self._stored(task, args, kwargs, key)
        if earlier is not None and earlier.task is task and earlier.state.is_completed():
            if earlier.state.data is not NOT_KEPT:
                future: Future[Any] = Future(earlier, self.cond, self)
                future._done, future._callbacks = True, None  # reused, not re-run
                self.futures.append(future)
                return future
            if hold is not None:
                return self._hold(earlier, args, kwargs, hold, key)
        future = Future(self._fresh_run(task, args, kwargs, ups, key, earlier), self.cond, self)
        self.futures.append(future)
        if self.flow_run.cancel_requested:
            self._end(future, new_state("Cancelled", message="the flow run was cancelled"))
        return future

    def _fresh_run(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ups: list[Future[Any]],
        key: str,
        earlier: TaskRun | None,
    ) -> TaskRun:
        """A new Pending run of the call `key` (superseding `earlier`, if there was one)."""
        run = TaskRun(task, args, kwargs)
        run.parent_id = self.flow_run.id
        run.key = key
        run.upstream = tuple(u.run.id for u in ups)
        if self._results_off and run.persist_result is None:
            run.persist_result = False  # as its flow says
        if earlier is not None:
            run.resumed = earlier.state.is_paused()  # not one merely blocked behind it
            self.flow_run.superseded.append(earlier)
        elif self.flow_run.persistence is not None:  # paused in an earlier process?
            run.resumed = self.flow_run.persistence.paused(self.flow_run.id, key)
        task._transition(run, new_state("Pending"))
        self.flow_run.runs_by_key[key] = run
        return run

    # -- calls held back: completed before, their results not kept (reflow.flow.held) --------

    def _hold(
        self,
        earlier: TaskRun,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: tuple[Any, ...],
        key: str,
    ) -> Future[Any]:
        future = HeldFuture(earlier, self.cond, self)
        with self._held_lock:
            self._held[id(future)] = (future, args, kwargs, wait_for, key)
            self._holding = True
        self.futures.append(future)
        return future

    def release(self, future: Future[Any]) -> None:
        """A held call is needed: run it again now, as a new run of its call (once: asking
        again, or for a future that was never held, does nothing)."""
        with self._held_lock:
            entry = self._held.pop(id(future), None)
            if entry is None:
                return
            _, args, kwargs, wait_for, key = entry
            ups, allowed = upstreams(args, kwargs, wait_for)
            earlier = future.run
            future.run = self._fresh_run(earlier.task, args, kwargs, ups, key, earlier)
        if self.flow_run.cancel_requested:
            self._end(future, new_state("Cancelled", message="the flow run was cancelled"))
            return
        self._schedule(future, args, kwargs, ups, allowed)

    def _release_upstreams(self, future: Future[Any], ups: list[Future[Any]]) -> None:
        """A run that is to run needs its upstreams: the held ones run again first."""
        held = [u for u in ups if type(u) is HeldFuture]
        if held:
            for up in held:
                self.release(up)
            future.run.upstream = tuple(u.run.id for u in ups)  # their new runs

    def needed(self, value: Any) -> None:
        """The flow function returned `value`: the held calls among it run (it is the flow's
        result, so their values are needed)."""
        if self._holding:
            for up in upstreams((value,), {})[0]:
                if type(up) is HeldFuture:
                    self.release(up)

    def _stored(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], key: str
    ) -> TaskRun | None:
        """The call's run completed by an earlier process (a resumed run), as a TaskRun."""
        stored = self.flow_run.persistence.completed(self.flow_run.id, key)
        if stored is None:
            return None
        run = TaskRun(task, args, kwargs)
        run.id, run.parent_id, run.key = stored.run_id, self.flow_run.id, key
        message = "completed in an earlier process"
        if stored.result is NOT_KEPT:
            message += (
                "; its result was not kept (persist_result=False, or a value that cannot be "
                "stored), so the call runs again where its value is needed"
            )
        run.states.append(new_state(stored.state, data=stored.result, message=message))
        self.flow_run.runs_by_key[key] = run
        return run

    def _submit(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: tuple[Any, ...],
        key: str,
        ready: list[Future[Any]] | None = None,
    ) -> Future[Any]:
        """Submit one call; with `ready`, a run that may start at once is put there instead
        (the caller dispatches the batch in one go)."""
        ups, allowed = upstreams(args, kwargs, wait_for)
        future = self._new(task, args, kwargs, ups, key, wait_for)
        if not future._done and type(future) is not HeldFuture:
            self._schedule(future, args, kwargs, ups, allowed, ready)
        return future

    def _schedule(
        self,
        future: Future[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ups: list[Future[Any]],
        allowed: set[int],
        ready: list[Future[Any]] | None = None,
    ) -> None:
        """Start a new run once its upstreams have settled (at once when they have)."""
        if self._check_task is not None and self._refused(future):
            return
        if self._holding and ups:
            self._release_upstreams(future, ups)
        if self._kept is not None and ups:
            self._kept.take(future, ups, args, kwargs)
        pending = [u for u in ups if not u._done]
        if not pending:
            if ready is None:
                self._on_upstreams_done(future, ups, allowed)
            elif self._judged_to_run(future, ups, allowed):
                ready.append(future)
            return
        left = [len(pending)]

        def one_done(_: Future[Any]) -> None:
            with self._lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self._on_upstreams_done(future, ups, allowed)

        for up in pending:
            up.add_done_callback(one_done)

    def _refused(self, future: Future[Any]) -> bool:
        """End the run Failed if the executor cannot run its task (asked once per task)."""
        task = future.run.task
        if id(task) not in self._refusals:
            try:
                self._check_task(task)  # type: ignore[misc]
                self._refusals[id(task)] = None
            except Exception as exc:
                setattr(exc, BAD_CALL, True)  # running it again is refused the same way
                self._refusals[id(task)] = exc
        refusal = self._refusals[id(task)]
        if refusal is None:
            return False
        message = f"the executor {self.executor!r} cannot run it: {refusal}"
        self._end(future, new_state("Failed", exception=refusal, message=message))
        return True

    def _on_upstreams_done(
        self, future: Future[Any], ups: list[Future[Any]], allowed: set[int]
    ) -> None:
        if self._judged_to_run(future, ups, allowed):
            self._dispatch(future)

    def _judged_to_run(
        self, future: Future[Any], ups: list[Future[Any]], allowed: set[int]
    ) -> bool:
        """Decide from the upstreams whether the run starts; if not, end it. Fills in args."""
        run = future.run
        if self.cancelled:
            self._end(future, new_state("Cancelled", message="the flow run was cancelled"))
            return False
        if not ups and run.task.trigger is None:  # the common case: nothing to judge
            if _wrapped(run.args, run.kwargs):
                run.args, run.kwargs = resolve_call(run.args, run.kwargs)
            return True
        verdict = self._verdict(run, ups, allowed)
        if verdict is not None:
            self._end(future, verdict)
            return False
        try:
            run.args, run.kwargs = resolve_call(run.args, run.kwargs)
        except Exception as exc:  # a container that cannot be rebuilt
            self._end(future, new_state("Failed", exception=exc, message=str(exc)))
            return False
        return True

    def _verdict(
        self, run: TaskRun, ups: list[Future[Any]], allowed: set[int]
    ) -> State[Any] | None:
        """None when the run may start; else the state it ends in without running."""
        states = [u.run.state for u in ups]
        if any(not s.is_final() for s in states):
            return _BLOCKED
        task = run.task
        if task.skip_on_upstream_skip:
            skipped = [u.run for u in ups if u.run.state.is_skipped()]
            if skipped:
                names = ", ".join(r.key or r.task_name for r in skipped)
                return new_state("Skipped", message=f"upstream {names} skipped")
        judged = [_ALLOWED if id(u) in allowed else u.run.state for u in ups]
        trigger = task.trigger or all_successful
        try:
            if trigger(judged):
                return None
        except Skip as signal:
            return new_state("Skipped", message=signal.message or "skipped by its trigger")
        except Pause as signal:
            if run.resumed:
                return None
            message = signal.message or f"trigger {_name(trigger)} paused the flow run"
            return new_state("Paused", message=message, exception=signal)
        except Exception as exc:
            exc.add_note(f"reflow: raised by the trigger {_name(trigger)} of task {task.name}")
            return new_state("Failed", exception=exc, message=f"its trigger raised {exc!r}")
        bad = [
            f"{u.run.key or u.run.task_name} ({u.run.state.name})"
            for u in ups
            if id(u) not in allowed and not u.run.state.is_completed()
        ]
        message = f"trigger {_name(trigger)} not met by its upstreams"
        if bad:
            message += f": {', '.join(bad)}"
        return new_state(
            "TriggerFailed",
            message=message,
            exception=TriggerFailedError(f"task {run.key or task.name}: {message}"),
        )

    def _claim(self, run: TaskRun) -> bool:
        """Whether this caller is the one to start or end `run` (never two of them)."""
        mine = object()
        return self._claimed.setdefault(run.id, mine) is mine  # atomic: one caller wins

    def abandon(self, reason: str) -> None:
        """End every run of the attempt that has not started as Cancelled (a timeout, a crash);
        cancel the async runs in flight (sync ones in threads cannot be stopped)."""
        loop = self._loop
        for job in list(self._async_jobs):
            if loop is not None and not self._in_loop_thread(loop):
                loop.call_soon_threadsafe(job.cancel)
            else:
                job.cancel()
        for future in list(self.futures):
            if not future._done and future.run.state.is_pending():
                self._end(future, new_state("Cancelled", message=f"{reason} before it started"))

    def _end(self, future: Future[Any], state: State[Any]) -> None:
        """Settle a run that does not start: blocked (stays Pending), or ended in `state`."""
        run = future.run
        if not self._claim(run):
            return
        if state is not _BLOCKED:
            state = run.task._transition(run, state)
            if state.is_final():
                kind = "on_completion" if state.is_completed() else "on_failure"
                fire_sync(run.task, run.task.hooks[kind], run, state)
        future.set_done()

    # -- starting runs -----------------------------------------------------------------------

    def _dispatch(self, future: Future[Any]) -> None:
        if future._done:
            return  # abandoned (a timeout) while parked on a concurrency limit
        task = future.run.task
        slots: _Slots = ()
        if _limited(task):
            taken = limits.try_acquire(task.tags, lambda: self._dispatch(future))
            if taken is None:
                return  # parked: started by whoever frees a slot
            slots = taken
        if task.is_async:
            self._start_async(future, slots)
            return
        with self._lock:
            self._ready.append((future, slots))
            if self._workers >= self._max_workers:
                return
            self._workers += 1
        self._spawn_worker()

    def _dispatch_many(self, futures: list[Future[Any]]) -> None:
        """Start many runs, taking the queue's lock once for the plain sync ones."""
        plain = []
        for future in futures:
            task = future.run.task
            if task.is_async or _limited(task):
                self._dispatch(future)
            else:
                plain.append((future, ()))
        if not plain:
            return
        if self._submit_many is not None:
            self._presubmit([future for future, _ in plain])
        with self._lock:
            self._ready.extend(plain)
            spawn = min(self._max_workers - self._workers, len(self._ready))
            self._workers += max(spawn, 0)
        for _ in range(spawn):
            self._spawn_worker()

    def _presubmit(self, futures: list[Future[Any]]) -> None:
        """Hand the first attempts of many runs to the executor in one batch; each run's
        orchestration then takes its attempt from there instead of submitting it. Not for
        runs served from a cache (their attempt may never be needed)."""
        runs = [f.run for f in futures if f.run.task.cache_policy is None]
        if not runs or self.cancelled:
            return
        flow_run = self.flow_run
        kept = self._kept
        calls = [
            (
                RemoteCall(
                    run.task.fn, RemoteIds(flow_run.id, flow_run.name, run.id, run.task_name)
                ),
                *(kept.shipped(run, run.args, run.kwargs) if kept else (run.args, run.kwargs)),
            )
            for run in runs
        ]
        try:
            remotes = self._submit_many(calls)  # type: ignore[misc]
        except Exception:
            return  # each run submits its own attempt, and meets the error there
        self._presubmitted.update(zip((run.id for run in runs), remotes, strict=True))

    def _spawn_worker(self) -> None:
        try:
            if self._remote:
                if self._orchestrator is None:
                    with self._lock:
                        if self._orchestrator is None:
                            self._orchestrator = concurrent.futures.ThreadPoolExecutor(
                                self._max_workers, thread_name_prefix="reflow-orchestrator"
                            )
                self._orchestrator.submit(self._work)
            else:
                self.executor.submit(self._work)
        except BaseException as exc:
            with self._lock:
                self._workers -= 1
                stranded = [] if self._workers else list(self._ready)
                if stranded:
                    self._ready.clear()
            for future, slots in stranded:  # no worker will ever take them: they fail here
                limits.release(slots)
                message = f"the executor {self.executor!r} refused to run it: {exc!r}"
                self._end(future, new_state("Failed", exception=exc, message=message))
            if not isinstance(exc, Exception):
                raise

    def _work(self) -> None:
        """One worker: run ready task runs until the queue is empty."""
        token = context.runner.set(self)
        try:
            ready = self._ready
            while True:
                try:
                    future, slots = ready.popleft()  # atomic: no lock while there is work
                except IndexError:
                    with self._lock:  # the decision to stop is taken under the lock that
                        if not ready:  # dispatch() holds to decide whether to spawn
                            self._workers -= 1
                            return
                    continue
                self._run_sync(future, slots, remote=self._remote)
        except BaseException:
            with self._lock:
                self._workers -= 1
            raise
        finally:
            context.runner.reset(token)

    def _run_sync(self, future: Future[Any], slots: _Slots, remote: bool) -> None:
        run = future.run
        if not self._claim(run):
            limits.release(slots)  # abandoned while it waited in the queue
            self._drop_presubmitted(run)
            return
        if remote:
            run.invoke = functools.partial(self._invoke_remote, run)
        token = context.task_run.set(run)
        try:
            if self.cancelled:
                message = "the flow run was cancelled before this task started"
                run.task._transition(run, new_state("Cancelled", message=message))
            else:
                run.task._execute(run, run.args, run.kwargs)
        finally:
            context.task_run.reset(token)
            if slots:
                limits.release(slots)
            if self._presubmitted:
                self._drop_presubmitted(run)
            if self._kept is not None:
                self._kept.settled(run)
            run.invoke = None  # it pointed back at this engine: a cycle holding every result
            future.set_done()

    def _drop_presubmitted(self, run: TaskRun) -> None:
        """A run that ended without taking its presubmitted attempt: cancel that attempt."""
        unused = self._presubmitted.pop(run.id, None)
        if unused is not None:
            unused.cancel()

    def _invoke_remote(
        self, run: TaskRun, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """One attempt in the executor's process: wait for it in slices, so a timeout can
        interrupt the wait."""
        remote = self._presubmitted.pop(run.id, None) if self._presubmitted else None
        kept = self._kept
        if remote is None:
            ids = RemoteIds(self.flow_run.id, self.flow_run.name, run.id, run.task_name)
            if kept is not None:
                args, kwargs = kept.shipped(run, args, kwargs)
            try:
                remote = self.executor.submit(RemoteCall(fn, ids), *args, **kwargs)
            except SerializationError as exc:
                setattr(exc, BAD_CALL, True)  # sending it again fails the same way
                raise
        try:
            while True:
                try:
                    value = remote.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    continue
                if kept is not None:
                    kept.keep(run, remote)
                return value
        except SerializationError as exc:
            setattr(exc, BAD_CALL, True)
            raise
        except BaseException:
            remote.cancel()  # given up on (a timeout, an interrupt): stop it where it runs
            raise

    # -- async runs --------------------------------------------------------------------------

    def _start_async(self, future: Future[Any], slots: _Slots) -> None:
        loop = self._event_loop()
        coroutine = self._run_async(future, slots)
        if self._in_loop_thread(loop):
            self._create_job(coroutine)
        else:
            loop.call_soon_threadsafe(self._create_job, coroutine)

    def _create_job(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """In the loop's thread: start an async run, kept until done so it can be cancelled."""
        assert self._loop is not None
        job = self._loop.create_task(coroutine)
        self._async_jobs.add(job)
        job.add_done_callback(self._async_jobs.discard)

    def call_from_sync(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """An async task called directly in a sync flow: run it on the flow's loop, wait here."""
        job = asyncio.run_coroutine_threadsafe(
            self.call_async(task, args, kwargs), self._event_loop()
        )
        while True:
            try:
                return job.result(timeout=0.1)  # slices: a flow timeout can interrupt the wait
            except concurrent.futures.TimeoutError:
                continue
            except BaseException:
                job.cancel()
                raise

    async def _run_async(self, future: Future[Any], slots: _Slots) -> None:
        run = future.run
        if not self._claim(run):
            limits.release(slots)
            return
        tokens = context.runner.set(self), context.task_run.set(run)
        try:
            if self.cancelled:
                message = "the flow run was cancelled before this task started"
                run.task._transition(run, new_state("Cancelled", message=message))
            else:
                await run.task._execute_async(run, run.args, run.kwargs)  # type: ignore[attr-defined]
        finally:
            context.task_run.reset(tokens[1])
            context.runner.reset(tokens[0])
            limits.release(slots)
            future.set_done()

    def _in_loop_thread(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The flow's loop: an async flow's own, or one on a thread of its own for a sync flow."""
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name="reflow-event-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._loop_thread, self._own_loop = loop, thread, True
        return self._loop

    # -- the end of an attempt ---------------------------------------------------------------

    # -- compensation ------------------------------------------------------------------------

    def failed_runs(self) -> list[TaskRun]:
        """The attempt's task runs that ended failed."""
        return [f.run for f in self.futures if f.run.state.is_failed()]

    def revert_completed(self) -> None:
        """Undo the attempt's work: call the `revert` of every task run that completed in it
        (subflows' included), newest completion first. A revert that raises is kept in
        `flow_run.revert_errors`, and the runs upstream of it are not reverted."""
        runs = [r for r in self._completed_runs() if r.task.revert_fn is not None]
        runs.sort(key=lambda r: r.state.timestamp, reverse=True)
        spared: set[str] = set()
        by_id = {r.id: r for r in self._completed_runs()}
        for run in runs:
            if run.id in spared:
                continue
            task, result = run.task, run.state.data
            if result is NOT_KEPT:  # completed in an earlier process: its result is gone
                error = MissingResult(
                    f"task run {run.key} completed in an earlier process and its result was not "
                    "kept (persist_result=False, or a value that cannot be stored), so its "
                    "revert, which takes that result, cannot run: keep the results of tasks "
                    "that have a revert"
                )
                self.flow_run.revert_errors.append(error)
                task._transition(run, new_state("Failed", exception=error, message=str(error)))
                spared |= _upstream_of(run, by_id)
                continue
            task._transition(run, new_state("Reverting"))
            try:
                outcome = task.revert_fn(result, *run.args, **run.kwargs)  # type: ignore[misc]
                if inspect.isawaitable(outcome):
                    run_awaitable(outcome)
            except Exception as exc:
                exc.add_note(f"reflow: raised by the revert of task run {run.key}")
                self.flow_run.revert_errors.append(exc)
                task._transition(
                    run, new_state("Failed", exception=exc, message=f"revert failed: {exc!r}")
                )
                spared |= _upstream_of(run, by_id)
                continue
            task._transition(run, new_state("Reverted", message="reverted: its flow failed"))

    def _completed_runs(self) -> list[TaskRun]:
        """The attempt's completed task runs, and those of the subflows it completed."""
        found = [f.run for f in self.futures if f.run.state.name == "Completed"]
        subflows = self.flow_run.subflows_by_key
        todo = [subflows[k] for k in dict.fromkeys(self.subflow_keys) if k in subflows]
        while todo:
            sub = todo.pop()
            found += [r for r in sub.task_runs if r.state.name == "Completed"]
            todo += list(sub.subflow_runs)
        return found

    def wait_settled(self) -> None:
        """Wait until every future of this attempt has settled (slices keep it interruptible);
        calls still held are not needed, and stay as they are."""
        held = self._held
        while True:
            pending = [f for f in self.futures if not f._done and id(f) not in held]
            if not pending:  # (again: runs submitted by running tasks)
                return
            for future in pending:
                future.wait()

    async def wait_settled_async(self) -> None:
        held = self._held
        while True:
            pending = [f for f in self.futures if not f._done and id(f) not in held]
            if not pending:
                return
            for future in pending:
                await _settled(future)

    async def drain_async_jobs(self) -> None:
        """Let cancelled async runs on this (the caller's) loop record their Cancelled state."""
        jobs = list(self._async_jobs)
        if jobs:
            await asyncio.wait(jobs, timeout=5)

    def close(self) -> None:
        """Release the engine's threads (after the attempt's runs settled)."""
        if self._own_loop and self._loop is not None and self._async_jobs:
            # runs cancelled by abandon(): let them record it before the loop stops
            waiting = asyncio.run_coroutine_threadsafe(self.drain_async_jobs(), self._loop)
            concurrent.futures.wait([waiting], timeout=6)
        for unused in self._presubmitted.values():
            unused.cancel()
        self._presubmitted.clear()
        with self._held_lock:  # never needed: they settle as their earlier runs (whose
            left, self._held = list(self._held.values()), {}  # result() raises MissingResult)
        for future, *_ in left:
            future.set_done()
        if self._kept is not None:
            self._kept.close()
        # The futures point back at this engine: left in place, that cycle would keep every
        # result of the run in memory until the garbage collector's next full pass.
        self.futures = []
        if self._orchestrator is not None:
            self._orchestrator.shutdown(wait=False)
        if self._own_loop and self._loop is not None:
            loop, thread = self._loop, self._loop_thread
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None and thread is not threading.current_thread():
                thread.join(5)
                if not thread.is_alive():
                    loop.close()

    def outcome(self, value: Any, paused: bool) -> State[Any]:
        """The attempt's final state, from what the flow function returned and its task runs."""
        attempt_runs = [f.run for f in self.futures]
        if self.cancelled:
            return new_state("Cancelled", message="the flow run was cancelled")
        unfinished = [r for r in attempt_runs if not r.state.is_final()]
        if paused or unfinished:
            at = [r.key or r.task_name for r in attempt_runs if r.state.is_paused()]
            message = f"paused at {', '.join(at)}" if at else "paused"
            return new_state("Paused", message=message)
        try:
            data, failed = _returned(value)
        except Exception as exc:  # a returned container that cannot be rebuilt
            return new_state("Failed", exception=exc, message=str(exc))
        if failed is not None:
            return new_state(
                "Failed",
                exception=failed.exception,
                message=f"the flow returned a {failed.name} state: {failed.message}",
            )
        bad: list[Any] = [
            r for r in self._reference_runs(attempt_runs) if not r.state.is_completed()
        ]
        if self.flow_run.flow.reference_tasks is None:  # a subflow is terminal: none feed on it
            subflows = self.flow_run.subflows_by_key
            bad += [
                sub
                for key in dict.fromkeys(self.subflow_keys)
                if (sub := subflows.get(key)) is not None
                and sub.states
                and sub.state.is_final()
                and not sub.state.is_completed()
            ]
        if bad:
            names = ", ".join(f"{_label(r)} ({r.state.name})" for r in bad)
            first = bad[0].state
            exception = first.exception or StateError(f"{_label(bad[0])} {first.name}")
            return new_state(
                "Failed", exception=exception, message=f"reference task run(s) failed: {names}"
            )
        return Completed(data)

    def _reference_runs(self, runs: list[TaskRun]) -> list[TaskRun]:
        chosen = self.flow_run.flow.reference_tasks
        if chosen is not None:
            return [r for r in runs if r.task in chosen or r.task.name in chosen]
        downstream_of = {up for r in runs for up in r.upstream}
        return [r for r in runs if r.id not in downstream_of]


async def _settled(future: Future[Any]) -> None:
    """Wait on the running loop until `future` has settled."""
    if future._done:
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: Future[Any]) -> None:
        loop.call_soon_threadsafe(_set_done, waiter)

    future.add_done_callback(wake)
    await waiter


def _upstream_of(run: TaskRun, by_id: dict[str, TaskRun]) -> set[str]:
    todo, seen = list(run.upstream), set()
    while todo:
        up = todo.pop()
        if up not in seen:
            seen.add(up)
            if up in by_id:
                todo.extend(by_id[up].upstream)
    return seen


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _returned(value: Any) -> tuple[Any, State[Any] | None]:
    """The flow's return value with futures and states replaced by results, and the first
    returned state that did not complete."""
    failed: list[State[Any]] = []

    def visit(item: Any) -> Any:
        if isinstance(item, Future):
            item = item.run.state
        if isinstance(item, State):
            if not item.is_completed():
                failed.append(item)
            return item.data
        if type(item) in (list, tuple, set, frozenset):
            return type(item)(visit(v) for v in item)
        if type(item) is FutureList:
            return [visit(v) for v in item]
        if type(item) is dict:
            return {k: visit(v) for k, v in item.items()}
        return item

    data = visit(value)
    return data, (failed[0] if failed else None)


def _wrapped(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call without futures still has `unmapped`/`allow_failure` wrappers to open."""
    if not args and not kwargs:
        return False
    return any(type(v) in _WRAPPERS for v in args) or any(
        type(v) in _WRAPPERS for v in kwargs.values()
    )


def _label(run: Any) -> str:
    """How a message names a task run (its call key) or a subflow run."""
    if isinstance(run, FlowRun):
        return f"subflow {run.name}"
    return str(run.key or run.task_name)


def _limited(task: Task[..., Any]) -> bool:
    return bool(task.tags) and bool(limits.registry)


def _name(fn: object) -> str:
    return str(getattr(fn, "__name__", fn))


__all__ = ["Engine"]
