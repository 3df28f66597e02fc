"""`ThreadExecutor`: a thread pool in the flow's process, the default executor."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any, TypeVar

from reflow.executors.base import SharedPool

T = TypeVar("T")


def default_workers() -> int:
    """The standard library's default for I/O-bound pools: min(32, CPUs + 4)."""
    return min(32, (os.cpu_count() or 1) + 4)


class ThreadExecutor(SharedPool):
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
        super().__init__()

    def _make_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(
            self.max_workers, thread_name_prefix="reflow-worker"
        )

    def _end_pool(self, pool: concurrent.futures.ThreadPoolExecutor) -> None:
        pool.shutdown(wait=False)  # the flow waited for its runs; stragglers end on their own

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        pool: concurrent.futures.ThreadPoolExecutor = self._running_pool()
        return pool.submit(fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"ThreadExecutor(max_workers={self.max_workers})"
