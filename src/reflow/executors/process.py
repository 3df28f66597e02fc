"""`ProcessExecutor`: task attempts in worker processes, shipped with cloudpickle.

The flow's process keeps the orchestration (states, retries, waits, timeouts); each attempt's
function and arguments go to a worker process pickled with cloudpickle (so functions defined
in `__main__`, closures and lambdas travel too) and its value or exception comes back the same
way. Workers start with the "spawn" method by default: a script that runs flows on a process
pool must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import concurrent.futures
import os
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from reflow.executors.base import SerializationError, SharedPool

T = TypeVar("T")


class ProcessExecutor(SharedPool):
    """Runs task attempts on up to `max_workers` processes (default: one per CPU).

    The pool is pebble's: an attempt given up on (its timeout passed, its flow ended) is
    stopped by terminating the worker running it, and a worker that dies (killed, out of
    memory) is replaced, its attempt failing with pebble's `ProcessExpired`.
    """

    ships_code = True

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"ProcessExecutor(max_workers=...) takes an int >= 1, got {max_workers!r}"
            )
        import multiprocessing  # here: importing it at all registers __mp_main__

        methods = multiprocessing.get_all_start_methods()
        if mp_context not in methods:
            raise ValueError(
                f"ProcessExecutor(mp_context={mp_context!r}): this platform offers "
                f"{', '.join(methods)}"
            )
        self.max_workers = max_workers
        self.mp_context = mp_context
        super().__init__()

    def _make_pool(self) -> Any:
        import multiprocessing

        import cloudpickle  # noqa: F401 - fail at the start of the flow, not at its first task
        import pebble

        context = multiprocessing.get_context(self.mp_context)
        return pebble.ProcessPool(self.max_workers, context=context)

    def _end_pool(self, pool: Any) -> None:
        # Attempts still running were given up on by their flow (a timeout): Python cannot
        # stop them inside a worker, so stop() terminates the workers; nothing waits.
        pool.stop()
        pool.join()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run the call in a worker; cancelling the returned future stops it even mid-run."""
        payload = dumps((fn, args, kwargs), f"the call of {_name(fn)}")
        with self._lock:
            inner: concurrent.futures.Future[bytes] = self._running_pool().schedule(
                _run_payload, (payload,)
            )
        outer: concurrent.futures.Future[T] = concurrent.futures.Future()
        inner.add_done_callback(lambda done: _settle(outer, done, fn))
        outer.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)
        return outer

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_workers={self.max_workers}, mp_context={self.mp_context!r})"


class RemoteError(Exception):
    """A task's exception from a worker process that could not be sent back as itself
    (unpicklable, or its `__init__` cannot rebuild it): its type, message and traceback as text.
    """


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", fn))


def dumps(value: object, what: str) -> bytes:
    """cloudpickle `value`, or a SerializationError naming `what` could not be sent."""
    import cloudpickle

    try:
        return cloudpickle.dumps(value)  # type: ignore[no-any-return]
    except Exception as exc:
        raise SerializationError(
            f"{what} cannot be pickled to pass between processes: {type(exc).__name__}: "
            f"{exc}. Functions, arguments and results must be picklable (no open files, "
            "locks, sockets or generators); use ThreadExecutor for tasks that need them"
        ) from exc


def _run_payload(payload: bytes) -> bytes:
    """In the worker: run the call and pickle its value or its exception (with its traceback)."""
    import cloudpickle

    fn, args, kwargs = cloudpickle.loads(payload)
    try:
        return dumps((True, fn(*args, **kwargs)), f"the result of {_name(fn)}")
    except Exception as exc:
        where = "reflow: raised in a worker process:\n" + traceback.format_exc().rstrip()
        exc.add_note(where)
        try:
            sent: bytes = cloudpickle.dumps((False, exc))
            cloudpickle.loads(sent)  # an exception whose __init__ cannot rebuild it fails here
            return sent
        except Exception as problem:
            stand_in = RemoteError(
                f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} (it cannot travel "
                f"between processes: {type(problem).__name__}: {problem}; sent as text)"
            )
            stand_in.add_note(where)
            return cloudpickle.dumps((False, stand_in))  # type: ignore[no-any-return]


def _settle(
    outer: concurrent.futures.Future[Any], done: concurrent.futures.Future[bytes], fn: object
) -> None:
    """Hand the worker's outcome to the caller's future (unless the caller gave up on it)."""
    import cloudpickle
    from pebble import ProcessExpired

    try:
        ok, value = cloudpickle.loads(done.result())
    except ProcessExpired as exc:
        exc.add_note(f"reflow: the worker process running {_name(fn)} died")
        ok, value = False, exc
    except BaseException as exc:  # cancelled, or the pool was stopped
        ok, value = False, exc
    try:
        if ok:
            outer.set_result(value)
        else:
            outer.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass  # the caller cancelled it meanwhile: nobody waits for this outcome
