"""Helpers shared by every layer's tests."""

from __future__ import annotations

from typing import Any


class Script:
    """Plays `outcomes` in order, one per call; the last one repeats.

    An exception class is raised as a fresh instance (kept in `raised`), an exception instance
    is raised as is, anything else is returned.
    """

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.raised: list[BaseException] = []

    def step(self) -> Any:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, type) and issubclass(outcome, BaseException):
            outcome = outcome(f"failure {self.calls}")
        if isinstance(outcome, BaseException):
            self.raised.append(outcome)
            raise outcome
        return outcome
