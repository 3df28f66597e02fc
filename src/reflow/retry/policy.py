"""`Policy`: a retry configuration, validated once at decoration and shared by every call."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from reflow.retry.budget import RetryBudget
from reflow.retry.conditions import (
    AnyOf,
    AttemptsExhausted,
    Condition,
    ExceptionMatches,
    NoException,
    ResultMatches,
    TimeElapsed,
    as_condition,
    check_exception_types,
)
from reflow.retry.durations import Duration, to_seconds
from reflow.retry.errors import AttemptTimeout
from reflow.retry.hooks import HOOK_NAMES, Hook, check_hooks
from reflow.retry.state import AttemptState
from reflow.retry.waits import Wait, WaitLike, as_wait, exponential

DEFAULT_ATTEMPTS = 5
"""Attempts made when none of `until`, `attempts` or `deadline` is given."""


def default_wait() -> Wait:
    """0.1 s, 0.2 s, 0.4 s ... capped at 5 s, with full jitter."""
    return exponential(initial=0.1, max=5.0, jitter=1.0)


OnLike = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
HookArg = Hook | Iterable[Hook] | None


class PolicyOptions(TypedDict, total=False):
    """The options `retry()`, `attempting()` and `with_options()` accept."""

    until: Condition | Callable[[AttemptState], bool] | None
    attempts: int | None
    on: OnLike | None
    wait: WaitLike | None
    deadline: Duration | None
    timeout: Duration | None
    budget: RetryBudget | None
    before_attempt: HookArg
    on_success: HookArg
    on_failure: HookArg
    before_wait: HookArg
    after_wait: HookArg
    on_giveup: HookArg


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything a retried call needs to decide, derived from the user's options."""

    until: Condition
    wait: Wait
    timeout: float | None
    deadline: float | None
    budget: RetryBudget | None
    hooks: dict[str, tuple[Hook, ...]]
    options: dict[str, Any] = field(repr=False)
    checks_results: bool = False
    plain: bool = True

    def with_hook(self, kind: str, hook: Hook) -> Policy:
        """A copy with `hook` appended to the hooks of `kind`."""
        hooks = dict(self.hooks)
        hooks[kind] = (*hooks[kind], *check_hooks(hook, kind))
        return make_policy(**{**self.options, **hooks})


def _condition(
    until: Condition | Callable[[AttemptState], bool] | None,
    attempts: int | None,
    on: OnLike | None,
    deadline: float | None,
    timeout: float | None,
) -> Condition:
    parts: list[Condition] = []
    if until is not None:
        parts.append(as_condition(until, "until"))
    if attempts is not None:
        parts.append(AttemptsExhausted(attempts))
    if deadline is not None:
        parts.append(TimeElapsed(deadline))
    if not parts:
        parts.append(AttemptsExhausted(DEFAULT_ATTEMPTS))
    if on is not None:
        if isinstance(on, type | tuple):
            types = check_exception_types(on, "on")
            if timeout is not None and not any(issubclass(AttemptTimeout, t) for t in types):
                types = (*types, AttemptTimeout)  # a timed-out attempt is retried like the rest
            # "stop on an exception that is not one of these"; a returned value is no such
            # exception, so a ResultMatches condition still decides on it (polling).
            parts.append(~(NoException() | ExceptionMatches(types)))
        elif callable(on):
            parts.append(~(NoException() | ExceptionMatches(on)))
        else:
            raise TypeError(
                f"on takes exception classes or a predicate (exception) -> bool, got {on!r}"
            )
    return parts[0] if len(parts) == 1 else AnyOf(*parts)


def make_policy(
    *,
    until: Condition | Callable[[AttemptState], bool] | None = None,
    attempts: int | None = None,
    on: OnLike | None = None,
    wait: WaitLike | None = None,
    deadline: Duration | None = None,
    timeout: Duration | None = None,
    budget: RetryBudget | None = None,
    before_attempt: HookArg = None,
    on_success: HookArg = None,
    on_failure: HookArg = None,
    before_wait: HookArg = None,
    after_wait: HookArg = None,
    on_giveup: HookArg = None,
) -> Policy:
    """Validate the options of `retry()` / `attempting()` and build their `Policy`."""
    options = dict(
        until=until, attempts=attempts, on=on, wait=wait, deadline=deadline, timeout=timeout,
        budget=budget,
    )  # fmt: skip
    deadline_s = None if deadline is None else to_seconds(deadline, "deadline", allow_zero=False)
    timeout_s = None if timeout is None else to_seconds(timeout, "timeout", allow_zero=False)
    if budget is not None and not isinstance(budget, RetryBudget):
        raise TypeError(f"budget takes a RetryBudget shared between Retriables, got {budget!r}")
    condition = _condition(until, attempts, on, deadline_s, timeout_s)
    given = dict(
        before_attempt=before_attempt, on_success=on_success, on_failure=on_failure,
        before_wait=before_wait, after_wait=after_wait, on_giveup=on_giveup,
    )  # fmt: skip
    hooks = {name: check_hooks(given[name], name) for name in HOOK_NAMES}
    checks_results = any(isinstance(c, ResultMatches) for c in condition.walk())
    return Policy(
        until=condition,
        wait=default_wait() if wait is None else as_wait(wait),
        timeout=timeout_s,
        deadline=deadline_s,
        budget=budget,
        hooks=hooks,
        options=options,
        checks_results=checks_results,
        plain=not (any(hooks.values()) or timeout_s or budget or checks_results),
    )
