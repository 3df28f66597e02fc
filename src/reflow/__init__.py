"""reflow: reliable workflows from layers that each work alone and compose.

`import reflow` is light: it loads the retry layer (standard library only) and nothing else.
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

__version__ = "0.1.0"

__all__ = [
    "AttemptState",
    "Retriable",
    "RetryBudget",
    "StopRetrying",
    "__version__",
    "attempting",
    "attempting_async",
    "retry",
    "waits",
]
