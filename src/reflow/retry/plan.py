"""The retry loop as one state machine, shared by sync and async callers.

`plan()` is a generator that decides and never performs: it yields steps (run an attempt, call
hooks, sleep) and is sent their outcomes. `drive_sync` and `drive_async` perform the steps, and
`attempting()` performs them around the user's own block. One decision procedure, three drivers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from reflow.retry import _clock
from reflow.retry.errors import attempt_timeout
from reflow.retry.hooks import call_hooks_async, call_hooks_sync
from reflow.retry.policy import Policy
from reflow.retry.state import AttemptState, Phase

logger = logging.getLogger("reflow.retry")


class Run:
    """Step: run attempt `number`, bounded by `timeout` seconds when set."""

    __slots__ = ("number", "timeout")

    def __init__(self, number: int, timeout: float | None) -> None:
        self.number = number
        self.timeout = timeout


class CallHooks:
    """Step: call `hooks` with `state`; send back False, or StopRetrying's message (or True)."""

    __slots__ = ("hooks", "state")

    def __init__(self, hooks: tuple[Callable[[AttemptState], object], ...], state: AttemptState):
        self.hooks = hooks
        self.state = state


class Sleep:
    """Step: wait `seconds` (never zero: a zero wait is not a step)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


Step = Run | CallHooks | Sleep
Outcome = tuple[BaseException | None, Any]
"""An attempt's outcome: (exception, None) or (None, result)."""
Plan = Generator[Step, Any, Outcome]


def plan(
    policy: Policy,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    start: float,
    first: Outcome | None = None,
) -> Plan:
    """Decide a retried call's steps; `first` is the outcome of an attempt already made."""
    hooks = policy.hooks
    until = policy.until
    deadline = policy.deadline
    attempt = 0
    last: str | bool = False  # a hook asked for this attempt to be the last (and maybe why)
    if policy.budget is not None:
        policy.budget.record_call()  # once per call, whoever ran its first attempt
    while True:
        attempt += 1
        if first is not None:
            exc, result = first
            first = None
        else:
            if hooks["before_attempt"]:
                state = AttemptState(
                    attempt, Phase.BEFORE_ATTEMPT, _clock.monotonic() - start,
                    name=name, args=args, kwargs=kwargs,
                )  # fmt: skip
                last = (yield CallHooks(hooks["before_attempt"], state)) or last
            timeout = policy.timeout
            if timeout is not None and deadline is not None:
                timeout = max(min(timeout, deadline - (_clock.monotonic() - start)), 1e-3)
            exc, result = yield Run(attempt, timeout)
            if exc is None and not policy.checks_results and not hooks["on_success"]:
                return None, result  # nobody looks at a success: build no state for it
        elapsed = _clock.monotonic() - start
        if exc is None:
            state = AttemptState(
                attempt, Phase.SUCCESS, elapsed, None, result, name=name, args=args, kwargs=kwargs
            )  # fmt: skip
            if not policy.checks_results or _accepts(until, state):
                if hooks["on_success"]:
                    yield CallHooks(hooks["on_success"], state)
                return None, result
            state = _with_phase(state, Phase.FAILURE)  # a rejected result: a failed attempt
        else:
            state = AttemptState(
                attempt, Phase.FAILURE, elapsed, exc, None, name=name, args=args, kwargs=kwargs
            )  # fmt: skip
        if hooks["on_failure"]:
            last = (yield CallHooks(hooks["on_failure"], state)) or last
        reason = _stop_reason(policy, state, last)
        wait = 0.0
        if reason is None:
            wait = _ask(policy.wait, state, "wait strategy")
            if deadline is not None and state.elapsed + wait > deadline:
                reason = f"the next wait of {wait:g} s would pass the {deadline:g} s deadline"
            elif policy.budget is not None and not policy.budget.try_spend():
                reason = "the retry budget is spent"
        if reason is None and (hooks["before_wait"] or hooks["after_wait"]):
            state = _with_phase(state, Phase.BEFORE_WAIT, wait)
            stopped = hooks["before_wait"] and (yield CallHooks(hooks["before_wait"], state))
            if stopped:
                reason = (
                    stopped
                    if isinstance(stopped, str)
                    else "a before_wait hook raised StopRetrying"
                )
        if reason is not None:
            return (yield from _give_up(policy, state, reason))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "reflow: retrying %s in %.3g s after attempt %d failed: %r",
                name, wait, attempt, exc if exc is not None else result,
            )  # fmt: skip
        if wait > 0:
            yield Sleep(wait)
        if hooks["after_wait"]:
            state = _with_phase(state, Phase.AFTER_WAIT, wait, _clock.monotonic() - start)
            last = (yield CallHooks(hooks["after_wait"], state)) or last


def _with_phase(
    state: AttemptState, phase: Phase, wait: float = 0.0, elapsed: float | None = None
) -> AttemptState:
    return AttemptState(
        state.attempt, phase, state.elapsed if elapsed is None else elapsed, state.exception,
        state.result, wait, state.name, state.args, state.kwargs,
    )  # fmt: skip


T = TypeVar("T")


def _ask(
    decide: Callable[[AttemptState], T],
    state: AttemptState,
    what: str,
    shown: AttemptState | None = None,
) -> T:
    """Run a user's condition or wait; if it raises, the attempt's own error stays attached.

    `decide` is given `shown` when set (a state standing for `state`), else `state` itself.
    """
    try:
        return decide(state if shown is None else shown)
    except Exception as error:
        error.add_note(
            f"reflow: raised by the {what} {decide!r} after attempt {state.attempt} of "
            f"{state.name} {'failed' if state.failed else 'returned'}"
        )
        if state.exception is not None:
            raise error from state.exception
        raise


def _accepts(until: Callable[[AttemptState], bool], state: AttemptState) -> bool:
    """Whether `until` stops on this result itself, whatever the attempts and time spent.

    Evaluated as if nothing had been spent yet, so `AttemptsExhausted(5) | ResultMatches(ok)`
    accepts only results that are `ok`, and running out of attempts is a give-up, not a success.
    """
    fresh = AttemptState(
        0, state.phase, 0.0, None, state.result, 0.0, state.name, state.args, state.kwargs
    )
    return bool(_ask(until, state, "stop condition", fresh))


def _stop_reason(policy: Policy, state: AttemptState, last: str | bool) -> str | None:
    if last:
        return last if isinstance(last, str) else "a hook raised StopRetrying"
    if _ask(policy.until, state, "stop condition"):
        return ""
    return None


def _give_up(policy: Policy, state: AttemptState, reason: str) -> Plan:
    state = _with_phase(state, Phase.GIVEUP)
    if policy.hooks["on_giveup"]:
        yield CallHooks(policy.hooks["on_giveup"], state)
    exc = state.exception
    plural = "s" if state.attempt != 1 else ""
    summary = f"after {state.attempt} attempt{plural} in {state.elapsed:.2f} s"
    if exc is None:
        # Polling ran out: the last result is returned, and said out loud.
        logger.warning(
            "reflow: gave up polling %s %s%s; returning the last result %r",
            state.name, summary, f" ({reason})" if reason else "", state.result,
        )  # fmt: skip
    elif reason == "" and state.attempt == 1:
        exc.add_note(f"reflow: not retried: the stop condition {policy.until!r} holds")
    else:
        note = f"reflow: gave up {summary}"
        exc.add_note(f"{note} ({reason})" if reason else note)
    return exc, state.result


def drive_sync(
    steps: Plan, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Perform a plan's steps in this thread; return the result or raise the final exception."""
    try:
        step = next(steps)
        while True:
            if type(step) is Run:
                try:
                    if step.timeout is None:
                        outcome: Outcome = (None, fn(*args, **kwargs))
                    else:
                        from reflow.retry.timeouts import call_with_timeout

                        outcome = (None, call_with_timeout(fn, args, kwargs, step.timeout))
                except Exception as exc:
                    outcome = (exc, None)
                step = steps.send(outcome)
            elif type(step) is CallHooks:
                step = steps.send(call_hooks_sync(step.hooks, step.state))
            else:
                _clock.sleep(step.seconds)  # type: ignore[union-attr]
                step = steps.send(None)
    except StopIteration as done:
        final: Outcome = done.value
    # Raised outside the handler so the user's exception gets no StopIteration context.
    if final[0] is not None:
        raise final[0]
    return final[1]


async def drive_async(
    steps: Plan, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Perform a plan's steps on the running event loop; return the result or raise."""
    try:
        step = next(steps)
        while True:
            if type(step) is Run:
                try:
                    if step.timeout is None:
                        outcome: Outcome = (None, await fn(*args, **kwargs))
                    else:
                        outcome = (
                            None,
                            await await_with_timeout(fn(*args, **kwargs), step.timeout),
                        )
                except Exception as exc:
                    outcome = (exc, None)
                step = steps.send(outcome)
            elif type(step) is CallHooks:
                step = steps.send(await call_hooks_async(step.hooks, step.state))
            else:
                await _clock.async_sleep(step.seconds)  # type: ignore[union-attr]
                step = steps.send(None)
    except StopIteration as done:
        final: Outcome = done.value
    # Raised outside the handler so the user's exception gets no StopIteration context.
    if final[0] is not None:
        raise final[0]
    return final[1]


async def await_with_timeout(awaitable: Awaitable[Any], seconds: float) -> Any:
    """Await `awaitable`, cancelling it and raising `AttemptTimeout` after `seconds`."""
    import asyncio

    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            result = await awaitable
    except TimeoutError as exc:
        if scope.expired():
            raise attempt_timeout(seconds, exc) from None
        raise
    if scope.expired():  # the attempt caught its cancellation: its time was up all the same
        raise attempt_timeout(seconds)
    return result
