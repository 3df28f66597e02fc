"""Results left where they were made, passed to later attempts by reference.

A cluster executor keeps a large result on the worker that made it and hands the flow a
`Kept`: the value (the flow's process has it too, for the run's state and the store) and the
cluster's handle on its copy. A `Kept` among an attempt's arguments ships as a reference when
its copy is still on the cluster: the attempt's task depends on it, and the worker that runs
the attempt fetches the data from its peer, never from the flow's process. Otherwise (released,
or its cluster task ended in error) it ships the value itself, so a reference is never wrong,
only slower.

The pickling side (`pickled_call`) runs in the flow's process; the loading side
(`loading_deps`) runs in the worker, around unpickling the attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from reflow.executors.shipping import call_payload, outcome
from reflow.task.signals import mark_crash

_here = threading.local()
LOST_DEP = "_reflow_lost_dep"
"""The attribute of a crash saying which of the attempt's references could not be loaded."""


class Kept:
    """A result of an attempt, left on the cluster: `value` in this process, `future` (a
    `distributed.Future`, None once released) on the cluster; `size` is its pickled bytes."""

    __slots__ = ("__weakref__", "future", "name", "size", "value")

    def __init__(self, future: Any, value: Any, name: str, size: int) -> None:
        self.future = future
        self.value = value
        self.name = name
        self.size = size

    @property
    def on_cluster(self) -> bool:
        """Whether attempts can depend on the cluster's copy (held, and not in error; a copy
        lost with its worker is recomputed by the cluster, and waited for)."""
        future = self.future
        return future is not None and future.status not in ("error", "cancelled")

    def release(self) -> None:
        """Let the cluster free its copy (the value stays here, and ships by value)."""
        future, self.future = self.future, None
        if future is not None:
            future.release()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        deps: list[Any] | None = getattr(_here, "deps", None)
        future = self.future
        if deps is None or future is None or not self.on_cluster:
            return _value, (self.value,)
        for index, dep in enumerate(deps):
            if dep is future:
                return _dep, (index, self.name)
        deps.append(future)
        return _dep, (len(deps) - 1, self.name)

    def __repr__(self) -> str:
        where = "on the cluster" if self.future is not None else "released"
        return f"<Kept result of {self.name}, {self.size} bytes, {where}>"


def pickled_call(
    fn: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bytes, list[Any]]:
    """The payload of the call `fn(*args, **kwargs)`, and the cluster futures that the `Kept`
    among its arguments refer to (the payload's task depends on them, in this order)."""
    deps: list[Any] = []
    _here.deps = deps
    try:
        return call_payload(fn, args, kwargs), deps
    finally:
        _here.deps = None


@contextmanager
def loading_deps(deps: Sequence[bytes]) -> Iterator[None]:
    """In the worker: while unpickling an attempt, its references load the results in `deps`
    (what the upstream attempts sent back, fetched by the cluster). An upstream that the
    cluster had to recompute, and whose recomputation failed, is a crash of this attempt."""
    values = []
    for index, sent in enumerate(deps):
        ok, value = outcome(sent)
        if not ok:
            lost = RuntimeError(
                "a result passed to this attempt by reference was lost with its worker, and "
                f"the cluster's recomputation of it failed: {type(value).__name__}: {value}"
            )
            setattr(lost, LOST_DEP, index)
            raise mark_crash(lost) from value
        values.append(value)
    _here.values = values
    try:
        yield
    finally:
        _here.values = None


def _dep(index: int, name: str) -> Any:
    """In the worker: the value of the attempt's `index`-th reference."""
    values: list[Any] | None = getattr(_here, "values", None)
    if values is None or index >= len(values):
        raise RuntimeError(f"the result of {name} was passed by reference, but not with the call")
    return values[index]


def _value(value: Any) -> Any:
    return value
