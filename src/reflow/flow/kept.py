"""Results left where they were made (a cluster's workers), and the runs that still need them.

With an executor that keeps results (`reflow.executors.KeepsResults`), a run whose attempt
succeeded leaves a reference to its result with the flow: its downstream attempts are sent
that reference in place of the value, so the cluster moves the data between its workers and
the flow's process does not send it again. The flow's process still has every value (states,
hooks, the store and `.result()` read it there); what is kept is the cluster's copy.

A reference is held while a run that takes it as an argument has not settled (its retries
need it too), and released after, so the cluster can free the memory. A run submitted after
that gets the value itself, as does every run on an executor that keeps nothing.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from reflow.flow.arguments import resolve_call
from reflow.task.futures import Future
from reflow.task.run import TaskRun


class KeptResults:
    """The references a flow run's engine holds, by task run id, and who still takes them."""

    def __init__(
        self,
        kept: Callable[[concurrent.futures.Future[Any]], Any],
        release: Callable[[Any], None],
    ) -> None:
        self._kept_of = kept
        self._release = release
        self._lock = threading.Lock()
        self._refs: dict[str, Any] = {}
        """Run id -> the reference to its latest successful attempt's result."""
        self._takers: dict[str, int] = {}
        """Run id -> how many runs that may take its result have not settled."""
        self._given: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        """Run id -> its arguments as given (with futures), while it may still be sent."""

    @classmethod
    def of(cls, executor: Any) -> KeptResults | None:
        """The bookkeeping for `executor`, or None if it does not keep results."""
        kept, release = getattr(executor, "kept", None), getattr(executor, "release", None)
        if not (callable(kept) and callable(release)):
            return None
        return cls(kept, release)

    def take(
        self,
        future: Future[Any],
        ups: list[Future[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """A new run with upstream futures among `args`/`kwargs`: their kept results stay
        until it settles."""
        run_id = future.run.id
        with self._lock:
            self._given[run_id] = (args, kwargs)
            for up in ups:
                self._takers[up.run.id] = self._takers.get(up.run.id, 0) + 1
        future.add_done_callback(lambda _: self._taken(run_id, ups))

    def shipped(
        self, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments to send for an attempt of `run`: with references to its upstreams'
        kept results in place of their values, when there are any."""
        refs = self._refs
        if not refs or not any(up in refs for up in run.upstream):
            return args, kwargs
        given = self._given.get(run.id)
        if given is None:
            return args, kwargs
        return resolve_call(given[0], given[1], refs)

    def keep(self, run: TaskRun, remote: concurrent.futures.Future[Any]) -> None:
        """An attempt of `run` succeeded: hold the reference to its result, if kept."""
        ref = self._kept_of(remote)
        if ref is None:
            return
        with self._lock:
            earlier = self._refs.get(run.id)
            self._refs[run.id] = ref
        if earlier is not None:  # an earlier attempt's result, rejected (retried)
            self._release(earlier)

    def settled(self, run: TaskRun) -> None:
        """`run` has ended: keep its reference only for a result it completed with, and only
        while runs that take it are waiting."""
        if run.id not in self._refs:
            return
        state = run.state
        with self._lock:
            ref = self._refs.get(run.id)
            if ref is None:
                return
            wanted = self._takers.get(run.id, 0) > 0
            if wanted and state.is_completed() and state.data is ref.value:
                return
            del self._refs[run.id]
        self._release(ref)

    def close(self) -> None:
        """The flow run is over: release everything still held."""
        with self._lock:
            refs = list(self._refs.values())
            self._refs.clear()
            self._takers.clear()
            self._given.clear()
        for ref in refs:
            self._release(ref)

    def _taken(self, run_id: str, ups: list[Future[Any]]) -> None:
        """A run that took `ups` has settled: release what no other run takes."""
        released = []
        with self._lock:
            self._given.pop(run_id, None)
            for up in ups:
                up_id = up.run.id
                left = self._takers.get(up_id, 0) - 1
                if left > 0:
                    self._takers[up_id] = left
                    continue
                self._takers.pop(up_id, None)
                if up_id in self._refs and up.run.state.is_final():  # else when it settles
                    released.append(self._refs.pop(up_id))
        for ref in released:
            self._release(ref)
