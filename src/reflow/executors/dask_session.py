"""One connection of a `DaskExecutor` to its cluster: the client, the cluster it started (if
any), and the thread that brings results back in batches.

A finished cluster task's result is fetched by one `Client.gather` per batch of finished
tasks, not one round trip each: while one batch is gathered the next finishes. Dask errors
(the attempt's own exceptions come back as values) are a worker lost, which is a crash, or a
result that could not be pickled. A large result also stays on the cluster (its cluster
future is held in the attempt's `kept`), so later attempts can take it from there. Only
`DaskExecutor` imports this, once it starts.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from reflow.executors.references import LOST_DEP, Kept
from reflow.executors.shipping import outcome, run_payload
from reflow.task.signals import mark_crash

_STOP = object()
COALESCE = 0.025
"""Seconds that finished tasks of a map may wait for others, to be gathered in one go."""
BATCH = 2000
"""The most results gathered at once."""


class Attempt(concurrent.futures.Future[Any]):
    """The flow's handle on one attempt on the cluster: its outcome, and `kept`, its result
    left on the cluster (set before the outcome, when the result is large enough)."""

    kept: Kept | None = None


class Session:
    """A client on a cluster, and the futures of the attempts it runs there.

    Results of at least `keep_from` pickled bytes (None: none) stay on the cluster as well.
    `sent` and `received` count the pickled bytes of attempts and results that went through
    this process.
    """

    def __init__(self, client: Any, cluster: Any, keep_from: int | None = None) -> None:
        self.client = client
        self.cluster = cluster  # the LocalCluster it started, None on an existing cluster
        self.keep_from = keep_from
        self.sent = 0
        self.received = 0
        self._counting = threading.Lock()
        self._inflight: dict[str, tuple[Any, Attempt, str, list[Any]]] = {}
        self._kept: weakref.WeakValueDictionary[str, Kept] = weakref.WeakValueDictionary()
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.busy = 1
        """How many tasks the cluster runs at once (its threads), as last counted."""
        self._collector = threading.Thread(
            target=self._collect, name="reflow-dask-results", daemon=True
        )
        self._collector.start()

    @classmethod
    def open(
        cls,
        address: str | None,
        cluster_kwargs: Mapping[str, Any],
        client_kwargs: Mapping[str, Any],
        keep_from: int | None = None,
    ) -> Session:
        """Connect to the scheduler at `address`, or start a LocalCluster and connect to it."""
        import dask
        import distributed

        options = {"set_as_default": False, **client_kwargs}
        if address is None:
            # results straight from the workers (on this machine), not relayed by the scheduler
            options.setdefault("direct_to_workers", True)
            # reflow retries a lost attempt itself: the scheduler must not run it again first
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = distributed.LocalCluster(**cluster_kwargs)
            try:
                return cls(distributed.Client(cluster, **options), cluster, keep_from)
            except BaseException:
                cluster.close()
                raise
        try:
            client = distributed.Client(address, **options)
        except OSError as exc:
            raise ConnectionError(
                f"DaskExecutor could not reach the Dask scheduler at {address!r}: {exc}. Check "
                "that it runs (`dask scheduler` prints its address) and that this machine can "
                "connect to it, or leave out address= to start a LocalCluster"
            ) from exc
        return cls(client, None, keep_from)

    def threads(self) -> int:
        """The cluster's worker threads now (at least 1)."""
        self.busy = max(1, int(sum(self.client.nthreads().values())))
        return self.busy

    def submit(
        self, payloads: list[bytes], names: list[str], deps: list[list[Any]]
    ) -> list[Attempt]:
        """One cluster task per payload, submitted in one message; one future each. A task
        depends on its `deps` (cluster futures of kept results its payload refers to)."""
        keys = [f"{name}-{uuid.uuid4().hex}" for name in names]
        client = self.client
        options = {"pure": False, "retries": 0}
        if len(payloads) == 1:
            extra = (deps[0],) if deps[0] else ()
            tasks = [client.submit(run_payload, payloads[0], *extra, key=keys[0], **options)]
        elif any(deps):
            tasks = client.map(run_payload, payloads, deps, key=keys, **options)
        else:
            tasks = client.map(run_payload, payloads, key=keys, **options)
        size = sum(len(p) for p in payloads)
        with self._counting:
            self.sent += size
        futures: list[Attempt] = []
        for task, name, needs in zip(tasks, names, deps, strict=True):
            future = Attempt()
            self._inflight[task.key] = (task, future, name, needs)
            future.add_done_callback(_cancel_with(task))
            futures.append(future)
        client.loop.add_callback(self._watch, tasks)
        return futures

    def _watch(self, tasks: list[Any]) -> None:
        """In the client's event loop: have each task handed to the collector when it ends
        (registered here, one hop per batch instead of one wake-up of the loop per task)."""
        put = self._done.put
        for task in tasks:
            task.add_done_callback(put)

    def close(self) -> None:
        """Stop collecting, give up the attempts still on the cluster, close the client (and
        the cluster this session started)."""
        self._done.put(_STOP)
        self._collector.join(10)
        left = list(self._inflight.values())
        self._inflight.clear()
        try:
            if left:
                self.client.cancel([task for task, _, _, _ in left])
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
        for _, future, name, _ in left:
            _settle(future, False, RuntimeError(f"the Dask client closed while {name} ran"))

    # -- in the collector thread -------------------------------------------------------------

    def _collect(self) -> None:
        """Settle finished cluster tasks in batches, until close() says stop.

        A gather is a round trip, as costly for one result as for hundreds: while more tasks
        are on the cluster than it runs at once (a map), finished ones are let pile up for
        `COALESCE` seconds first; otherwise (a chain, a few submits) each goes at once.
        """
        while True:
            batch = [self._done.get()]
            deadline = None
            if len(self._inflight) > self.busy:
                deadline = time.monotonic() + COALESCE
            while True:
                try:
                    if deadline is None:
                        batch.append(self._done.get_nowait())
                    else:
                        batch.append(self._done.get(timeout=max(0, deadline - time.monotonic())))
                except queue.Empty:
                    break
                if len(batch) >= BATCH:
                    break
            stop = _STOP in batch
            tasks = [t for t in batch if t is not _STOP]
            if tasks:
                try:
                    self._settle_batch(tasks)
                except Exception as exc:  # never leave a caller waiting
                    for task in tasks:
                        self._settle_one(task, exc)
            if stop:
                return
            del batch, tasks  # hold no finished task while waiting: the cluster may free it

    def _settle_batch(self, tasks: list[Any]) -> None:
        finished = [t for t in tasks if t.status == "finished" and t.key in self._inflight]
        if finished:
            try:
                sent = self.client.gather(finished)
            except Exception:
                for task in finished:  # one at a time, so one bad result spoils only itself
                    self._settle_one(task)
            else:
                for task, data in zip(finished, sent, strict=True):
                    entry = self._inflight.pop(task.key, None)
                    if entry is not None:
                        self._finish(task, entry, data)
        for task in tasks:
            if task.status != "finished":
                self._settle_one(task)

    def _settle_one(self, task: Any, error: BaseException | None = None) -> None:
        entry = self._inflight.pop(task.key, None)
        if entry is None:
            return  # settled already, or given up on by close()
        _, future, name, _ = entry
        if future.cancelled():
            return  # the caller gave up on it (a timeout) and cancelled the task
        if error is not None:
            _settle(future, False, error)
            return
        try:
            if task.status == "finished":
                self._finish(task, entry, task.result())
                return
            if task.status == "error":
                _settle(future, False, _explained(task.exception(), name))
                return
            lost = RuntimeError(
                f"the cluster lost the attempt of {name} (its Dask task ended {task.status})"
            )
        except Exception as exc:  # its result could not be fetched: the data is gone
            lost = RuntimeError(f"the result of {name} could not be fetched from the cluster")
            lost.__cause__ = exc
        _settle(future, False, mark_crash(lost))

    def _finish(self, task: Any, entry: tuple[Any, Attempt, str, list[Any]], sent: bytes) -> None:
        """Hand a finished attempt's outcome over; keep a large result on the cluster too."""
        _, future, name, deps = entry
        ok, value = outcome(sent)
        with self._counting:
            self.received += len(sent)
        if ok and self.keep_from is not None and len(sent) >= self.keep_from:
            future.kept = Kept(task, value, name, len(sent))
            self._kept[task.key] = future.kept
        elif not ok and isinstance(lost := getattr(value, LOST_DEP, None), int):
            gone = self._kept.get(deps[lost].key) if lost < len(deps) else None
            if gone is not None:
                gone.release()  # the cluster lost it: later attempts get the value itself
        _settle(future, ok, value)


def _explained(exc: BaseException, name: str) -> BaseException:
    """A Dask error as the attempt's exception: a worker lost is a crash."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        exc.add_note(
            f"reflow: the Dask worker running {name} died; the attempt is Crashed and is "
            "retried if the task has retries left"
        )
        mark_crash(exc)
    return exc


def _settle(future: concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
    """Hand an outcome to the caller's future (unless the caller cancelled it meanwhile)."""
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass


def _cancel_with(task: Any) -> Any:
    def cancel(future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            task.cancel()

    return cancel
