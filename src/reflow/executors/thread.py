"""`ThreadExecutor`: a thread pool in the flow's process, the default executor."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def default_workers() -> int:
    """The standard library's default for I/O-bound pools: min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


class ThreadExecutor:
    """Runs task runs on up to `max_workers` threads. Good for I/O-bound tasks; CPU-bound
    Python code is better served by `ProcessExecutor` (the GIL lets one thread compute)."""

    ships_code = False

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = default_workers()
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"ThreadExecutor(max_workers=...) takes an int >= 1, got {max_workers!r}"
            )
        self.max_workers = max_workers
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._users = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="reflow-worker"
                )
            self._users += 1

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        pool = self._pool
        if pool is None:
            raise RuntimeError("ThreadExecutor.submit() before start(): a flow run starts it")
        return pool.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        with self._lock:
            self._users -= 1
            pool = self._pool if self._users <= 0 else None
            if pool is not None:
                self._pool, self._users = None, 0
        if pool is not None:
            pool.shutdown(wait=False)  # the flow waited for its runs; stragglers end on their own

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers})"
