"""The retry layer: `@retry`, `Retriable`, `attempting()`, stop conditions, waits and hooks.

Standard library only. Every other layer of reflow retries through this one.
"""

from reflow.retry import waits
from reflow.retry.attempting import Attempt, Attempting, attempting, attempting_async
from reflow.retry.budget import RetryBudget
from reflow.retry.conditions import (
    AllOf,
    AnyOf,
    AttemptsExhausted,
    Condition,
    ExceptionMatches,
    NoException,
    Not,
    ResultMatches,
    TimeElapsed,
)
from reflow.retry.errors import AttemptTimeout, StopRetrying
from reflow.retry.policy import DEFAULT_ATTEMPTS, Policy, PolicyOptions
from reflow.retry.retriable import Retriable, retry
from reflow.retry.state import AttemptState, Phase

__all__ = [
    "DEFAULT_ATTEMPTS",
    "AllOf",
    "AnyOf",
    "Attempt",
    "AttemptState",
    "AttemptTimeout",
    "Attempting",
    "AttemptsExhausted",
    "Condition",
    "ExceptionMatches",
    "NoException",
    "Not",
    "Phase",
    "Policy",
    "PolicyOptions",
    "ResultMatches",
    "RetryBudget",
    "Retriable",
    "StopRetrying",
    "TimeElapsed",
    "attempting",
    "attempting_async",
    "retry",
    "waits",
]
