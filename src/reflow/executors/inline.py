"""`InlineExecutor`: runs every call at once in the calling thread; runs are sequential."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class InlineExecutor:
    """No concurrency: a submitted run executes before `submit()` returns. For debugging,
    deterministic tests, and flows whose tasks must not overlap."""

    max_workers = 1
    ships_code = False

    def start(self) -> None:
        return None

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        return None

    def __repr__(self) -> str:
        return "InlineExecutor()"
