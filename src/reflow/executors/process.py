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
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from reflow.executors.base import SerializationError

T = TypeVar("T")


class ProcessExecutor:
    """Runs task attempts on up to `max_workers` processes (default: one per CPU)."""

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
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._users = 0
        self._lock = threading.Lock()
        self._in_flight: set[concurrent.futures.Future[bytes]] = set()

    def start(self) -> None:
        import cloudpickle  # noqa: F401 - fail at the start of the flow, not at its first task

        with self._lock:
            if self._pool is None:
                self._pool = self._new_pool()
            self._users += 1

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        import multiprocessing

        context = multiprocessing.get_context(self.mp_context)
        return concurrent.futures.ProcessPoolExecutor(self.max_workers, mp_context=context)

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        payload = dumps((fn, args, kwargs), f"the call of {_name(fn)}")
        outer: concurrent.futures.Future[T] = concurrent.futures.Future()
        inner = self._submit_payload(payload)
        with self._lock:
            self._in_flight.add(inner)
        inner.add_done_callback(self._in_flight.discard)
        inner.add_done_callback(lambda done: _settle(outer, done, fn))
        return outer

    def _submit_payload(self, payload: bytes) -> concurrent.futures.Future[bytes]:
        from concurrent.futures.process import BrokenProcessPool

        with self._lock:
            pool = self._pool
            if pool is None:
                raise RuntimeError("ProcessExecutor.submit() before start(): a flow run starts it")
            try:
                return pool.submit(_run_payload, payload)
            except BrokenProcessPool:
                # a worker died (killed, out of memory): later attempts get a fresh pool
                pool.shutdown(wait=False)
                self._pool = pool = self._new_pool()
                return pool.submit(_run_payload, payload)

    def shutdown(self) -> None:
        with self._lock:
            self._users -= 1
            pool = self._pool if self._users <= 0 else None
            if pool is not None:
                self._pool, self._users = None, 0
        if pool is None:
            return
        with self._lock:
            hung = [f for f in self._in_flight if not f.done()]
            self._in_flight.clear()
        if hung:
            # Attempts abandoned by their flow (a timeout) still run: Python cannot stop them
            # inside a worker, so the workers go; waiting could take forever.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=not hung, cancel_futures=True)

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
    from concurrent.futures.process import BrokenProcessPool

    import cloudpickle

    try:
        ok, value = cloudpickle.loads(done.result())
    except BrokenProcessPool as exc:
        exc.add_note(f"reflow: the worker process running {_name(fn)} died")
        outer.set_exception(exc)
    except BaseException as exc:
        outer.set_exception(exc)
    else:
        if ok:
            outer.set_result(value)
        else:
            outer.set_exception(value)
