"""What hooks, conditions and waits are told about an attempt."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Phase(enum.Enum):
    """Where in the retry loop an `AttemptState` was taken; one per hook."""

    BEFORE_ATTEMPT = "before_attempt"
    SUCCESS = "on_success"
    FAILURE = "on_failure"
    BEFORE_WAIT = "before_wait"
    AFTER_WAIT = "after_wait"
    GIVEUP = "on_giveup"


@dataclass(frozen=True, slots=True)
class AttemptState:
    """An immutable snapshot of one attempt of a retried call.

    `attempt` counts from 1. `exception` is set when the attempt raised, `result` when it
    returned. `wait_seconds` is the wait chosen before the next attempt (0 until one is chosen).
    `elapsed` is seconds since the call began, on the retry layer's clock.
    """

    attempt: int
    phase: Phase
    elapsed: float = 0.0
    exception: BaseException | None = None
    result: Any = None
    wait_seconds: float = 0.0
    name: str = ""
    args: tuple[Any, ...] = field(default=(), repr=False)
    kwargs: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> bool:
        """Whether the attempt raised."""
        return self.exception is not None
