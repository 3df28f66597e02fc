"""The task layer: `@task` = retry + timeout + cache + state + hooks around one function."""

from reflow.task.cache import (
    INPUTS,
    NO_CACHE,
    TASK_SOURCE,
    CacheEntry,
    CacheKeyWarning,
    CachePolicy,
    CacheStore,
    MemoryCacheStore,
)
from reflow.task.decorator import Task, task
from reflow.task.futures import Future, FutureList, allow_failure, unmapped
from reflow.task.options import exponential_backoff
from reflow.task.run import AttemptRecord, TaskRun
from reflow.task.signals import Fail, Pause, Retry, Signal, Skip

__all__ = [
    "INPUTS",
    "NO_CACHE",
    "TASK_SOURCE",
    "AttemptRecord",
    "CacheEntry",
    "CacheKeyWarning",
    "CachePolicy",
    "CacheStore",
    "Fail",
    "Future",
    "FutureList",
    "MemoryCacheStore",
    "Pause",
    "Retry",
    "Signal",
    "Skip",
    "Task",
    "TaskRun",
    "allow_failure",
    "exponential_backoff",
    "task",
    "unmapped",
]
