"""reflow: reliable workflows from layers that each work alone and compose.

`import reflow` is light: the retry, task and flow layers, standard library only, no server
(pydantic and cloudpickle load when a flow first needs them). The package's names
`reflow.retry`, `reflow.task` and `reflow.flow` are the decorators; their modules are reached
with `from reflow.retry import ...`, `from reflow.task import ...`, `from reflow.flow import ...`.
"""

from reflow import triggers
from reflow.flow import (
    Flow,
    FlowPaused,
    FlowRun,
    ParameterError,
    TriggerFailedError,
    flow,
    get_run_context,
    get_run_logger,
)
from reflow.flow import persistence as _persistence
from reflow.retry import (
    AttemptState,
    Retriable,
    RetryBudget,
    StopRetrying,
    attempting,
    attempting_async,
    retry,
    waits,
)
from reflow.secrets import Secret, SecretNotFound, secret
from reflow.task import Fail, Pause, Retry, Skip, Task, task
from reflow.task import cache as _cache
from reflow.task.futures import Future, FutureList, allow_failure, as_completed, unmapped, wait
from reflow.task.limits import concurrency_limit


def _store_persistence(persist: bool | None, store: object) -> object:
    """The durability layer, loaded only when a flow is persisted (`import reflow` stays light)."""
    from reflow.store.persistence import persistence

    return persistence(persist, store)


def _store_cache() -> object:
    """The default task cache: the default store's (`REFLOW_STORE=memory`: None, in memory)."""
    from reflow.store.cache import default_cache

    return default_cache()


_persistence.factory = _store_persistence  # type: ignore[assignment]
_cache.DEFAULT_CACHE_STORE.persistent = _store_cache  # type: ignore[assignment]


def resume(run_id: str, store: object = None) -> object:
    """Run a stored flow run again to its end, from any process: calls that completed before
    return their stored results without running. Returns the run's final state."""
    from reflow.store.persistence import resume as resume_stored

    return resume_stored(run_id, store)


def submit_run(flow: object, *args: object, store: object = None, **kwargs: object) -> str:
    """Queue a run of `flow` with these arguments for a worker (`reflow.worker.run`); returns
    the run's id. The arguments are checked now."""
    from reflow.store.worker import submit_run as queue

    return queue(flow, *args, store=store, **kwargs)


__version__ = "0.1.0"

__all__ = [
    "AttemptState",
    "Fail",
    "Flow",
    "FlowPaused",
    "FlowRun",
    "Future",
    "FutureList",
    "ParameterError",
    "Pause",
    "Retriable",
    "Retry",
    "RetryBudget",
    "Secret",
    "SecretNotFound",
    "Skip",
    "StopRetrying",
    "Task",
    "TriggerFailedError",
    "__version__",
    "allow_failure",
    "as_completed",
    "attempting",
    "attempting_async",
    "concurrency_limit",
    "flow",
    "get_run_context",
    "get_run_logger",
    "resume",
    "retry",
    "secret",
    "submit_run",
    "task",
    "triggers",
    "unmapped",
    "wait",
    "waits",
]
