"""`DaskExecutor`: task attempts on a Dask distributed cluster (the `reflow[dask]` extra).

The orchestration (states, retries and their waits, timeouts, triggers, the store) stays in
the flow's process; each attempt is one task on the cluster, shipped as cloudpickle bytes
reflow made itself (so what cannot travel is a `SerializationError` naming the function) and
submitted with Dask's own `retries=0`: reflow's retry layer decides what is retried. A worker
that dies mid-attempt fails the attempt as Crashed (`distributed.KilledWorker`), retried if
retries remain. A large result stays on the cluster too, and reaches the attempts that take
it as an argument by reference (`KeepsResults`): their workers fetch it from the worker that
made it, not from the flow's process. `distributed` is imported when the executor starts,
never before.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from reflow.executors.base import Call, SerializationError, SharedPool
from reflow.executors.dask_session import Session
from reflow.executors.references import Kept, pickled_call
from reflow.executors.shipping import name_of

T = TypeVar("T")

INSTALL_HINT = "pip install 'reflow[dask]'"
REFERENCE_BYTES = 64 * 1024
"""The default `reference_bytes`: smaller results are cheaper to send along than to fetch."""


class DaskExecutor(SharedPool):
    """Runs task attempts on a Dask cluster: the scheduler at `address` (`tcp://host:port`),
    or, without one, a `distributed.LocalCluster(**cluster_kwargs)` started for the flow run
    and closed after it. `client_kwargs` go to `distributed.Client`.

    A result of at least `reference_bytes` (pickled) stays on the cluster while downstream
    attempts may take it as an argument, and goes to them by reference, worker to worker;
    None sends every argument from the flow's process.

    `max_workers` (how many attempts the flow keeps on the cluster at once, a `.map()`'s
    aside) is the cluster's total of worker threads when the executor starts.
    """

    ships_code = True

    def __init__(
        self,
        address: str | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        reference_bytes: int | None = REFERENCE_BYTES,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise TypeError(
                f"DaskExecutor(address=...) takes a scheduler address such as "
                f"'tcp://10.0.0.5:8786', or None to start a LocalCluster; got {address!r}"
            )
        if address is not None and cluster_kwargs:
            raise ValueError(
                "DaskExecutor(cluster_kwargs=...) configures the LocalCluster started when there "
                f"is no address; the cluster at {address!r} exists already: pass one of the two"
            )
        for label, given in (("cluster_kwargs", cluster_kwargs), ("client_kwargs", client_kwargs)):
            if given is not None and not isinstance(given, Mapping):
                raise TypeError(f"DaskExecutor({label}=...) takes a dict, got {given!r}")
        if reference_bytes is not None and (
            isinstance(reference_bytes, bool)
            or not isinstance(reference_bytes, int)
            or reference_bytes < 0
        ):
            raise ValueError(
                "DaskExecutor(reference_bytes=...) takes a size in bytes >= 0 from which results "
                f"pass between tasks by reference, or None for never; got {reference_bytes!r}"
            )
        self.address = address
        self.reference_bytes = reference_bytes
        self.cluster_kwargs: dict[str, Any] = dict(cluster_kwargs or {})
        self.client_kwargs: dict[str, Any] = dict(client_kwargs or {})
        self.max_workers = 1  # the cluster's thread count once started
        super().__init__()

    @property
    def client(self) -> Any:
        """The `distributed.Client` of the running executor (RuntimeError before `start()`)."""
        session: Session = self._running_pool()
        return session.client

    def _make_pool(self) -> Session:
        try:
            import distributed  # noqa: F401 - the clear error here, not deep in a flow run
        except ImportError as exc:
            raise ImportError(
                f"DaskExecutor needs Dask distributed, which is not installed: {INSTALL_HINT}"
            ) from exc
        session = Session.open(
            self.address, self.cluster_kwargs, self.client_kwargs, self.reference_bytes
        )
        self.max_workers = session.threads()
        return session

    def _end_pool(self, pool: Session) -> None:
        pool.close()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run the call as one cluster task; cancelling the future cancels the task (one
        already running on a worker runs on there: Dask cannot stop a running thread)."""
        payload, deps = pickled_call(fn, args, kwargs)  # SerializationError, naming fn
        session: Session = self._running_pool()
        (future,) = session.submit([payload], [name_of(fn)], [deps])
        return future

    def submit_many(self, calls: Sequence[Call], /) -> list[concurrent.futures.Future[Any]]:
        """Run every call, submitted to the scheduler in one batch (`Client.map`)."""
        session: Session = self._running_pool()
        futures: list[concurrent.futures.Future[Any] | None] = []
        payloads: list[bytes] = []
        names: list[str] = []
        deps: list[list[Any]] = []
        for fn, args, kwargs in calls:
            try:
                payload, needs = pickled_call(fn, args, kwargs)
            except SerializationError as exc:
                failed: concurrent.futures.Future[Any] = concurrent.futures.Future()
                failed.set_exception(exc)
                futures.append(failed)
                continue
            payloads.append(payload)
            deps.append(needs)
            names.append(name_of(fn))
            futures.append(None)
        submitted = iter(session.submit(payloads, names, deps) if payloads else ())
        return [f if f is not None else next(submitted) for f in futures]

    def kept(self, future: concurrent.futures.Future[Any], /) -> Kept | None:
        """The result of the attempt `future` (which succeeded), left on the cluster: pass it
        in the arguments of later calls to send it by reference. None when it was small."""
        return getattr(future, "kept", None)

    def release(self, kept: Kept, /) -> None:
        """No call will take `kept` any more: the cluster may free its copy."""
        kept.release()

    @property
    def bytes_sent(self) -> int:
        """Pickled bytes of the attempts this executor sent to the cluster since it started."""
        session: Session = self._running_pool()
        return session.sent

    @property
    def bytes_received(self) -> int:
        """Pickled bytes of the results it fetched from the cluster since it started."""
        session: Session = self._running_pool()
        return session.received

    def check_task(self, task: Any, /) -> None:
        """Async tasks cannot run on Dask's workers: refused, saying what to do instead."""
        if getattr(task, "is_async", False):
            raise TypeError(
                f"task {task.name} is an async function, which DaskExecutor cannot run: Dask "
                "workers run plain functions. Make it a def (the cluster runs it), or run the "
                "flow on a ThreadExecutor, where async tasks run on the flow's event loop"
            )

    def __repr__(self) -> str:
        if self.address is not None:
            return f"DaskExecutor(address={self.address!r})"
        return f"DaskExecutor(cluster_kwargs={self.cluster_kwargs!r})"
