"""reflow: reliable workflows from layers that each work alone and compose.

`import reflow` is light: the retry and task layers, standard library only, no server. The
package's names `reflow.retry` and `reflow.task` are the decorators; their modules are reached
with `from reflow.retry import ...` and `from reflow.task import ...`.
"""

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
from reflow.task import Task, task

__version__ = "0.1.0"

__all__ = [
    "AttemptState",
    "Retriable",
    "RetryBudget",
    "StopRetrying",
    "Task",
    "__version__",
    "attempting",
    "attempting_async",
    "retry",
    "task",
    "waits",
]
